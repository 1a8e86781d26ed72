"""Atomic writes: readers see the old file or the new one, never a half-written one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from papers_common import atomic

OLD = b"old content\n" * 100

# Writes a first chunk through atomic_open, reports it on stdout, then blocks until it is killed.
CHILD = textwrap.dedent(
    """
    import sys
    import time

    from papers_common.atomic import atomic_open

    with atomic_open(sys.argv[1], "wb") as handle:
        handle.write(b"NEW-" * 4096)
        handle.flush()
        print("first chunk written", flush=True)
        time.sleep(120)
        handle.write(b"the end")
    """
)


def _stray(directory: Path, name: str) -> list[Path]:
    return [p for p in directory.iterdir() if p.name.startswith(f".{name}{atomic.TMP_MARKER}")]


def test_sigkill_mid_write_leaves_old_file_intact(tmp_path: Path) -> None:
    target = tmp_path / "weights.bin"
    target.write_bytes(OLD)
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(target)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        line = child.stdout.readline()
        assert line.strip() == "first chunk written", f"child failed: {line!r} {child.stderr.read()!r}"
        # The child really is half-way: its first chunk is on disk in this directory.
        assert any(p.read_bytes() == b"NEW-" * 4096 for p in tmp_path.iterdir())
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdout.close()
        child.stderr.close()
    assert target.read_bytes() == OLD
    # What is left is the temporary file, which the documented name pattern identifies.
    assert [p.read_bytes() for p in _stray(tmp_path, target.name)] == [b"NEW-" * 4096]


def test_completed_write_replaces_file_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "dir" / "file.txt"  # parents are created
    atomic.write_text(target, "first")
    atomic.write_text(target, "second ✓")
    assert target.read_text(encoding="utf-8") == "second ✓"
    assert _stray(target.parent, target.name) == []


def test_error_inside_block_keeps_old_file_and_removes_temp(tmp_path: Path) -> None:
    target = tmp_path / "data.bin"
    target.write_bytes(OLD)

    def write_then_fail() -> None:
        with atomic.atomic_open(target, "wb") as handle:
            handle.write(b"partial")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        write_then_fail()
    assert target.read_bytes() == OLD
    assert _stray(tmp_path, target.name) == []


def test_atomic_path_error_keeps_old_file(tmp_path: Path) -> None:
    target = tmp_path / "plot.png"
    target.write_bytes(OLD)

    def write_then_fail() -> None:
        with atomic.atomic_path(target) as tmp:
            assert tmp.parent == tmp_path
            assert tmp != target
            tmp.write_bytes(b"half")
            raise KeyError("x")

    with pytest.raises(KeyError):
        write_then_fail()
    assert target.read_bytes() == OLD
    assert list(tmp_path.iterdir()) == [target]


def test_atomic_path_replaces_target_with_written_file(tmp_path: Path) -> None:
    target = tmp_path / "a.safetensors"
    with atomic.atomic_path(target) as tmp:
        assert tmp.suffix == ".safetensors"  # writers that look at the suffix still see the right one
        tmp.write_bytes(b"abc")
    assert target.read_bytes() == b"abc"
    assert not tmp.exists()


def test_atomic_open_rejects_other_modes(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="'a'"), atomic.atomic_open(tmp_path / "x", "a"):
        pass
    assert not (tmp_path / "x").exists()


def test_write_bytes_round_trip(tmp_path: Path) -> None:
    data = bytes(range(256)) * 3
    assert atomic.write_bytes(tmp_path / "b", data) == tmp_path / "b"
    assert (tmp_path / "b").read_bytes() == data


def test_write_json_encodes_common_values(tmp_path: Path) -> None:
    path = atomic.write_json(
        tmp_path / "x.json",
        {"path": Path("a/b"), "np": np.float32(1.5), "arr": np.arange(3), "tup": (1, 2), "set": {7}},
    )
    text = path.read_text(encoding="utf-8")
    assert text.endswith("}\n")
    assert json.loads(text) == {"path": "a/b", "np": 1.5, "arr": [0, 1, 2], "tup": [1, 2], "set": [7]}


def test_write_json_refuses_nan_and_unknown_objects_and_keeps_old(tmp_path: Path) -> None:
    target = tmp_path / "x.json"
    target.write_text("{}", encoding="utf-8")
    with pytest.raises(ValueError, match="Out of range float"):
        atomic.write_json(target, {"v": float("nan")})
    with pytest.raises(TypeError, match="object"):
        atomic.write_json(target, {"v": object()})
    assert target.read_text(encoding="utf-8") == "{}"


def test_append_line_appends_whole_lines(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "log.jsonl"
    atomic.append_line(log, "one")
    atomic.append_line(log, "two")
    assert log.read_text(encoding="utf-8") == "one\ntwo\n"


def test_append_line_closes_a_torn_line(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    log.write_bytes(b'{"a": 1}\n{"a": 2, "b')  # a crash cut the last record
    atomic.append_line(log, '{"a": 3}')
    assert log.read_bytes().splitlines() == [b'{"a": 1}', b'{"a": 2, "b', b'{"a": 3}']


def test_append_line_rejects_newlines(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="newline"):
        atomic.append_line(tmp_path / "log", "a\nb")
    assert not (tmp_path / "log").exists()


def test_replacing_keeps_the_file_mode(tmp_path: Path) -> None:
    existing = tmp_path / "shared.txt"
    existing.write_text("old")
    existing.chmod(0o640)
    atomic.write_text(existing, "new")
    assert existing.stat().st_mode & 0o777 == 0o640


@pytest.fixture(params=[0o022, 0o027, 0o002])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_new_files_get_the_mode_plain_open_gives(tmp_path: Path, umask: int) -> None:
    (tmp_path / "plain.txt").write_text("x")
    expected = 0o666 & ~umask
    assert mode(tmp_path / "plain.txt") == expected
    assert mode(atomic.write_text(tmp_path / "fresh.txt", "x")) == expected
    assert mode(atomic.write_bytes(tmp_path / "fresh.bin", b"x")) == expected
    atomic.append_line(tmp_path / "log.jsonl", "{}")
    assert mode(tmp_path / "log.jsonl") == expected
    with atomic.atomic_path(tmp_path / "recreated.bin") as tmp:
        tmp.unlink()  # a writer that makes its own file, owner-only
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT, 0o600)
        os.close(fd)
    assert mode(tmp_path / "recreated.bin") == expected


def test_checkpoint_weights_get_the_mode_of_their_sidecar(tmp_path: Path, umask: int) -> None:
    import torch

    from papers_common import save_checkpoint

    sidecar = save_checkpoint(tmp_path, 3, {"w": torch.ones(2)}, rng=False)
    assert mode(sidecar) == mode(sidecar.with_suffix(".safetensors")) == 0o666 & ~umask
