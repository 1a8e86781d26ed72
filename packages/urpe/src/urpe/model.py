"""A small Transformer whose position encoding is one switch: none, absolute, RPE or URPE.

The encoder follows the RoBERTa layout of the paper's synthetic experiments (post-LN layers, GELU feed-forward,
learned absolute positions only for ``position="absolute"``); ``causal=True`` makes it a decoder-only language
model. With ``share_tables=True`` (the paper's setting) one bias table B and one Toeplitz table C serve all layers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from papers_common import InputError, Pretrained
from urpe.modules import RPEAttention, URPEAttention
from urpe.relative_position import Mode, RelativePositionTable

Position = Literal["none", "absolute", "rpe", "urpe"]


@dataclass
class TransformerConfig:
    """Everything that determines a :class:`TransformerModel`; saved next to its weights."""

    vocab_size: int
    num_classes: int | None = None  # output classes; defaults to vocab_size (untied output layer)
    max_len: int = 128
    d_model: int = 128
    num_heads: int = 4
    num_layers: int = 3
    ffn_dim: int = 512
    dropout: float = 0.0
    attention_dropout: float = 0.0
    position: Position = "urpe"
    rel_mode: Mode = "unique"
    num_buckets: int = 32
    max_distance: int = 128
    causal: bool = False
    share_tables: bool = True
    norm_first: bool = False

    def __post_init__(self) -> None:
        if self.position not in ("none", "absolute", "rpe", "urpe"):
            raise InputError(f"position: expected none, absolute, rpe or urpe, got {self.position!r}")
        for name in ("vocab_size", "max_len", "d_model", "num_heads", "num_layers", "ffn_dim"):
            if getattr(self, name) < 1:
                raise InputError(f"{name} must be positive, got {getattr(self, name)}")
        for name in ("dropout", "attention_dropout"):
            if not 0.0 <= getattr(self, name) <= 1.0:  # also refuses NaN
                raise InputError(f"{name} must be a probability in [0, 1], got {getattr(self, name)}")
        if self.d_model % self.num_heads:
            raise InputError(f"d_model ({self.d_model}) must be divisible by num_heads ({self.num_heads})")

    @property
    def output_size(self) -> int:
        return self.num_classes or self.vocab_size


class TransformerLayer(nn.Module):
    """Attention and feed-forward sublayers with residual connections (post-LN unless ``norm_first``)."""

    def __init__(self, config: TransformerConfig, attention: nn.Module) -> None:
        super().__init__()
        self.attention = attention
        self.norm_first = config.norm_first
        self.ffn = nn.Sequential(
            nn.Linear(config.d_model, config.ffn_dim),
            nn.GELU(),
            nn.Dropout(config.dropout),
            nn.Linear(config.ffn_dim, config.d_model),
        )
        self.norm1 = nn.LayerNorm(config.d_model)
        self.norm2 = nn.LayerNorm(config.d_model)
        self.drop = nn.Dropout(config.dropout)

    def forward(
        self,
        x: torch.Tensor,
        padding_mask: torch.Tensor | None,
        causal_mask: torch.Tensor | None,
        need_weights: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x: ``(batch, L, d_model)`` -> same shape, and ``(batch, heads, L, L)`` weights when asked."""
        h = self.norm1(x) if self.norm_first else x
        attended, weights = self.attention(
            h,
            h,
            h,
            key_padding_mask=padding_mask,
            attn_mask=causal_mask,
            need_weights=need_weights,
            average_attn_weights=False,
        )
        x = x + self.drop(attended)
        if not self.norm_first:
            x = self.norm1(x)
        h = self.norm2(x) if self.norm_first else x
        x = x + self.drop(self.ffn(h))
        if not self.norm_first:
            x = self.norm2(x)
        return x, weights


