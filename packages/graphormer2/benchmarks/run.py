"""Preprocessing and training throughput of graphormer2 against PyTorch Geometric and the official code.

Workload (spec §8.4); each measurement runs in a fresh process with ``torch.set_num_threads(--threads)``.

- **Preprocessing** of the SMILES of ``NCI/first_5K.smi`` from the RDKit wheel (quick: the first 1,000; full:
  all 4,999, of which 8 do not parse in RDKit and fail in every pipeline), SMILES in, model-ready graphs out,
  timed end to end after an untimed warm-up on 20 SMILES (median of ``--repeats`` passes: quick 3, full 1).
  Throughput = input SMILES / wall seconds.

  * ours: ``graphormer2.from_smiles(smiles)`` without a cache: RDKit parsing, OGB ``smiles2graph`` features,
    degrees, shortest-path distances (RDKit's topological distance matrix), one shortest path per pair walked
    for all pairs at once, the bond ids of its first 5 hops, and the packed ``graphormer2.MoleculeDataset``.
  * anchor (what users would otherwise pick): PyG's SMILES featurisation plus RDKit's distance matrix; per
    molecule ``mol = Chem.MolFromSmiles(s)``, ``torch_geometric.utils.from_rdmol(mol)`` and
    ``Chem.GetDistanceMatrix(mol)`` stored on the ``Data``. ``torch_geometric.utils.from_smiles`` is exactly
    ``MolFromSmiles`` + ``from_rdmol``; its two parts are called here so that one parsed molecule serves both
    the features and the distances. This gives features and distances but no path edges (the input of the
    multi-hop edge encoding).
  * second anchor, the official preprocessing (``graphormer/data/wrapper.py`` ``preprocess_item`` with
    ``graphormer/data/algos.pyx``) as a straight Python port written in this file
    (:func:`official_preprocess`): RDKit parsing, the same OGB features as ours
    (``graphormer2.features.atom_features`` / ``bond_features``, standing in for ogb's ``smiles2graph``), the
    ``1 + 512 f`` id offsets, a dense adjacency, Floyd–Warshall over all (k, i, j) storing the last improving
    intermediate node, then for every connected pair the recursive recovery of that path and its bond ids into
    an ``(n, n, max φ, 3)`` array, sized as the official wrapper sizes it (max φ is 510 for a molecule of
    several fragments); the official collator's cut to the first 5 hops is included. The Cython original
    compiles these loops and is faster than the port: the port shows the cost of the algorithm, not of Cython.

  The SPD + path step alone (spec §8.4: "preprocessing ms/molecule ... report speed-up") is timed inside the
  same runs on already parsed and featurised molecules: ours ``topological_distance`` +
  ``graphormer2.preprocess`` against the port's ``preprocess_item``. Ours and the port must agree on every
  molecule (ids, degrees, distances and hops per pair; the stored path may differ where several are shortest)
  or the run fails.

- **Training** on the TPSA task (``graphormer2.tpsa_task``: ``NCI/first_5k.tpsa.csv``; quick: its first 1,000
  rows; full: all), split 80/10/10 with seed 0 (``graphormer2.split``). Targets are standardised with the mean
  and standard deviation of the training split for both models (TPSA spans 0–300 Å²); MAEs are in Å². Both
  models see the same batches: ``--batch-size`` graphs (default 32) in the epoch order of
  ``DistributedSampler(seed=0)`` as ``graphormer2.fit`` draws it, the same epochs (quick 4, full 10), AdamW
  (β 0.9/0.999, ε 1e-8, weight decay 0.01), peak lr 5e-4 after a linear warm-up over the first 10 % of the
  updates, then linear decay to 1e-9 (``graphormer2.learning_rate``), gradient clipping at norm 5; validation
  after every epoch, and the test MAE of the weights with the lowest validation MAE.

  * ours: ``graphormer2.Graphormer`` with ``GraphormerConfig.preset("slim", num_layers=6)`` (D 80, FFN 80,
    8 heads, Post-LN, multi-hop edge encoding), every dropout 0, trained by ``graphormer2.fit``;
  * anchor: OGB's strongest standard message-passing baseline for molecules, ``gin-virtual`` with bond
    features, on PyG parts (:class:`PygGINEVirtual`): summed embeddings of PyG's 9 atom features, ``GINEConv``
    layers with per-layer embeddings of PyG's 3 bond features, OGB's virtual node, sum pooling,
    ``Linear(D, 1)``, no dropout. Equal width (D 80, Graphormer's) and equal non-embedding parameters: its depth
    is the one whose parameters outside embedding tables are closest to Graphormer's (5 layers: 237 k vs 250 k;
    Graphormer's lookup tables of feature ids, 467 k of its 717 k parameters, are mostly rows no molecule
    uses, so totals are not compared). Its graphs come from ``torch_geometric.utils.from_smiles`` on the same
    SMILES, batched with ``Batch.from_data_list`` in a plain loop.
  * extra row, a weaker anchor kept for continuity: ``torch_geometric.nn.models.GIN`` (5 layers, batch norm
    inside each GIN MLP) without bond features (PyG's ``GIN`` takes no edge attributes) and with
    ``global_mean_pool``, its hidden size the multiple of 8 whose total parameter count is closest to ours
    (within ±25 %). TPSA is a sum of atom contributions, which a mean readout cannot count.

  Training throughput = training graphs × epochs / training seconds (collation, forward, backward, update; the
  per-epoch validation is timed separately and left out for both).

- **Training step against the official code** (only with ``--official-dir PATH``, a local checkout of
  microsoft/Graphormer, and ``--official-python`` an interpreter where fairseq imports; one extra fresh process
  run by that interpreter): the official ``GraphormerModel`` (``graphormer/models/graphormer.py``) built by its own
  ``build_model`` from the equivalent fairseq arguments (``graphormer2.fairseq_checkpoint.fairseq_args`` of
  Graphormer slim-6, every dropout 0), its weights copied from ours (``official_state_dict``). Only the model
  code is imported: ``graphormer/__init__.py`` (which imports every criterion and sets the multiprocessing start
  method) is skipped by registering a bare package module ``graphormer`` whose ``__path__`` is the checkout's
  ``graphormer/`` folder, so ``graphormer.models`` / ``graphormer.modules`` / ``graphormer.pretrain`` load from
  the checkout with fairseq and torch only (no ogb, dgl, PyG or Cython data modules). Before timing, the official
  forward (eval mode, graph-token row ``[:, 0, :]`` as the official ``l1_loss`` criterion reads it) must equal
  ours within 1e-5 on the first batches, or the run fails. Both models then take the same training steps on the
  same TPSA batches (the first epoch's ``--batch-size`` batches of the training split in ``graphormer2.fit``'s
  order, collated once by ``graphormer2.collate``; the official dict is the same tensors under the official
  collator's keys, whose ids ours follow), each with its own AdamW (the settings above, same schedule): forward,
  L1 loss, backward, clipping, update, timed per step, alternating ours/official (the order swapped every step)
  after 5 untimed warm-up steps each (quick 40 timed steps each, full 100). Throughput = the median over steps
  of graphs / step seconds.

Ratios are ``ours / anchor`` (papers_common's convention): above 1 means ours is faster for throughput; below 1
means ours is more accurate for MAE.

    python packages/graphormer2/benchmarks/run.py --out reports/graphormer2 [--quick] [--threads 2] \
        [--official-dir PATH --official-python PATH]
"""

