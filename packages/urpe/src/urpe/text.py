"""A byte-level text corpus from a folder of text files, for causal language modelling.

Bytes are the tokens (vocabulary 256), so any language and encoding works without a tokenizer download. The last
``valid_fraction`` of every file is held out for validation.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from papers_common import InputError, progress

VOCAB_SIZE = 256
TOKENIZER = {"type": "bytes", "vocab_size": VOCAB_SIZE}
"""How text becomes tokens: each byte of the file is one token (stored with saved language models)."""


class TextCorpus:
    """Training and validation byte streams read from ``*.txt`` files under ``root`` (recursively).

    Files whose name starts with one of ``skip_prefixes`` (any case; by default ``METADATA`` and ``README``,
    catalogue files in text collections) are skipped. :meth:`settings` gives the keyword arguments that rebuild
    the same split from another copy of the text.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        pattern: str = "*.txt",
        valid_fraction: float = 0.1,
        skip_prefixes: Sequence[str] = ("METADATA", "README"),
    ) -> None:
        self.root = Path(root)
        self.pattern = pattern
        self.valid_fraction = valid_fraction
        self.skip_prefixes = tuple(prefix.upper() for prefix in skip_prefixes)
        if not self.root.is_dir():
            raise InputError(f"--data {self.root}: no such directory")
        if not 0.0 < valid_fraction < 1.0:
            raise InputError(f"valid_fraction must be in (0, 1), got {valid_fraction}")
        files = sorted(
            p
            for p in self.root.rglob(pattern)
            if p.is_file() and not p.name.upper().startswith(self.skip_prefixes)
        )
        if not files:
            raise InputError(f"--data {self.root}: no files matching {pattern!r}")
        train, valid = [], []
        for file in progress(files, desc=f"read {self.root}", unit="file"):
            data = file.read_bytes()
            cut = int(len(data) * (1 - valid_fraction))
            train.append(data[:cut])
            valid.append(data[cut:])
        self.files = files
        self.train = torch.frombuffer(bytearray(b"".join(train)), dtype=torch.uint8).long()
        self.valid = torch.frombuffer(bytearray(b"".join(valid)), dtype=torch.uint8).long()

    def settings(self) -> dict[str, Any]:
        """The keyword arguments of this split (pattern, held-out fraction, skipped prefixes), JSON-ready."""
        return {
            "pattern": self.pattern,
            "valid_fraction": self.valid_fraction,
            "skip_prefixes": list(self.skip_prefixes),
        }

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

    def validation_batch_count(self, batches: int, batch: int, length: int) -> int:
        """How many batches :meth:`validation_batches` yields for these arguments."""
        self._check(self.valid, length, "validation")
        return math.ceil(min(batches * batch, (len(self.valid) - 1) // length) / batch)

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
