"""Output paths are checked where they enter; a failed command leaves no folder behind."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from papers_common import App, OutputError, RunArgs, RunDir, check_output, option, write_text
from papers_common.outputs import allocation_message, created_paths, is_allocation_failure, remove_created


@dataclass(kw_only=True)
class MakeArgs(RunArgs):
    save: Path | None = option(None, help="also write this file", output="file")
    batch: int = option(8, help="items per batch")
    data: Path = option(help="an input file")


def make_app(action: str = "ok") -> App:
    app = App("demo", description="A demo program.", version="1.0")

    @app.command("make", MakeArgs, help="make a run")
    def make(args: MakeArgs) -> None:
        run = RunDir(args.out / "run")
        run.write_json("config.json", {"batch": args.batch})
        if args.save is not None:
            write_text(args.save, "saved\n")
        if action == "bad-input":
            raise OutputError(f"{args.data}: not usable")
        if action == "oom":
            raise RuntimeError(
                "[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate memory: "
                "you tried to allocate 40000000000 bytes. Error code 12 (Cannot allocate memory)"
            )
        if action == "bug":
            raise RuntimeError("shape mismatch")

    return app


@pytest.fixture
def place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("x")
    (tmp_path / "adir").mkdir()
    return tmp_path


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--out", "afile"], "demo: error: --out afile: exists and is not a folder"),
        (["--out", "afile/sub"], "demo: error: --out afile/sub: afile is a file, not a folder"),
        (["--save", "adir"], "demo: error: --save adir: is a folder; give the path of a file"),
        (["--save", "afile/x.txt"], "demo: error: --save afile/x.txt: afile is a file, not a folder"),
    ],
)
def test_bad_output_paths_are_one_line_before_anything_runs(
    place: Path, capsys: pytest.CaptureFixture[str], argv: list[str], expected: str
) -> None:
    before = sorted(p.name for p in place.iterdir())
    # --data is required and missing: the output path is still what is reported, as nothing can run with it
    assert make_app().main(["make", *argv]) == 2
    assert one_error_line(capsys).startswith(expected)
    assert sorted(p.name for p in place.iterdir()) == before


def test_good_paths_pass_and_the_run_is_written(place: Path) -> None:
    assert make_app().main(["make", "--out", "new/deep", "--save", "adir/x.txt", "--data", "afile"]) == 0
    assert (place / "new" / "deep" / "run" / "config.json").is_file()
    assert (place / "adir" / "x.txt").read_text() == "saved\n"


def test_an_unwritable_place_is_named(place: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path).name != "adir")
    with pytest.raises(OutputError, match=r"^--out adir/run: cannot be created, adir is not writable"):
        check_output(Path("adir/run"), "dir", "--out")
    with pytest.raises(OutputError, match=r"^adir: adir is not writable"):
        check_output("adir", "dir")


@pytest.mark.parametrize("action", ["bad-input", "oom"])
def test_a_failed_command_leaves_nothing_it_created(
    place: Path, capsys: pytest.CaptureFixture[str], action: str
) -> None:
    (place / "adir" / "old.txt").write_text("kept")
    argv = ["make", "--out", "made/here", "--save", "adir/new/x.txt", "--data", "afile", "--batch", "99"]
    assert make_app(action).main(argv) == 2
    line = one_error_line(capsys)
    if action == "oom":
        assert line == (
            "demo: error: out of memory (37.3 GiB requested): the sizes set by --batch 99 need more memory "
            "than is available; use smaller values"
        )
    else:
        assert line == "demo: error: afile: not usable"
    assert not (place / "made").exists()
    assert sorted(p.name for p in (place / "adir").iterdir()) == ["old.txt"]


def test_a_failure_keeps_what_existed_before(place: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (place / "runs").mkdir()
    (place / "runs" / "earlier.json").write_text("{}")
    assert make_app("bad-input").main(["make", "--out", "runs", "--data", "afile"]) == 2
    capsys.readouterr()
    assert (place / "runs" / "earlier.json").is_file()
    assert (place / "runs" / "run" / "config.json").is_file()  # inside a folder the user already had


def test_other_errors_are_not_swallowed(place: Path) -> None:
    with pytest.raises(RuntimeError, match="shape mismatch"):
        make_app("bug").main(["make", "--out", "r", "--data", "afile"])


def test_created_paths_are_the_outermost_new_parts(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    found = created_paths(
        [tmp_path / "a" / "b" / "c", tmp_path / "a", tmp_path / "a" / "b" / "d", tmp_path / "e"]
    )
    assert found == [tmp_path / "a" / "b", tmp_path / "e"]
    (tmp_path / "a" / "b" / "c").mkdir(parents=True)
    (tmp_path / "e").write_text("x")
    remove_created(found)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]
    assert list((tmp_path / "a").iterdir()) == []


def test_run_dir_and_atomic_writes_name_the_path(place: Path) -> None:
    with pytest.raises(OutputError, match=r"^afile/run: cannot create the run folder: "):
        RunDir("afile/run")
    with pytest.raises(OutputError, match=r"^adir: cannot write: it is a folder"):
        write_text("adir", "x")
    with pytest.raises(OutputError, match=r"^afile/x.txt: cannot write: "):
        write_text("afile/x.txt", "x")


def test_allocation_failures_are_recognised() -> None:
    assert is_allocation_failure(MemoryError())
    assert is_allocation_failure(RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert not is_allocation_failure(RuntimeError("mat1 and mat2 shapes cannot be multiplied"))
    assert allocation_message(MemoryError(), []) == (
        "out of memory: the run's sizes need more memory than is available; use smaller ones"
    )


def test_output_options_must_be_paths() -> None:
    @dataclass
    class Wrong:
        out: str = option("x", help="a folder", output="dir")

    app = App("demo", description="d", version="1")
    with pytest.raises(TypeError, match="must be Path"):
        app.command("wrong", Wrong, help="wrong")
    with pytest.raises(ValueError, match="'dir' or 'file'"):
        option(None, help="h", output="folder")


def test_output_flags_lists_each_commands_outputs() -> None:
    assert make_app().output_flags("make") == {"--out": "dir", "--save": "file"}