from __future__ import annotations

import argparse
import copy
import importlib
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
import types
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import torch
from graphormer2 import (
    Graphormer,
    GraphormerConfig,
    RegressionObjective,
    TrainConfig,
    collate,
    fit,
    from_smiles,
    learning_rate,
    preprocess,
    split,
    tpsa_task,
)
from graphormer2.datasets import rdkit_data_file
from graphormer2.features import MolGraph, atom_features, bond_features, topological_distance
from rdkit import Chem, rdBase
from torch import nn

from papers_common import (
    Anchor,
    Bench,
    Measurement,
    configure_logging,
    emit_result,
    machine_info,
    progress,
    run_isolated,
    write_bench,
)

SMILES_FILE = "NCI/first_5K.smi"
WARMUP_SMILES = 20
MULTI_HOP = 5  # L, hops of each stored path kept (multi_hop_max_dist)
UNREACHABLE = 510  # the official φ of pairs in different fragments
OFFSET = 512  # width of one feature's id block
SPLIT, SPLIT_SEED = (0.8, 0.1, 0.1), 0
LR, END_LR, WEIGHT_DECAY, WARMUP_FRACTION, CLIP = 5e-4, 1e-9, 0.01, 0.1, 5.0
GIN_LAYERS = 5
OFFICIAL_MODEL_FILE = Path("graphormer", "models", "graphormer.py")
EQUIVALENCE_TOLERANCE = 1e-5  # max |ours − official| of the eval-mode outputs
EQUIVALENCE_BATCHES = 3
STEP_WARMUP = 5  # untimed training steps of each model before timing
PARAMETER_TOLERANCE = 0.25
# importing torch_geometric warns about its own use of torch.jit.script
warnings.filterwarnings("ignore", message="`torch.jit.script` is deprecated", category=FutureWarning)


@dataclass(frozen=True)
class Request:
    """One measurement, run in its own process.

    ``task`` is ``preprocess`` (``library`` ``ours``, ``pyg`` or ``official``), ``train`` (``ours``,
    ``gine`` or ``gin``) or ``train-step`` (``official``: ``steps`` timed training steps of ours and of the
    official model in ``official_dir``, alternating); ``molecules`` is the number of SMILES or TPSA rows read (None: all of them); preprocessing times
    are the median of ``repeats`` passes.
    """

    task: str
    library: str
    molecules: int | None = None
    epochs: int = 1
    batch_size: int = 32
    gin_hidden: int = 0
    gine_layers: int = 0
    cache_dir: str | None = None
    repeats: int = 1
    threads: int = 2
    seed: int = 0
    official_dir: str | None = None
    steps: int = 0

    @property
    def label(self) -> str:
        names = {
            ("preprocess", "ours"): "ours graphormer2.from_smiles, preprocessing",
            ("preprocess", "pyg"): "PyG from_rdmol + RDKit distance matrix, preprocessing",
            ("preprocess", "official"): "official preprocess_item (Python port), preprocessing",
            ("train", "ours"): "ours Graphormer slim-6, TPSA training",
            ("train", "gin"): f"PyG GIN hidden {self.gin_hidden}, TPSA training",
            ("train", "gine"): f"PyG GINE + virtual node, {self.gine_layers} layers, TPSA training",
            ("train-step", "official"): "ours vs official Graphormer slim-6, TPSA training steps",
        }
        return names[(self.task, self.library)]


# ------------------------------------------------------------------------------------------- preprocessing


def nci_smiles(count: int | None) -> list[str]:
    """The first ``count`` (None: all) SMILES of ``NCI/first_5K.smi`` (one ``SMILES<TAB>id`` per line)."""
    lines = rdkit_data_file(SMILES_FILE).read_text(encoding="utf-8").splitlines()
    smiles = [line.split()[0] for line in lines if line.strip()]
    return smiles if count is None else smiles[:count]


def official_floyd_warshall(adjacency: list[list[bool]]) -> tuple[list[list[int]], list[list[int]]]:
    """All-pairs hop distances and the path matrix, as the official ``algos.floyd_warshall`` computes them.

    Args:
        adjacency: ``n × n`` booleans of an undirected graph.

    Returns:
        ``dist`` ``n × n``: φ(i, j), 0 on the diagonal, 510 for unreachable pairs; ``via`` ``n × n``: the last
        intermediate node k that shortened the path i → j (−1 for a direct bond or i = j, 510 if unreachable).
    """
    n = len(adjacency)
    dist = [[0 if i == j else (1 if adjacency[i][j] else UNREACHABLE) for j in range(n)] for i in range(n)]
    via = [[-1] * n for _ in range(n)]
    for k in range(n):
        dist_k = dist[k]
        for i in range(n):
            dist_i, via_i = dist[i], via[i]
            d_ik = dist_i[k]
            for j in range(n):
                through = d_ik + dist_k[j]
                if dist_i[j] > through:
                    dist_i[j] = through
                    via_i[j] = k
    for i in range(n):
        for j in range(n):
            if dist[i][j] >= UNREACHABLE:
                dist[i][j] = UNREACHABLE
                via[i][j] = UNREACHABLE
    return dist, via


def official_path_interior(via: list[list[int]], i: int, j: int) -> list[int]:
    """The nodes strictly between i and j on the stored path, recursively (``algos.get_all_edges``)."""
    k = via[i][j]
    if k == -1:
        return []
    return [*official_path_interior(via, i, k), k, *official_path_interior(via, k, j)]


def official_edge_input(max_dist: int, via: list[list[int]], edge_ids: np.ndarray) -> np.ndarray:
    """Bond ids along every stored path (``algos.gen_edge_input``).

    Args:
        max_dist: hop slots per pair (the official wrapper passes the largest φ of the graph).
        via: the path matrix of :func:`official_floyd_warshall`.
        edge_ids: int64 ``(n, n, 3)`` bond ids of bonded pairs.

    Returns:
        int64 ``(n, n, max_dist, 3)``: ``[i, j, l]`` = ids of hop l of the path i → j; −1 past the path's end,
        for i = j and for unreachable pairs.
    """
    n = len(via)
    out = np.full((n, n, max_dist, edge_ids.shape[-1]), -1, dtype=np.int64)
    for i in range(n):
        for j in range(n):
            if i == j or via[i][j] == UNREACHABLE:
                continue
            path = [i, *official_path_interior(via, i, j), j]
            for hop in range(len(path) - 1):
                out[i, j, hop, :] = edge_ids[path[hop], path[hop + 1], :]
    return out


