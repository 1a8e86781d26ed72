"""Every member's console script answers a bad output path with one line naming the flag and the path.

For each subcommand of each console script and each of its output options (``option(..., output=...)``, every
``--out`` among them), the command is run in an empty folder holding a file ``afile`` and a folder ``adir``:

- a folder output pointing at the file (``--out afile``) and at a path under it (``--out afile/sub``);
- a file output pointing at the folder (``--save-noise adir``) and at a path under the file (``afile/x.out``).

Each must exit with status 2 and print exactly one line, ``<script>: error: <flag> <path>: ...``, without a
traceback, leaving the folder as it was. The members are installed in the workspace session's venv, so the scripts
sit beside the interpreter; one process per script runs its entry point for every case (a process costs seconds
of imports), and the script itself runs once as a program, as a user types it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import noxfile

BIN = Path(sys.executable).parent

# Runs in a fresh folder with the venv's interpreter: argv[1] is the console script's name. Prints one JSON list.
DRIVER = r"""
import contextlib, importlib, io, json, os, sys
from importlib.metadata import entry_points

script = sys.argv[1]
entry = next(e for e in entry_points(group="console_scripts") if e.name == script)
main, app = entry.load(), importlib.import_module(entry.module).app
cases = {"dir": ("afile", "afile/sub"), "file": ("adir", "afile/x.out")}
found = []
for command in app.commands:
    for flag, kind in app.output_flags(command).items():
        for path in cases[kind]:
            sys.argv = [script, command, flag, path]
            err = io.StringIO()
            code = 0
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                try:
                    code = main()
                except SystemExit as stop:
                    code = stop.code
            found.append({"argv": sys.argv[1:], "code": code, "stderr": err.getvalue(), "left": sorted(os.listdir())})
print(json.dumps(found))
"""


def scripts_installed(member: noxfile.Member) -> list[Path]:
    assert member.scripts, f"{member.rel}: no console script in [project.scripts]"
    paths = [BIN / name for name in member.scripts]
    missing = [p.name for p in paths if not p.exists()]
    if missing:
        pytest.fail(
            f"console script(s) {missing} are not installed beside {sys.executable}: run these tests with "
            "`uvx nox -s workspace`, whose venv holds every member"
        )
    return paths


def empty_place(tmp_path: Path) -> Path:
    tmp_path.mkdir(parents=True)
    (tmp_path / "afile").write_text("a file\n")
    (tmp_path / "adir").mkdir()
    return tmp_path


def test_every_output_option_refuses_a_bad_path_in_one_line(member: noxfile.Member, tmp_path: Path) -> None:
    for script in scripts_installed(member):
        place = empty_place(tmp_path / script.name)
        done = subprocess.run(
            [sys.executable, "-c", DRIVER, script.name],
            cwd=place,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        cases = json.loads(done.stdout.strip().splitlines()[-1])
        flags = {case["argv"][1] for case in cases}
        assert "--out" in flags, f"{script.name}: no subcommand declares --out as an output option"
        problems = []
        for case in cases:
            command, flag, path = case["argv"]
            lines = case["stderr"].strip().splitlines()
            want = f"{script.name}: error: {flag} {path}: "
            if case["code"] != 2 or len(lines) != 1 or not lines[0].startswith(want):
                problems.append(
                    f"{script.name} {command} {flag} {path}: exit {case['code']}, stderr {lines[-5:]}"
                )
            if case["left"] != ["adir", "afile"] or any((place / "adir").iterdir()):
                problems.append(f"{script.name} {command} {flag} {path}: left {case['left']} behind")
        assert not problems, "\n".join(problems)

        # The program itself, as a user types it, on the first subcommand that writes --out.
        command = next(case["argv"][0] for case in cases if case["argv"][1] == "--out")
        done = subprocess.run(
            [str(script), command, "--out", "afile/sub"],
            cwd=place,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert (done.returncode, done.stderr.strip().splitlines()) == (
            2,
            [
                f"{script.name}: error: --out afile/sub: afile is a file, not a folder, so nothing can be "
                "created under it"
            ],
        ), done.stderr[-3000:]
        assert sorted(p.name for p in place.iterdir()) == ["adir", "afile"]
