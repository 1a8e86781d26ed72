"""Where the random draws of a pretraining step come from: torch's generator, or keys of the sequences.

Masking and generator sampling need uniform numbers. Drawn from a ``torch.Generator`` they depend on how a global
batch is split over processes and micro-batches; drawn from a counter-based hash of ``(sequence key, stream,
position)`` (SplitMix64, Steele et al., 2014) each sequence gets the same numbers however the batch is laid out, so a
2-process ``torchrun`` step, a gradient-accumulated step and a resumed run all corrupt the text identically.
"""

from __future__ import annotations

import torch

_GOLDEN = 0x9E3779B97F4A7C15
_MIX1 = 0xBF58476D1CE4E5B9
_MIX2 = 0x94D049BB133111EB


def _int64(value: int) -> int:
    """An unsigned 64-bit constant as the signed int64 with the same bits."""
    return value - (1 << 64) if value >= 1 << 63 else value


def _shift_right(x: torch.Tensor, bits: int) -> torch.Tensor:
    """Logical right shift of int64 bit patterns (torch's ``>>`` is arithmetic)."""
    return (x >> bits) & ((1 << (64 - bits)) - 1)


def splitmix64(x: torch.Tensor) -> torch.Tensor:
    """The SplitMix64 finaliser on int64 tensors (multiplication wraps modulo 2^64)."""
    z = x + _int64(_GOLDEN)
    z = (z ^ _shift_right(z, 30)) * _int64(_MIX1)
    z = (z ^ _shift_right(z, 27)) * _int64(_MIX2)
    return z ^ _shift_right(z, 31)


def keyed_uniform(*keys: torch.Tensor | int) -> torch.Tensor:
    """Uniform float32 numbers in [0, 1), a deterministic function of the broadcast integer keys."""
    tensors = [k for k in keys if isinstance(k, torch.Tensor)]
    device = tensors[0].device if tensors else None
    state = torch.zeros((), dtype=torch.long, device=device)
    for key in keys:
        state = splitmix64(state ^ torch.as_tensor(key, dtype=torch.long, device=device))
    return _shift_right(state, 40).float() * (1.0 / (1 << 24))


class Noise:
    """Uniform draws for one batch.

    Args:
        sequence_keys: ``(B,)`` int64 keys, one per sequence (e.g. a hash of seed, step and the sequence's index in
            the global batch); None draws from torch's global generator.
    """

    def __init__(self, sequence_keys: torch.Tensor | None = None) -> None:
        self.sequence_keys = None if sequence_keys is None else sequence_keys.long()

    def rows(self, stream: int, shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
        """``shape = (B, ...)`` uniforms; with keys, entry ``[b, j...]`` depends on ``(key_b, stream, j...)``."""
        if self.sequence_keys is None:
            return torch.rand(shape, device=device)
        if self.sequence_keys.shape[0] != shape[0]:
            raise ValueError(f"{self.sequence_keys.shape[0]} sequence keys for a batch of {shape[0]}")
        flat = torch.arange(int(torch.tensor(shape[1:]).prod()), device=device).view(1, *shape[1:])
        keys = self.sequence_keys.to(device).view(-1, *([1] * (len(shape) - 1)))
        return keyed_uniform(keys, stream, flat)

    def at(self, stream: int, rows: torch.Tensor, columns: torch.Tensor) -> torch.Tensor:
        """One uniform per ``(rows[i], columns[i])`` entry, shape ``(n,)``."""
        if self.sequence_keys is None:
            return torch.rand(rows.shape, device=rows.device)
        return keyed_uniform(self.sequence_keys.to(rows.device)[rows], stream, columns)


def sequence_keys(seed: int, step: int, indices: torch.Tensor) -> torch.Tensor:
    """Keys of the sequences at ``indices`` of the global batch of optimizer step ``step``: ``(B,)`` int64."""
    return splitmix64(splitmix64(torch.as_tensor(seed, dtype=torch.long) ^ step) ^ indices.long())
