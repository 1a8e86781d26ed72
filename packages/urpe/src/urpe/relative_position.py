"""Relative-position tables: one learnable scalar per head for each relative offset (or offset bucket).

A table maps the offset ``j - i`` between key position ``j`` and query position ``i`` to a per-head value. The
pre-softmax bias ``B`` of RPE and the post-softmax Toeplitz matrix ``C`` of URPE (Luo et al., 2022, Sec. 4) are
both such tables: ``B_ij = b_h(psi(j - i))`` and ``C_ij = c_h(psi(j - i))``; each is Toeplitz by construction.

``psi`` is either the identity on offsets in ``[-(max_len - 1), max_len - 1]`` (``"unique"``: ``2 * max_len - 1``
entries, the setting of the paper's synthetic experiments) or the T5 log-bucket function (``"bucket"``).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from papers_common import InputError
from papers_common import t5_relative_bucket as t5_bucket
from urpe.errors import SequenceTooLongError

Mode = Literal["unique", "bucket"]


def relative_offsets(
    q_len: int, k_len: int, *, start: int = 0, stop: int | None = None, device: torch.device | None = None
) -> torch.Tensor:
    """Offsets ``j - i`` for query rows ``start:stop`` (default all ``q_len``): a ``(rows, k_len)`` long tensor."""
    rows = torch.arange(start, q_len if stop is None else stop, device=device)
    return torch.arange(k_len, device=device)[None, :] - rows[:, None]


class RelativePositionTable(nn.Module):
    """A per-head table indexed by relative offset, expanded to a ``(heads, q_len, k_len)`` Toeplitz tensor.

    Args:
        num_heads: H.
        mode: ``"unique"`` (one entry per offset within ``max_len``) or ``"bucket"`` (T5 log buckets).
        max_len: longest sequence for ``"unique"``; longer inputs raise :class:`SequenceTooLongError`.
        num_buckets, max_distance: T5 bucketing parameters for ``"bucket"`` (the paper's: 64 and 128 there;
            T5's defaults are 32 and 128).
        bidirectional: False for causal models (future offsets are never used).
        init: ``"normal"`` (N(0, 0.02), BERT's init; the bias B) or ``"ones"`` (the Toeplitz C, so URPE starts
            as RPE).
    """

    def __init__(
        self,
        num_heads: int,
        *,
        mode: Mode = "unique",
        max_len: int = 512,
        num_buckets: int = 32,
        max_distance: int = 128,
        bidirectional: bool = True,
        init: Literal["normal", "ones"] = "normal",
    ) -> None:
        super().__init__()
        if mode not in ("unique", "bucket"):
            raise InputError(f"mode must be 'unique' or 'bucket', got {mode!r}")
        if num_heads < 1 or max_len < 1:
            raise InputError(f"num_heads and max_len must be positive, got {num_heads} and {max_len}")
        max_exact = (
            num_buckets // 4 if bidirectional else num_buckets // 2
        )  # distances below this get one bucket each
        if mode == "bucket" and (num_buckets < 4 or max_distance <= max_exact):
            raise InputError(
                f"bucket mode needs num_buckets >= 4 and max_distance > {'num_buckets // 4' if bidirectional else 'num_buckets // 2 (causal)'}, "
                f"got {num_buckets}, {max_distance}"
            )
        self.num_heads = num_heads
        self.mode: Mode = mode
        self.max_len = max_len
        self.num_buckets = num_buckets
        self.max_distance = max_distance
        self.bidirectional = bidirectional
        self.init_kind = init
        size = (2 * max_len - 1) if mode == "unique" else num_buckets
        self.weight = nn.Parameter(torch.empty(size, num_heads))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.init_kind == "ones":
            nn.init.ones_(self.weight)
        else:
            nn.init.normal_(self.weight, mean=0.0, std=0.02)

    def extra_repr(self) -> str:
        detail = (
            f"max_len={self.max_len}"
            if self.mode == "unique"
            else f"num_buckets={self.num_buckets}, max_distance={self.max_distance}"
        )
        return f"heads={self.num_heads}, mode={self.mode}, {detail}, bidirectional={self.bidirectional}, init={self.init_kind}"

    def indices(self, q_len: int, k_len: int, start: int = 0, stop: int | None = None) -> torch.Tensor:
        """Table row of each ``(i, j)`` pair for query rows ``start:stop``: a ``(stop - start, k_len)`` long tensor."""
        offsets = relative_offsets(q_len, k_len, start=start, stop=stop, device=self.weight.device)
        return self._index(offsets, q_len, k_len)

    def _index(self, offsets: torch.Tensor, q_len: int, k_len: int) -> torch.Tensor:
        """Table row of each offset ``j - i`` (any shape) for ``q_len`` queries and ``k_len`` keys."""
        if self.mode == "bucket":
            return t5_bucket(
                offsets,
                num_buckets=self.num_buckets,
                max_distance=self.max_distance,
                bidirectional=self.bidirectional,
            )
        if max(q_len, k_len) > self.max_len:
            raise SequenceTooLongError(
                f"sequence length {max(q_len, k_len)} exceeds this relative-position table's max_len={self.max_len} "
                "('unique' offsets); build the model with a larger max_len or use mode='bucket'"
            )
        return offsets + (self.max_len - 1)

    def diagonals(self, q_len: int, k_len: int | None = None) -> torch.Tensor:
        """The values on the diagonals of :meth:`forward`'s tensor: ``(heads, q_len + k_len - 1)``.

        Entry ``n`` is the value at offset ``j - i = n - (q_len - 1)``, so ``forward(q_len, k_len)[h, i, j] =
        diagonals(q_len, k_len)[h, j - i + q_len - 1]`` (:class:`urpe.toeplitz.Toeplitz`).
        """
        k_len = q_len if k_len is None else k_len
        offsets = torch.arange(-(q_len - 1), k_len, device=self.weight.device)
        return self.weight.t()[:, self._index(offsets, q_len, k_len)]

    def forward(self, q_len: int, k_len: int | None = None) -> torch.Tensor:
        """The ``(heads, q_len, k_len)`` Toeplitz tensor of table values."""
        k_len = q_len if k_len is None else k_len
        return self.rows(q_len, k_len, 0, q_len)

    def rows(self, q_len: int, k_len: int, start: int, stop: int) -> torch.Tensor:
        """Query rows ``start:stop`` of :meth:`forward`'s tensor: ``(heads, stop - start, k_len)``."""
        # indexing the transposed table yields a contiguous (heads, rows, k_len) tensor, which the attention
        # reads with unit stride (a permuted (rows, k_len, heads) gather is about a third slower to combine)
        return self.weight.t()[:, self.indices(q_len, k_len, start, stop)]