def official_preprocess(
    x: np.ndarray, edge_index: np.ndarray, edge_attr: np.ndarray
) -> dict[str, torch.Tensor]:
    """The official ``preprocess_item`` on one featurised molecule, then the collator's cut to ``L`` hops.

    Args:
        x: int64 ``(n, 9)`` OGB atom features; edge_index: int64 ``(2, E)``; edge_attr: int64 ``(E, 3)``.

    Returns:
        The official per-graph tensors, int64; all but ``attn_edge_type`` are one below ours, as the official
        collator adds 1 when batching: ``x`` ``(n, 9)`` ``v + 1 + 512 f``; ``in_degree`` ``(n,)`` the degree;
        ``spatial_pos`` ``(n, n)`` φ; ``attn_edge_type`` ``(n, n, 3)`` ``v + 2 + 512 j`` for bonded pairs;
        ``edge_input`` ``(n, n, min(max φ, L), 3)`` the ``attn_edge_type`` ids of each hop, −1 where there is none.
    """
    x_t, edge_index_t, edge_attr_t = (torch.from_numpy(a) for a in (x, edge_index, edge_attr))
    n = x_t.shape[0]
    atom_offsets = 1 + OFFSET * torch.arange(x_t.shape[1])
    bond_offsets = 1 + OFFSET * torch.arange(edge_attr_t.shape[1])
    adjacency = torch.zeros(n, n, dtype=torch.bool)
    adjacency[edge_index_t[0], edge_index_t[1]] = True
    attn_edge_type = torch.zeros(n, n, edge_attr_t.shape[1], dtype=torch.long)
    attn_edge_type[edge_index_t[0], edge_index_t[1]] = edge_attr_t + bond_offsets + 1
    dist, via = official_floyd_warshall(adjacency.tolist())
    max_dist = max(max(row) for row in dist)
    edge_input = official_edge_input(max_dist, via, attn_edge_type.numpy())
    return {
        "x": x_t + atom_offsets,
        "in_degree": adjacency.long().sum(dim=1),
        "spatial_pos": torch.tensor(dist, dtype=torch.long),
        "attn_edge_type": attn_edge_type,
        "edge_input": torch.from_numpy(edge_input[:, :, :MULTI_HOP].copy()),
    }


def check_agreement(ours: Any, official: list[dict[str, torch.Tensor]], acyclic: list[bool]) -> int:
    """Fail unless ours and the official port give the same ids, degrees, distances and hops per pair.

    The path edge ids are compared exactly for acyclic molecules (one shortest path per pair) and by their count
    per pair elsewhere: with several shortest paths the two choose differently (``graphormer2.paths``), and the
    model accepts either as input.

    Returns:
        The number of molecules whose path edge ids are identical.
    """
    if len(ours) != len(official):
        raise SystemExit(f"ours kept {len(ours)} molecules, the official port {len(official)}")
    identical = 0
    for index, theirs in enumerate(official):
        item = ours[index]
        path_ids = theirs["edge_input"]  # (n, n, min(max φ, L), 3), −1 where no hop
        path_ids = torch.nn.functional.pad(path_ids, (0, 0, 0, MULTI_HOP - path_ids.shape[2]), value=-1)
        path_ids = torch.where(path_ids >= 0, path_ids + 1, 0)  # the official collator's +1 (0 = padding)
        same_paths = torch.equal(item.edge_input.long(), path_ids)
        same = (
            torch.equal(item.x.long(), theirs["x"] + 1)
            and torch.equal(item.in_degree.long(), theirs["in_degree"] + 1)
            and torch.equal(item.spatial_pos.long(), theirs["spatial_pos"] + 1)
            and torch.equal(item.attn_edge_type.long(), theirs["attn_edge_type"])
            and torch.equal((item.edge_input[..., 0] > 0).sum(-1), (path_ids[..., 0] > 0).sum(-1))
            and (same_paths or not acyclic[index])
        )
        if not same:
            raise SystemExit(f"ours and the official port disagree on {ours.smiles[index]!r}")
        identical += same_paths
    return identical


def median_time(run: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Median wall seconds of ``repeats`` calls of ``run``, and the last call's result."""
    times, result = [], None
    for _ in range(repeats):
        began = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - began)
    return statistics.median(times), result


def preprocess_ours(request: Request) -> dict[str, Any]:
    smiles = nci_smiles(request.molecules)
    from_smiles(smiles[:WARMUP_SMILES])
    seconds, dataset = median_time(lambda: from_smiles(smiles), request.repeats)
    with rdBase.BlockLogs():
        mols = [mol for mol in map(Chem.MolFromSmiles, smiles) if mol is not None]
    featurised = [(mol, atom_features(mol), *bond_features(mol)) for mol in mols]
    no_targets = np.zeros(0, dtype=np.float32)

    def step() -> None:
        for mol, x, edge_index, edge_attr in progress(featurised, desc="ours SPD + paths", unit="mol"):
            graph = MolGraph(x, edge_index, edge_attr, x.shape[0], distance=topological_distance(mol))
            preprocess(graph, no_targets, MULTI_HOP)

    step_seconds, _ = median_time(step, request.repeats)
    return {
        "seconds": seconds,
        "smiles": len(smiles),
        "kept": len(dataset),
        "step_seconds": step_seconds,
        "step_molecules": len(featurised),
    }


def preprocess_pyg(request: Request) -> dict[str, Any]:
    from torch_geometric.utils import from_rdmol

    smiles = nci_smiles(request.molecules)

    def run(batch: list[str]) -> list[Any]:
        graphs = []
        with rdBase.BlockLogs():
            for text in progress(batch, desc="PyG from_rdmol", unit="mol"):
                mol = Chem.MolFromSmiles(text)
                if mol is None:
                    continue
                data = from_rdmol(mol)
                data.spatial_pos = torch.from_numpy(Chem.GetDistanceMatrix(mol)).long()
                graphs.append(data)
        return graphs

    run(smiles[:WARMUP_SMILES])
    seconds, graphs = median_time(lambda: run(smiles), request.repeats)
    return {"seconds": seconds, "smiles": len(smiles), "kept": len(graphs)}


def preprocess_official(request: Request) -> dict[str, Any]:
    smiles = nci_smiles(request.molecules)
    step_times: list[float] = []

    def run(batch: list[str]) -> list[dict[str, torch.Tensor]]:
        items, step_seconds = [], 0.0
        with rdBase.BlockLogs():
            for text in progress(batch, desc="official port", unit="mol"):
                mol = Chem.MolFromSmiles(text)
                if mol is None:
                    continue
                x = atom_features(mol)
                edge_index, edge_attr = bond_features(mol)
                began = time.perf_counter()
                items.append(official_preprocess(x, edge_index, edge_attr))
                step_seconds += time.perf_counter() - began
        step_times.append(step_seconds)
        return items

    run(smiles[:WARMUP_SMILES])
    step_times.clear()
    seconds, items = median_time(lambda: run(smiles), request.repeats)
    with rdBase.BlockLogs():
        mols = [mol for mol in map(Chem.MolFromSmiles, smiles) if mol is not None]
    acyclic = [mol.GetRingInfo().NumRings() == 0 for mol in mols]
    identical = check_agreement(from_smiles(smiles), items, acyclic)
    return {
        "seconds": seconds,
        "smiles": len(smiles),
        "kept": len(items),
        "identical_paths": identical,
        "acyclic": sum(acyclic),
        "step_seconds": statistics.median(step_times),
        "step_molecules": len(items),
    }