class TransformerModel(nn.Module, Pretrained):
    """Token embeddings -> ``num_layers`` Transformer layers -> per-position logits.

    ``position="none"`` and ``"absolute"`` use ``torch.nn.MultiheadAttention``; ``"rpe"`` and ``"urpe"`` use
    :class:`RPEAttention` and :class:`URPEAttention` with the same call signature. ``save_pretrained(folder)``
    (from :class:`papers_common.Pretrained`) writes ``config.json`` (the :class:`TransformerConfig` fields) and
    ``model.safetensors`` (shared tables stored once); ``from_pretrained`` reads that folder, or a training
    checkpoint whose config holds the model's under ``"model"``.
    """

    config_class = TransformerConfig
    config_key = "model"

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.embed = nn.Embedding(c.vocab_size, c.d_model)
        self.positions = nn.Embedding(c.max_len, c.d_model) if c.position == "absolute" else None
        table = dict(
            mode=c.rel_mode,
            max_len=c.max_len,
            num_buckets=c.num_buckets,
            max_distance=c.max_distance,
            bidirectional=not c.causal,
        )
        shared_b = shared_c = None
        if c.share_tables and c.position in ("rpe", "urpe"):
            shared_b = RelativePositionTable(c.num_heads, init="normal", **table)
            shared_c = (
                RelativePositionTable(c.num_heads, init="ones", **table) if c.position == "urpe" else None
            )
        self.layers = nn.ModuleList(
            TransformerLayer(c, self._attention(table, shared_b, shared_c)) for _ in range(c.num_layers)
        )
        self.final_norm = nn.LayerNorm(c.d_model) if c.norm_first else nn.Identity()
        self.head = nn.Linear(c.d_model, c.output_size)
        self.apply(self._init_weights)
        if shared_c is not None:
            shared_c.reset_parameters()  # keep C = 1 after the generic init

    def _attention(
        self,
        table: dict[str, Any],
        shared_b: RelativePositionTable | None,
        shared_c: RelativePositionTable | None,
    ) -> nn.Module:
        c = self.config
        if c.position == "urpe":
            return URPEAttention(
                c.d_model,
                c.num_heads,
                c.attention_dropout,
                batch_first=True,
                bias_table=shared_b,
                toeplitz_table=shared_c,
                **table,
            )
        if c.position == "rpe":
            return RPEAttention(
                c.d_model, c.num_heads, c.attention_dropout, batch_first=True, bias_table=shared_b, **table
            )
        return nn.MultiheadAttention(c.d_model, c.num_heads, dropout=c.attention_dropout, batch_first=True)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        """BERT's initialisation: N(0, 0.02) weights, zero biases; tables keep their own init."""
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, RPEAttention) and module.in_proj_weight is not None:
            nn.init.normal_(module.in_proj_weight, std=0.02)
            if module.in_proj_bias is not None:
                nn.init.zeros_(module.in_proj_bias)

    def forward(self, tokens: torch.Tensor, padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        """tokens: ``(batch, L)`` long; padding_mask: ``(batch, L)`` bool, True at padding. Returns ``(batch, L, classes)``."""
        return self._run(tokens, padding_mask, need_weights=False)[0]

    def attention_maps(
        self, tokens: torch.Tensor, padding_mask: torch.Tensor | None = None
    ) -> list[torch.Tensor]:
        """The attention weights of every layer, each ``(batch, heads, L, L)`` (for URPE: ``softmax(...) ⊙ C``)."""
        return self._run(tokens, padding_mask, need_weights=True)[1]

    def _run(
        self, tokens: torch.Tensor, padding_mask: torch.Tensor | None, need_weights: bool
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        if tokens.dim() != 2 or tokens.dtype != torch.long:
            raise InputError(
                f"tokens must be a (batch, length) long tensor, got {tuple(tokens.shape)} {tokens.dtype}"
            )
        length = tokens.shape[1]
        if length > self.config.max_len and (self.positions is not None or self.config.rel_mode == "unique"):
            raise InputError(f"sequence length {length} exceeds the model's max_len={self.config.max_len}")
        x = self.embed(tokens)
        if self.positions is not None:
            x = x + self.positions(torch.arange(length, device=tokens.device))
        causal = (
            torch.ones(length, length, dtype=torch.bool, device=tokens.device).triu(1)
            if self.config.causal
            else None
        )
        maps = []
        for layer in self.layers:
            x, weights = layer(x, padding_mask, causal, need_weights)
            if weights is not None:
                maps.append(weights)
        return self.head(self.final_norm(x)), maps

    def num_parameters(self) -> int:
        """Trainable parameters, each shared tensor counted once."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)
