"""RPE/URPE attention with Toeplitz tables given by their diagonals, and a hand-written backward pass.

A per-head Toeplitz table ``T[h, i, j] = t_h(j - i)`` over ``L_q`` queries and ``L_k`` keys is fully described by its
``L_q + L_k - 1`` diagonals (:class:`Toeplitz`). The bias ``B`` and the post-softmax matrix ``C`` of URPE (Luo et al.,
2022, Eq. 3 and Sec. 4) are such tables, so the attention

    S = Q K^T / sqrt(d) + B + M,   P = softmax(S),   W = P ⊙ C,   O = W V

(``M``: masks; masked keys get ``P = 0``) needs only the diagonals. :func:`toeplitz_attention` computes ``S`` with
its matrix products and turns it into ``P`` in place one cache-sized contiguous chunk at a time (whole batch
elements, whole heads, or blocks of rows of one head; each chunk's block of ``W`` multiplies ``V`` there), keeps
only ``P`` for the backward pass, and computes the gradients by hand, chunk by chunk:

    dW = dO V^T,   dV = W^T dO,   dC = Σ_batch dW ⊙ P,   dP = dW ⊙ C,
    dS = P ⊙ (dP - rowsum(dP ⊙ P)),   dB = Σ_batch dS,   dQ = dS K / sqrt(d),   dK = dS^T Q / sqrt(d),

where ``dB`` and ``dC`` are summed along each diagonal to give the gradients of the diagonals (accumulated element by
element into a small buffer per head whose columns are the diagonals, :class:`_DiagonalSums`). One chunk-sized
buffer holds ``W`` (for ``dV``) and then ``dW``, which becomes ``dP`` and then ``dS`` in place; rows of ``B`` and
``C`` are strided views of a small buffer (:class:`ToeplitzRows`), never a ``(heads, L_q, L_k)`` table. Autograd
would instead keep ``P``, ``W`` and the expanded tables, allocate each ``(batch, heads, L_q, L_k)`` gradient anew
and scatter the table gradients back through an index. Only one ``(batch, heads, L_q, L_k)`` tensor is alive at
once (``P``); a chunk with the table rows and diagonal sums it uses holds about ``BLOCK_ELEMENTS`` elements, so a
pass that uses more of them (URPE's backward reads ``C`` and sums ``dC``) works on smaller chunks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch.autograd.function import FunctionCtx, once_differentiable

# Elements of a chunk of (batch, heads, L_q, L_k) and the table rows it reads: small enough to stay in cache,
# large enough for efficient matrix products.
BLOCK_ELEMENTS = 1 << 21
# Rows per step inside a chunk of one matrix (the steps of a block stay in a core's cache), per view of a Toeplitz
# table (its buffer holds this many copies of the diagonals) and per diagonal sum.
SUB_ROWS = 64


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


class ToeplitzRows:
    """Blocks of at most ``height`` query rows of a Toeplitz table (see :class:`Toeplitz`), as strided views.

    The diagonals of the selected heads are repeated ``height`` times into a ``(heads, height, n)`` buffer
    (``n = q_len + k_len - 1``). Read with row stride ``n - 1`` from offset ``q_len - 1 - start``, row ``t`` of the
    buffer starts at diagonal ``q_len - 1 - (start + t)``, which is row ``start + t`` of the table: every block of
    rows is a view of one small buffer, with contiguous rows and no copy (a window view of the diagonals would
    need a negative row stride).
    """

    def __init__(self, diagonals: torch.Tensor, q_len: int, height: int) -> None:
        """``diagonals``: ``(heads, q_len + k_len - 1)``; ``height``: the most rows a block asks for."""
        heads, n = diagonals.shape
        self.q_len, self.k_len, self.height = q_len, n - q_len + 1, height
        self._buffer = diagonals[:, None, :].expand(heads, height, n).contiguous()

    def __call__(self, start: int, stop: int) -> torch.Tensor:
        """Rows ``start:stop`` (at most ``height`` of them) as a ``(heads, stop - start, k_len)`` view."""
        heads, height, n = self._buffer.shape
        return self._buffer.as_strided(
            (heads, stop - start, self.k_len),
            (height * n, n - 1, 1),
            self._buffer.storage_offset() + self.q_len - 1 - start,
        )


class _DiagonalSums:
    """Sums along the diagonals of a ``(heads, q_len, k_len)`` table that arrives block of rows by block of rows.

    With ``n = q_len + k_len - 1``, each head of the current chunk has an accumulator of ``height * n`` entries
    (``height = min(q_len, SUB_ROWS)``, the most rows of a block). Entry ``(t, j)`` of a block whose first row is
    query row ``s`` is added at position ``t (n - 1) + j + q_len - 1 - s``: modulo ``n`` that is ``j - (s + t) +
    q_len - 1``, the index of its diagonal (see :class:`Toeplitz`), the positions of one block are distinct and
    all lie below ``height * n``. Read as ``(height, n)``, the accumulator holds each diagonal in one column, so
    blocks are added element by element and the column sums are taken once per head (when the chunk's heads change
    and at the end) instead of a scatter-add per block.
    """

    def __init__(self, like: torch.Tensor, heads: int, q_len: int, k_len: int) -> None:
        self.q_len, self.k_len = q_len, k_len
        self.height = min(q_len, SUB_ROWS)
        self._grad = like.new_zeros(heads, q_len + k_len - 1)
        self._heads = slice(0, 0)
        self._sums = like.new_empty(0)

    def block(self, heads: slice, start: int, rows: int) -> torch.Tensor:
        """A ``(heads, rows, k_len)`` view to add the rows ``start:start + rows`` of the table into (in place)."""
        n = self._grad.shape[1]
        if heads != self._heads:
            self._flush()
            self._heads = heads
            self._sums = self._grad.new_zeros(heads.stop - heads.start, self.height * n)
        return self._sums.as_strided(
            (self._sums.shape[0], rows, self.k_len), (self.height * n, n - 1, 1), self.q_len - 1 - start
        )

    def _flush(self) -> None:
        if self._sums.numel():
            self._grad[self._heads] += self._sums.view(-1, self.height, self._grad.shape[1]).sum(1)

    def result(self) -> torch.Tensor:
        """The gradient of the diagonals, ``(heads, q_len + k_len - 1)``, once every block has been added."""
        self._flush()
        self._sums = self._sums.new_empty(0)
        return self._grad


@dataclass(frozen=True)
class _Chunk:
    """A contiguous piece ``[batch, heads, rows]`` of a contiguous ``(batch, heads, L_q, L_k)`` tensor."""

    batch: slice
    heads: slice
    rows: slice

    def of(self, t: torch.Tensor) -> torch.Tensor:
        """The chunk of a tensor broadcastable to ``(batch, heads, L_q, ...)`` (size-1 axes stay)."""
        t = t[(None,) * (4 - t.dim())]
        parts = (self.batch, self.heads, self.rows)
        return t[
            tuple(part if size > 1 else slice(None) for part, size in zip(parts, t.shape[:3], strict=True))
        ]

    def query_rows(self, like: torch.Tensor) -> int:
        """Query rows of the chunk over all its batch elements and heads, for ``like`` of shape ``(batch, heads,
        L_q, ...)``: a chunk of the probabilities holds this many times ``L_k`` elements."""
        return math.prod(self.of(like).shape[:3])

    def keys(self, t: torch.Tensor) -> torch.Tensor:
        """The chunk's batch elements and heads of a ``(batch, heads, L_k, d)`` tensor, every key."""
        return t[self.batch, self.heads]


