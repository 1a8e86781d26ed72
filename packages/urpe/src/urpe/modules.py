"""``RPEAttention`` and ``URPEAttention``: drop-in replacements for ``torch.nn.MultiheadAttention``.

Both take ``nn.MultiheadAttention``'s constructor arguments, parameter names (packed ``in_proj_weight`` and
``in_proj_bias``, or ``q/k/v_proj_weight`` when ``kdim``/``vdim`` differ, and ``out_proj``) and call signature,
add a learnable relative-position bias B before the softmax, and URPE multiplies the probabilities by a learnable
Toeplitz matrix C after it (Luo et al., 2022, Sec. 4). The tables can be passed in so that several layers share
them, as in the paper. :func:`replace_multihead_attention` turns the ``nn.MultiheadAttention`` modules of an
existing model (an ``nn.TransformerEncoder``, an ``nn.Transformer``, ...) into these, keeping their weights.
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar

import torch
import torch.nn.functional as F
from torch import nn

from urpe.attention import urpe_attention
from urpe.errors import ShapeError
from urpe.relative_position import Mode, RelativePositionTable
from urpe.toeplitz import Toeplitz

AttentionT = TypeVar("AttentionT", bound="RPEAttention")


class RPEAttention(nn.Module):
    """Multi-head attention with a relative-position bias: ``softmax(QK^T/sqrt(d) + B) V``.

    The first eleven arguments are those of ``torch.nn.MultiheadAttention``, in its order and with its defaults
    (so ``batch_first=False``: inputs are ``(L, batch, E)`` unless it is True); the rest are keyword-only.

    Args:
        embed_dim: model width E; must be divisible by ``num_heads``.
        num_heads: H.
        dropout: dropout on the attention weights (training only).
        bias: add biases to the input and output projections.
        add_bias_kv, add_zero_attn: accepted for the signature; only False is supported (the extra key they
            append has no position, so B and C are undefined for it).
        kdim, vdim: widths of keys and values (default E); when either differs from E the projections are
            ``q_proj_weight``, ``k_proj_weight``, ``v_proj_weight`` instead of the packed ``in_proj_weight``.
        batch_first: inputs are ``(batch, L, E)`` when True, ``(L, batch, E)`` otherwise (as in torch).
        device, dtype: where and how the parameters are made.
        mode, max_len, num_buckets, max_distance, bidirectional: see :class:`RelativePositionTable`.
        bias_table: a table to share with other layers; a new one is made when None.
        chunk_size: query rows per chunk in :func:`urpe_attention` (None: automatic).
        fused: evaluate the attention with the hand-written backward pass of :func:`urpe.toeplitz.toeplitz_attention`
            where it applies (the default; see :func:`urpe_attention`); False always uses the autograd reference.
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        dropout: float = 0.0,
        bias: bool = True,
        add_bias_kv: bool = False,
        add_zero_attn: bool = False,
        kdim: int | None = None,
        vdim: int | None = None,
        batch_first: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        *,
        mode: Mode = "unique",
        max_len: int = 512,
        num_buckets: int = 32,
        max_distance: int = 128,
        bidirectional: bool = True,
        bias_table: RelativePositionTable | None = None,
        chunk_size: int | None = None,
        fused: bool = True,
    ) -> None:
        super().__init__()
        if embed_dim <= 0 or num_heads <= 0 or embed_dim % num_heads:
            raise ShapeError(
                f"embed_dim ({embed_dim}) must be a positive multiple of num_heads ({num_heads})"
            )
        if add_bias_kv or add_zero_attn:
            raise ValueError(
                f"{type(self).__name__} supports add_bias_kv=False and add_zero_attn=False only: the key they "
                "append has no relative position, so B and C are undefined for it"
            )
        if not 0.0 <= dropout <= 1.0:  # also refuses NaN
            raise ValueError(f"dropout must be a probability in [0, 1], got {dropout}")
        factory: dict[str, Any] = {"device": device, "dtype": dtype}
        self.embed_dim = embed_dim
        self.kdim = embed_dim if kdim is None else kdim
        self.vdim = embed_dim if vdim is None else vdim
        self.num_heads = num_heads
        self.head_dim = embed_dim // num_heads
        self.dropout = dropout
        self.batch_first = batch_first
        self.add_zero_attn = False
        self.chunk_size = chunk_size
        self.fused = fused
        if self.kdim == embed_dim and self.vdim == embed_dim:
            self.in_proj_weight = nn.Parameter(torch.empty(3 * embed_dim, embed_dim, **factory))
            for name in ("q_proj_weight", "k_proj_weight", "v_proj_weight"):
                self.register_parameter(name, None)
        else:
            self.q_proj_weight = nn.Parameter(torch.empty(embed_dim, embed_dim, **factory))
            self.k_proj_weight = nn.Parameter(torch.empty(embed_dim, self.kdim, **factory))
            self.v_proj_weight = nn.Parameter(torch.empty(embed_dim, self.vdim, **factory))
            self.register_parameter("in_proj_weight", None)
        if bias:
            self.in_proj_bias = nn.Parameter(torch.empty(3 * embed_dim, **factory))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias, **factory)
        self.bias_k = self.bias_v = None
        table = dict(
            mode=mode,
            max_len=max_len,
            num_buckets=num_buckets,
            max_distance=max_distance,
            bidirectional=bidirectional,
        )
        self._reset_projections()
        self.bias_table = (
            bias_table
            if bias_table is not None
            else RelativePositionTable(num_heads, init="normal", **table).to(**factory)
        )
        self._check_table(self.bias_table, "bias_table")
        self._table_kwargs = table

    def _reset_projections(self) -> None:
        """``nn.MultiheadAttention``'s initialisation: Xavier-uniform projections, zero biases."""
        for weight in (self.in_proj_weight, self.q_proj_weight, self.k_proj_weight, self.v_proj_weight):
            if weight is not None:
                nn.init.xavier_uniform_(weight)
        if self.in_proj_bias is not None:
            nn.init.zeros_(self.in_proj_bias)
            nn.init.zeros_(self.out_proj.bias)

    @property
    def _qkv_same_embed_dim(self) -> bool:
        """Always False, whether or not the projections are packed (that is ``in_proj_weight is not None``).

        ``nn.TransformerEncoderLayer`` (in evaluation mode) and ``nn.TransformerEncoder`` (nested tensors) read
        this ``nn.MultiheadAttention`` attribute to decide whether to bypass the attention module and run torch's
        fused kernel on its weights, which computes plain softmax attention without B and C. False keeps them on
        the path that calls this module's ``forward``.
        """
        return False

    def _check_table(self, table: RelativePositionTable, name: str) -> None:
        if table.num_heads != self.num_heads:
            raise ShapeError(f"{name} has {table.num_heads} heads, this attention has {self.num_heads}")

    def toeplitz(self, q_len: int, k_len: int) -> torch.Tensor | None:
        """The post-softmax matrix C as ``(heads, q_len, k_len)``; None (C = 1) for RPE."""
        return None

    def toeplitz_rows(self, q_len: int, k_len: int, start: int, stop: int) -> torch.Tensor | None:
        """Query rows ``start:stop`` of :meth:`toeplitz`."""
        return None

    def toeplitz_diagonals(self, q_len: int, k_len: int) -> torch.Tensor | None:
        """The diagonals of :meth:`toeplitz`, ``(heads, q_len + k_len - 1)`` (see :class:`urpe.toeplitz.Toeplitz`)."""
        return None

    @classmethod
    def from_multihead_attention(
        cls: type[AttentionT], mha: nn.MultiheadAttention, **kwargs: Any
    ) -> AttentionT:
        """A module with ``mha``'s settings and a copy of its weights.

        From an ``nn.MultiheadAttention`` the new tables are neutral (B = 0, C = 1), so the module computes what
        ``mha`` computes until they are trained; from an RPE/URPE module its tables are copied too.

        Args:
            mha: the ``nn.MultiheadAttention`` (or :class:`RPEAttention`/:class:`URPEAttention`) to convert.
            **kwargs: keyword-only arguments of the class (``max_len``, ``mode``, shared ``bias_table``, ...); a
                table given here is used as it is.
        """
        if not isinstance(mha, (nn.MultiheadAttention, RPEAttention)):
            raise TypeError(f"expected an nn.MultiheadAttention, got {type(mha).__name__}")
        weight = mha.in_proj_weight if mha.in_proj_weight is not None else mha.q_proj_weight
        module = cls(
            mha.embed_dim,
            mha.num_heads,
            mha.dropout,
            mha.in_proj_bias is not None,
            mha.bias_k is not None,
            mha.add_zero_attn,
            mha.kdim,
            mha.vdim,
            mha.batch_first,
            weight.device,
            weight.dtype,
            **kwargs,
        )
        module.load_state_dict(mha.state_dict(), strict=False)
        if isinstance(mha, nn.MultiheadAttention) and "bias_table" not in kwargs:
            with torch.no_grad():
                module.bias_table.weight.zero_()
        return module

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        # urpe 0.1.0 stored separate q_proj/k_proj/v_proj linear layers; pack them as nn.MultiheadAttention does
        old = [f"{prefix}{name}_proj.weight" for name in "qkv"]
        if self.in_proj_weight is not None and all(key in state_dict for key in old):
            state_dict[f"{prefix}in_proj_weight"] = torch.cat([state_dict.pop(key) for key in old])
            biases = [f"{prefix}{name}_proj.bias" for name in "qkv"]
            if all(key in state_dict for key in biases):
                state_dict[f"{prefix}in_proj_bias"] = torch.cat([state_dict.pop(key) for key in biases])
        super()._load_from_state_dict(state_dict, prefix, *args)

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
            query: ``(L_q, batch, E)`` (``(batch, L_q, E)`` when ``batch_first``) or unbatched ``(L_q, E)``.
            key, value: ``(L_k, batch, kdim)`` and ``(L_k, batch, vdim)`` in the same layout, or ``(L_k, kdim)``
                and ``(L_k, vdim)`` unbatched.
            key_padding_mask: ``(batch, L_k)`` (``(L_k,)`` unbatched), bool (True = padding) or float (added).
            attn_mask: ``(L_q, L_k)`` or ``(batch * heads, L_q, L_k)`` (``(heads, L_q, L_k)`` unbatched), bool
                (True = not allowed) or float.
            need_weights: return the weights (for URPE, ``softmax(...) ⊙ C``: the matrix that multiplies V).
            is_causal: mask future keys (may be combined with ``attn_mask``).

        Returns:
            ``(output, weights)``: output has the layout of ``query``; weights are ``(batch, L_q, L_k)`` averaged
            over heads, or ``(batch, heads, L_q, L_k)`` when ``average_attn_weights=False`` (without the batch
            axis for unbatched input), or None.
        """
        if query.is_nested or key.is_nested or value.is_nested:
            raise ShapeError(
                f"{type(self).__name__} does not take nested tensors: an nn.TransformerEncoder built around "
                "nn.MultiheadAttention makes them in evaluation mode; convert it with "
                "urpe.replace_multihead_attention, which turns them off, or build it with enable_nested_tensor=False"
            )
        if not query.dim() == key.dim() == value.dim():
            raise ShapeError(
                "query, key and value must be all batched (3-D) or all unbatched (2-D), got "
                f"{tuple(query.shape)}, {tuple(key.shape)} and {tuple(value.shape)}"
            )
        unbatched = query.dim() == 2
        self_attention = query is key and key is value
        if unbatched:
            query, key, value = (t.unsqueeze(0) for t in (query, key, value))
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask.unsqueeze(0)
        elif not self.batch_first:
            query, key, value = (t.transpose(0, 1) for t in (query, key, value))
        layout = (
            "(length, E)" if unbatched else "(batch, length, E)" if self.batch_first else "(length, batch, E)"
        )
        for name, t, width in (
            ("query", query, self.embed_dim),
            ("key", key, self.kdim),
            ("value", value, self.vdim),
        ):
            if t.dim() != 3 or t.shape[-1] != width:
                shape = tuple(t.shape[1:]) if unbatched else tuple(t.shape)
                raise ShapeError(f"{name} must be {layout} with E = {width}, got {shape}")
        batch, q_len, _ = query.shape
        k_len = key.shape[1]
        if key.shape[:2] != value.shape[:2] or key.shape[0] != batch:
            raise ShapeError(
                f"key {tuple(key.shape)} and value {tuple(value.shape)} must share batch and length with query batch {batch}"
            )
        q, k, v = (self._heads(t) for t in self._project(query, key, value, self_attention))
        toeplitz = self.toeplitz_diagonals(q_len, k_len)
        out, weights = urpe_attention(
            q, k, v,
            bias=Toeplitz(self.bias_table.diagonals(q_len, k_len), q_len),
            toeplitz=None if toeplitz is None else Toeplitz(toeplitz, q_len),
            key_padding_mask=key_padding_mask,
            attn_mask=attn_mask,
            is_causal=is_causal,
            dropout_p=self.dropout if self.training else 0.0,
            chunk_size=self.chunk_size,
            need_weights=need_weights,
            fused=self.fused,
        )  # fmt: skip
        out = self.out_proj(out.transpose(1, 2).reshape(batch, q_len, self.embed_dim))
        if weights is not None and average_attn_weights:
            weights = weights.mean(dim=1)
        if unbatched:
            return out.squeeze(0), None if weights is None else weights.squeeze(0)
        return (out if self.batch_first else out.transpose(0, 1)), weights

    def _project(
        self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, self_attention: bool
    ) -> tuple[torch.Tensor, ...]:
        """The input projections ``(batch, L, E)`` of query, key and value (one matmul for self-attention)."""
        if self.in_proj_weight is not None and self_attention:
            return F.linear(query, self.in_proj_weight, self.in_proj_bias).chunk(3, dim=-1)
        if self.in_proj_weight is not None:
            weights = self.in_proj_weight.chunk(3)
        else:
            weights = (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight)
        biases = self.in_proj_bias.chunk(3) if self.in_proj_bias is not None else (None, None, None)
        return tuple(F.linear(x, w, b) for x, w, b in zip((query, key, value), weights, biases, strict=True))

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, L, E)`` -> ``(batch, heads, L, head_dim)``."""
        return x.reshape(x.shape[0], x.shape[1], self.num_heads, self.head_dim).transpose(1, 2)


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
        add_bias_kv: bool = False,
        add_zero_attn: bool = False,
        kdim: int | None = None,
        vdim: int | None = None,
        batch_first: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        *,
        toeplitz_table: RelativePositionTable | None = None,
        toeplitz_activation: Literal["none", "relu"] = "none",
        **kwargs: Any,
    ) -> None:
        super().__init__(
            embed_dim,
            num_heads,
            dropout,
            bias,
            add_bias_kv,
            add_zero_attn,
            kdim,
            vdim,
            batch_first,
            device,
            dtype,
            **kwargs,
        )
        if toeplitz_activation not in ("none", "relu"):
            raise ValueError(f"toeplitz_activation must be 'none' or 'relu', got {toeplitz_activation!r}")
        self.toeplitz_activation = toeplitz_activation
        self.toeplitz_table = (
            toeplitz_table
            if toeplitz_table is not None
            else RelativePositionTable(self.num_heads, init="ones", **self._table_kwargs).to(
                self.out_proj.weight.device, self.out_proj.weight.dtype
            )
        )
        self._check_table(self.toeplitz_table, "toeplitz_table")

    def toeplitz(self, q_len: int, k_len: int) -> torch.Tensor:
        return self.toeplitz_rows(q_len, k_len, 0, q_len)

    def toeplitz_rows(self, q_len: int, k_len: int, start: int, stop: int) -> torch.Tensor:
        c = self.toeplitz_table.rows(q_len, k_len, start, stop)
        return torch.relu(c) if self.toeplitz_activation == "relu" else c

    def toeplitz_diagonals(self, q_len: int, k_len: int) -> torch.Tensor:
        c = self.toeplitz_table.diagonals(q_len, k_len)
        return torch.relu(c) if self.toeplitz_activation == "relu" else c


