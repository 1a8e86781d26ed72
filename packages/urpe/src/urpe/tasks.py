"""The paper's synthetic sequence-to-sequence tasks, generated on the fly (Luo et al., 2022, Sec. 5.1).

Inputs are i.i.d. uniform tokens ``[0, vocab)``; targets are classes. Both tasks need each position to know where
it is, which RPE attention cannot express (its rows are probability vectors whose relative weights do not depend on
the absolute position) while URPE and absolute position embeddings can.

- Position identification: the target at position ``i`` is ``i`` (chance accuracy ``1 / L``).
- Even-token prediction: for ``i < L / 2`` the target is the input token at position ``2i + 1`` (0-based); positions
  ``i >= L / 2`` predict a fixed filler class. Accuracy is measured on the ``i < L / 2`` positions, the ones whose
  target depends on the input: the needed source offset ``i + 1`` grows with ``i``, so no fixed relative shift
  solves it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from papers_common import InputError

TaskName = Literal["position-identification", "even-token"]


@dataclass(frozen=True)
class Batch:
    """tokens ``(batch, L)`` long; targets ``(batch, L)`` long; scored ``(batch, L)`` bool: positions that count."""

    tokens: torch.Tensor
    targets: torch.Tensor
    scored: torch.Tensor


@dataclass(frozen=True)
class SyntheticTask:
    """A synthetic task of sequences of length ``seq_len`` over ``vocab`` input tokens."""

    name: TaskName
    seq_len: int
    vocab: int

    def __post_init__(self) -> None:
        if self.name not in ("position-identification", "even-token"):
            raise InputError(f"unknown task {self.name!r}")
        if self.seq_len < 2 or self.vocab < 2:
            raise InputError(f"seq_len and vocab must be at least 2, got {self.seq_len} and {self.vocab}")

    @property
    def num_classes(self) -> int:
        """Output classes: positions for identification; tokens plus the filler class for even-token."""
        return self.seq_len if self.name == "position-identification" else self.vocab + 1

    @property
    def chance(self) -> float:
        """Accuracy of guessing uniformly at random."""
        return 1.0 / self.num_classes if self.name == "position-identification" else 1.0 / self.vocab

    def sample(self, batch: int, generator: torch.Generator, device: torch.device | str = "cpu") -> Batch:
        """Draw a batch; all randomness comes from ``generator`` (CPU)."""
        tokens = torch.randint(0, self.vocab, (batch, self.seq_len), generator=generator)
        positions = torch.arange(self.seq_len).expand(batch, -1)
        if self.name == "position-identification":
            targets = positions.clone()
            scored = torch.ones_like(tokens, dtype=torch.bool)
        else:
            half = self.seq_len // 2
            targets = torch.full_like(tokens, self.vocab)  # the filler class
            targets[:, :half] = tokens[:, 1 : 2 * half : 2]
            scored = positions < half
        return Batch(tokens.to(device), targets.to(device), scored.to(device))
