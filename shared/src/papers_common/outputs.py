"""Output paths checked where they enter, and what a failed command leaves behind.

A command writes into folders (``--out runs/x``) and files (``--save-noise x.npz``). Before anything runs, each
output is checked: a folder must not be an existing file, a file must not be an existing folder, no part of the
path may be a file, and the place it will be created in must be writable. A bad path is an :class:`OutputError`
that names the flag and the path, which :class:`papers_common.App` prints as one line with exit status 2.

When a command fails on bad input or on an allocation that cannot fit, the folders and files it created for its
outputs are removed again (:func:`created_paths` records what did not exist before it started), so a failed run
leaves nothing half-made behind. What existed before is never touched.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from papers_common.errors import OutputError

OutputKind = Literal["dir", "file"]

_WRITE_ERRORS = frozenset(
    {
        errno.EEXIST,
        errno.ENOTDIR,
        errno.EISDIR,
        errno.EACCES,
        errno.EPERM,
        errno.EROFS,
        errno.ENOSPC,
        errno.EDQUOT,
    }
)
_ALLOCATION = re.compile(
    r"can't allocate memory|out of memory|not enough memory|cannot allocate memory", re.I
)
_BYTES = re.compile(r"allocate (\d+) bytes")


def check_output(path: str | os.PathLike[str], kind: OutputKind, flag: str | None = None) -> Path:
    """Check that ``path`` can be created or replaced as a folder (``kind="dir"``) or a file (``"file"``).

    Nothing is created. Returns ``path`` as a :class:`~pathlib.Path`.

    Raises:
        OutputError: the path, or a folder on the way to it, is the wrong kind of thing, or the place where it
            would be written is not writable; the message starts with ``flag`` (when given) and the path.
    """
    target = Path(path)
    where = f"{flag} {target}" if flag else str(target)
    if kind not in ("dir", "file"):
        raise ValueError(f"kind must be 'dir' or 'file', not {kind!r}")
    if target.exists():
        if kind == "dir" and not target.is_dir():
            raise OutputError(f"{where}: exists and is not a folder; give a folder (new or existing)")
        if kind == "file" and target.is_dir():
            raise OutputError(f"{where}: is a folder; give the path of a file")
        writable_dir = target if kind == "dir" else target.parent
        if not os.access(writable_dir, os.W_OK | os.X_OK):
            raise OutputError(f"{where}: {writable_dir} is not writable")
        return target
    existing = _nearest_existing(target)
    if not existing.is_dir():
        raise OutputError(f"{where}: {existing} is a file, not a folder, so nothing can be created under it")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(f"{where}: cannot be created, {existing} is not writable")
    return target


def created_paths(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """For each output path, the outermost part of it that does not exist yet (``None`` parts skipped).

    These are exactly what a command creates for its outputs; :func:`remove_created` deletes them again.
    """
    found: list[Path] = []
    for path in paths:
        target = Path(path).absolute()
        if target.exists():
            continue
        top = target
        while not top.parent.exists() and top.parent != top:
            top = top.parent
        if top not in found:
            found.append(top)
    return found


def remove_created(paths: Iterable[Path]) -> None:
    """Delete what :func:`created_paths` listed, where it now exists (folders with their contents)."""
    for path in paths:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        elif path.exists() or path.is_symlink():
            path.unlink(missing_ok=True)


def as_output_error(
    err: OSError, path: str | os.PathLike[str], what: str = "cannot write"
) -> OutputError | None:
    """An :class:`OutputError` naming ``path`` for an ``OSError`` caused by the place written to, else ``None``.

    Covers a file in the way of a folder, a folder in the way of a file, missing permission, a read-only file
    system and a full disk; other ``OSError`` s (a broken device, an interrupted call) stay what they are.
    """
    if err.errno not in _WRITE_ERRORS:
        return None
    reason = {
        errno.EEXIST: "a file is in the way of a folder",
        errno.ENOTDIR: "a part of the path is a file, not a folder",
        errno.EISDIR: "it is a folder, not a file",
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
        errno.EROFS: "the file system is read-only",
        errno.ENOSPC: "no space left on the device",
        errno.EDQUOT: "the disk quota is exhausted",
    }[err.errno]
    return OutputError(f"{path}: {what}: {reason}")


def is_allocation_failure(err: BaseException) -> bool:
    """Whether ``err`` is a memory allocation that could not be made (``MemoryError`` or torch's CPU/GPU OOM)."""
    return isinstance(err, MemoryError) or (
        isinstance(err, RuntimeError) and bool(_ALLOCATION.search(str(err)))
    )


def allocation_message(err: BaseException, size_flags: Iterable[str]) -> str:
    """One line for an allocation failure: how much was asked for, when known, and the flags that set sizes."""
    found = _BYTES.search(str(err))
    asked = f" ({int(found.group(1)) / 2**30:.1f} GiB requested)" if found else ""
    flags = list(size_flags)
    if flags:
        return f"out of memory{asked}: the sizes set by {', '.join(flags)} need more memory than is available; use smaller values"
    return f"out of memory{asked}: the run's sizes need more memory than is available; use smaller ones"


def _nearest_existing(path: Path) -> Path:
    current = path
    while not current.exists() and current.parent != current:
        current = current.parent
    return current
