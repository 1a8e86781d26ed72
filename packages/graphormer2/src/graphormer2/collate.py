"""From a molecular graph to Graphormer's inputs: one preprocessed graph (:class:`GraphItem`) and padded batches
(:class:`GraphBatch`), spec §3.1.

Ids follow the official fairseq collator, so that its embedding table sizes work, and 0 always means padding. For
the raw category value ``v`` of feature ``f``:

==================  ========================================================  ===========================
tensor              id                                                        table size
==================  ========================================================  ===========================
``x``               ``v + 2 + 512 f`` (official: ``v + 1 + 512 f``, +1 when     512 · 9 + 1 = 4609
                    batching)
``in_degree``       ``degree + 1`` (clamped to 511)                           512
``spatial_pos``     ``φ(i, j) + 1``: 1 on the diagonal, 511 if unreachable     512
                    (φ clamped to 510)
``attn_edge_type``  bonded pairs ``v + 2 + 512 j`` for bond feature ``j``,     512 · 3 + 1 = 1537
                    else 0
``edge_input``      hop l of the stored path: ``v + 3 + 512 j`` (the           512 · 3 + 1 = 1537
                    ``attn_edge_type`` id + 1); 0 beyond the path
==================  ========================================================  ===========================

A :class:`GraphItem` already holds these final ids (the official code adds the last +1 at batch time); the batch
only pads with zeros. Items store them as int16 (every id is below 2¹⁵), a quarter of the memory of int64 for the
``(n, n, L, 3)`` path tensor; :func:`collate` returns int64.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np
import torch
from torch.nn.utils.rnn import pad_sequence

from graphormer2.features import MolGraph
from graphormer2.paths import (
    UNREACHABLE,
    adjacency,
    next_hops,
    path_edge_features,
    path_nodes,
    shortest_path_distances,
)
from papers_common import InputError

#: Width of one feature's id block in the shared vocabulary.
FEATURE_OFFSET = 512
#: Raw category values must lie in ``[0, MAX_CATEGORY)`` so that every id stays inside its feature's block.
MAX_CATEGORY = 510
#: Largest degree id (the degree table has 512 rows).
MAX_DEGREE_ID = 511
MULTI_HOP_MAX_DIST = 5
#: Embedding table sizes for these ids (spec §3.2).
NUM_ATOM_IDS = FEATURE_OFFSET * 9 + 1
NUM_BOND_IDS = FEATURE_OFFSET * 3 + 1
NUM_DEGREE_IDS = 512
NUM_SPATIAL_IDS = 512
# 2 + 512 f for the (at most 9) features: raw value v of feature f has id v + 2 + 512 f
_ID_OFFSETS = 2 + FEATURE_OFFSET * np.arange(9)


@dataclass
class GraphItem:
    """One preprocessed graph with ``n`` nodes, ids as in the module table (int16 storage).

    Attributes:
        x: ``(n, F)`` atom ids (``F`` = 9 for OGB features).
        in_degree: ``(n,)`` degree ids.
        spatial_pos: ``(n, n)`` shortest-path ids φ + 1.
        attn_edge_type: ``(n, n, Fb)`` bond ids of bonded pairs, 0 elsewhere (``Fb`` = 3).
        edge_input: ``(n, n, L, Fb)`` bond ids along the stored shortest path.
        y: float32 ``(C,)`` targets (NaN where missing).
    """

    x: torch.Tensor
    in_degree: torch.Tensor
    spatial_pos: torch.Tensor
    attn_edge_type: torch.Tensor
    edge_input: torch.Tensor
    y: torch.Tensor

    @property
    def num_nodes(self) -> int:
        return int(self.x.shape[0])


@dataclass
class GraphBatch:
    """``B`` graphs padded to ``N`` nodes (the largest graph of the batch); 0 is padding in every id tensor.

    Attributes:
        x: long ``(B, N, 9)`` atom ids.
        in_degree: long ``(B, N)`` degree ids (out-degree = in-degree for undirected graphs).
        spatial_pos: long ``(B, N, N)`` φ + 1.
        attn_edge_type: long ``(B, N, N, 3)`` bond ids of bonded pairs.
        edge_input: long ``(B, N, N, L, 3)`` bond ids along the stored paths.
        attn_bias: float ``(B, N + 1, N + 1)``, index 0 = the graph token: 0 on real key columns, −inf on padded
            key columns (padded rows keep 0 on real keys, as the official collator, so no row is all −inf).
        y: float ``(B, C)`` targets (NaN where missing).
        num_nodes: long ``(B,)``.
    """

    x: torch.Tensor
    in_degree: torch.Tensor
    spatial_pos: torch.Tensor
    attn_edge_type: torch.Tensor
    edge_input: torch.Tensor
    attn_bias: torch.Tensor
    y: torch.Tensor
    num_nodes: torch.Tensor

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def to(self, device: torch.device | str, non_blocking: bool = False) -> GraphBatch:
        """A copy with every tensor on ``device``."""
        return GraphBatch(
            **{f.name: getattr(self, f.name).to(device, non_blocking=non_blocking) for f in fields(self)}
        )


def _feature_ids(values: np.ndarray, what: str) -> np.ndarray:
    """``v + 2 + 512 f`` for int64 raw values ``(…, F)``; values outside ``[0, 510)`` are an :class:`InputError`."""
    # one comparison catches both ends: read as unsigned, negative values are huge (also used below)
    if (values.view(np.uint64) >= MAX_CATEGORY).any():
        raise InputError(
            f"{what} values must be category indices in [0, {MAX_CATEGORY}), found {values.min()}..{values.max()}"
        )
    return values + _ID_OFFSETS[: values.shape[-1]]


def preprocess(
    graph: MolGraph,
    y: Sequence[float] | np.ndarray | torch.Tensor,
    multi_hop_max_dist: int = MULTI_HOP_MAX_DIST,
) -> GraphItem:
    """Degree, shortest paths and path edge ids of one graph (spec §3.1), as final ids (module table).

    Args:
        graph: ``x`` ``(n, F ≤ 9)``, ``edge_index`` ``(2, E)`` listing both directions of every edge,
            ``edge_attr`` ``(E, Fb ≤ 3)``; raw category values in ``[0, 510)``. Its ``distance`` (φ) is used when
            given, else computed (:func:`graphormer2.paths.shortest_path_distances`).
        y: ``(C,)`` targets (NaN for missing values).
        multi_hop_max_dist: ``L``, the number of path hops kept per pair.

    Raises:
        InputError: an empty graph, a one-directional edge, mismatched shapes or out-of-range feature values.
    """
    n = int(graph.num_nodes)
    x = np.asarray(graph.x, dtype=np.int64)
    edge_index = np.asarray(graph.edge_index, dtype=np.int64).reshape(2, -1)
    edge_attr = np.asarray(graph.edge_attr, dtype=np.int64)
    if n < 1 or x.ndim != 2 or x.shape[0] != n or not 1 <= x.shape[1] <= 9:
        raise InputError(f"graph.x must be (num_nodes ≥ 1, F ≤ 9), got {x.shape} with num_nodes={n}")
    if edge_attr.ndim != 2 or edge_attr.shape[0] != edge_index.shape[1] or not 1 <= edge_attr.shape[1] <= 3:
        raise InputError(
            f"graph.edge_attr must be (E, F ≤ 3) with E = {edge_index.shape[1]}, got {edge_attr.shape}"
        )
    if (edge_index.view(np.uint64) >= n).any():
        raise InputError(f"graph.edge_index refers to nodes outside 0..{n - 1}")
    if multi_hop_max_dist < 1:
        raise InputError(f"multi_hop_max_dist must be ≥ 1, got {multi_hop_max_dist}")
    adj = adjacency(edge_index, n)
    if (adj != adj.T).any():
        raise InputError("graph.edge_index must list both directions of every edge (an undirected graph)")

    bond_ids = np.zeros((n, n, edge_attr.shape[1]), dtype=np.int16)
    bond_ids[edge_index[0], edge_index[1]] = _feature_ids(edge_attr, "graph.edge_attr")
    if graph.distance is None:
        dist = shortest_path_distances(edge_index, n)
    else:
        dist = np.asarray(graph.distance, dtype=np.int64)
        if dist.shape != (n, n) or (dist.view(np.uint64) > UNREACHABLE).any():
            raise InputError(f"graph.distance must be ({n}, {n}) with values in 0..{UNREACHABLE}")
    nodes = path_nodes(next_hops(dist, edge_index), multi_hop_max_dist)
    # every id of a bonded pair is ≥ 2, so adding the adjacency gives the path ids (attn_edge_type id + 1)
    hop_ids = path_edge_features(nodes, bond_ids + adj[:, :, None])
    return GraphItem(
        x=torch.from_numpy(_feature_ids(x, "graph.x").astype(np.int16)),
        in_degree=torch.from_numpy(np.minimum(adj.sum(axis=1, dtype=np.int16) + 1, MAX_DEGREE_ID)),
        spatial_pos=torch.from_numpy((dist + 1).astype(np.int16)),
        attn_edge_type=torch.from_numpy(bond_ids),
        edge_input=torch.from_numpy(hop_ids),
        y=torch.as_tensor(np.asarray(y, dtype=np.float32).reshape(-1)),
    )


def _pad_pairs(
    blocks: list[torch.Tensor], index: tuple[torch.Tensor, ...], shape: tuple[int, ...]
) -> torch.Tensor:
    """Scatter flattened ``(n_b, n_b, …)`` blocks into a zero ``(B, N, N, …)`` long tensor in one ``index_put``."""
    out = torch.zeros(shape, dtype=torch.long)
    out[index] = torch.cat([block.flatten(0, 1) for block in blocks]).long()
    return out


def collate(items: Sequence[GraphItem]) -> GraphBatch:
    """Pad preprocessed graphs into a :class:`GraphBatch` (the official collator's layout; no per-graph loop).

    Items must share ``L`` and ``C``. Graphs over a dataset's ``max_nodes`` never get here: the loaders drop them.
    """
    if not items:
        raise ValueError("collate: got an empty list of graphs")
    if len({(item.edge_input.shape[2:], item.x.shape[1], item.y.shape) for item in items}) != 1:
        raise ValueError("collate: items differ in multi_hop_max_dist, feature count or number of targets")
    sizes = torch.tensor([item.num_nodes for item in items])
    batch, n_max = len(items), int(sizes.max())

    # (graph, row, column) of every real pair, in the order of the flattened blocks
    counts = sizes * sizes
    graph = torch.repeat_interleave(torch.arange(batch), counts)
    local = torch.arange(int(counts.sum())) - torch.repeat_interleave(
        torch.cumsum(counts, 0) - counts, counts
    )
    width = sizes[graph]
    pairs = (graph, local // width, local % width)

    first = items[0]
    key = torch.arange(n_max + 1)
    attn_bias = torch.zeros(batch, n_max + 1, n_max + 1)
    attn_bias.masked_fill_((key[None, None, :] > sizes[:, None, None]), float("-inf"))
    return GraphBatch(
        x=pad_sequence([item.x for item in items], batch_first=True).long(),
        in_degree=pad_sequence([item.in_degree for item in items], batch_first=True).long(),
        spatial_pos=_pad_pairs([item.spatial_pos for item in items], pairs, (batch, n_max, n_max)),
        attn_edge_type=_pad_pairs(
            [item.attn_edge_type for item in items],
            pairs,
            (batch, n_max, n_max, first.attn_edge_type.shape[-1]),
        ),
        edge_input=_pad_pairs(
            [item.edge_input for item in items], pairs, (batch, n_max, n_max, *first.edge_input.shape[2:])
        ),
        attn_bias=attn_bias,
        y=torch.stack([item.y for item in items]),
        num_nodes=sizes,
    )
