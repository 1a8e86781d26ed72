"""GIN with a virtual node: the OGB baseline (Xu et al. 2019; Gilmer et al. 2017), on Graphormer's batches.

This is the 1-WL-bounded message-passing baseline of the spec (§5 GIN / GIN-VN rows, §8 expressivity), following
OGB's ``GNN(gnn_type="gin-virtual")`` recipe for molecules:

- input   h⁰_i = AtomEncoder(x_i) = Σ_f Emb(x_{i,f})
- layer   h^{k+1}_i = Drop(ReLU(BN(MLP((1 + ε_k) h^k_i + Σ_{j∈N(i)} ReLU(h^k_j + BondEncoder_k(e_ij))))))
          with MLP = Linear(D, 2D) → BN → ReLU → Linear(2D, D); the last layer has no ReLU
- virtual node (optional): before layer k every node adds v^k_{g(i)}; after it (except the last)
          v^{k+1}_g = Drop(MLP_v(Σ_{i∈g} (h^k_i + v^k_g) + v^k_g)), MLP_v = Linear(D, 2D) → BN → ReLU → Linear(2D, D)
          → BN → ReLU, and v⁰ is a learned vector (initialised to 0)
- readout mean over the nodes of each graph, then Linear(D, C)

It reads the same :class:`graphormer2.collate.GraphBatch` as :class:`graphormer2.model.Graphormer`: the atom ids
``x``, and the bonds (pairs with ``spatial_pos == 2``, i.e. shortest-path distance 1) with their feature ids
``attn_edge_type``. Padded nodes are dropped before any layer, so batch-norm statistics see real atoms only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from graphormer2.model import check_ids
from papers_common import InputError, Pretrained

if TYPE_CHECKING:
    from graphormer2.collate import GraphBatch

FEATURE_BLOCK = 512  # ids of feature f lie in [1 + 512 f, 512 (f + 1)] (0 = padding)


@dataclass(frozen=True)
class GINConfig:
    """Sizes of the GIN baseline (OGB's molecule defaults: 5 layers, D 300, dropout 0.5, virtual node).

    Attributes:
        num_layers: message-passing layers.
        hidden_dim: D.
        num_classes: C, outputs per graph.
        virtual_node: add OGB's virtual node (GIN-VN); False gives plain GIN, bounded by 1-WL.
        dropout: after every layer and after every virtual-node update.
        num_atom_features, num_bond_features: feature columns of ``x`` and ``attn_edge_type`` (9 and 3 in OGB's
            featurisation); each owns a block of 512 ids.
    """

    num_layers: int = 5
    hidden_dim: int = 300
    num_classes: int = 1
    virtual_node: bool = True
    dropout: float = 0.5
    num_atom_features: int = 9
    num_bond_features: int = 3

    def __post_init__(self) -> None:
        for name in ("num_layers", "hidden_dim", "num_classes", "num_atom_features", "num_bond_features"):
            if getattr(self, name) < 1:
                raise InputError(f"GINConfig.{name} must be at least 1, got {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise InputError(f"GINConfig.dropout must lie in [0, 1), got {self.dropout}")


@dataclass
class GraphStructure:
    """The real nodes and directed bonds of a padded batch, in a flat (PyG-like) layout.

    Attributes:
        node_ids: ``(M, F)`` long atom-feature ids of the M real nodes, graph by graph.
        graph: ``(M,)`` long, the graph of each node.
        source, target: ``(E,)`` long node indices of each directed bond j → i (both directions of every bond).
        bond_ids: ``(E, 3)`` long bond-feature ids.
        num_graphs: B.
    """

    node_ids: torch.Tensor
    graph: torch.Tensor
    source: torch.Tensor
    target: torch.Tensor
    bond_ids: torch.Tensor
    num_graphs: int


def graph_structure(batch: GraphBatch) -> GraphStructure:
    """Flatten a padded :class:`GraphBatch` into real nodes and bonds (vectorised, no per-graph loop)."""
    b, n = batch.x.shape[:2]
    real = batch.x[..., 0] != 0  # (B, N)
    compact = torch.cumsum(real.flatten(), 0) - 1  # flat padded index -> index among real nodes
    graph, _ = real.nonzero(as_tuple=True)
    gb, gi, gj = (batch.spatial_pos == 2).nonzero(as_tuple=True)
    return GraphStructure(
        node_ids=batch.x[real],
        graph=graph,
        source=compact[gb * n + gj],
        target=compact[gb * n + gi],
        bond_ids=batch.attn_edge_type[gb, gi, gj],
        num_graphs=b,
    )


def feature_embedding(num_features: int, dim: int) -> nn.Embedding:
    """One table for all categorical features (ids 1 + 512 f ..., 0 = padding), summed like OGB's encoders."""
    return nn.Embedding(FEATURE_BLOCK * num_features + 1, dim, padding_idx=0)


@torch.no_grad()
def reset_feature_embedding(embedding: nn.Embedding, num_features: int) -> None:
    """Xavier-uniform per feature block, as OGB initialises each feature's own table; the padding row is 0."""
    for f in range(num_features):
        nn.init.xavier_uniform_(embedding.weight[1 + FEATURE_BLOCK * f : 1 + FEATURE_BLOCK * (f + 1)])
    embedding.weight[0].zero_()


class GINConv(nn.Module):
    """GIN convolution with bond features: MLP((1 + ε) h_i + Σ_j ReLU(h_j + e_ij)) (OGB's molecule GINConv)."""

    def __init__(self, dim: int, num_bond_features: int) -> None:
        super().__init__()
        self.num_bond_features = num_bond_features
        self.bond = feature_embedding(num_bond_features, dim)
        self.eps = nn.Parameter(torch.zeros(1))
        self.mlp = nn.Sequential(
            nn.Linear(dim, 2 * dim), nn.BatchNorm1d(2 * dim), nn.ReLU(), nn.Linear(2 * dim, dim)
        )

    def reset_parameters(self) -> None:
        reset_feature_embedding(self.bond, self.num_bond_features)

    def forward(self, h: torch.Tensor, structure: GraphStructure) -> torch.Tensor:
        """``h`` ``(M, D)`` → ``(M, D)``."""
        messages = F.relu(h[structure.source] + self.bond(structure.bond_ids).sum(dim=-2))
        aggregated = torch.zeros_like(h).index_add_(0, structure.target, messages)
        return self.mlp((1 + self.eps) * h + aggregated)


class GIN(nn.Module, Pretrained):
    """GIN (optionally with a virtual node) for graph-level prediction: ``forward(batch)`` → ``(B, C)``."""

    config_class = GINConfig
    config_key = "model"

    def __init__(self, config: GINConfig) -> None:
        super().__init__()
        self.config = config
        d = config.hidden_dim
        self.atom = feature_embedding(config.num_atom_features, d)
        self.convs = nn.ModuleList(GINConv(d, config.num_bond_features) for _ in range(config.num_layers))
        self.norms = nn.ModuleList(nn.BatchNorm1d(d) for _ in range(config.num_layers))
        if config.virtual_node:
            self.virtual_start = nn.Parameter(torch.zeros(d))
            self.virtual_mlps = nn.ModuleList(
                nn.Sequential(
                    nn.Linear(d, 2 * d),
                    nn.BatchNorm1d(2 * d),
                    nn.ReLU(),
                    nn.Linear(2 * d, d),
                    nn.BatchNorm1d(d),
                    nn.ReLU(),
                )
                for _ in range(config.num_layers - 1)
            )
        self.head = nn.Linear(d, config.num_classes)
        reset_feature_embedding(self.atom, config.num_atom_features)
        for conv in self.convs:
            conv.reset_parameters()

    def check_batch(self, batch: GraphBatch) -> None:
        """Validate the fields GIN reads (raises :class:`papers_common.InputError`)."""
        if batch.x.dim() != 3 or batch.x.shape[-1] != self.config.num_atom_features:
            raise InputError(
                f"GraphBatch.x must be (B, N, {self.config.num_atom_features}), got {tuple(batch.x.shape)}"
            )
        b, n = batch.x.shape[:2]
        if tuple(batch.spatial_pos.shape) != (b, n, n):
            raise InputError(
                f"GraphBatch.spatial_pos has shape {tuple(batch.spatial_pos.shape)}; expected {(b, n, n)}"
            )
        edge_shape = (b, n, n, self.config.num_bond_features)
        if tuple(batch.attn_edge_type.shape) != edge_shape:
            raise InputError(
                f"GraphBatch.attn_edge_type has shape {tuple(batch.attn_edge_type.shape)}; expected {edge_shape}"
            )
        check_ids("x", batch.x, self.atom.num_embeddings)
        check_ids("attn_edge_type", batch.attn_edge_type, self.convs[0].bond.num_embeddings)

    def node_representations(self, structure: GraphStructure) -> torch.Tensor:
        """Final node states ``(M, D)`` after all layers (OGB's JK = "last")."""
        h = self.atom(structure.node_ids).sum(dim=-2)
        p = self.config.dropout
        virtual = self.virtual_start.expand(structure.num_graphs, -1) if self.config.virtual_node else None
        last = self.config.num_layers - 1
        for k, (conv, norm) in enumerate(zip(self.convs, self.norms, strict=True)):
            if virtual is not None:
                h = h + virtual[structure.graph]
            out = norm(conv(h, structure))
            out = F.dropout(F.relu(out) if k < last else out, p, self.training)
            if virtual is not None and k < last:
                pooled = torch.zeros_like(virtual).index_add_(0, structure.graph, h) + virtual
                virtual = F.dropout(self.virtual_mlps[k](pooled), p, self.training)
            h = out
        return h

    def graph_representation(self, batch: GraphBatch) -> torch.Tensor:
        """Mean of each graph's final node states, ``(B, D)``."""
        self.check_batch(batch)
        structure = graph_structure(batch)
        h = self.node_representations(structure)
        total = torch.zeros(structure.num_graphs, h.shape[1], dtype=h.dtype, device=h.device)
        total = total.index_add_(0, structure.graph, h)
        counts = torch.bincount(structure.graph, minlength=structure.num_graphs).clamp(min=1)
        return total / counts.unsqueeze(1).to(h.dtype)

    def forward(self, batch: GraphBatch) -> torch.Tensor:
        """``(B, C)`` float predictions."""
        return self.head(self.graph_representation(batch))

    def num_parameters(self) -> int:
        """Number of scalar parameters (batch-norm running statistics are buffers, not counted)."""
        return sum(p.numel() for p in self.parameters())
