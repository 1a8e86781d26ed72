"""Errors raised on bad input or by failed training; all are :class:`paperkit.InputError` (CLI exit code 2)."""

from __future__ import annotations

from paperkit import InputError


class TrainingDiverged(InputError):
    """The loss became non-finite; the message names the iteration and the last good checkpoint."""
