"""PyTorch Geometric interop (graphormer2.pyg): OGB-layout Data in and out, checked on NCI molecules against
graphormer2's RDKit path and against ``torch_geometric.utils.from_smiles``."""

from __future__ import annotations

import sys
import warnings
from dataclasses import fields
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from graphormer2.collate import GraphItem, collate
from graphormer2.datasets import MoleculeDataset, from_smiles, rdkit_data_file
from graphormer2.pyg import PygDataset, dataset_from_pyg, from_pyg, ogb_data_from_smiles, to_pyg
from rdkit import Chem

from papers_common import InputError

torch.set_num_threads(1)

NCI_MOLECULES = 200


@pytest.fixture(scope="module")
def pyg():
    """torch_geometric, imported without its own ``torch.jit.script`` deprecation warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return pytest.importorskip("torch_geometric")


@pytest.fixture(scope="module")
def nci() -> tuple[list[str], MoleculeDataset]:
    """The first NCI SMILES RDKit reads, and graphormer2's dataset of them (one target: the atom count)."""
    lines = rdkit_data_file("NCI/first_5K.smi").read_text(encoding="utf-8").splitlines()
    smiles = [line.split()[0] for line in lines[:NCI_MOLECULES]]
    mols = [Chem.MolFromSmiles(s) for s in smiles]
    dataset = from_smiles(smiles, [m.GetNumAtoms() for m in mols], strict=True)
    return smiles, dataset


def assert_items_equal(left: GraphItem, right: GraphItem) -> None:
    for field in fields(GraphItem):
        a, b = getattr(left, field.name), getattr(right, field.name)
        assert torch.equal(a, b), field.name


def bond_set(edge_index: torch.Tensor) -> set[tuple[int, int]]:
    return set(map(tuple, edge_index.t().tolist()))


def test_nci_round_trip_through_pyg_is_exact(pyg, nci) -> None:
    smiles, dataset = nci
    for index in range(len(dataset)):
        item = dataset[index]
        data = to_pyg(item, smiles[index])
        assert isinstance(data, pyg.data.Data)
        assert data.num_nodes == item.num_nodes
        assert data.y.shape == (1, 1)
        # structure and features back from the ids equal RDKit's graph as OGB's smiles2graph builds it
        ogb = ogb_data_from_smiles(smiles[index])
        assert bond_set(data.edge_index) == bond_set(ogb.edge_index)
        assert torch.equal(data.x, ogb.x)
        order = {pair: k for k, pair in enumerate(map(tuple, ogb.edge_index.t().tolist()))}
        permutation = [order[pair] for pair in map(tuple, data.edge_index.t().tolist())]
        assert torch.equal(data.edge_attr, ogb.edge_attr[permutation])
        # the shortest paths from SciPy's BFS on edge_index equal RDKit's distance matrix, and so every id
        assert_items_equal(from_pyg(data), item)
        assert_items_equal(from_pyg(ogb, item.y), item)


def test_pyg_from_smiles_has_the_same_graph_structure(pyg, nci) -> None:
    """PyG's own featuriser (other vocabularies, same molecule graph): same atoms, bonds and shortest paths."""
    from torch_geometric.utils import from_smiles as pyg_from_smiles

    smiles, dataset = nci
    for index, text in enumerate(smiles):
        item = dataset[index]
        data = pyg_from_smiles(text)
        assert data.num_nodes == item.num_nodes
        assert bond_set(data.edge_index) == bond_set(to_pyg(item).edge_index)
        theirs = from_pyg(data)  # PyG's ids are in range, so only the feature meaning differs
        assert torch.equal(theirs.spatial_pos, item.spatial_pos)
        assert torch.equal(theirs.in_degree, item.in_degree)
        assert torch.equal(theirs.attn_edge_type.ne(0), item.attn_edge_type.ne(0))


