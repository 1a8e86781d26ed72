"""Graphormer for 2D molecular graphs (spec §3.2; Ying et al. 2021, Shi et al. 2022 "Graphormer-V2").

A Transformer over the nodes of a graph plus one graph token (a virtual node joined to every node), whose attention
logits carry structural biases computed once per forward pass and shared by every layer:

- node input      x_i = Σ_f AtomEmb(x_{i,f}) + InDegEmb(deg_i) + OutDegEmb(deg_i)      (centrality encoding)
- attention bias  B[h, i, j] = b_h(φ(i, j)) + c_{ij,h}  for nodes i, j                (spatial + edge encoding)
                  B[h, 0, :] = B[h, 1:, 0] = t_h                                    (graph-token distance)
- edge encoding   c_ij = (1 / clamp(φ(i, j), 1, L)) Σ_{l<L} ē_{ij,l} W_l  (multi-hop; ē: mean bond embedding of
                  hop l of the stored shortest path, W_l: an H×H matrix per hop), or the mean embedding of the
                  direct bond (single-hop)
- layer           Post-LN (V2 default): x ← LN(x + Drop(MHA(x, B))); x ← LN(x + Drop(FFN(x)))
                  Pre-LN (V1):          x ← x + Drop(MHA(LN(x), B));   x ← x + Drop(FFN(LN(x)))
- head            y = Linear_{D→C}(LN(GELU(Linear_{D→D}(h_graph-token)))) + b   (b: one learned scalar)

The inputs are a :class:`graphormer2.collate.GraphBatch` whose ids follow the official collator (0 = padding), so
the embedding tables have the official sizes. Behaviour follows the official ``graphormer_layers.py``,
``graphormer_graph_encoder(_layer).py``, ``multihead_attention.py`` and ``models/graphormer.py``; the differences
are listed in :class:`Graphormer`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from papers_common import InputError, Pretrained

if TYPE_CHECKING:
    from graphormer2.collate import GraphBatch

EdgeType = Literal["multi_hop", "single_hop"]
EDGE_TYPES: tuple[str, ...] = ("multi_hop", "single_hop")
INIT_STD = 0.02


@dataclass(frozen=True)
class GraphormerConfig:
    """Everything that determines a 2D Graphormer (official flag in brackets); the defaults are ``base``.

    Attributes:
        num_layers: encoder layers [encoder_layers].
        hidden_dim: D [encoder_embed_dim]; a multiple of ``num_heads``.
        ffn_dim: inner size of the feed-forward block [encoder_ffn_embed_dim].
        num_heads: H [encoder_attention_heads].
        dropout: on the input embeddings, the attention output and the FFN output [dropout].
        attention_dropout: on the attention probabilities [attention_dropout].
        activation_dropout: after the FFN's GELU [act_dropout].
        num_classes: C, outputs per graph [num_classes].
        multi_hop_max_dist: L, hops of a shortest path that the edge encoding reads [multi_hop_max_dist].
        edge_type: ``multi_hop`` (the paper's path encoding) or ``single_hop`` (direct bonds only) [edge_type].
        norm_first: False: Post-LN (V2); True: Pre-LN (V1) [pre_layernorm].
        num_atoms: atom-feature vocabulary, 512 per feature × 9 features; the table has one more row [num_atoms].
        num_edges: bond-feature vocabulary, 512 × 3; the table has one more row [num_edges].
        num_degree: degree table size (in and out) [num_in_degree, num_out_degree].
        num_spatial: shortest-path-distance table size [num_spatial].
        num_edge_dis: hop matrices W_l in the table (only the first L are read) [num_edge_dis].
        max_nodes: largest graph accepted [max_nodes].
    """

    num_layers: int = 12
    hidden_dim: int = 768
    ffn_dim: int = 768
    num_heads: int = 32
    dropout: float = 0.0
    attention_dropout: float = 0.1
    activation_dropout: float = 0.1
    num_classes: int = 1
    multi_hop_max_dist: int = 5
    edge_type: EdgeType = "multi_hop"
    norm_first: bool = False
    num_atoms: int = 512 * 9
    num_edges: int = 512 * 3
    num_degree: int = 512
    num_spatial: int = 512
    num_edge_dis: int = 128
    max_nodes: int = 128

    def __post_init__(self) -> None:
        for name in (
            "num_layers", "hidden_dim", "ffn_dim", "num_heads", "num_classes", "multi_hop_max_dist",
            "num_atoms", "num_edges", "num_degree", "num_spatial", "num_edge_dis", "max_nodes",
        ):  # fmt: skip
            if getattr(self, name) < 1:
                raise InputError(f"GraphormerConfig.{name} must be at least 1, got {getattr(self, name)}")
        for name in ("dropout", "attention_dropout", "activation_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise InputError(f"GraphormerConfig.{name} must lie in [0, 1), got {getattr(self, name)}")
        if self.hidden_dim % self.num_heads:
            raise InputError(
                f"GraphormerConfig.hidden_dim={self.hidden_dim} is not a multiple of num_heads={self.num_heads}"
            )
        if self.edge_type not in EDGE_TYPES:
            raise InputError(
                f"GraphormerConfig.edge_type must be one of {', '.join(EDGE_TYPES)}, got {self.edge_type!r}"
            )
        if self.edge_type == "multi_hop" and self.multi_hop_max_dist > self.num_edge_dis:
            raise InputError(
                f"GraphormerConfig.multi_hop_max_dist={self.multi_hop_max_dist} exceeds the {self.num_edge_dis} "
                "hop matrices of num_edge_dis"
            )

    @property
    def head_dim(self) -> int:
        """D / H."""
        return self.hidden_dim // self.num_heads

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> GraphormerConfig:
        """The official architecture ``graphormer_<name>`` (spec §4) with some fields replaced.

        ``slim``: 12 layers, D 80, FFN 80, 8 heads (ZINC); ``base``: 12, 768, 768, 32 (PCQM4M);
        ``large``: 24, 1024, 1024, 32. Dropouts are those of the official example scripts (0.0 / 0.1 / 0.1).
        """
        if name not in PRESETS:
            raise InputError(f"unknown Graphormer preset {name!r}; choose one of {', '.join(PRESETS)}")
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(overrides) - fields)
        if unknown:
            raise InputError(f"GraphormerConfig has no field {', '.join(map(repr, unknown))}")
        return cls(**{**PRESETS[name], **overrides})


PRESETS: dict[str, dict[str, int]] = {
    "slim": {"num_layers": 12, "hidden_dim": 80, "ffn_dim": 80, "num_heads": 8},
    "base": {"num_layers": 12, "hidden_dim": 768, "ffn_dim": 768, "num_heads": 32},
    "large": {"num_layers": 24, "hidden_dim": 1024, "ffn_dim": 1024, "num_heads": 32},
}


def check_ids(field: str, ids: torch.Tensor, size: int) -> None:
    """Raise :class:`papers_common.InputError` unless every id of ``GraphBatch.<field>`` indexes a table of ``size`` rows."""
    if ids.dtype not in (torch.int64, torch.int32):
        raise InputError(f"GraphBatch.{field} must hold integer ids, got {ids.dtype}")
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= size):
        raise InputError(
            f"GraphBatch.{field} holds ids in [{int(ids.min())}, {int(ids.max())}], outside the model's table of "
            f"{size} rows (check the featurisation and the config's vocabulary sizes)"
        )


def check_graph_batch(batch: GraphBatch, config: GraphormerConfig) -> None:
    """Validate the shapes and id ranges of a batch against ``config`` (raises :class:`papers_common.InputError`)."""
    if batch.x.dim() != 3:
        raise InputError(f"GraphBatch.x must be (B, N, F), got shape {tuple(batch.x.shape)}")
    b, n = batch.x.shape[:2]
    if n > config.max_nodes:
        raise InputError(
            f"GraphBatch.x has graphs of {n} nodes; the model accepts at most max_nodes={config.max_nodes}"
        )
    expected = {
        "in_degree": (b, n),
        "spatial_pos": (b, n, n),
        "attn_edge_type": (b, n, n, batch.attn_edge_type.shape[-1]),
        "edge_input": (b, n, n, *batch.edge_input.shape[3:]),
        "attn_bias": (b, n + 1, n + 1),
    }
    for field, shape in expected.items():
        got = tuple(getattr(batch, field).shape)
        if got != shape or (field == "edge_input" and len(got) != 5):
            raise InputError(
                f"GraphBatch.{field} has shape {got}; a batch of x {tuple(batch.x.shape)} needs {shape}"
            )
    check_ids("x", batch.x, config.num_atoms + 1)
    check_ids("in_degree", batch.in_degree, config.num_degree)
    check_ids("spatial_pos", batch.spatial_pos, config.num_spatial)
    check_ids("attn_edge_type", batch.attn_edge_type, config.num_edges + 1)
    check_ids("edge_input", batch.edge_input, config.num_edges + 1)


def multi_hop_edge_bias(
    hop_embeddings: torch.Tensor, hop_weights: torch.Tensor, spatial_pos: torch.Tensor, max_hops: int
) -> torch.Tensor:
    """Multi-hop edge encoding c_ij = Σ_l ē_{ij,l} W_l / clamp(φ(i, j), 1, L) (spec §3.2; Graphormer eq. 7).

    Args:
        hop_embeddings: ``(B, N, N, l_max, H)`` float, ē: the bond embeddings of hop l of the stored shortest path
            i → j, averaged over the bond features (zero for missing hops, since padding rows are zero).
        hop_weights: ``(l_max, H, H)`` float, W_l acting on row vectors (ē W_l).
        spatial_pos: ``(B, N, N)`` long, φ + 1 (0 = padding, 511 = unreachable).
        max_hops: L; the divisor is clamped to it (as the official code, even when l_max < L).

    Returns:
        ``(B, N, N, H)`` float. The divisor is 1 for padding and i = j, and L for unreachable pairs, whose
        numerator is zero.
    """
    summed = torch.einsum("bijlh,lhk->bijk", hop_embeddings, hop_weights)
    hops = (spatial_pos - 1).clamp(1, max_hops)
    return summed / hops.unsqueeze(-1).to(summed.dtype)


def assemble_attention_bias(
    node_bias: torch.Tensor, virtual_distance: torch.Tensor, attn_bias: torch.Tensor, padding: torch.Tensor
) -> torch.Tensor:
    """The full attention bias ``(B, H, N+1, N+1)`` with the graph token at index 0 (spec §3.2).

    Args:
        node_bias: ``(B, N, N, H)`` float, spatial + edge bias between nodes.
        virtual_distance: ``(H,)`` float, t_h, put on row 0 (graph token as query, every key) and on column 0
            below it (nodes attending to the graph token).
        attn_bias: ``(B, N+1, N+1)`` float from the collator: 0 or −inf (padded key columns). The official code adds
            it twice, which is the same for these values.
        padding: ``(B, N)`` bool, True where a node is padding; its key column is set to −inf (the official
            ``key_padding_mask``, derived from ``x[..., 0] == 0``).
    """
    n = node_bias.shape[1]
    bias = F.pad(node_bias.permute(0, 3, 1, 2), (1, 0, 1, 0))
    token = torch.zeros(n + 1, n + 1, dtype=torch.bool, device=bias.device)
    token[0, :] = True
    token[:, 0] = True
    bias = bias + token * virtual_distance.view(-1, 1, 1)
    bias = bias + attn_bias.unsqueeze(1).to(bias.dtype)
    keys = F.pad(padding, (1, 0), value=False)
    return bias.masked_fill(keys[:, None, None, :], float("-inf"))


class GraphNodeEmbedding(nn.Module):
    """Centrality-encoded node inputs with the graph token prepended: ``(B, N+1, D)`` (spec §3.2)."""

    def __init__(self, config: GraphormerConfig) -> None:
        super().__init__()
        d = config.hidden_dim
        self.atom = nn.Embedding(config.num_atoms + 1, d, padding_idx=0)
        self.in_degree = nn.Embedding(config.num_degree, d, padding_idx=0)
        self.out_degree = nn.Embedding(config.num_degree, d, padding_idx=0)
        self.graph_token = nn.Parameter(torch.zeros(1, d))

    def forward(self, batch: GraphBatch) -> torch.Tensor:
        """Σ_f AtomEmb(x_f) + InDegEmb(deg) + OutDegEmb(deg) per node (undirected: out-degree = in-degree)."""
        nodes = (
            self.atom(batch.x).sum(dim=-2)
            + self.in_degree(batch.in_degree)
            + self.out_degree(batch.in_degree)
        )
        token = self.graph_token.expand(nodes.shape[0], 1, -1)
        return torch.cat([token, nodes], dim=1)


class GraphAttentionBias(nn.Module):
    """Spatial, edge and graph-token attention biases ``(B, H, N+1, N+1)``, built once per forward (spec §3.2)."""

    def __init__(self, config: GraphormerConfig) -> None:
        super().__init__()
        h = config.num_heads
        self.max_hops = config.multi_hop_max_dist
        self.spatial = nn.Embedding(config.num_spatial, h, padding_idx=0)
        self.edge = nn.Embedding(config.num_edges + 1, h, padding_idx=0)
        self.virtual_distance = nn.Parameter(torch.zeros(h))
        self.hop_weights = (
            nn.Parameter(torch.zeros(config.num_edge_dis, h, h)) if config.edge_type == "multi_hop" else None
        )

    def edge_bias(self, batch: GraphBatch) -> torch.Tensor:
        """``(B, N, N, H)``: the multi-hop path encoding, or the mean embedding of the direct bond."""
        if self.hop_weights is None:
            return self.edge(batch.attn_edge_type).mean(dim=-2)
        hops = min(self.max_hops, batch.edge_input.shape[3])
        hop_embeddings = self.edge(batch.edge_input[:, :, :, :hops]).mean(dim=-2)
        return multi_hop_edge_bias(hop_embeddings, self.hop_weights[:hops], batch.spatial_pos, self.max_hops)

    def forward(self, batch: GraphBatch) -> torch.Tensor:
        """``(B, H, N+1, N+1)`` float: b(φ) + c on node pairs, t on the graph token's row and column, −inf keys."""
        node_bias = self.spatial(batch.spatial_pos) + self.edge_bias(batch)
        return assemble_attention_bias(
            node_bias, self.virtual_distance, batch.attn_bias, batch.x[..., 0] == 0
        )


class GraphormerLayer(nn.Module):
    """One encoder layer: biased multi-head self-attention and a GELU FFN, Post-LN or Pre-LN (spec §3.2)."""

    def __init__(self, config: GraphormerConfig) -> None:
        super().__init__()
        d = config.hidden_dim
        self.num_heads = config.num_heads
        self.head_dim = config.head_dim
        self.norm_first = config.norm_first
        self.dropout = config.dropout
        self.attention_dropout = config.attention_dropout
        self.activation_dropout = config.activation_dropout
        self.q_proj = nn.Linear(d, d)
        self.k_proj = nn.Linear(d, d)
        self.v_proj = nn.Linear(d, d)
        self.out_proj = nn.Linear(d, d)
        self.attention_norm = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, config.ffn_dim)
        self.fc2 = nn.Linear(config.ffn_dim, d)
        self.ffn_norm = nn.LayerNorm(d)

    def attention(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """softmax(QKᵀ/√d_head + bias) V, then the output projection; ``x`` ``(B, T, D)``, ``bias`` ``(B, H, T, T)``.

        Dropout acts on the attention probabilities, as the official layer.
        """
        b, t, d = x.shape

        def heads(y: torch.Tensor) -> torch.Tensor:  # (B, T, D) -> (B, H, T, D/H)
            return y.view(b, t, self.num_heads, self.head_dim).transpose(1, 2)

        out = F.scaled_dot_product_attention(
            heads(self.q_proj(x)),
            heads(self.k_proj(x)),
            heads(self.v_proj(x)),
            attn_mask=bias.to(x.dtype),
            dropout_p=self.attention_dropout if self.training else 0.0,
        )
        return self.out_proj(out.transpose(1, 2).reshape(b, t, d))

    def feed_forward(self, x: torch.Tensor) -> torch.Tensor:
        """fc2(Drop(GELU(fc1(x))))."""
        hidden = F.dropout(F.gelu(self.fc1(x)), self.activation_dropout, self.training)
        return self.fc2(hidden)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """``x`` ``(B, T, D)`` → ``(B, T, D)`` given the shared ``bias`` ``(B, H, T, T)``."""
        if self.norm_first:
            x = x + F.dropout(self.attention(self.attention_norm(x), bias), self.dropout, self.training)
            return x + F.dropout(self.feed_forward(self.ffn_norm(x)), self.dropout, self.training)
        x = self.attention_norm(x + F.dropout(self.attention(x, bias), self.dropout, self.training))
        return self.ffn_norm(x + F.dropout(self.feed_forward(x), self.dropout, self.training))


class Graphormer(nn.Module, Pretrained):
    """Graphormer for graph-level prediction: ``forward(batch)`` → ``(B, C)`` from the graph token (spec §3.2).

    Initialisation is the official ``init_graphormer_params``: every Linear and Embedding weight (and the graph
    token, the virtual distance and the hop matrices) N(0, 0.02), biases 0, padding rows 0, LayerNorms (1, 0).
    The input embeddings pass through a LayerNorm and dropout before the first layer in both LN modes
    (the official ``encoder_normalize_before``, True in every architecture).

    Differences from the official model, none of which changes an output:

    - no final LayerNorm in Pre-LN mode: the official encoder builds one but never applies it;
    - no ``masked_lm_pooler``: the official encoder builds this Linear(D, D) but never uses it (it holds the
      D² + D parameters by which the official base model's 48.3M count exceeds ours);
    - the head runs on the graph token only (the official runs it on every token and the loss keeps token 0);
    - the hop matrices are a ``(num_edge_dis, H, H)`` parameter rather than an Embedding of one column.
    """

    config_class = GraphormerConfig
    config_key = "model"

    def __init__(self, config: GraphormerConfig) -> None:
        super().__init__()
        self.config = config
        d = config.hidden_dim
        self.node_embedding = GraphNodeEmbedding(config)
        self.attention_bias = GraphAttentionBias(config)
        self.embedding_norm = nn.LayerNorm(d)
        self.layers = nn.ModuleList(GraphormerLayer(config) for _ in range(config.num_layers))
        self.head_transform = nn.Linear(d, d)
        self.head_norm = nn.LayerNorm(d)
        self.head_out = nn.Linear(d, config.num_classes, bias=False)
        self.head_bias = nn.Parameter(torch.zeros(1))
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """The official Graphormer initialisation (see the class docstring), from torch's global generator."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                module.weight.normal_(0.0, INIT_STD)
                if module.bias is not None:
                    module.bias.zero_()
            elif isinstance(module, nn.Embedding):
                module.weight.normal_(0.0, INIT_STD)
                if module.padding_idx is not None:
                    module.weight[module.padding_idx].zero_()
            elif isinstance(module, nn.LayerNorm):
                module.reset_parameters()
        self.node_embedding.graph_token.normal_(0.0, INIT_STD)
        self.attention_bias.virtual_distance.normal_(0.0, INIT_STD)
        if self.attention_bias.hop_weights is not None:
            self.attention_bias.hop_weights.normal_(0.0, INIT_STD)
        self.head_bias.zero_()

    def encode(self, batch: GraphBatch) -> torch.Tensor:
        """Final token states ``(B, N+1, D)`` (index 0: the graph token); the bias is built once for all layers."""
        check_graph_batch(batch, self.config)
        x = self.node_embedding(batch)
        bias = self.attention_bias(batch)
        x = F.dropout(self.embedding_norm(x), self.config.dropout, self.training)
        for layer in self.layers:
            x = layer(x, bias)
        return x

    def graph_representation(self, batch: GraphBatch) -> torch.Tensor:
        """The graph token's final state ``(B, D)``."""
        return self.encode(batch)[:, 0]

    def predict(self, representation: torch.Tensor) -> torch.Tensor:
        """The head: ``(B, D)`` graph representations → ``(B, C)`` predictions."""
        hidden = self.head_norm(F.gelu(self.head_transform(representation)))
        return self.head_out(hidden) + self.head_bias

    def forward(self, batch: GraphBatch) -> torch.Tensor:
        """``(B, C)`` float predictions (regression values or logits)."""
        return self.predict(self.graph_representation(batch))

    def num_parameters(self) -> int:
        """Number of scalar parameters."""
        return sum(p.numel() for p in self.parameters())
