"""RPE/URPE attention with Toeplitz tables given by their diagonals, and a hand-written backward pass.

A per-head Toeplitz table ``T[h, i, j] = t_h(j - i)`` over ``L_q`` queries and ``L_k`` keys is fully described by its
``L_q + L_k - 1`` diagonals (:class:`Toeplitz`). The bias ``B`` and the post-softmax matrix ``C`` of URPE (Luo et al.,
2022, Eq. 3 and Sec. 4) are such tables, so the attention

    S = Q K^T / sqrt(d) + B + M,   P = softmax(S),   W = P ⊙ C,   O = W V

(``M``: masks; masked keys get ``P = 0``) needs only the diagonals. :func:`toeplitz_attention` computes ``S`` with
one matrix product and turns it into ``P`` in place one cache-sized block of query rows at a time (forming each
block of ``W`` and its product with ``V`` there), keeps only ``P`` for the backward pass, and computes the
gradients by hand:

    dW = dO V^T,   dV = W^T dO,   dC = Σ_batch dW ⊙ P,   dP = dW ⊙ C,
    dS = P ⊙ (dP - rowsum(dP ⊙ P)),   dB = Σ_batch dS,   dQ = dS K / sqrt(d),   dK = dS^T Q / sqrt(d),

where ``dB`` and ``dC`` are summed along each diagonal to give the gradients of the diagonals. ``dW`` is one
matrix product and becomes ``dP`` and then ``dS`` in place, block by block; ``W``, ``C``, ``dC`` and ``dB`` exist
one block of rows at a time. Autograd would instead keep ``P``, ``W`` and the expanded tables, allocate each
``(batch, heads, L_q, L_k)`` gradient anew and scatter the table gradients back through an index. At most two
``(batch, heads, L_q, L_k)`` tensors are alive at once (``P`` and ``dW``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch.autograd.function import FunctionCtx, once_differentiable

# Elements of (batch, heads, rows, L_k) per block of query rows: small enough to stay in cache, large enough for
# efficient matrix products.
BLOCK_ELEMENTS = 1 << 21


@dataclass(frozen=True)
class Toeplitz:
    """A per-head Toeplitz table ``T[h, i, j] = diagonals[h, j - i + q_len - 1]`` of shape ``(heads, q_len, k_len)``.

    Attributes:
        diagonals: ``(heads, q_len + k_len - 1)``; entry ``n`` is the value at offset ``j - i = n - (q_len - 1)``.
        q_len: number of query rows ``L_q``.
    """

    diagonals: torch.Tensor
    q_len: int

    @property
    def k_len(self) -> int:
        return self.diagonals.shape[-1] - self.q_len + 1

    def rows(self, start: int, stop: int) -> torch.Tensor:
        """Query rows ``start:stop`` as a ``(heads, stop - start, k_len)`` tensor (differentiable gather)."""
        i = torch.arange(start, stop, device=self.diagonals.device)
        j = torch.arange(self.k_len, device=self.diagonals.device)
        return self.diagonals[:, j[None, :] - i[:, None] + (self.q_len - 1)]


def toeplitz_rows(diagonals: torch.Tensor, q_len: int, start: int, stop: int) -> torch.Tensor:
    """Rows ``start:stop`` of the Toeplitz table of ``diagonals`` (see :class:`Toeplitz`), built without an index.

    Row ``i`` is the window ``diagonals[:, q_len - 1 - i : q_len - 1 - i + k_len]``; consecutive windows of a
    vector are a strided view (``unfold``), read in reverse row order (``flip`` copies it).

    Args:
        diagonals: ``(heads, q_len + k_len - 1)``.

    Returns:
        ``(heads, stop - start, k_len)``, contiguous.
    """
    k_len = diagonals.shape[-1] - q_len + 1
    windows = diagonals.unfold(-1, k_len, 1)  # (heads, q_len, k_len): windows[h, a] = row q_len - 1 - a
    return windows[:, q_len - stop : q_len - start].flip(-2)


class _DiagonalSums:
    """Adds the diagonal sums of blocks of rows of a ``(heads, q_len, k_len)`` table into its diagonals' gradient.

    A block of ``r`` rows is written into a zeroed buffer with row stride ``r + k_len - 2`` instead of ``k_len``,
    so that entry ``(i, j)`` lands in column ``(j - i) mod (r + k_len - 1)`` of the buffer read with row length
    ``r + k_len - 1``: every diagonal becomes a column, and one column sum replaces a scatter-add.
    """

    def __init__(self, like: torch.Tensor, heads: int, q_len: int, k_len: int) -> None:
        self.grad = like.new_zeros(heads, q_len + k_len - 1)
        self.q_len, self.k_len = q_len, k_len
        self._buffers: dict[int, torch.Tensor] = {}

    def target(self, rows: int) -> torch.Tensor:
        """A ``(heads, rows, k_len)`` strided view to write the block into before :meth:`add`."""
        width = rows + self.k_len - 1
        if rows not in self._buffers:
            self._buffers[rows] = self.grad.new_zeros(self.grad.shape[0], rows * width)
        buffer = self._buffers[rows]
        return buffer.as_strided((buffer.shape[0], rows, self.k_len), (rows * width, width - 1, 1))

    def add(self, rows: int, start: int) -> None:
        """Add the diagonal sums of the block of rows ``start:start + rows`` just written into :meth:`target`."""
        width = rows + self.k_len - 1
        sums = (
            self._buffers[rows].view(-1, rows, width).sum(1)
        )  # column c: offset c (c < k_len), c - width else
        first = self.q_len - 1 - start  # index of offset 0 of row `start`
        self.grad[:, first : first + self.k_len] += sums[:, : self.k_len]
        self.grad[:, first - rows + 1 : first] += sums[:, self.k_len :]


def _row_blocks(batch: int, heads: int, q_len: int, k_len: int) -> list[slice]:
    """Blocks of query rows with about ``BLOCK_ELEMENTS`` elements of ``(batch, heads, rows, L_k)`` each."""
    rows = max(1, min(q_len, BLOCK_ELEMENTS // max(1, batch * heads * k_len)))
    return [slice(start, min(start + rows, q_len)) for start in range(0, q_len, rows)]


def _row_slice(t: torch.Tensor | None, rows: slice) -> torch.Tensor | None:
    """Rows ``rows`` of a mask broadcastable to ``(..., L_q, L_k)`` (size-1 row axes stay)."""
    if t is None:
        return None
    return t if t.shape[-2] == 1 else t[..., rows, :]


def _flat(t: torch.Tensor) -> torch.Tensor:
    """``(batch, heads, m, n)`` -> ``(batch * heads, m, n)`` for the batched matrix products ``baddbmm``."""
    return t.reshape(-1, *t.shape[-2:])


class _ToeplitzAttention(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: FunctionCtx,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        bias: torch.Tensor | None,
        toeplitz: torch.Tensor | None,
        additive: torch.Tensor | None,
        masked: torch.Tensor | None,
        scale: float,
    ) -> torch.Tensor:
        batch, heads, q_len, _ = q.shape
        k_len = k.shape[-2]
        # the scores become the probabilities in place, one cache-sized block of rows at a time, and each block
        # of W = P ⊙ C multiplies V while it is in cache
        probs = torch.matmul(q * scale, k.transpose(-2, -1))  # scaling q is L_k / d times cheaper
        outs = []
        for rows in _row_blocks(batch, heads, q_len, k_len):
            scores = probs[:, :, rows]
            if bias is not None:
                scores += toeplitz_rows(bias, q_len, rows.start, rows.stop)
            if additive is not None:
                scores += _row_slice(additive, rows)
            block_mask = _row_slice(masked, rows)
            if block_mask is not None:
                scores.masked_fill_(block_mask, float("-inf"))
            p = torch.softmax(scores, dim=-1)
            if block_mask is not None:
                p.masked_fill_(block_mask, 0.0)  # C = 0 on masked keys; fully masked rows become 0, not NaN
            scores.copy_(p)
            if toeplitz is not None:
                outs.append(torch.matmul(p.mul_(toeplitz_rows(toeplitz, q_len, rows.start, rows.stop)), v))
        ctx.save_for_backward(q, k, v, probs, toeplitz)
        ctx.scale = scale
        ctx.has_bias = bias is not None
        return torch.cat(outs, dim=-2) if toeplitz is not None else torch.matmul(probs, v)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        q, k, v, probs, toeplitz = ctx.saved_tensors
        batch, heads, q_len, _ = q.shape
        k_len = k.shape[-2]
        need_q, need_k, need_v, need_b, need_c = ctx.needs_input_grad[:5]
        grad_b = _DiagonalSums(q, heads, q_len, k_len) if need_b and ctx.has_bias else None
        grad_c = _DiagonalSums(q, heads, q_len, k_len) if need_c and toeplitz is not None else None
        if toeplitz is None:
            grad_v = torch.matmul(probs.transpose(-2, -1), grad_out) if need_v else None
        else:
            grad_v = v.new_zeros(batch * heads, k_len, v.shape[-1]) if need_v else None
        # dW becomes dP and then dS in place, one cache-sized block of rows at a time
        grad_scores = torch.matmul(grad_out, v.transpose(-2, -1))
        for rows in _row_blocks(batch, heads, q_len, k_len):
            size = rows.stop - rows.start
            d_weights, p = grad_scores[:, :, rows], probs[:, :, rows]
            if toeplitz is not None:
                c = toeplitz_rows(toeplitz, q_len, rows.start, rows.stop)
                if grad_v is not None:
                    grad_v.baddbmm_(_flat(p * c).transpose(-2, -1), _flat(grad_out[:, :, rows]))  # W^T dO
                if grad_c is not None:  # Σ_batch dW ⊙ P, accumulated without a (batch, ...) temporary
                    target = torch.mul(d_weights[0], p[0], out=grad_c.target(size))
                    for element in range(1, batch):
                        target.addcmul_(d_weights[element], p[element])
                    grad_c.add(size, rows.start)
                d_weights *= c  # dP
            d_scores = torch._softmax_backward_data(d_weights, p, -1, p.dtype)  # P ⊙ (dP - rowsum(dP ⊙ P))
            if grad_b is not None:
                torch.sum(d_scores, dim=0, out=grad_b.target(size))
                grad_b.add(size, rows.start)
            d_weights.copy_(d_scores)
        scale = ctx.scale
        grad_q = torch.matmul(grad_scores, k).mul_(scale) if need_q else None
        grad_k = torch.matmul(grad_scores.transpose(-2, -1), q).mul_(scale) if need_k else None
        return (
            grad_q,
            grad_k,
            None if grad_v is None else grad_v.view_as(v),
            None if grad_b is None else grad_b.grad,
            None if grad_c is None else grad_c.grad,
            None,
            None,
            None,
        )


def toeplitz_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    bias: torch.Tensor | None,
    toeplitz: torch.Tensor | None,
    *,
    additive: torch.Tensor | None = None,
    masked: torch.Tensor | None = None,
    scale: float,
) -> torch.Tensor:
    """``(softmax(q k^T * scale + B + additive) ⊙ C) v`` with Toeplitz ``B`` and ``C`` given by their diagonals.

    Equal to the autograd evaluation in :mod:`urpe.attention` (outputs and gradients), with the backward pass of
    the module docstring; there is no dropout on the weights.

    Args:
        q: ``(batch, heads, L_q, d)``; k: ``(batch, heads, L_k, d)``; v: ``(batch, heads, L_k, d_v)``.
        bias: diagonals of B, ``(heads, L_q + L_k - 1)`` (see :class:`Toeplitz`), or None for B = 0.
        toeplitz: diagonals of C, the same shape, or None for C = 1 (plain RPE).
        additive: a float mask broadcastable to ``(batch, heads, L_q, L_k)``, finite, not differentiated.
        masked: a boolean mask broadcastable to ``(batch, heads, L_q, L_k)``; True keys get weight 0.
        scale: the score scale, usually ``1 / sqrt(d)``.

    Returns:
        ``(batch, heads, L_q, d_v)``.
    """
    return _ToeplitzAttention.apply(q, k, v, bias, toeplitz, additive, masked, scale)
