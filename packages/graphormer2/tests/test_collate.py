"""Preprocessing and batching (graphormer2.collate) against a plain-Python port of the official preprocessing
(Floyd–Warshall with recursive path recovery, ``convert_to_single_emb`` and the fairseq collator's padding)."""

from __future__ import annotations

import dataclasses
from itertools import islice

import numpy as np
import pytest
import torch
from graphormer2.collate import (
    NUM_ATOM_IDS,
    NUM_BOND_IDS,
    NUM_DEGREE_IDS,
    NUM_SPATIAL_IDS,
    GraphBatch,
    GraphItem,
    collate,
    preprocess,
)
from graphormer2.features import MolGraph, smiles_to_graph
from rdkit import RDConfig

from papers_common import InputError

torch.set_num_threads(1)

# acyclic molecules have one shortest path per pair, so the official path choice is the only one
TREES = ["CCO", "CC(C)CC(=O)O", "CCN(CC)CC", "C#CC(Cl)=O", "CC.O", "[Na+].[Cl-]", "CCCCCCCC(N)C", "C"]
RINGS = ["c1ccccc1", "C12C3C4C1C5C2C3C45", "OC1=C(Cl)C=C(C=C1[N+]([O-])=O)[N+]([O-])=O", "C1CC2CCC1CC2.CO"]


def official_item(graph: MolGraph, max_hops: int) -> dict[str, np.ndarray]:
    """``preprocess_item`` + the collator's per-graph shifts of microsoft/Graphormer, in plain Python loops."""
    n = graph.num_nodes
    offsets = 1 + 512 * np.arange(graph.x.shape[1])
    x = graph.x + offsets
    adj = np.zeros((n, n), dtype=np.int64)
    edge_type = np.zeros((n, n, 3), dtype=np.int64)
    for e, (u, v) in enumerate(graph.edge_index.T.tolist()):
        adj[u, v] = 1
        edge_type[u, v] = graph.edge_attr[e] + 1 + 512 * np.arange(3) + 1
    dist = [[0 if i == j else (1 if adj[i, j] else 510) for j in range(n)] for i in range(n)]
    via = [[-1] * n for _ in range(n)]
    for k in range(n):
        for i in range(n):
            for j in range(n):
                if dist[i][j] > dist[i][k] + dist[k][j]:
                    dist[i][j] = dist[i][k] + dist[k][j]
                    via[i][j] = k

    def inner(i: int, j: int) -> list[int]:
        k = via[i][j]
        return [] if k == -1 else [*inner(i, k), k, *inner(k, j)]

    edge_input = -np.ones((n, n, max_hops, 3), dtype=np.int64)
    for i in range(n):
        for j in range(n):
            if i == j or dist[i][j] >= 510:
                continue
            path = [i, *inner(i, j), j]
            for k in range(min(len(path) - 1, max_hops)):
                edge_input[i, j, k] = edge_type[path[k], path[k + 1]]
    return {
        "x": x + 1,
        "in_degree": adj.sum(axis=1) + 1,
        "spatial_pos": np.array(dist).reshape(n, n) + 1,
        "attn_edge_type": edge_type,
        "edge_input": edge_input + 1,
    }


def official_batch(graphs: list[MolGraph], max_hops: int) -> dict[str, np.ndarray]:
    """The collator's zero padding and its attention mask (−inf on padded key columns, 0 on padded rows' real keys)."""
    items = [official_item(g, max_hops) for g in graphs]
    size = max(g.num_nodes for g in graphs)
    batch = {
        "x": np.zeros((len(graphs), size, graphs[0].x.shape[1]), dtype=np.int64),
        "in_degree": np.zeros((len(graphs), size), dtype=np.int64),
        "spatial_pos": np.zeros((len(graphs), size, size), dtype=np.int64),
        "attn_edge_type": np.zeros((len(graphs), size, size, 3), dtype=np.int64),
        "edge_input": np.zeros((len(graphs), size, size, max_hops, 3), dtype=np.int64),
        "attn_bias": np.full((len(graphs), size + 1, size + 1), -np.inf),
    }
    for b, (graph, item) in enumerate(zip(graphs, items, strict=True)):
        n = graph.num_nodes
        batch["x"][b, :n] = item["x"]
        batch["in_degree"][b, :n] = item["in_degree"]
        batch["spatial_pos"][b, :n, :n] = item["spatial_pos"]
        batch["attn_edge_type"][b, :n, :n] = item["attn_edge_type"]
        batch["edge_input"][b, :n, :n] = item["edge_input"]
        batch["attn_bias"][b, : n + 1, : n + 1] = 0
        batch["attn_bias"][b, n + 1 :, : n + 1] = 0
    return batch


