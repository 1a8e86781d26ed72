"""Errors that describe bad input to the user instead of failing deep inside a library."""

from __future__ import annotations


class InputError(ValueError):
    """Bad input from the user: a file, line, field or flag that cannot be used.

    The message names where the problem is (``path:line``, ``field``, ``--flag``) and what was expected.
    Command lines built with :class:`papers_common.App` print it without a traceback and exit with status 2.
    """


class SchemaError(InputError):
    """A results or benchmark document does not follow the JSON Schema shipped with papers_common."""


class UnsafeCheckpointError(InputError):
    """A weights file would need arbitrary (unsafe) unpickling to load, or is corrupt."""


class OutputError(InputError):
    """An output path that cannot be written: a file where a folder must go (or the reverse), no permission,
    a read-only file system or a full disk. The message names the flag (where known) and the path."""