def _chunks(batch: int, heads: int, q_len: int, k_len: int, tables: int) -> list[_Chunk]:
    """Contiguous chunks of ``(batch, heads, L_q, L_k)`` that, with ``tables`` table-sized buffers per head (rows of
    a Toeplitz table, :class:`_Tables`, or diagonal sums, :class:`_DiagonalSums`), hold about ``BLOCK_ELEMENTS``
    elements each.

    Whole batch elements when one fits, else whole heads of one batch element, else blocks of rows of one head.
    The order is head-major (all batch elements of a head follow each other), so that tables built per head are
    built once.
    """
    matrix = q_len * k_len
    table = tables * min(q_len, SUB_ROWS) * (q_len + k_len - 1)  # per head

    def split(n: int, most: int) -> list[slice]:
        size = max(1, min(n, most))
        return [slice(a, min(a + size, n)) for a in range(0, n, size)]

    everything = slice(0, q_len)
    if heads * (matrix + table) <= BLOCK_ELEMENTS:
        batches = split(batch, BLOCK_ELEMENTS // (heads * (matrix + table)))
        return [_Chunk(b, slice(0, heads), everything) for b in batches]
    if matrix + table <= BLOCK_ELEMENTS:
        head_groups = split(heads, BLOCK_ELEMENTS // (matrix + table))
        return [_Chunk(slice(b, b + 1), h, everything) for h in head_groups for b in range(batch)]
    row_blocks = split(q_len, (BLOCK_ELEMENTS - table) // k_len)
    return [
        _Chunk(slice(b, b + 1), slice(h, h + 1), rows)
        for h in range(heads)
        for rows in row_blocks
        for b in range(batch)
    ]


class _Tables:
    """Rows of a Toeplitz table for the heads of the current chunk (rebuilt when the heads change)."""

    def __init__(self, diagonals: torch.Tensor, q_len: int) -> None:
        self.diagonals, self.q_len = diagonals, q_len
        self._heads: slice | None = None
        self._rows: ToeplitzRows | None = None

    def __call__(self, chunk: _Chunk, rows: slice) -> torch.Tensor:
        """Rows ``rows`` of the chunk (at most ``SUB_ROWS``; counted from its first row) as ``(heads, rows, L_k)``."""
        if self._rows is None or self._heads != chunk.heads:
            self._heads = chunk.heads
            self._rows = ToeplitzRows(self.diagonals[chunk.heads], self.q_len, min(self.q_len, SUB_ROWS))
        return self._rows(chunk.rows.start + rows.start, chunk.rows.start + rows.stop)


def _sub_blocks(rows: int) -> list[slice]:
    """Blocks of ``SUB_ROWS`` rows (the last one shorter) of a chunk of ``rows`` rows."""
    return [slice(a, min(a + SUB_ROWS, rows)) for a in range(0, rows, SUB_ROWS)]


def _rows_of(t: torch.Tensor | None, rows: slice) -> torch.Tensor | None:
    """Rows ``rows`` of a ``(..., rows, L_k)`` chunk of a tensor or mask (a size-1 row axis stays)."""
    return t if t is None or t.shape[-2] == 1 else t[..., rows, :]


def _flat(t: torch.Tensor) -> torch.Tensor:
    """``(batch, heads, m, n)`` -> ``(batch * heads, m, n)`` for the batched matrix products."""
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
        q_scaled = (q * scale).contiguous()  # scaling q is L_k / d times cheaper than scaling S
        k, v = k.contiguous(), v.contiguous()
        bias_rows = None if bias is None else _Tables(bias, q_len)
        c_rows = None if toeplitz is None else _Tables(toeplitz, q_len)
        chunks = _chunks(batch, heads, q_len, k_len, tables=(bias is not None) + (toeplitz is not None))
        largest = max(chunk.query_rows(q) for chunk in chunks)
        weights = None if c_rows is None else q.new_empty(largest * k_len)
        probs = q.new_empty(batch, heads, q_len, k_len)
        out = q.new_empty(batch, heads, q_len, v.shape[-1])
        for chunk in chunks:
            p = chunk.of(probs)
            torch.bmm(_flat(chunk.of(q_scaled)), _flat(chunk.keys(k)).transpose(1, 2), out=_flat(p))
            extra = None if additive is None else chunk.of(additive)
            mask = None if masked is None else chunk.of(masked)
            w = None if weights is None else weights[: p.numel()].view_as(p)
            # one matrix of one head: every step on a block of SUB_ROWS rows while it is in cache; else the
            # softmax runs on the whole chunk (a block of rows of several matrices is not contiguous)
            single = p.shape[0] * p.shape[1] == 1
            for rows in _sub_blocks(p.shape[2]):
                part = p[:, :, rows]
                if bias_rows is not None:
                    part += bias_rows(chunk, rows)
                if extra is not None:
                    part += _rows_of(extra, rows)
                if single:
                    _softmax_(part, _rows_of(mask, rows))
                    if c_rows is not None and w is not None:
                        torch.mul(part, c_rows(chunk, rows), out=w[:, :, rows])  # W = P ⊙ C
            if not single:
                _softmax_(p, mask)
                if c_rows is not None and w is not None:
                    for rows in _sub_blocks(p.shape[2]):
                        torch.mul(p[:, :, rows], c_rows(chunk, rows), out=w[:, :, rows])
            torch.bmm(_flat(p if w is None else w), _flat(chunk.keys(v)), out=_flat(chunk.of(out)))
        ctx.save_for_backward(q, k, v, probs, toeplitz)
        ctx.scale = scale
        ctx.has_bias = bias is not None
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        q, k, v, probs, toeplitz = ctx.saved_tensors
        batch, heads, q_len, _ = q.shape
        k_len, scale = k.shape[-2], ctx.scale
        need_q, need_k, need_v, need_b, need_c = ctx.needs_input_grad[:5]
        grad_b = _DiagonalSums(q, heads, q_len, k_len) if need_b and ctx.has_bias else None
        grad_c = _DiagonalSums(q, heads, q_len, k_len) if need_c and toeplitz is not None else None
        c_rows = None if toeplitz is None else _Tables(toeplitz, q_len)
        grad_out = grad_out.contiguous()
        grad_q = torch.empty_like(q, memory_format=torch.contiguous_format) if need_q else None
        grad_k = torch.zeros_like(k) if need_k else None
        grad_v = torch.zeros_like(v) if need_v else None
        # the rows of C and each diagonal-sum accumulator are one table's worth of memory
        tables = (toeplitz is not None) + (grad_b is not None) + (grad_c is not None)
        chunks = _chunks(batch, heads, q_len, k_len, tables=tables)
        largest = max(chunk.query_rows(q) for chunk in chunks)
        work = q.new_empty(largest * k_len)  # W (URPE, for dV), then dW -> dP -> dS in place
        for chunk in chunks:
            p = chunk.of(probs)
            g = _flat(chunk.of(grad_out))
            d = work[: p.numel()].view_as(p)
            if grad_v is not None:
                if c_rows is not None:
                    for rows in _sub_blocks(p.shape[2]):
                        torch.mul(p[:, :, rows], c_rows(chunk, rows), out=d[:, :, rows])  # W = P ⊙ C
                _flat(chunk.keys(grad_v)).baddbmm_(
                    _flat(p if c_rows is None else d).transpose(1, 2), g
                )  # W^T dO
            torch.bmm(g, _flat(chunk.keys(v)).transpose(1, 2), out=_flat(d))  # dW
            single = p.shape[0] * p.shape[1] == 1
            for rows in _sub_blocks(p.shape[2]):
                d_part, p_part = d[:, :, rows], p[:, :, rows]
                if c_rows is not None:
                    if grad_c is not None:  # Σ_batch dW ⊙ P along the diagonals
                        _diagonal_sums(grad_c, d_part, chunk, rows, times=p_part)
                    d_part *= c_rows(chunk, rows)  # dP = dW ⊙ C
                if single:
                    _softmax_backward_(d_part, p_part)
                    if grad_b is not None:
                        _diagonal_sums(grad_b, d_part, chunk, rows)
            if not single:
                _softmax_backward_(d, p)
                if grad_b is not None:
                    for rows in _sub_blocks(p.shape[2]):
                        _diagonal_sums(grad_b, d[:, :, rows], chunk, rows)
            if grad_q is not None:
                torch.bmm(_flat(d), _flat(chunk.keys(k)), out=_flat(chunk.of(grad_q)))
            if grad_k is not None:
                _flat(chunk.keys(grad_k)).baddbmm_(_flat(d).transpose(1, 2), _flat(chunk.of(q)))
        return (
            None if grad_q is None else grad_q.mul_(scale),
            None if grad_k is None else grad_k.mul_(scale),
            grad_v,
            None if grad_b is None else grad_b.result(),
            None if grad_c is None else grad_c.result(),
            None,
            None,
            None,
        )


def _softmax_(scores: torch.Tensor, mask: torch.Tensor | None) -> None:
    """Softmax over the last axis in place (contiguous ``scores``); masked entries become 0 (rows of them too)."""
    if mask is not None:
        scores.masked_fill_(mask, float("-inf"))
    torch._softmax(scores, -1, False, out=scores)
    if mask is not None:
        scores.masked_fill_(mask, 0.0)  # C = 0 on masked keys; fully masked rows become 0, not NaN


def _softmax_backward_(grad: torch.Tensor, probs: torch.Tensor) -> None:
    """``grad <- probs ⊙ (grad - rowsum(grad ⊙ probs))`` in place (contiguous tensors)."""
    torch._softmax_backward_data(grad, probs, -1, probs.dtype, grad_input=grad)


def _diagonal_sums(
    sums: _DiagonalSums, block: torch.Tensor, chunk: _Chunk, rows: slice, times: torch.Tensor | None = None
) -> None:
    """Add ``Σ_batch block`` (or ``Σ_batch block ⊙ times``), rows ``rows`` of ``chunk``, to the diagonal sums."""
    target = sums.block(chunk.heads, chunk.rows.start + rows.start, rows.stop - rows.start)
    for element in range(block.shape[0]):  # element by element, without a (batch, ...) temporary
        if times is None:
            target += block[element]
        else:
            target.addcmul_(block[element], times[element])


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
