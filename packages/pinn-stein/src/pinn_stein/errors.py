"""Errors raised on bad input or by failed training; all are :class:`papers_common.InputError` (CLI exit code 2)."""

from __future__ import annotations

from papers_common import InputError


class TrainingDiverged(InputError):
    """The loss became non-finite; the message names the iteration and the last good checkpoint."""