# ------------------------------------------------------------------------------------------------ training


def graphormer_config() -> GraphormerConfig:
    """Our model: the slim preset (D 80, FFN 80, 8 heads) with 6 layers and every dropout 0."""
    return GraphormerConfig.preset(
        "slim", num_layers=6, dropout=0.0, attention_dropout=0.0, activation_dropout=0.0
    )


class PygGIN(nn.Module):
    """The anchor: summed embeddings of PyG's 9 atom features → ``torch_geometric.nn.models.GIN`` → mean pool
    → ``Linear(hidden, 1)``; ``forward(batch)`` gives ``(B, 1)``."""

    def __init__(self, hidden: int, num_layers: int = GIN_LAYERS) -> None:
        from torch_geometric.nn.models import GIN
        from torch_geometric.utils.smiles import x_map

        super().__init__()
        self.atom = nn.ModuleList(nn.Embedding(len(values), hidden) for values in x_map.values())
        self.gin = GIN(hidden, hidden, num_layers, norm="batch_norm")
        self.head = nn.Linear(hidden, 1)

    def forward(self, batch: Any) -> torch.Tensor:
        from torch_geometric.nn import global_mean_pool

        h = sum(embed(batch.x[:, f]) for f, embed in enumerate(self.atom))
        h = self.gin(h, batch.edge_index)
        return self.head(global_mean_pool(h, batch.batch))


class PygGINEVirtual(nn.Module):
    """The headline anchor: OGB's strongest standard message-passing baseline for molecules (``gin-virtual`` of
    ``ogb.graphproppred``) built from PyG parts, with sum pooling; ``forward(batch)`` gives ``(B, 1)``.

    - input: h⁰ = Σ_f Emb_f(x_f) over PyG's 9 atom features;
    - layer k: h ← h + v_g, then ``GINEConv`` (h_i ← MLP((1 + ε_k) h_i + Σ_j ReLU(h_j + e_ij)), e_ij = Σ_f
      Emb_{k,f}(edge_attr_f) over PyG's 3 bond features, MLP = Linear(D, 2D) → BN → ReLU → Linear(2D, D)),
      BN, ReLU except after the last layer;
    - virtual node (OGB): v⁰ = a learned vector initialised to 0; after every layer but the last,
      v ← MLP_v(Σ_{i∈g} h_i + v) with h the layer's input, MLP_v = Linear(D, 2D) → BN → ReLU → Linear(2D, D) →
      BN → ReLU;
    - readout: ``global_add_pool`` then ``Linear(D, 1)``. No dropout (the benchmark trains every model without).
    """

    def __init__(self, hidden: int, num_layers: int) -> None:
        from torch_geometric.nn import GINEConv
        from torch_geometric.utils.smiles import e_map, x_map

        super().__init__()
        wide = 2 * hidden
        self.atom = nn.ModuleList(nn.Embedding(len(values), hidden) for values in x_map.values())
        self.bond = nn.ModuleList(
            nn.ModuleList(nn.Embedding(len(values), hidden) for values in e_map.values())
            for _ in range(num_layers)
        )
        self.convs = nn.ModuleList(
            GINEConv(
                nn.Sequential(
                    nn.Linear(hidden, wide), nn.BatchNorm1d(wide), nn.ReLU(), nn.Linear(wide, hidden)
                ),
                train_eps=True,
            )
            for _ in range(num_layers)
        )
        self.norms = nn.ModuleList(nn.BatchNorm1d(hidden) for _ in range(num_layers))
        self.virtual = nn.Embedding(1, hidden)
        nn.init.zeros_(self.virtual.weight)
        self.virtual_mlps = nn.ModuleList(
            nn.Sequential(
                nn.Linear(hidden, wide),
                nn.BatchNorm1d(wide),
                nn.ReLU(),
                nn.Linear(wide, hidden),
                nn.BatchNorm1d(hidden),
                nn.ReLU(),
            )
            for _ in range(num_layers - 1)
        )
        self.head = nn.Linear(hidden, 1)

    def forward(self, batch: Any) -> torch.Tensor:
        from torch_geometric.nn import global_add_pool

        h = sum(embed(batch.x[:, f]) for f, embed in enumerate(self.atom))
        v = self.virtual.weight.expand(batch.num_graphs, -1)
        last = len(self.convs) - 1
        for k, (conv, norm) in enumerate(zip(self.convs, self.norms, strict=True)):
            h = h + v[batch.batch]
            bonds = sum(embed(batch.edge_attr[:, f]) for f, embed in enumerate(self.bond[k]))
            out = norm(conv(h, batch.edge_index, bonds))
            if k < last:
                v = self.virtual_mlps[k](global_add_pool(h, batch.batch) + v)
                out = torch.relu(out)
            h = out
        return self.head(global_add_pool(h, batch.batch))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def non_embedding_parameters(model: nn.Module) -> int:
    """Parameters outside ``nn.Embedding`` tables (the lookup tables of feature ids, mostly unused rows)."""
    tables = sum(p.numel() for m in model.modules() if isinstance(m, nn.Embedding) for p in m.parameters())
    return count_parameters(model) - tables


def matching_gine_layers(hidden: int, target: int) -> int:
    """The GINE-VN depth (1–12 layers) at width ``hidden`` whose non-embedding parameter count is closest to
    ``target``."""
    counts = {layers: non_embedding_parameters(PygGINEVirtual(hidden, layers)) for layers in range(1, 13)}
    return min(counts, key=lambda layers: abs(counts[layers] - target))


def matching_gin_hidden(target: int) -> int:
    """The GIN hidden size (a multiple of 8) whose parameter count is closest to ``target``."""
    counts: dict[int, int] = {}
    hidden = 0
    while not counts or counts[hidden] < target:
        hidden += 8
        counts[hidden] = count_parameters(PygGIN(hidden))
    return min(counts, key=lambda size: abs(counts[size] - target))


@dataclass
class TpsaSplit:
    """The TPSA dataset, its 80/10/10 split and the training split's target mean and standard deviation."""

    dataset: Any
    parts: tuple[Any, Any, Any]
    mean: float
    std: float

    @property
    def mean_predictor_mae(self) -> float:
        """Test MAE (Å²) of predicting the training mean for every molecule: the baseline a model must beat."""
        return (self.dataset.targets[self.parts[2].indices, 0].double() - self.mean).abs().mean().item()


def tpsa_split(request: Request) -> TpsaSplit:
    dataset = tpsa_task(limit=request.molecules, cache_dir=request.cache_dir)
    parts = split(dataset, SPLIT, seed=SPLIT_SEED)
    train_targets = dataset.targets[parts[0].indices, 0].double()
    return TpsaSplit(dataset, parts, train_targets.mean().item(), train_targets.std().item())


