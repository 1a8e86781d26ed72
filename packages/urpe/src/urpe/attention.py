"""The attention of RPE and URPE as a pure function of tensors (Luo et al., 2022, Eq. 3 and Sec. 4).

    RPE:  Attn(Q, K, V) = softmax(Q K^T / sqrt(d) + B) V
    URPE: Attn(Q, K, V) = (softmax(Q K^T / sqrt(d) + B) ⊙ C) V

``B`` is added before the softmax and ``C`` multiplies the probabilities after it, so the rows of ``A ⊙ C`` need
not sum to one: this is what makes URPE Transformers universal approximators where RPE ones are not. Masked keys
get ``B = -inf`` and ``C = 0``; a row whose keys are all masked outputs zeros (never NaN). Dropout acts on the
final weights ``A ⊙ C``, as in the official implementation.

Tables given as :class:`~urpe.toeplitz.Toeplitz` diagonals (what the modules pass) take the fused path of
:func:`urpe.toeplitz.toeplitz_attention` by default: the same values and gradients, with a hand-written backward
pass that keeps only the softmax probabilities. The autograd evaluation here is the reference; it is used for
dropout, for differentiable float masks, when the weights are returned, in query chunks, and with ``fused=False``.

Long sequences are processed in query chunks so that the ``(batch, heads, L, L)`` weights never exist at once;
under autograd each chunk is recomputed in the backward pass (activation checkpointing), so training memory is
also bounded by one chunk.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from urpe.errors import ShapeError
from urpe.toeplitz import Toeplitz, toeplitz_attention

# Above this many attention-weight elements (batch * heads * L_q * L_k; 512 MiB per float32 tensor, of which
# autograd keeps a few) the chunked path is used by default.
CHUNK_ELEMENTS = 1 << 27


def combine_masks(
    batch: int,
    heads: int,
    q_len: int,
    k_len: int,
    *,
    key_padding_mask: torch.Tensor | None = None,
    attn_mask: torch.Tensor | None = None,
    is_causal: bool = False,
    device: torch.device | None = None,
    dtype: torch.dtype = torch.float32,
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Turn ``torch.nn.MultiheadAttention``-style masks into one boolean mask and one additive bias.

    Args:
        key_padding_mask: ``(batch, k_len)``; bool (True = ignore the key) or float (added to the scores).
        attn_mask: ``(q_len, k_len)``, ``(batch * heads, q_len, k_len)`` or ``(batch, heads, q_len, k_len)``;
            bool (True = not allowed) or float (added to the scores; ``-inf`` entries count as masked).
        is_causal: mask keys after the query (``j > i``).

    Returns:
        ``(masked, additive)``: a boolean tensor broadcastable to ``(batch, heads, q_len, k_len)`` (True where
        the weight must be zero) and a float tensor of the same broadcastable shape to add to the scores; either
        is ``None`` when absent.
    """
    masked: torch.Tensor | None = None
    additive: torch.Tensor | None = None

    def merge(mask: torch.Tensor, name: str) -> None:
        nonlocal masked, additive
        if mask.dtype == torch.bool:
            masked = mask if masked is None else masked | mask
        elif mask.is_floating_point():
            mask = mask.to(dtype)
            additive = mask if additive is None else additive + mask
            infinite = torch.isneginf(mask)
            masked = infinite if masked is None else masked | infinite
        else:
            raise ShapeError(f"{name} must be bool or floating point, got {mask.dtype}")

    if key_padding_mask is not None:
        if key_padding_mask.shape != (batch, k_len):
            raise ShapeError(
                f"key_padding_mask must have shape (batch, key_len) = {(batch, k_len)}, got {tuple(key_padding_mask.shape)}"
            )
        merge(key_padding_mask[:, None, None, :], "key_padding_mask")
    if attn_mask is not None:
        if attn_mask.dim() == 2 and attn_mask.shape == (q_len, k_len):
            mask = attn_mask
        elif attn_mask.dim() == 3 and attn_mask.shape == (batch * heads, q_len, k_len):
            mask = attn_mask.view(batch, heads, q_len, k_len)
        elif attn_mask.dim() == 4 and attn_mask.shape == (batch, heads, q_len, k_len):
            mask = attn_mask
        else:
            raise ShapeError(
                f"attn_mask must have shape {(q_len, k_len)}, {(batch * heads, q_len, k_len)} or {(batch, heads, q_len, k_len)}, "
                f"got {tuple(attn_mask.shape)}"
            )
        merge(mask, "attn_mask")
    if is_causal:
        future = torch.ones(q_len, k_len, dtype=torch.bool, device=device).triu(1)
        masked = future if masked is None else masked | future
    return masked, additive