def replace_multihead_attention(
    model: nn.Module, attention: type[RPEAttention] = URPEAttention, **kwargs: Any
) -> nn.Module:
    """Replace every ``nn.MultiheadAttention`` in ``model`` by ``attention.from_multihead_attention`` (in place).

    Works on any module tree: an ``nn.TransformerEncoder``/``Decoder``, their layers, an ``nn.Transformer`` or a
    model holding them. Each replacement keeps the original weights and starts with B = 0, C = 1, so the model
    computes what it computed before until trained. ``nn.TransformerEncoder``'s nested-tensor shortcut (which
    would bypass the attention module) is turned off.

    Args:
        model: the model; an ``nn.MultiheadAttention`` itself is converted and returned.
        attention: :class:`URPEAttention` (default) or :class:`RPEAttention`.
        **kwargs: keyword-only arguments of ``attention`` for every replacement, e.g. ``max_len``, ``mode``, or
            ``bias_table`` / ``toeplitz_table`` to share one pair of tables among all of them (the paper's setting).

    Returns:
        ``model`` (or the new module when ``model`` was an ``nn.MultiheadAttention``).
    """
    if isinstance(model, nn.MultiheadAttention):
        return attention.from_multihead_attention(model, **kwargs)
    targets = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.MultiheadAttention)]
    for name, mha in targets:
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name), child, attention.from_multihead_attention(mha, **kwargs))
    for m in model.modules():
        if isinstance(m, nn.TransformerEncoder):
            m.use_nested_tensor = False
    return model