class Standardised(torch.utils.data.Dataset):
    """Items of ``subset`` with their targets standardised: ``y ← (y − mean) / std``."""

    def __init__(self, subset: Any, mean: float, std: float) -> None:
        self.subset, self.mean, self.std = subset, mean, std

    def __len__(self) -> int:
        return len(self.subset)

    def __getitem__(self, index: int) -> Any:
        item = self.subset[index]
        return replace(item, y=(item.y - self.mean) / self.std)


def train_config(request: Request, train_size: int) -> TrainConfig:
    """The optimisation shared by both models (module docstring)."""
    total = request.epochs * math.ceil(train_size / request.batch_size)
    return TrainConfig(
        epochs=request.epochs,
        batch_size=request.batch_size,
        lr=LR,
        end_lr=END_LR,
        warmup_steps=round(WARMUP_FRACTION * total),
        weight_decay=WEIGHT_DECAY,
        clip_norm=CLIP,
        seed=request.seed,
        log_every=10**9,
    )


@dataclass
class TimedRegression(RegressionObjective):
    """The L1 objective of ``graphormer2.fit``, also summing the seconds spent validating."""

    seconds: float = 0.0

    def evaluate(self, model: nn.Module, loader: Any) -> dict[str, float]:
        began = time.perf_counter()
        metrics = super().evaluate(model, loader)
        self.seconds += time.perf_counter() - began
        return metrics


def train_ours(request: Request) -> dict[str, Any]:
    data = tpsa_split(request)
    train, valid, test = (Standardised(part, data.mean, data.std) for part in data.parts)
    torch.manual_seed(request.seed)
    model = Graphormer(graphormer_config())
    objective = TimedRegression()
    config = train_config(request, len(train))
    result = fit(model, train, valid, collate, objective, config)
    model.load_state_dict(result.best_state)
    model.eval()
    loader = torch.utils.data.DataLoader(test, batch_size=request.batch_size, collate_fn=collate)
    with torch.no_grad():
        test_mae = RegressionObjective().evaluate(model, loader)["mae"] * data.std
    seconds = result.seconds - objective.seconds
    return {
        "seconds": seconds,
        "graphs_per_second": len(train) * request.epochs / seconds,
        "parameters": model.num_parameters(),
        "non_embedding_parameters": non_embedding_parameters(model),
        "valid_mae": result.best_metric * data.std,
        "test_mae": test_mae,
        "mean_predictor_mae": data.mean_predictor_mae,
        "steps": result.steps,
        "sizes": [len(part) for part in data.parts],
    }


def gin_mae(model: nn.Module, graphs: list[Any], batch_size: int) -> float:
    """Mean |prediction − y| over ``graphs`` in standardised units (eval mode, no gradients)."""
    from torch_geometric.data import Batch

    model.eval()
    total = 0.0
    with torch.no_grad():
        for first in range(0, len(graphs), batch_size):
            batch = Batch.from_data_list(graphs[first : first + batch_size])
            total += (model(batch) - batch.y).abs().sum().item()
    model.train()
    return total / len(graphs)


def anchor_model(request: Request) -> nn.Module:
    """The PyG model of ``request``: GINE with a virtual node at Graphormer's width (``gine``), or the plain
    ``GIN`` of matched total parameters (``gin``)."""
    if request.library == "gine":
        return PygGINEVirtual(graphormer_config().hidden_dim, request.gine_layers)
    return PygGIN(request.gin_hidden)


def train_pyg(request: Request) -> dict[str, Any]:
    """Train a PyG anchor (:func:`anchor_model`) on the batches, schedule and optimiser of ``graphormer2.fit``."""
    from torch.utils.data import DistributedSampler
    from torch_geometric.data import Batch
    from torch_geometric.utils import from_smiles as pyg_from_smiles

    data = tpsa_split(request)
    targets = (data.dataset.targets[:, 0].double() - data.mean) / data.std

    def graphs(subset: Any) -> list[Any]:
        out = []
        for index in progress(subset.indices, desc="PyG from_smiles", unit="mol"):
            graph = pyg_from_smiles(data.dataset.smiles[index])
            graph.y = targets[index].float().view(1, 1)
            out.append(graph)
        return out

    train, valid, test = (graphs(part) for part in data.parts)
    torch.manual_seed(request.seed)
    model = anchor_model(request)
    config = train_config(request, len(train))
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=LR, betas=config.betas, eps=config.eps, weight_decay=config.weight_decay
    )
    # the batches of graphormer2.fit: each epoch's order of a one-process DistributedSampler, cut in batches
    sampler = DistributedSampler(train, num_replicas=1, rank=0, shuffle=True, seed=config.seed)
    steps_per_epoch = math.ceil(len(train) / config.batch_size)
    total = config.epochs * steps_per_epoch
    best_mae, best_state, seconds, step = math.inf, {}, 0.0, 0
    bar = progress(total=total, desc=f"PyG {request.library.upper()} train", unit="step")
    model.train()
    for epoch in range(config.epochs):
        sampler.set_epoch(epoch)
        order = list(sampler)
        began = time.perf_counter()
        for first in range(0, len(order), config.batch_size):
            batch = Batch.from_data_list([train[i] for i in order[first : first + config.batch_size]])
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(config, step, total)
            loss = (model(batch) - batch.y).abs().mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), config.clip_norm)
            optimizer.step()
            step += 1
            bar.set_postfix(epoch=epoch + 1, loss=f"{loss.item():.4g}", refresh=False)
            bar.update(1)
        seconds += time.perf_counter() - began
        valid_mae = gin_mae(model, valid, config.batch_size)
        if valid_mae < best_mae:
            best_mae, best_state = valid_mae, copy.deepcopy(model.state_dict())
    bar.close()
    model.load_state_dict(best_state)
    return {
        "seconds": seconds,
        "graphs_per_second": len(train) * config.epochs / seconds,
        "parameters": count_parameters(model),
        "non_embedding_parameters": non_embedding_parameters(model),
        "valid_mae": best_mae * data.std,
        "test_mae": gin_mae(model, test, config.batch_size) * data.std,
        "mean_predictor_mae": data.mean_predictor_mae,
        "steps": step,
        "sizes": [len(train), len(valid), len(test)],
    }


# ---------------------------------------------------------------------------------- official training step


def import_official_model(official_dir: Path) -> type:
    """The official ``GraphormerModel`` class from the checkout ``official_dir``, without its package ``__init__``.

    ``graphormer/__init__.py`` imports every criterion and forces the ``fork`` start method, and
    ``graphormer/data`` needs ogb, dgl, PyG and Cython; the model needs none of them. A bare module ``graphormer``
    with ``__path__`` = the checkout's ``graphormer/`` folder is registered in ``sys.modules`` instead, so that
    ``graphormer.models.graphormer`` and what it imports (``graphormer.modules``, ``graphormer.pretrain``) load
    from the checkout through the normal import system, with fairseq and torch only.
    """
    package_dir = (official_dir / "graphormer").resolve()
    loaded = sys.modules.get("graphormer")
    if loaded is None:
        stub = types.ModuleType("graphormer")
        stub.__path__ = [str(package_dir)]  # a package whose __init__.py is never run
        sys.modules["graphormer"] = stub
    elif list(getattr(loaded, "__path__", [])) != [str(package_dir)]:
        raise SystemExit(f"another module 'graphormer' is already imported ({loaded!r})")
    module = importlib.import_module("graphormer.models.graphormer")
    if Path(module.__file__ or "").resolve() != package_dir / "models" / "graphormer.py":
        raise SystemExit(f"imported {module.__file__}, not the checkout's {OFFICIAL_MODEL_FILE}")
    return module.GraphormerModel


