"""``RPEAttention`` and ``URPEAttention``: drop-in replacements for ``torch.nn.MultiheadAttention(batch_first=True)``.

Both project queries, keys and values like ``nn.MultiheadAttention``, add a learnable relative-position bias B
before the softmax, and URPE multiplies the probabilities by a learnable Toeplitz matrix C after it (Luo et al.,
2022, Sec. 4). The tables can be passed in so that several layers share them, as in the paper.
"""

from __future__ import annotations

from functools import partial
from typing import Literal

import torch
from torch import nn

from urpe.attention import urpe_attention
from urpe.errors import ShapeError
from urpe.relative_position import Mode, RelativePositionTable


class RPEAttention(nn.Module):
    """Multi-head attention with a relative-position bias: ``softmax(QK^T/sqrt(d) + B) V``.

    Args:
        embed_dim: model width E; must be divisible by ``num_heads``.
        num_heads: H.
        dropout: dropout on the attention weights (training only).
        bias: add biases to the input and output projections.
        batch_first: inputs are ``(batch, L, E)`` when True (the default here), ``(L, batch, E)`` otherwise.
        mode, max_len, num_buckets, max_distance, bidirectional: see :class:`RelativePositionTable`.
        bias_table: a table to share with other layers; a new one is made when None.
        chunk_size: query rows per chunk in :func:`urpe_attention` (None: automatic).
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        dropout: float = 0.0,
        bias: bool = True,
        batch_first: bool = True,
        *,
        mode: Mode = "unique",
        max_len: int = 512,
        num_buckets: int = 32,
        max_distance: int = 128,
        bidirectional: bool = True,
        bias_table: RelativePositionTable | None = None,
        chunk_size: int | None = None,
    ) -> None:
        super().__init__()
        if embed_dim <= 0 or num_heads <= 0 or embed_dim % num_heads:
            raise ShapeError(
                f"embed_dim ({embed_dim}) must be a positive multiple of num_heads ({num_heads})"
            )
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.head_dim = embed_dim // num_heads
        self.dropout = dropout
        self.batch_first = batch_first
        self.chunk_size = chunk_size
        self.q_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.k_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.v_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        table = dict(
            mode=mode,
            max_len=max_len,
            num_buckets=num_buckets,
            max_distance=max_distance,
            bidirectional=bidirectional,
        )
        self.bias_table = (
            bias_table if bias_table is not None else RelativePositionTable(num_heads, init="normal", **table)
        )
        self._check_table(self.bias_table, "bias_table")
        self._table_kwargs = table

    def _check_table(self, table: RelativePositionTable, name: str) -> None:
        if table.num_heads != self.num_heads:
            raise ShapeError(f"{name} has {table.num_heads} heads, this attention has {self.num_heads}")

    def toeplitz(self, q_len: int, k_len: int) -> torch.Tensor | None:
        """The post-softmax matrix C as ``(heads, q_len, k_len)``; None (C = 1) for RPE."""
        return None

    def toeplitz_rows(self, q_len: int, k_len: int, start: int, stop: int) -> torch.Tensor | None:
        """Query rows ``start:stop`` of :meth:`toeplitz`."""
        return None

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        key_padding_mask: torch.Tensor | None = None,
        need_weights: bool = True,
        attn_mask: torch.Tensor | None = None,
        average_attn_weights: bool = True,
        is_causal: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Same arguments and returns as ``nn.MultiheadAttention.forward``.

        Args:
            query: ``(batch, L_q, E)``; key, value: ``(batch, L_k, E)`` (sequence-first when ``batch_first=False``).
            key_padding_mask: ``(batch, L_k)``, bool (True = padding) or float (added).
            attn_mask: ``(L_q, L_k)`` or ``(batch * heads, L_q, L_k)``, bool (True = not allowed) or float.
            need_weights: return the weights (for URPE, ``softmax(...) ⊙ C``: the matrix that multiplies V).
            is_causal: mask future keys (may be combined with ``attn_mask``).

        Returns:
            ``(output (batch, L_q, E), weights)``; weights are ``(batch, L_q, L_k)`` averaged over heads, or
            ``(batch, heads, L_q, L_k)`` when ``average_attn_weights=False``, or None.
        """
        if not self.batch_first:
            query, key, value = (t.transpose(0, 1) for t in (query, key, value))
        for name, t in (("query", query), ("key", key), ("value", value)):
            if t.dim() != 3 or t.shape[-1] != self.embed_dim:
                raise ShapeError(f"{name} must be (batch, length, {self.embed_dim}), got {tuple(t.shape)}")
        batch, q_len, _ = query.shape
        k_len = key.shape[1]
        if key.shape[:2] != value.shape[:2] or key.shape[0] != batch:
            raise ShapeError(
                f"key {tuple(key.shape)} and value {tuple(value.shape)} must share batch and length with query batch {batch}"
            )
        q = self._heads(self.q_proj(query))
        k = self._heads(self.k_proj(key))
        v = self._heads(self.v_proj(value))
        out, weights = urpe_attention(
            q, k, v,
            bias=partial(self.bias_table.rows, q_len, k_len),
            toeplitz=partial(self.toeplitz_rows, q_len, k_len),
            key_padding_mask=key_padding_mask,
            attn_mask=attn_mask,
            is_causal=is_causal,
            dropout_p=self.dropout if self.training else 0.0,
            chunk_size=self.chunk_size,
            need_weights=need_weights,
        )  # fmt: skip
        out = self.out_proj(out.transpose(1, 2).reshape(batch, q_len, self.embed_dim))
        if not self.batch_first:
            out = out.transpose(0, 1)
        if weights is not None and average_attn_weights:
            weights = weights.mean(dim=1)
        return out, weights

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, L, E)`` -> ``(batch, heads, L, head_dim)``."""
        return x.view(x.shape[0], x.shape[1], self.num_heads, self.head_dim).transpose(1, 2)


class URPEAttention(RPEAttention):
    """Universal RPE attention: ``(softmax(QK^T/sqrt(d) + B) ⊙ C) V`` with C a learnable Toeplitz matrix.

    C starts at all ones, so a fresh URPEAttention computes exactly what RPEAttention computes. Takes the
    arguments of :class:`RPEAttention` plus ``toeplitz_table`` (a table to share with other layers) and
    ``toeplitz_activation`` (``"none"``, the paper's setting, or ``"relu"`` to keep C non-negative).
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        dropout: float = 0.0,
        bias: bool = True,
        batch_first: bool = True,
        *,
        toeplitz_table: RelativePositionTable | None = None,
        toeplitz_activation: Literal["none", "relu"] = "none",
        **kwargs: object,
    ) -> None:
        super().__init__(embed_dim, num_heads, dropout, bias, batch_first, **kwargs)  # type: ignore[arg-type]
        if toeplitz_activation not in ("none", "relu"):
            raise ValueError(f"toeplitz_activation must be 'none' or 'relu', got {toeplitz_activation!r}")
        self.toeplitz_activation = toeplitz_activation
        self.toeplitz_table = (
            toeplitz_table
            if toeplitz_table is not None
            else RelativePositionTable(num_heads, init="ones", **self._table_kwargs)
        )
        self._check_table(self.toeplitz_table, "toeplitz_table")

    def toeplitz(self, q_len: int, k_len: int) -> torch.Tensor:
        return self.toeplitz_rows(q_len, k_len, 0, q_len)

    def toeplitz_rows(self, q_len: int, k_len: int, start: int, stop: int) -> torch.Tensor:
        c = self.toeplitz_table.rows(q_len, k_len, start, stop)
        return torch.relu(c) if self.toeplitz_activation == "relu" else c