Rows = Callable[[int, int], torch.Tensor]
"""A table given by query rows: ``rows(start, stop)`` returns rows ``start:stop``, broadcastable to
``(batch, heads, stop - start, L_k)``. Lets the chunked path build only the rows it needs."""

Table = torch.Tensor | Rows | Toeplitz


def _rows(t: Table | None, start: int, stop: int) -> torch.Tensor | None:
    """Query rows ``start:stop`` of a mask or table broadcastable to ``(..., L_q, L_k)`` (size-1 rows stay)."""
    if t is None:
        return None
    if isinstance(t, Toeplitz):
        return t.rows(start, stop)
    if not isinstance(t, torch.Tensor):
        return t(start, stop)
    return t if t.shape[-2] == 1 else t[..., start:stop, :]


def _weights(
    q: torch.Tensor,
    k: torch.Tensor,
    bias: torch.Tensor | None,
    additive: torch.Tensor | None,
    toeplitz: torch.Tensor | None,
    masked: torch.Tensor | None,
    scale: float,
) -> torch.Tensor:
    """``softmax(q k^T * scale + bias + additive)`` with masked entries zeroed, times ``toeplitz``: ``(..., L_q, L_k)``."""
    scores = torch.matmul(
        q * scale, k.transpose(-2, -1)
    )  # scaling q is L_k / d times cheaper than scaling scores
    if bias is not None:
        scores = scores + bias
    if additive is not None:
        scores = scores + additive
    if masked is not None:
        scores = scores.masked_fill(masked, float("-inf"))
    probs = torch.softmax(scores, dim=-1)
    if masked is not None:
        probs = probs.masked_fill(masked, 0.0)  # C = 0 on masked keys; fully masked rows become 0, not NaN
    if toeplitz is not None:
        probs = probs * toeplitz
    return probs


def _block(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    start: int,
    stop: int,
    bias: Table | None,
    additive: torch.Tensor | None,
    toeplitz: Table | None,
    masked: torch.Tensor | None,
    scale: float,
    dropout_p: float,
) -> torch.Tensor:
    """Output rows ``start:stop``; ``q`` holds only those rows, the tables and masks hold all of them."""
    weights = _weights(
        q,
        k,
        _rows(bias, start, stop),
        _rows(additive, start, stop),
        _rows(toeplitz, start, stop),
        _rows(masked, start, stop),
        scale,
    )
    if dropout_p > 0:
        weights = F.dropout(weights, p=dropout_p)
    return torch.matmul(weights, v)


