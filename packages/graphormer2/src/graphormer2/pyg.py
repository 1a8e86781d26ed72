"""PyTorch Geometric interop: graphormer2 inputs from PyG ``Data`` molecule graphs, and PyG ``Data`` from
graphormer2 items.

:func:`from_pyg` expects OGB's categorical layout (``ogb.utils.smiles2graph``, which
:mod:`graphormer2.features` reproduces): ``x`` int ``(N, 9)`` atom feature indices, ``edge_attr`` int ``(E, 3)``
bond feature indices, ``edge_index`` int ``(2, E)`` listing both directions of every bond. This is the layout of
PyG's ``PCQM4Mv2`` and ``ogbg-mol*`` datasets. PyG's own ``torch_geometric.utils.from_smiles`` also gives 9 atom
and 3 bond columns but with other vocabularies (its ``x_map``/``e_map``: atomic number 0…118 against OGB's 1…118
at index 0…117, other chirality, hybridisation and bond type lists); such graphs pass the shape checks, and their
structure (degrees, shortest paths) is right, but the atom and bond ids mean something else than the ones a
graphormer2 model was trained on. Build OGB-layout ``Data`` with :func:`ogb_data_from_smiles`.

Shortest paths and path edges come from :func:`graphormer2.collate.preprocess` (SciPy breadth-first search on
``edge_index``); for a molecule they are the numbers RDKit's distance matrix gives :func:`graphormer2.from_smiles`,
so ``from_pyg(ogb_data_from_smiles(s))`` equals ``from_smiles([s])[0]``.

``torch_geometric`` (the ``graphormer2[pyg]`` extra) is imported only by the functions that build ``Data``;
:func:`from_pyg` and :func:`dataset_from_pyg` read any object with ``x``, ``edge_index`` and ``edge_attr`` tensors.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch.utils.data import Dataset

from graphormer2.collate import FEATURE_OFFSET, MULTI_HOP_MAX_DIST, GraphItem, preprocess
from graphormer2.datasets import MoleculeDataset, _target_table
from graphormer2.features import NUM_ATOM_FEATURES, NUM_BOND_FEATURES, MolGraph, smiles_to_graph
from papers_common import InputError

if TYPE_CHECKING:
    from torch_geometric.data import Data

#: The optional dependency that provides ``torch_geometric``.
PYG_EXTRA = "graphormer2[pyg]"


def _data_class() -> type[Data]:
    """``torch_geometric.data.Data``, or an :class:`InputError` naming the extra to install."""
    try:
        from torch_geometric.data import Data
    except ImportError as err:
        raise InputError(
            f"PyG interop needs torch_geometric, which is not installed ({err}): pip install '{PYG_EXTRA}'"
        ) from None
    return Data


def _category_array(data: Any, name: str, shape: str, where: str) -> np.ndarray:
    """Attribute ``name`` of ``data`` as int64 NumPy, checked to be an integer tensor."""
    value = getattr(data, name, None)
    if not isinstance(value, torch.Tensor):
        raise InputError(
            f"{where}.{name}: expected an integer tensor {shape}, got {type(value).__name__} "
            "(from_pyg needs x, edge_index and edge_attr in OGB's layout)"
        )
    if value.is_floating_point() or value.is_complex() or value.dtype == torch.bool:
        raise InputError(
            f"{where}.{name}: expected integer category indices {shape}, got dtype {value.dtype}"
        )
    return value.detach().cpu().numpy().astype(np.int64, copy=False)


def graph_from_pyg(data: Any, where: str = "data") -> MolGraph:
    """The :class:`MolGraph` of a PyG molecule graph in OGB's layout (module docstring), without distances.

    Args:
        data: ``x`` int ``(N, 9)``, ``edge_index`` int ``(2, E)`` (both directions of every bond), ``edge_attr``
            int ``(E, 3)`` (``None`` allowed when ``E = 0``).
        where: how errors name ``data``.

    Raises:
        InputError: a missing attribute, a float or bool tensor, or a shape other than the above.
    """
    x = _category_array(data, "x", f"(N, {NUM_ATOM_FEATURES})", where)
    edge_index = _category_array(data, "edge_index", "(2, E)", where)
    if x.ndim != 2 or x.shape[1] != NUM_ATOM_FEATURES or x.shape[0] < 1:
        raise InputError(f"{where}.x: expected (N ≥ 1, {NUM_ATOM_FEATURES}) OGB atom features, got {x.shape}")
    if edge_index.ndim != 2 or edge_index.shape[0] != 2:
        raise InputError(f"{where}.edge_index: expected (2, E), got {edge_index.shape}")
    if getattr(data, "edge_attr", None) is None and edge_index.shape[1] == 0:
        edge_attr = np.zeros((0, NUM_BOND_FEATURES), dtype=np.int64)
    else:
        edge_attr = _category_array(data, "edge_attr", f"(E, {NUM_BOND_FEATURES})", where)
    if edge_attr.shape != (edge_index.shape[1], NUM_BOND_FEATURES):
        raise InputError(
            f"{where}.edge_attr: expected ({edge_index.shape[1]}, {NUM_BOND_FEATURES}) OGB bond features "
            f"(one row per edge_index column), got {edge_attr.shape}"
        )
    return MolGraph(x=x, edge_index=edge_index, edge_attr=edge_attr, num_nodes=x.shape[0])


def from_pyg(
    data: Any,
    y: Sequence[float] | np.ndarray | torch.Tensor | None = None,
    *,
    multi_hop_max_dist: int = MULTI_HOP_MAX_DIST,
    where: str = "data",
) -> GraphItem:
    """One preprocessed :class:`GraphItem` from a PyG molecule graph in OGB's layout (module docstring).

    Args:
        data: a ``torch_geometric.data.Data`` (or any object) with ``x`` ``(N, 9)``, ``edge_index`` ``(2, E)``,
            ``edge_attr`` ``(E, 3)`` integer tensors.
        y: ``(C,)`` targets; by default ``data.y`` flattened (a graph-level ``(1, C)`` or ``(C,)``), else none.
        multi_hop_max_dist: ``L``, the path hops kept per pair.
        where: how errors name ``data``.

    Raises:
        InputError: bad shapes or dtypes, ids outside ``[0, 510)``, an edge listed in one direction only.
    """
    graph = graph_from_pyg(data, where)
    if y is None:
        y = getattr(data, "y", None)
    targets = np.zeros(0, np.float32) if y is None else torch.as_tensor(y).detach().cpu().float().numpy()
    try:
        return preprocess(graph, targets.reshape(-1), multi_hop_max_dist)
    except InputError as err:
        raise InputError(f"{where}: {err}") from None


def dataset_from_pyg(
    graphs: Sequence[Any],
    targets: Sequence[float] | Sequence[Sequence[float]] | np.ndarray | torch.Tensor | None = None,
    *,
    target_names: Sequence[str] | None = None,
    multi_hop_max_dist: int = MULTI_HOP_MAX_DIST,
) -> MoleculeDataset:
    """A :class:`~graphormer2.datasets.MoleculeDataset` of PyG molecule graphs (OGB layout), every graph kept.

    Args:
        graphs: ``M`` graphs as :func:`from_pyg` reads them; their ``smiles`` attribute (if any) is kept.
        targets: ``(M,)`` or ``(M, C)`` (NaN = missing); by default every graph's ``y`` (all or none must have
            one, of the same size).
        target_names: ``C`` names (default ``target0``, …).
        multi_hop_max_dist: ``L``.

    Raises:
        InputError: no graphs, a bad graph (named ``graphs[i]``), or targets that do not fit ``M``.
    """
    graphs = list(graphs)
    if not graphs:
        raise InputError("dataset_from_pyg: no graphs")
    if targets is None:
        ys = [getattr(g, "y", None) for g in graphs]
        if all(y is None for y in ys):
            targets = np.zeros((len(graphs), 0), np.float32)
        elif any(y is None for y in ys) or len({torch.as_tensor(y).numel() for y in ys}) != 1:
            raise InputError("dataset_from_pyg: every graph needs a y of the same size (or none has one)")
        else:
            targets = torch.stack([torch.as_tensor(y).detach().cpu().float().reshape(-1) for y in ys])
    values, names = _target_table(targets, target_names, len(graphs), "graphs")
    items = [
        from_pyg(g, values[i], multi_hop_max_dist=multi_hop_max_dist, where=f"graphs[{i}]")
        for i, g in enumerate(graphs)
    ]
    smiles = [str(getattr(g, "smiles", "") or "") for g in graphs]
    return MoleculeDataset(items, smiles, names, multi_hop_max_dist=multi_hop_max_dist)


def to_pyg(item: GraphItem, smiles: str | None = None) -> Data:
    """The PyG ``Data`` of a preprocessed graph: raw OGB-layout features back from the item's ids.

    Returns:
        ``Data`` with ``x`` long ``(n, F)``, ``edge_index`` long ``(2, 2m)``, ``edge_attr`` long ``(2m, Fb)`` and
        ``y`` float ``(1, C)`` (graph-level, so PyG batches it to ``(B, C)``); ``smiles`` when given. The ``m``
        bonded pairs ``i < j`` come in row-major order, pair ``k`` as columns ``2k`` (i → j) and ``2k + 1``
        (j → i); RDKit's bond order is not stored in an item. Self-loops are not represented.

    Raises:
        InputError: torch_geometric is not installed.
    """
    data_class = _data_class()
    offsets = 2 + FEATURE_OFFSET * torch.arange(max(item.x.shape[1], item.attn_edge_type.shape[-1]))
    bond_ids = item.attn_edge_type.long()
    # every feature id of a bonded pair is ≥ 2, so any non-zero id marks a bond
    source, target = torch.nonzero(torch.triu(bond_ids.ne(0).any(-1), diagonal=1), as_tuple=True)
    edge_index = torch.stack([torch.stack([source, target]), torch.stack([target, source])], dim=2).reshape(
        2, -1
    )
    data = data_class(
        x=item.x.long() - offsets[: item.x.shape[1]],
        edge_index=edge_index,
        edge_attr=bond_ids[edge_index[0], edge_index[1]] - offsets[: bond_ids.shape[-1]],
        y=item.y.float().reshape(1, -1),
    )
    if smiles is not None:
        data.smiles = smiles
    return data


def ogb_data_from_smiles(smiles: str, y: Sequence[float] | np.ndarray | torch.Tensor | None = None) -> Data:
    """OGB's ``smiles2graph`` as a PyG ``Data`` (unlike ``torch_geometric.utils.from_smiles``, whose vocabularies
    differ): ``x`` long ``(N, 9)``, ``edge_index`` long ``(2, 2m)`` (bond ``k`` as columns ``2k``, ``2k + 1``),
    ``edge_attr`` long ``(2m, 3)``, ``smiles``, and ``y`` float ``(1, C)`` when given.

    Raises:
        InputError: RDKit cannot parse the SMILES, or torch_geometric is not installed.
    """
    data_class = _data_class()
    graph = smiles_to_graph(smiles)
    if graph is None:
        raise InputError(f"RDKit cannot parse the SMILES {smiles!r}")
    data = data_class(
        x=torch.from_numpy(graph.x),
        edge_index=torch.from_numpy(graph.edge_index),
        edge_attr=torch.from_numpy(graph.edge_attr),
        smiles=smiles,
    )
    if y is not None:
        data.y = torch.as_tensor(y, dtype=torch.float32).reshape(1, -1)
    return data


class PygDataset(Dataset):
    """PyG ``Data`` (:func:`to_pyg`) for every item of a graphormer2 dataset, for PyG's ``DataLoader``.

    The SMILES of a :class:`~graphormer2.datasets.MoleculeDataset` go to ``data.smiles``.
    """

    def __init__(self, dataset: Dataset[GraphItem]) -> None:
        _data_class()
        self.dataset = dataset
        self._smiles: list[str] | None = getattr(dataset, "smiles", None)

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> Data:
        return to_pyg(self.dataset[index], None if self._smiles is None else self._smiles[index])
