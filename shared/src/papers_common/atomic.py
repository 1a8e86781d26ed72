"""Atomic file writes: a reader sees the old file or the new one, never a half-written one.

Every write goes to a temporary file in the same directory, is flushed and ``fsync``-ed, then renamed over the
target with :func:`os.replace` (atomic on POSIX and Windows), and finally the directory entry is ``fsync``-ed.
A process killed half-way leaves the previous file intact and at most a stray ``.<name>.tmp-*`` file.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from papers_common.errors import OutputError
from papers_common.outputs import as_output_error

TMP_MARKER = ".tmp-"


def _fsync_dir(directory: Path) -> None:
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _new_file_mode() -> int:
    """``0o666`` less the process umask: the mode ``open(path, "w")`` gives a new file."""
    try:  # Linux reports the umask without changing it
        with open("/proc/self/status", encoding="ascii") as status:
            umask = next(int(line.split()[1], 8) for line in status if line.startswith("Umask:"))
    except (OSError, StopIteration, ValueError, IndexError):
        umask = os.umask(0o022)
        os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block ends without error it replaces ``path``.

    For writers that want a file name (``safetensors.torch.save_file``, ``matplotlib``'s ``savefig``).
    The temporary file is ``fsync``-ed before the rename; on error it is removed and ``path`` is untouched.

    Raises:
        OutputError: ``path`` is a folder, a part of it is a file, or the place is not writable or full.
    """
    target = Path(path)
    if target.is_dir():
        raise OutputError(f"{target}: cannot write: it is a folder, not a file")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{target.name}{TMP_MARKER}", suffix=target.suffix, dir=target.parent
        )
    except OSError as err:
        raise (as_output_error(err, target) or err) from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        # mkstemp makes owner-only files and some writers recreate theirs: give the result the mode a plain open()
        # would, the replaced file's mode or else 0o666 less the umask.
        os.chmod(tmp, target.stat().st_mode & 0o7777 if target.exists() else _new_file_mode())
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise (as_output_error(err, target) or err) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)


@contextlib.contextmanager
def atomic_open(
    path: str | os.PathLike[str], mode: str = "w", encoding: str | None = "utf-8"
) -> Iterator[IO[Any]]:
    """Open a temporary file that replaces ``path`` only when the ``with`` block ends without error.

    Args:
        path: the final file; its parent directories are created.
        mode: ``"w"`` (text) or ``"wb"`` (binary).
        encoding: text encoding; ignored in binary mode.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open supports modes 'w' and 'wb', not {mode!r}")
    with atomic_path(path) as tmp, open(tmp, mode, encoding=None if "b" in mode else encoding) as handle:
        yield handle


def write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Atomically write ``data`` to ``path``; returns the path."""
    with atomic_open(path, "wb") as handle:
        handle.write(data)
    return Path(path)


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Atomically write UTF-8 ``text`` to ``path``; returns the path."""
    with atomic_open(path, "w") as handle:
        handle.write(text)
    return Path(path)


def write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    """Atomically write ``obj`` as indented JSON (keys in insertion order, trailing newline)."""
    return write_text(path, json.dumps(obj, indent=2, allow_nan=False, default=_json_default) + "\n")


def append_line(path: str | os.PathLike[str], line: str) -> None:
    """Append one line with a single ``write`` on an ``O_APPEND`` descriptor, then ``fsync``.

    Rewriting a growing log at every step would cost quadratic time, so logs are appended instead. A crash can
    leave at most one torn line, which is closed by the next append and skipped by :func:`papers_common.read_jsonl`.
    """
    if "\n" in line:
        raise ValueError("append_line writes exactly one line; the text contains a newline")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    data = (line + "\n").encode("utf-8")
    fd = os.open(target, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            data = b"\n" + data  # close a line torn by an earlier crash so that this record stays whole
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _json_default(obj: Any) -> Any:
    """JSON encoding for the values runs commonly hold: paths, numpy scalars and arrays, 0-d tensors."""
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    raise TypeError(f"object of type {type(obj).__name__} is not JSON serialisable")