def official_inputs(batch: Any) -> dict[str, torch.Tensor]:
    """The official collator's ``batched_data`` dict for a ``graphormer2.GraphBatch``.

    Ours already holds the official batched ids (``graphormer2.collate``: the official collator's +1 of ``x``,
    degrees, distances and path ids is included in our items) and the same ``attn_bias`` layout, so the tensors
    are passed as they are; ``out_degree`` is ``in_degree`` as in the official collator (undirected graphs).
    """
    return {
        "idx": torch.arange(len(batch)),
        "attn_bias": batch.attn_bias,
        "attn_edge_type": batch.attn_edge_type,
        "spatial_pos": batch.spatial_pos,
        "in_degree": batch.in_degree,
        "out_degree": batch.in_degree,
        "x": batch.x,
        "edge_input": batch.edge_input,
        "y": batch.y,
    }


def train_step_official(request: Request) -> dict[str, Any]:
    """Time training steps of ours and of the official model (same weights, same batches), alternating."""
    from graphormer2.fairseq_checkpoint import fairseq_args, official_state_dict
    from torch.utils.data import DistributedSampler

    graphormer_model = import_official_model(Path(request.official_dir or "."))
    data = tpsa_split(request)
    train = Standardised(data.parts[0], data.mean, data.std)
    config = train_config(request, len(train))
    sampler = DistributedSampler(train, num_replicas=1, rank=0, shuffle=True, seed=config.seed)
    sampler.set_epoch(0)
    order = list(sampler)
    batches = [
        collate([train[i] for i in order[first : first + config.batch_size]])
        for first in range(0, len(order), config.batch_size)
    ]
    feeds = [official_inputs(batch) for batch in batches]

    torch.manual_seed(request.seed)
    ours = Graphormer(graphormer_config())
    official = graphormer_model.build_model(argparse.Namespace(**fairseq_args(ours.config)), None)
    official.load_state_dict(official_state_dict(ours), strict=True)
    forward = {
        "ours": lambda index: ours(batches[index]),
        # the official l1_loss criterion reads the graph token's row of the (B, N + 1, C) output
        "official": lambda index: official(feeds[index])[:, 0, :],
    }
    models: dict[str, nn.Module] = {"ours": ours, "official": official}

    for model in models.values():
        model.eval()
    with torch.no_grad():
        difference = max(
            (forward["ours"](index) - forward["official"](index)).abs().max().item()
            for index in range(min(EQUIVALENCE_BATCHES, len(batches)))
        )
    if not difference <= EQUIVALENCE_TOLERANCE:
        raise SystemExit(
            f"the official GraphormerModel with our weights differs from ours by {difference:.3g} "
            f"(> {EQUIVALENCE_TOLERANCE:g}) in eval mode: the comparison would not be at equal models"
        )

    optimizers = {
        name: torch.optim.AdamW(
            model.parameters(), lr=LR, betas=config.betas, eps=config.eps, weight_decay=config.weight_decay
        )
        for name, model in models.items()
    }
    total = STEP_WARMUP + request.steps
    schedule_total = config.epochs * len(batches)
    rates: dict[str, list[float]] = {name: [] for name in models}
    losses: dict[str, list[float]] = {name: [] for name in models}
    for model in models.values():
        model.train()
    for step in progress(range(total), desc="ours/official train steps", unit="step"):
        index = step % len(batches)
        batch = batches[index]
        for name in ("ours", "official") if step % 2 == 0 else ("official", "ours"):
            model, optimizer = models[name], optimizers[name]
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(config, step, schedule_total)
            began = time.perf_counter()
            loss = (forward[name](index) - batch.y).abs().mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), config.clip_norm)
            optimizer.step()
            seconds = time.perf_counter() - began
            losses[name].append(loss.item())
            if step >= STEP_WARMUP:
                rates[name].append(len(batch) / seconds)
    return {
        "ours_graphs_per_second": statistics.median(rates["ours"]),
        "official_graphs_per_second": statistics.median(rates["official"]),
        "max_output_difference": difference,
        "max_loss_difference": max(
            abs(a - b) for a, b in zip(losses["ours"], losses["official"], strict=True)
        ),
        "steps": request.steps,
        "warmup_steps": STEP_WARMUP,
        "batches": len(batches),
        "train_graphs": len(train),
        "parameters": ours.num_parameters(),
        "official_parameters": sum(p.numel() for p in official.parameters()),
        "torch": torch.__version__,
        "fairseq": getattr(sys.modules.get("fairseq"), "__version__", "unknown"),
    }