def test_shortest_paths_of_a_hand_built_graph() -> None:
    """A 4-cycle 0-1-2-3 with a pendant atom 4 on 3, and an isolated atom 5 (φ by hand)."""
    bonds = [(0, 1), (1, 2), (2, 3), (3, 0), (3, 4)]
    edge_index = torch.tensor([pair for u, v in bonds for pair in ((u, v), (v, u))]).t()
    data = SimpleNamespace(
        x=torch.zeros(6, 9, dtype=torch.long),
        edge_index=edge_index,
        edge_attr=torch.arange(30).reshape(10, 3) % 4,
        y=torch.tensor([[1.5, -2.0]]),
    )
    item = from_pyg(data, multi_hop_max_dist=2)
    phi = torch.tensor(
        [
            [0, 1, 2, 1, 2, 510],
            [1, 0, 1, 2, 3, 510],
            [2, 1, 0, 1, 2, 510],
            [1, 2, 1, 0, 1, 510],
            [2, 3, 2, 1, 0, 510],
            [510, 510, 510, 510, 510, 0],
        ]
    )
    assert torch.equal(item.spatial_pos.long(), phi + 1)
    assert item.in_degree.tolist() == [3, 3, 3, 4, 2, 1]
    assert item.y.tolist() == [1.5, -2.0]
    # bond 3-4 is edge 8 (3 → 4): ids v + 2 + 512 j
    assert item.attn_edge_type[3, 4].tolist() == (data.edge_attr[8] + 2 + 512 * torch.arange(3)).tolist()
    # path 1 → 4 is 1-0-3-4 or 1-2-3-4 (highest-numbered next hop: 2); its first two hops are stored, +1
    hop_12 = data.edge_attr[2] + 3 + 512 * torch.arange(3)
    hop_23 = data.edge_attr[4] + 3 + 512 * torch.arange(3)
    assert item.edge_input[1, 4].tolist() == [hop_12.tolist(), hop_23.tolist()]


def test_dataset_from_pyg_batches_like_from_smiles(pyg, nci) -> None:
    smiles = nci[0]
    graphs = [ogb_data_from_smiles(s, [float(i)]) for i, s in enumerate(smiles[:12])]
    ours = dataset_from_pyg(graphs, target_names=["rank"])
    assert ours.smiles == smiles[:12]
    assert ours.target_names == ["rank"]
    assert ours.targets[:, 0].tolist() == list(range(12))
    reference = from_smiles(smiles[:12], list(range(12)))
    left, right = collate([ours[i] for i in range(12)]), collate([reference[i] for i in range(12)])
    for field in fields(left):
        assert torch.equal(getattr(left, field.name), getattr(right, field.name)), field.name
    assert dataset_from_pyg(graphs, np.zeros((12, 2))).targets.shape == (12, 2)


def test_pyg_dataset_feeds_a_pyg_loader(pyg, nci) -> None:
    from torch_geometric.loader import DataLoader

    smiles, dataset = nci
    view = PygDataset(dataset)
    assert len(view) == len(dataset)
    assert view[3].smiles == smiles[3]
    batch = next(iter(DataLoader(view, batch_size=5)))
    assert batch.num_graphs == 5
    assert batch.y.shape == (5, 1)
    assert batch.x.shape == (sum(dataset[i].num_nodes for i in range(5)), 9)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"x": torch.zeros(3, 9)}, r"graphs\[0\]\.x: expected integer category indices .* torch\.float32"),
        ({"x": torch.zeros(3, 7, dtype=torch.long)}, r"x: expected \(N ≥ 1, 9\) OGB atom features"),
        ({"x": None}, r"x: expected an integer tensor"),
        ({"edge_index": torch.zeros(3, 2, dtype=torch.long)}, r"edge_index: expected \(2, E\)"),
        ({"edge_attr": torch.zeros(2, 2, dtype=torch.long)}, r"edge_attr: expected \(2, 3\)"),
        (
            {"edge_index": torch.tensor([[0], [1]]), "edge_attr": torch.zeros(1, 3, dtype=torch.long)},
            "both directions",
        ),
        ({"edge_index": torch.tensor([[0, 7], [7, 0]])}, "outside 0..2"),
        ({"x": torch.full((3, 9), -1)}, r"category indices in \[0, 510\)"),
    ],
)
def test_bad_graphs_are_refused(change: dict, message: str) -> None:
    graph = {
        "x": torch.zeros(3, 9, dtype=torch.long),
        "edge_index": torch.tensor([[0, 1], [1, 0]]),
        "edge_attr": torch.zeros(2, 3, dtype=torch.long),
    }
    with pytest.raises(InputError, match=message):
        dataset_from_pyg([SimpleNamespace(**{**graph, **change})])


def test_missing_torch_geometric_names_the_extra(monkeypatch, nci) -> None:
    monkeypatch.setitem(sys.modules, "torch_geometric", None)
    monkeypatch.setitem(sys.modules, "torch_geometric.data", None)
    with pytest.raises(InputError, match=r"pip install 'graphormer2\[pyg\]'"):
        to_pyg(nci[1][0])
    # reading PyG-shaped graphs needs no torch_geometric
    graph = SimpleNamespace(
        x=torch.zeros(1, 9, dtype=torch.long), edge_index=torch.zeros(2, 0, dtype=torch.long), edge_attr=None
    )
    assert from_pyg(graph).num_nodes == 1