def graphs_of(smiles: list[str]) -> list[MolGraph]:
    graphs = [smiles_to_graph(s) for s in smiles]
    assert all(g is not None for g in graphs)
    return graphs  # type: ignore[return-value]


def nci_graphs(count: int) -> list[MolGraph]:
    with open(f"{RDConfig.RDDataDir}/NCI/first_5K.smi", encoding="utf-8") as handle:
        graphs = [smiles_to_graph(line.split()[0]) for line in islice(handle, count)]
    return [g for g in graphs if g is not None]


def test_ethanol_ids_closed_form() -> None:
    graph = smiles_to_graph("CCO")
    assert graph is not None
    item = preprocess(graph, [1.5, float("nan")])
    raw = graph.x
    np.testing.assert_array_equal(item.x.numpy(), raw + 2 + 512 * np.arange(9))
    np.testing.assert_array_equal(item.in_degree.numpy(), [2, 3, 2])
    np.testing.assert_array_equal(item.spatial_pos.numpy(), [[1, 2, 3], [2, 1, 2], [3, 2, 1]])
    single = [2, 514, 1026]  # bond features (SINGLE, STEREONONE, not conjugated) = 0, +2 + 512 j
    assert item.attn_edge_type[0, 1].tolist() == single
    assert item.attn_edge_type[0, 2].tolist() == [0, 0, 0]
    hop = [3, 515, 1027]
    assert item.edge_input[0, 2].tolist() == [hop, hop, [0] * 3, [0] * 3, [0] * 3]
    assert item.edge_input[0, 1].tolist() == [hop, *[[0] * 3] * 4]
    assert (item.edge_input[1, 1] == 0).all()
    assert item.y[0] == 1.5
    assert torch.isnan(item.y[1])
    assert item.num_nodes == 3


@pytest.mark.parametrize("max_hops", [5, 2])
def test_trees_match_the_official_preprocessing_exactly(max_hops: int) -> None:
    graphs = graphs_of(TREES)
    batch = collate([preprocess(g, [float(k)], max_hops) for k, g in enumerate(graphs)])
    reference = official_batch(graphs, max_hops)
    for name, expected in reference.items():
        np.testing.assert_array_equal(getattr(batch, name).numpy(), expected, err_msg=name)
    assert batch.y.tolist() == [[float(k)] for k in range(len(TREES))]


def test_ring_molecules_match_official_up_to_the_choice_of_path() -> None:
    """With rings several shortest paths tie: everything but the hop ids must agree, and hops exist for the same
    pairs and positions."""
    graphs = graphs_of(RINGS)
    batch = collate([preprocess(g, []) for g in graphs])
    reference = official_batch(graphs, 5)
    for name in ("x", "in_degree", "spatial_pos", "attn_edge_type", "attn_bias"):
        np.testing.assert_array_equal(getattr(batch, name).numpy(), reference[name], err_msg=name)
    np.testing.assert_array_equal(batch.edge_input.numpy() > 0, reference["edge_input"] > 0)


def test_collate_pads_with_zeros_and_keeps_each_graph_block() -> None:
    graphs = graphs_of(["CCO", "c1ccccc1C(=O)O", "C", "CC.O"])
    items = [preprocess(g, [float(k), -float(k)], 3) for k, g in enumerate(graphs)]
    batch = collate(items)
    sizes = [g.num_nodes for g in graphs]
    size = max(sizes)
    assert len(batch) == 4
    assert batch.num_nodes.tolist() == sizes
    assert batch.x.shape == (4, size, 9)
    assert batch.edge_input.shape == (4, size, size, 3, 3)
    for name in ("x", "in_degree", "spatial_pos", "attn_edge_type", "edge_input"):
        assert getattr(batch, name).dtype == torch.long
    for b, (item, n) in enumerate(zip(items, sizes, strict=True)):
        assert torch.equal(batch.x[b, :n], item.x.long())
        assert (batch.x[b, n:] == 0).all()
        assert torch.equal(batch.in_degree[b, :n], item.in_degree.long())
        assert (batch.in_degree[b, n:] == 0).all()
        for name in ("spatial_pos", "attn_edge_type", "edge_input"):
            block = getattr(batch, name)[b]
            assert torch.equal(block[:n, :n], getattr(item, name).long()), name
            assert (block[n:] == 0).all(), name
            assert (block[:, n:] == 0).all(), name
        bias = batch.attn_bias[b]
        assert (bias[:, : n + 1] == 0).all()  # real keys (graph token included), every row
        assert torch.isneginf(bias[:, n + 1 :]).all()  # padded keys, every row
        assert batch.y[b].tolist() == [float(b), -float(b)]