def urpe_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    bias: Table | None = None,
    toeplitz: Table | None = None,
    key_padding_mask: torch.Tensor | None = None,
    attn_mask: torch.Tensor | None = None,
    is_causal: bool = False,
    dropout_p: float = 0.0,
    scale: float | None = None,
    chunk_size: int | None = None,
    need_weights: bool = False,
    fused: bool = True,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(softmax(q k^T / sqrt(d) + B) ⊙ C) v`` over heads.

    Args:
        q: ``(batch, heads, L_q, d)``; k: ``(batch, heads, L_k, d)``; v: ``(batch, heads, L_k, d_v)``.
        bias: B, broadcastable to ``(batch, heads, L_q, L_k)`` (usually ``(heads, L_q, L_k)``), a function
            ``rows(start, stop)`` giving its query rows (see :data:`Rows`), or a :class:`~urpe.toeplitz.Toeplitz`
            table given by its ``(heads, L_q + L_k - 1)`` diagonals; None for no bias.
        toeplitz: C, given the same ways; None means C = 1 (plain RPE).
        key_padding_mask, attn_mask, is_causal: see :func:`combine_masks`.
        dropout_p: dropout on the weights ``A ⊙ C`` (pass 0 in evaluation).
        scale: defaults to ``1 / sqrt(d)``.
        chunk_size: query rows per chunk; None picks full computation unless the weights would exceed
            ``CHUNK_ELEMENTS`` elements. Results are identical either way. Each chunk is recomputed in the
            backward pass, and tables given as functions are built one chunk at a time, so memory holds one
            chunk of weights instead of all of them.
        need_weights: also return the ``(batch, heads, L_q, L_k)`` weights ``A ⊙ C`` (forces full computation).
        fused: use :func:`urpe.toeplitz.toeplitz_attention` where it applies: both tables None or
            :class:`~urpe.toeplitz.Toeplitz`, no dropout, no weights returned, no query chunks, no float mask that
            requires a gradient. False always takes the autograd reference path.

    Returns:
        ``(out, weights)``: out is ``(batch, heads, L_q, d_v)``; weights is None unless requested.
    """
    if q.dim() != 4 or k.dim() != 4 or v.dim() != 4:
        raise ShapeError(
            f"q, k, v must be 4-D (batch, heads, length, dim), got {q.dim()}-D, {k.dim()}-D, {v.dim()}-D"
        )
    batch, heads, q_len, dim = q.shape
    k_len = k.shape[-2]
    if k.shape[:2] != (batch, heads) or v.shape[:3] != (batch, heads, k_len) or k.shape[-1] != dim:
        raise ShapeError(f"incompatible shapes q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}")
    scale = 1.0 / math.sqrt(dim) if scale is None else scale
    for name, table in (("bias", bias), ("toeplitz", toeplitz)):
        if isinstance(table, Toeplitz) and (table.diagonals.shape[0], table.q_len, table.k_len) != (
            heads,
            q_len,
            k_len,
        ):
            raise ShapeError(
                f"{name} must be a Toeplitz table for {heads} heads, {q_len} queries and {k_len} keys, got "
                f"{table.diagonals.shape[0]}, {table.q_len} and {table.k_len}"
            )
    masked, additive = combine_masks(
        batch, heads, q_len, k_len,
        key_padding_mask=key_padding_mask, attn_mask=attn_mask, is_causal=is_causal, device=q.device, dtype=q.dtype,
    )  # fmt: skip
    if additive is not None and masked is not None:
        additive = torch.where(masked, 0.0, additive)  # -inf entries are handled by `masked`

    if need_weights:
        weights = _weights(
            q, k, _rows(bias, 0, q_len), additive, _rows(toeplitz, 0, q_len), masked, scale
        )  # fmt: skip
        dropped = F.dropout(weights, p=dropout_p) if dropout_p > 0 else weights
        return torch.matmul(dropped, v), weights

    if chunk_size is None:
        elements = batch * heads * q_len * k_len
        chunk_size = (
            q_len if elements <= CHUNK_ELEMENTS else max(1, CHUNK_ELEMENTS // (batch * heads * k_len))
        )
    if (
        fused
        and chunk_size >= q_len
        and dropout_p == 0
        and all(t is None or isinstance(t, Toeplitz) for t in (bias, toeplitz))
        and not (additive is not None and additive.requires_grad)
    ):
        diagonals = [t.diagonals if isinstance(t, Toeplitz) else None for t in (bias, toeplitz)]
        return toeplitz_attention(q, k, v, *diagonals, additive=additive, masked=masked, scale=scale), None
    if chunk_size >= q_len:
        return _block(q, k, v, 0, q_len, bias, additive, toeplitz, masked, scale, dropout_p), None

    outs = []
    for start in range(0, q_len, chunk_size):
        stop = min(start + chunk_size, q_len)
        args = (q[..., start:stop, :], k, v, start, stop, bias, additive, toeplitz, masked, scale, dropout_p)
        outs.append(
            checkpoint(_block, *args, use_reentrant=False) if torch.is_grad_enabled() else _block(*args)
        )
    return torch.cat(outs, dim=-2), None
