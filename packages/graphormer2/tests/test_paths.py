"""Shortest-path distances and stored paths (graphormer2.paths) against a breadth-first search per pair in plain
Python, on random graphs (connected or not) and on molecules."""

from __future__ import annotations

from collections import deque
from itertools import islice

import numpy as np
import pytest
import torch
from graphormer2.features import mol_to_graph
from graphormer2.paths import (
    UNREACHABLE,
    adjacency,
    degree,
    next_hops,
    path_edge_features,
    path_nodes,
    shortest_path_distances,
)
from rdkit import Chem, RDConfig

torch.set_num_threads(1)


def neighbours(edge_index: np.ndarray, n: int) -> list[set[int]]:
    adj: list[set[int]] = [set() for _ in range(n)]
    for u, v in edge_index.T.tolist():
        adj[u].add(v)
    return adj


def bfs_distance(adj: list[set[int]], i: int, j: int) -> int:
    """Hops from i to j by breadth-first search (one search per pair, as plainly as possible)."""
    seen, queue = {i}, deque([(i, 0)])
    while queue:
        node, dist = queue.popleft()
        if node == j:
            return dist
        for nxt in sorted(adj[node]):
            if nxt not in seen:
                seen.add(nxt)
                queue.append((nxt, dist + 1))
    return UNREACHABLE


def random_graph(rng: np.random.Generator, n: int, p: float) -> np.ndarray:
    """Undirected Erdős–Rényi edges, both directions listed, in shuffled order."""
    upper = np.triu(rng.random((n, n)) < p, k=1)
    u, v = np.nonzero(upper)
    edge_index = np.concatenate([np.stack([u, v]), np.stack([v, u])], axis=1)
    return edge_index[:, rng.permutation(edge_index.shape[1])].astype(np.int64)


# many equal shortest paths (cubane, bicycles) and several fragments (salts)
EXTRA_SMILES = [
    "C12C3C4C1C5C2C3C45",
    "C1CC2CCC1CC2",
    "CC(=O)[O-].[Na+]",
    "c1ccccc1.C1CCC2CCCCC2C1",
    "[Na+].[Cl-]",
]


def molecule_graphs(count: int) -> list[tuple[np.ndarray, int, np.ndarray]]:
    """The first ``count`` NCI molecules and :data:`EXTRA_SMILES` as (edge_index, n, RDKit φ)."""
    with open(f"{RDConfig.RDDataDir}/NCI/first_5K.smi", encoding="utf-8") as handle:
        smiles = [line.split()[0] for line in islice(handle, count)]
    graphs = []
    for text in smiles + EXTRA_SMILES:
        mol = Chem.MolFromSmiles(text)
        if mol is not None:
            graph = mol_to_graph(mol)
            graphs.append((graph.edge_index, graph.num_nodes, graph.distance))
    return graphs


def check_paths(edge_index: np.ndarray, n: int, dist: np.ndarray, max_hops: int) -> None:
    """Every stored path prefix is valid: starts at i, follows edges, gets one step closer to j per hop."""
    adj = neighbours(edge_index, n)
    reference = np.array([[bfs_distance(adj, i, j) for j in range(n)] for i in range(n)]).reshape(n, n)
    np.testing.assert_array_equal(dist, reference)
    nodes = path_nodes(next_hops(dist, edge_index), max_hops)
    assert nodes.shape == (n, n, max_hops + 1)
    assert nodes.dtype == np.int64
    for i in range(n):
        for j in range(n):
            d = reference[i, j]
            hops = 0 if d == UNREACHABLE else min(d, max_hops)
            path = nodes[i, j].tolist()
            assert path[0] == i
            assert all(node == -1 for node in path[hops + 1 :]), (i, j, path)
            for ell in range(hops):
                u, v = path[ell], path[ell + 1]
                assert v in adj[u], (i, j, path)
                assert reference[v, j] == d - ell - 1, (i, j, path)
            if d <= max_hops:
                assert path[hops] == j

    # edge features along the path: a distinct code per directed edge, so a wrong edge cannot match
    codes = np.zeros((n, n, 2), dtype=np.int64)
    codes[edge_index[0], edge_index[1], 0] = 1000 + edge_index[0] * n + edge_index[1]
    codes[edge_index[0], edge_index[1], 1] = -7
    features = path_edge_features(nodes, codes, fill=-1)
    assert features.shape == (n, n, max_hops, 2)
    for i in range(n):
        for j in range(n):
            for ell in range(max_hops):
                u, v = nodes[i, j, ell], nodes[i, j, ell + 1]
                expected = [-1, -1] if v < 0 else [1000 + u * n + v, -7]
                assert features[i, j, ell].tolist() == expected


