"""A byte-level text corpus from a folder of text files, for causal language modelling.

Bytes are the tokens (vocabulary 256), so any language and encoding works without a tokenizer download. The last
``valid_fraction`` of every file is held out for validation.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import torch

from papers_common import InputError

VOCAB_SIZE = 256


class TextCorpus:
    """Training and validation byte streams read from ``*.txt`` files under ``root`` (recursively).

    Files whose name starts with ``METADATA`` or ``README`` are skipped (catalogue files in text collections).
    """

    def __init__(
        self, root: str | os.PathLike[str], *, pattern: str = "*.txt", valid_fraction: float = 0.1
    ) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise InputError(f"--data {self.root}: no such directory")
        if not 0.0 < valid_fraction < 1.0:
            raise InputError(f"valid_fraction must be in (0, 1), got {valid_fraction}")
        files = sorted(
            p
            for p in self.root.rglob(pattern)
            if p.is_file() and not p.name.upper().startswith(("METADATA", "README"))
        )
        if not files:
            raise InputError(f"--data {self.root}: no files matching {pattern!r}")
        train, valid = [], []
        for file in files:
            data = file.read_bytes()
            cut = int(len(data) * (1 - valid_fraction))
            train.append(data[:cut])
            valid.append(data[cut:])
        self.files = files
        self.train = torch.frombuffer(bytearray(b"".join(train)), dtype=torch.uint8).long()
        self.valid = torch.frombuffer(bytearray(b"".join(valid)), dtype=torch.uint8).long()

    def describe(self) -> dict[str, object]:
        return {
            "root": str(self.root),
            "files": len(self.files),
            "train_bytes": len(self.train),
            "valid_bytes": len(self.valid),
        }

    def _check(self, stream: torch.Tensor, length: int, name: str) -> None:
        if len(stream) <= length + 1:
            raise InputError(
                f"--data {self.root}: the {name} text ({len(stream)} bytes) is shorter than one window of {length + 1} bytes"
            )

    def sample(
        self, batch: int, length: int, generator: torch.Generator, device: torch.device | str = "cpu"
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Random training windows: inputs ``(batch, length)`` and next-byte targets of the same shape."""
        self._check(self.train, length, "training")
        starts = torch.randint(0, len(self.train) - length - 1, (batch,), generator=generator)
        windows = self.train[starts[:, None] + torch.arange(length + 1)]
        return windows[:, :-1].to(device), windows[:, 1:].to(device)

    def validation_batches(
        self, batches: int, batch: int, length: int, device: torch.device | str = "cpu"
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Up to ``batches`` batches of consecutive, non-overlapping validation windows (always the same ones)."""
        self._check(self.valid, length, "validation")
        count = min(batches * batch, (len(self.valid) - 1) // length)
        starts = torch.arange(count) * length
        for first in range(0, count, batch):
            windows = self.valid[starts[first : first + batch, None] + torch.arange(length + 1)]
            yield windows[:, :-1].to(device), windows[:, 1:].to(device)