def test_ids_stay_inside_the_embedding_tables() -> None:
    items = [preprocess(g, []) for g in nci_graphs(80)]
    batch = collate(items)
    real = torch.arange(batch.x.shape[1])[None, :] < batch.num_nodes[:, None]
    x = batch.x[real]
    low = 2 + 512 * torch.arange(9)
    assert ((x >= low) & (x < low + 510)).all()
    assert int(batch.x.max()) < NUM_ATOM_IDS
    degree = batch.in_degree[real]
    assert degree.min() >= 1
    assert degree.max() < NUM_DEGREE_IDS
    pair = real[:, :, None] & real[:, None, :]
    spatial = batch.spatial_pos[pair]
    assert spatial.min() >= 1
    assert spatial.max() < NUM_SPATIAL_IDS
    assert (batch.spatial_pos[~pair] == 0).all()
    bond_low = 2 + 512 * torch.arange(3)
    edge = batch.attn_edge_type[pair]
    bonded = (edge > 0).all(-1)
    assert ((edge == 0).all(-1) | bonded).all()
    assert ((edge[bonded] >= bond_low) & (edge[bonded] < bond_low + 510)).all()
    hops = batch.edge_input[pair]
    present = (hops > 0).all(-1)
    assert ((hops == 0).all(-1) | present).all()
    assert ((hops[present] >= bond_low + 1) & (hops[present] < bond_low + 511)).all()
    assert int(batch.edge_input.max()) < NUM_BOND_IDS
    assert int(batch.attn_edge_type.max()) < NUM_BOND_IDS
    # a pair at distance d has exactly min(d, 5) hops
    expected_hops = (batch.spatial_pos[pair] - 1).clamp(max=5)
    expected_hops[batch.spatial_pos[pair] == 511] = 0
    assert torch.equal(present.sum(-1), expected_hops)


def test_rdkit_and_scipy_distances_give_the_same_items() -> None:
    for graph in nci_graphs(40) + graphs_of(RINGS):
        with_rdkit = preprocess(graph, [])
        with_scipy = preprocess(dataclasses.replace(graph, distance=None), [])
        for field in dataclasses.fields(GraphItem):
            assert torch.equal(getattr(with_rdkit, field.name), getattr(with_scipy, field.name)), field.name


def test_generic_graph_with_fewer_features() -> None:
    """A ZINC-like graph: one atom feature, one bond feature, no distance matrix."""
    graph = MolGraph(
        x=np.array([[0], [3], [7]]),
        edge_index=np.array([[0, 1, 1, 2], [1, 0, 2, 1]]),
        edge_attr=np.array([[1], [1], [2], [2]]),
        num_nodes=3,
    )
    item = preprocess(graph, [0.0])
    assert item.x.tolist() == [[2], [5], [9]]
    assert item.attn_edge_type[:, :, 0].tolist() == [[0, 3, 0], [3, 0, 4], [0, 4, 0]]
    assert item.edge_input[0, 2, :2, 0].tolist() == [4, 5]
    assert item.spatial_pos[0, 2] == 3


def test_batch_to_moves_every_tensor() -> None:
    batch = collate([preprocess(g, [1.0]) for g in graphs_of(["CCO", "CC"])])
    moved = batch.to("meta")
    assert isinstance(moved, GraphBatch)
    for field in dataclasses.fields(GraphBatch):
        assert getattr(moved, field.name).device.type == "meta", field.name
        assert getattr(batch, field.name).device.type == "cpu"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"edge_index": np.array([[0, 1], [1, 2]]), "edge_attr": np.zeros((2, 3), np.int64)},
            "both directions",
        ),
        ({"x": np.full((3, 9), 510)}, "category indices"),
        ({"x": np.full((3, 9), -1)}, "category indices"),
        ({"x": np.zeros((0, 9), np.int64), "num_nodes": 0}, "num_nodes"),
        ({"edge_attr": np.zeros((3, 3), np.int64)}, "edge_attr"),
        ({"edge_index": np.array([[0, 5], [5, 0]]), "edge_attr": np.zeros((2, 3), np.int64)}, "outside"),
        ({"distance": np.zeros((2, 2), np.int64)}, "distance"),
    ],
)
def test_preprocess_rejects_bad_graphs(change: dict, message: str) -> None:
    graph = smiles_to_graph("CCO")
    assert graph is not None
    with pytest.raises(InputError, match=message):
        preprocess(dataclasses.replace(graph, **change), [])


def test_collate_rejects_empty_and_mixed_lists() -> None:
    graph = smiles_to_graph("CCO")
    assert graph is not None
    with pytest.raises(ValueError, match="empty"):
        collate([])
    with pytest.raises(ValueError, match="differ"):
        collate([preprocess(graph, [], 5), preprocess(graph, [], 3)])
    with pytest.raises(ValueError, match="differ"):
        collate([preprocess(graph, [1.0]), preprocess(graph, [1.0, 2.0])])
