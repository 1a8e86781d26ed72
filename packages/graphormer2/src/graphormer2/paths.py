"""Graph structure for the attention biases: degree, shortest-path distance φ(i, j) and one shortest path per pair.

Spec §3.1 (preprocessing). The official code runs a Cython Floyd–Warshall (O(n³)) and then recovers every pair's
path with a recursive walk per pair. Here:

1. φ comes from SciPy's compiled breadth-first search (:func:`shortest_path_distances`, Dijkstra with unit
   weights) or, for molecules, from RDKit's topological distance matrix (:attr:`graphormer2.features.MolGraph.distance`,
   the same numbers, computed in C++ while the molecule is at hand);
2. a next-hop table is read off φ for all pairs at once (:func:`next_hops`): the next node after i on a shortest path
   to j is a neighbour k of i with φ(k, j) = φ(i, j) − 1, found with one comparison per (edge, target) pair;
3. the paths of all pairs are walked at the same time (:func:`path_nodes`), one vectorised step per hop and at most
   ``max_hops`` steps, and their edge features gathered (:func:`path_edge_features`).

Which path is stored when several are shortest: at every step the highest-numbered neighbour that is one step closer
to j. This is a shortest path, as is the official one (Floyd–Warshall's last improving intermediate node), but the
two can differ on graphs with rings; on trees (unique shortest paths) they agree. The model sees one path per pair,
so any shortest path is valid input; the stored path of (j, i) need not be the reverse of that of (i, j).

Graphs are undirected: ``edge_index`` lists both directions of every edge (the OGB and PyG convention).
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

#: φ of a pair with no path between them (the official value); longer distances are clamped to it.
UNREACHABLE = 510


def adjacency(edge_index: np.ndarray, num_nodes: int) -> np.ndarray:
    """Boolean ``(n, n)`` adjacency, true at ``[u, v]`` for every column ``(u, v)`` of ``edge_index`` ``(2, E)``."""
    adj = np.zeros((num_nodes, num_nodes), dtype=bool)
    adj[edge_index[0], edge_index[1]] = True
    return adj


def degree(edge_index: np.ndarray, num_nodes: int) -> np.ndarray:
    """Number of distinct neighbours of each node, int64 ``(n,)`` (adjacency row sums; in = out degree)."""
    return adjacency(edge_index, num_nodes).sum(axis=1, dtype=np.int64)


def shortest_path_distances(edge_index: np.ndarray, num_nodes: int) -> np.ndarray:
    """All-pairs hop distances φ of an unweighted undirected graph (SciPy, breadth-first from every node).

    Args:
        edge_index: int64 ``(2, E)`` edges, both directions listed.
        num_nodes: ``n``.

    Returns:
        int64 ``(n, n)``: φ(i, j), 0 on the diagonal, :data:`UNREACHABLE` (510) for pairs in different components
        (distances above 510 are clamped to it).
    """
    src, dst = np.asarray(edge_index, dtype=np.int64).reshape(2, -1)
    # CSR built directly (sorted by source) costs far less than SciPy's COO → CSR conversion on small graphs.
    order = np.argsort(src, kind="stable")
    indptr = np.zeros(num_nodes + 1, dtype=np.int32)
    np.cumsum(np.bincount(src, minlength=num_nodes), out=indptr[1:])
    graph = csr_matrix((np.ones(len(src)), dst[order].astype(np.int32), indptr), shape=(num_nodes, num_nodes))
    dist = dijkstra(graph, directed=True, unweighted=True)
    return np.where(np.isfinite(dist), np.minimum(dist, UNREACHABLE), UNREACHABLE).astype(np.int64)


def next_hops(dist: np.ndarray, edge_index: np.ndarray) -> np.ndarray:
    """Next-hop table of one shortest path per pair, from φ and the edges (no per-pair work).

    Args:
        dist: int64 ``(n, n)`` φ (:data:`UNREACHABLE` for disconnected pairs).
        edge_index: int64 ``(2, E)`` edges, both directions listed.

    Returns:
        int64 ``(n, n)``: ``[i, j]`` is the highest-numbered neighbour k of i with φ(k, j) = φ(i, j) − 1, the next
        node after i on the stored path to j; −1 for i = j and for unreachable pairs.
    """
    n = dist.shape[0]
    src, dst = np.asarray(edge_index, dtype=np.int64).reshape(2, -1)
    # edge e = (i → k) leads towards j when k is one step closer to j than i is
    edge, target = np.nonzero((dist[dst] == dist[src] - 1) & (dist[src] < UNREACHABLE))
    hops = np.full(n * n, -1, dtype=np.int64)
    np.maximum.at(hops, src[edge] * n + target, dst[edge])
    return hops.reshape(n, n)


def path_nodes(hops: np.ndarray, max_hops: int) -> np.ndarray:
    """The first ``max_hops`` hops of the stored shortest path of every pair, walked for all pairs at once.

    Args:
        hops: int64 ``(n, n)`` next-hop table from :func:`next_hops` (−1 where a walk ends).
        max_hops: ``L`` (``multi_hop_max_dist``).

    Returns:
        int64 ``(n, n, L + 1)``: ``[i, j, l]`` is the l-th node of the path from i to j (``[i, j, 0] = i``) for
        l ≤ min(φ(i, j), L); −1 after the path's end and, past position 0, for unreachable pairs.
    """
    n = hops.shape[0]
    rows = np.arange(n)
    # Flat over pairs p = i·n + j. The step table gets an extra row of −1 at its end, which a walk that has ended
    # (node −1) reaches through negative indexing (−n + j), so it stays at −1 without any masking.
    step = np.concatenate([hops.ravel(), np.full(n, -1)])
    target = rows[None, :].repeat(n, axis=0).ravel()
    nodes = np.empty((max_hops + 1, n * n), dtype=np.int64)
    nodes[0] = rows.repeat(n)
    for hop in range(max_hops):
        nodes[hop + 1] = step[nodes[hop] * n + target]
    return nodes.T.reshape(n, n, max_hops + 1)


def path_edge_features(nodes: np.ndarray, edge_features: np.ndarray, fill: int = 0) -> np.ndarray:
    """Edge feature rows along every stored path (input of the multi-hop edge encoding, spec §3.2).

    Args:
        nodes: int64 ``(n, n, L + 1)`` from :func:`path_nodes`.
        edge_features: ``(n, n, F)``, the features of edge ``u → v`` at ``[u, v]``.
        fill: value where a path has fewer than ``L`` hops (always for i = j and unreachable pairs).

    Returns:
        ``(n, n, L, F)`` of ``edge_features``' dtype: ``[i, j, l]`` = ``edge_features[u_l, u_{l+1}]``.
    """
    n = nodes.shape[0]
    # An (n + 1) × (n + 1) table whose last row and column hold ``fill``: with the flat index u·(n + 1) + v, a
    # missing node (−1) as u wraps to the last row and as v to the last column of the row before (or the corner).
    table = np.full((n + 1, n + 1, edge_features.shape[-1]), fill, dtype=edge_features.dtype)
    table[:n, :n] = edge_features
    flat = nodes[:, :, :-1] * (n + 1) + nodes[:, :, 1:]
    return np.take(table.reshape((n + 1) * (n + 1), -1), flat, axis=0)