@pytest.mark.parametrize(
    ("n", "p"), [(1, 0.5), (2, 0.0), (5, 0.5), (9, 0.25), (12, 0.15), (12, 0.6), (10, 0.0)]
)
def test_random_graphs_match_bfs(rng: np.random.Generator, n: int, p: float) -> None:
    for _ in range(3):
        edge_index = random_graph(rng, n, p)
        dist = shortest_path_distances(edge_index, n)
        assert dist.dtype == np.int64
        check_paths(edge_index, n, dist, max_hops=5)
        check_paths(edge_index, n, dist, max_hops=2)


def test_molecules_match_bfs() -> None:
    """Ring systems (several shortest paths) and salts (several fragments), with SciPy's and RDKit's φ."""
    graphs = molecule_graphs(40)
    for edge_index, n, rdkit_dist in graphs:
        dist = shortest_path_distances(edge_index, n)
        np.testing.assert_array_equal(dist, rdkit_dist)
        check_paths(edge_index, n, dist, max_hops=5)


def test_long_chain_is_cut_at_max_hops() -> None:
    n = 9
    edge_index = np.array([[*range(n - 1), *range(1, n)], [*range(1, n), *range(n - 1)]])
    dist = shortest_path_distances(edge_index, n)
    np.testing.assert_array_equal(dist, np.abs(np.arange(n)[:, None] - np.arange(n)[None, :]))
    nodes = path_nodes(next_hops(dist, edge_index), 5)
    assert nodes[0, 8].tolist() == [0, 1, 2, 3, 4, 5]
    assert nodes[8, 0].tolist() == [8, 7, 6, 5, 4, 3]
    assert nodes[2, 4].tolist() == [2, 3, 4, -1, -1, -1]
    assert nodes[3, 3].tolist() == [3, -1, -1, -1, -1, -1]


def test_tie_break_takes_the_highest_numbered_neighbour() -> None:
    """On the 4-cycle 0-1-2-3-0 both 1 and 3 lead from 0 to 2; the documented rule picks 3."""
    edge_index = np.array([[0, 1, 1, 2, 2, 3, 3, 0], [1, 0, 2, 1, 3, 2, 0, 3]])
    hops = next_hops(shortest_path_distances(edge_index, 4), edge_index)
    assert hops[0, 2] == 3
    assert hops[2, 0] == 3
    assert hops[1, 3] == 2
    assert hops[3, 1] == 2
    assert (np.diag(hops) == -1).all()


def test_unreachable_pairs() -> None:
    edge_index = np.array([[0, 1], [1, 0]])  # node 2 is isolated
    dist = shortest_path_distances(edge_index, 3)
    np.testing.assert_array_equal(dist, [[0, 1, 510], [1, 0, 510], [510, 510, 0]])
    hops = next_hops(dist, edge_index)
    np.testing.assert_array_equal(hops, [[-1, 1, -1], [0, -1, -1], [-1, -1, -1]])


def test_degree_counts_distinct_neighbours(rng: np.random.Generator) -> None:
    edge_index = random_graph(rng, 10, 0.4)
    adj = neighbours(edge_index, 10)
    np.testing.assert_array_equal(degree(edge_index, 10), [len(a) for a in adj])
    doubled = np.concatenate([edge_index, edge_index], axis=1)  # a repeated edge is one neighbour
    np.testing.assert_array_equal(degree(doubled, 10), [len(a) for a in adj])
    assert adjacency(edge_index, 10).sum() == edge_index.shape[1]
