"""Errors raised for bad input, with the limit or shape that was violated."""

from __future__ import annotations

from papers_common import InputError


class SequenceTooLongError(InputError):
    """A sequence is longer than a ``"unique"`` relative-position table covers."""


class ShapeError(InputError):
    """A tensor given to attention has the wrong shape or dtype."""