def official_commit(official_dir: Path) -> str:
    """The checkout's git commit, or ``local checkout`` where it is not a git work tree."""
    try:
        done = subprocess.run(
            ["git", "-C", os.fspath(official_dir), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError:
        return "local checkout"
    commit = done.stdout.strip()
    return f"commit {commit}" if done.returncode == 0 and commit else "local checkout"


def check_official_dir(text: str) -> Path:
    """``--official-dir``: a directory holding ``graphormer/models/graphormer.py``, else a one-line exit."""
    path = Path(text).expanduser()
    if not path.is_dir() or not (path / OFFICIAL_MODEL_FILE).is_file():
        raise SystemExit(
            f"--official-dir: {text} is not a microsoft/Graphormer checkout (no {OFFICIAL_MODEL_FILE.as_posix()})"
        )
    return path.resolve()


def check_official_python(text: str) -> str:
    """``--official-python``: an interpreter that imports fairseq, else a one-line exit."""
    try:
        done = subprocess.run(
            [text, "-c", "import fairseq"], capture_output=True, text=True, check=False, timeout=300
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        raise SystemExit(f"--official-python: cannot run {text} ({err})") from None
    if done.returncode:
        lines = done.stderr.strip().splitlines() or ["no error message"]
        raise SystemExit(f"--official-python: {text} cannot import fairseq ({lines[-1]})")
    return text


def measure_with(python: str, request: Request) -> dict[str, Any]:
    """:func:`measure` with another interpreter (``--official-python``): ``python run.py --worker JSON``."""
    # not realpath: a virtual environment's python is a link to the base interpreter, with other packages
    if os.path.abspath(python) == os.path.abspath(sys.executable):
        return measure(request)
    print(f"measuring {request.label} with {python} ...", file=sys.stderr, flush=True)
    began = time.perf_counter()
    done = subprocess.run(
        [python, __file__, "--worker", json.dumps(asdict(request))],
        stdout=subprocess.PIPE,
        text=True,
        check=False,
    )
    prefix = "RESULT "  # papers_common.emit_result's line
    lines = [line for line in done.stdout.splitlines() if line.startswith(prefix)]
    if done.returncode or not lines:
        sys.stderr.write(done.stdout[-4000:])
        raise SystemExit(f"{request.label}: the measuring process failed (exit code {done.returncode})")
    print(f"  done in {time.perf_counter() - began:.1f} s", file=sys.stderr, flush=True)
    return json.loads(lines[-1][len(prefix) :])


# ----------------------------------------------------------------------------------------------- running


def worker(request: Request) -> dict[str, Any]:
    """Run one request in this process (called in the child)."""
    torch.set_num_threads(request.threads)
    torch.manual_seed(request.seed)
    handlers = {
        ("preprocess", "ours"): preprocess_ours,
        ("preprocess", "pyg"): preprocess_pyg,
        ("preprocess", "official"): preprocess_official,
        ("train", "ours"): train_ours,
        ("train", "gine"): train_pyg,
        ("train", "gin"): train_pyg,
        ("train-step", "official"): train_step_official,
    }
    return handlers[(request.task, request.library)](request)


def measure(request: Request) -> dict[str, Any]:
    """Run one request in a fresh Python process (:func:`papers_common.run_isolated`)."""
    return run_isolated(__file__, asdict(request), request.label)


def package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def positive(text: str) -> int:
    """An argparse type: an integer of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="directory of bench.json")
    parser.add_argument("--quick", action="store_true", help="1,000 SMILES / TPSA rows and 4 epochs")
    parser.add_argument("--threads", type=positive, default=2)
    parser.add_argument(
        "--molecules", type=positive, help="SMILES preprocessed (default: 1000 quick, all full)"
    )
    parser.add_argument(
        "--train-molecules", type=positive, help="TPSA rows used (default: 1000 quick, all full)"
    )
    parser.add_argument(
        "--epochs", type=positive, help="training epochs of both models (default: 4 quick, 10 full)"
    )
    parser.add_argument("--batch-size", type=positive, default=32)
    parser.add_argument(
        "--repeats", type=positive, help="timed preprocessing passes, median kept (default: 3 quick, 1 full)"
    )
    parser.add_argument(
        "--official-dir",
        help="a microsoft/Graphormer checkout: also time its training step against ours (needs fairseq)",
    )
    parser.add_argument(
        "--official-python",
        help="interpreter with fairseq for the --official-dir measurement (default: this one)",
    )
    # internal: run one Request, given as JSON, in this process and print its result
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    configure_logging()
    if args.worker:
        emit_result(worker(Request(**json.loads(args.worker))))
        return 0
    if args.out is None:
        parser.error("--out is required")
    official_dir = check_official_dir(args.official_dir) if args.official_dir is not None else None
    official_python = None
    if official_dir is not None:
        official_python = check_official_python(args.official_python or sys.executable)
    elif args.official_python is not None:
        raise SystemExit("--official-python: only used with --official-dir")
    molecules = args.molecules if args.molecules is not None else (1000 if args.quick else None)
    train_molecules = (
        args.train_molecules if args.train_molecules is not None else (1000 if args.quick else None)
    )
    epochs = args.epochs or (4 if args.quick else 10)
    repeats = args.repeats or (3 if args.quick else 1)
    began = time.perf_counter()

    ours_model = Graphormer(graphormer_config())
    ours_parameters = ours_model.num_parameters()
    gine_layers = matching_gine_layers(graphormer_config().hidden_dim, non_embedding_parameters(ours_model))
    gin_hidden = matching_gin_hidden(ours_parameters)
    gin_parameters = count_parameters(PygGIN(gin_hidden))
    if abs(gin_parameters / ours_parameters - 1) > PARAMETER_TOLERANCE:
        raise SystemExit(f"no GIN hidden size within ±25 % of {ours_parameters} parameters")

    with tempfile.TemporaryDirectory(prefix="graphormer2-bench-") as scratch:
        pre = Request("preprocess", "ours", molecules=molecules, repeats=repeats, threads=args.threads)
        fitting = Request(
            "train",
            "ours",
            molecules=train_molecules,
            epochs=epochs,
            batch_size=args.batch_size,
            gin_hidden=gin_hidden,
            gine_layers=gine_layers,
            cache_dir=scratch,
            threads=args.threads,
        )
        requests = [replace(pre, library=library) for library in ("ours", "pyg", "official")]
        requests += [replace(fitting, library=library) for library in ("ours", "gine", "gin")]
        results = {
            (r.task, r.library): measure(r) for r in progress(requests, desc="bench", unit="measurement")
        }
        prepared = {library: results[("preprocess", library)] for library in ("ours", "pyg", "official")}
        trained = {library: results[("train", library)] for library in ("ours", "gine", "gin")}
        stepped = None
        if official_dir is not None and official_python is not None:
            stepping = replace(
                fitting,
                task="train-step",
                library="official",
                official_dir=str(official_dir),
                steps=40 if args.quick else 100,
            )
            stepped = measure_with(official_python, stepping)

    machine = {**machine_info("cpu"), "threads": args.threads, "mode": "quick" if args.quick else "full"}
    pyg_version = package_version("torch-geometric")
    pyg_anchor = Anchor("PyG torch_geometric.utils.from_rdmol + RDKit GetDistanceMatrix", pyg_version)
    official_anchor = Anchor(
        "official Graphormer preprocess_item + algos.pyx (Floyd–Warshall, recursive paths), Python port",
        "microsoft/Graphormer v2.0 logic",
    )
    gine_anchor = Anchor(
        "PyG GINEConv + OGB virtual node (OGB gin-virtual with bond features, sum pool)", pyg_version
    )
    gin_anchor = Anchor(
        "extra, weaker anchor: PyG torch_geometric.nn.models.GIN (no bond features, mean pool)", pyg_version
    )
    count = prepared["ours"]["smiles"]
    pre_workload = (
        f"first {count} SMILES of RDKit's {SMILES_FILE}, SMILES to model-ready graphs, median of {repeats} "
        f"pass(es) after a warm-up, torch.set_num_threads({args.threads})"
    )

    def rate(result: dict[str, Any], key: str = "seconds", items: str = "smiles") -> float:
        return result[items] / result[key]

    ours_rate, pyg_rate, official_rate = (rate(prepared[key]) for key in ("ours", "pyg", "official"))
    ours_step = rate(prepared["ours"], "step_seconds", "step_molecules")
    official_step = rate(prepared["official"], "step_seconds", "step_molecules")
    sizes = trained["ours"]["sizes"]
    train_data = (
        f"TPSA ({sum(sizes)} NCI molecules, split {sizes[0]}/{sizes[1]}/{sizes[2]}, seed {SPLIT_SEED}), "
        f"{epochs} epochs of batches of {args.batch_size}, AdamW lr {LR:g} (10 % warm-up, linear decay), "
        f"standardised targets, torch.set_num_threads({args.threads}); ours Graphormer slim-6 "
        f"(width {graphormer_config().hidden_dim}, {trained['ours']['non_embedding_parameters']} non-embedding "
        f"parameters of {trained['ours']['parameters']})"
    )
    train_workload = (
        f"{train_data} vs PyG GINE + virtual node, {gine_layers} layers, width {graphormer_config().hidden_dim} "
        f"({trained['gine']['non_embedding_parameters']} non-embedding parameters of "
        f"{trained['gine']['parameters']})"
    )
    extra_workload = (
        f"{train_data} vs PyG GIN {GIN_LAYERS}x{gin_hidden} without bond features, mean pool "
        f"({trained['gin']['parameters']} parameters in all)"
    )
    rows = [
        Measurement(
            f"{pre_workload}; ours graphormer2.from_smiles (features, SPD, path edges) vs PyG from_rdmol + "
            "GetDistanceMatrix (features, SPD, no path edges)",
            "preprocessing throughput",
            "molecules/s",
            ours_rate,
            pyg_rate,
            True,
            pyg_anchor,
        ),
        Measurement(
            f"{pre_workload}; ours graphormer2.from_smiles vs the official preprocessing (Python port)",
            "preprocessing throughput",
            "molecules/s",
            ours_rate,
            official_rate,
            True,
            official_anchor,
        ),
        Measurement(
            f"{pre_workload}; SPD + path step only on featurised molecules: ours topological_distance + "
            "preprocess vs the official preprocess_item (Python port)",
            "SPD + path preprocessing throughput",
            "molecules/s",
            ours_step,
            official_step,
            True,
            official_anchor,
        ),
        Measurement(
            train_workload,
            "training throughput",
            "graphs/s",
            trained["ours"]["graphs_per_second"],
            trained["gine"]["graphs_per_second"],
            True,
            gine_anchor,
        ),
        Measurement(
            train_workload + "; weights of the best validation epoch",
            "test MAE",
            "Å²",
            trained["ours"]["test_mae"],
            trained["gine"]["test_mae"],
            False,
            gine_anchor,
        ),
        Measurement(
            extra_workload,
            "training throughput (extra row, weaker anchor)",
            "graphs/s",
            trained["ours"]["graphs_per_second"],
            trained["gin"]["graphs_per_second"],
            True,
            gin_anchor,
        ),
        Measurement(
            extra_workload + "; weights of the best validation epoch",
            "test MAE (extra row, weaker anchor)",
            "Å²",
            trained["ours"]["test_mae"],
            trained["gin"]["test_mae"],
            False,
            gin_anchor,
        ),
    ]
    if stepped is not None and official_dir is not None:
        official_model_anchor = Anchor(
            "official microsoft/Graphormer (fairseq) GraphormerModel, " + official_commit(official_dir),
            f"fairseq {stepped['fairseq']}, torch {stepped['torch']}",
        )
        step_workload = (
            f"{stepped['steps']} training steps of each model after {stepped['warmup_steps']} warm-up steps, "
            f"alternating, on the {stepped['batches']} first-epoch batches of {args.batch_size} of the TPSA "
            f"training split ({stepped['train_graphs']} graphs), forward + L1 loss + backward + clipping + AdamW; "
            f"ours Graphormer slim-6 vs the official GraphormerModel built from the equivalent fairseq args with "
            f"our weights ({stepped['parameters']} parameters; eval outputs agree within "
            f"{stepped['max_output_difference']:.2g}), every dropout 0, torch.set_num_threads({args.threads}), "
            "median of graphs / step seconds"
        )
        rows.append(
            Measurement(
                step_workload,
                "training step throughput vs the official code",
                "graphs/s",
                stepped["ours_graphs_per_second"],
                stepped["official_graphs_per_second"],
                True,
                official_model_anchor,
            )
        )
    path = write_bench(Bench("graphormer2", pyg_anchor, rows[0], machine, rows), args.out)

    print(f"machine: {json.dumps(machine)}")
    print(f"torch-geometric {pyg_version}, torch {torch.__version__}; ratio = ours / anchor")
    print(f"\nPreprocessing ({pre_workload})")
    print(f"  {'pipeline':58s} {'mol/s':>9s} {'ms/mol':>8s} {'ours/anchor':>12s}")
    table = [
        ("PyG from_rdmol + GetDistanceMatrix (no path edges)", pyg_rate),
        ("official preprocess_item + algos.pyx, Python port", official_rate),
        ("ours graphormer2.from_smiles", ours_rate),
    ]
    for name, value in table:
        ratio = "" if name.startswith("ours") else f"{ours_rate / value:12.3f}"
        print(f"  {name:58s} {value:9.1f} {1000 / value:8.3f} {ratio:>12s}")
    print(
        f"  SPD + path step only: ours {1000 / ours_step:.3f} ms/mol, "
        f"official port {1000 / official_step:.3f} ms/mol, speed-up {ours_step / official_step:.1f}x\n"
        f"  ours and the port agree on all {prepared['official']['kept']} molecules; identical path edge ids "
        f"on {prepared['official']['identical_paths']} (all {prepared['official']['acyclic']} acyclic ones "
        "among them; elsewhere another of the shortest paths may be stored)"
    )
    print(f"\nTraining ({train_data})")
    print(
        f"  {'model':34s} {'params':>8s} {'graphs/s':>9s} {'train s':>8s} {'valid MAE':>10s} {'test MAE':>9s}"
    )
    for key, name in (
        ("gine", f"PyG GINE + VN {gine_layers} x {graphormer_config().hidden_dim}"),
        ("gin", f"extra: PyG GIN {GIN_LAYERS} x {gin_hidden}, mean"),
        ("ours", "ours Graphormer slim-6"),
    ):
        result = trained[key]
        print(
            f"  {name:34s} {result['parameters']:8d} {result['graphs_per_second']:9.1f} "
            f"{result['seconds']:8.1f} {result['valid_mae']:10.3f} {result['test_mae']:9.3f}"
        )
    print(
        f"  {'predicting the training mean':34s} {'':8s} {'':9s} {'':8s} {'':10s} "
        f"{trained['ours']['mean_predictor_mae']:9.3f}"
    )
    print(
        f"  ratios ours/GINE-VN: throughput {rows[3].ratio:.3f}, test MAE {rows[4].ratio:.3f}; "
        f"ours/GIN (extra): throughput {rows[5].ratio:.3f}, test MAE {rows[6].ratio:.3f} "
        "(MAE in Å², lower is better)"
    )
    summary = {"bench": str(path), "ratio_vs_pyg_preprocessing": rows[0].ratio}
    if stepped is not None:
        print(
            f"\nTraining step vs the official code ({rows[-1].anchor.name if rows[-1].anchor else ''})\n"
            f"  ours {stepped['ours_graphs_per_second']:.1f} graphs/s, official "
            f"{stepped['official_graphs_per_second']:.1f} graphs/s, ratio ours/official {rows[-1].ratio:.3f} "
            f"(median of {stepped['steps']} steps each)\n"
            f"  equivalence: max |ours − official| of the eval outputs {stepped['max_output_difference']:.3g} "
            f"(tolerance {EQUIVALENCE_TOLERANCE:g}); max |loss difference| over the steps "
            f"{stepped['max_loss_difference']:.3g}"
        )
        summary["ratio_vs_official_train_step"] = rows[-1].ratio
    summary["seconds"] = round(time.perf_counter() - began, 1)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
