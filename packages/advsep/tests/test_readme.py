"""The README's examples run as written: its Python block, and its CLI lines in a fresh directory."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import numpy as np
import pytest

from advsep.cli import app
from papers_common import preserved_global_state

README = Path(__file__).parents[1] / "README.md"


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def cli_lines() -> list[str]:
    """The `advsep` lines of the CLI section (reproduce lines are run by the nox reproduce session)."""
    section = README.read_text(encoding="utf-8").split("## CLI", 1)[1].split("\n## ", 1)[0]
    return [line.split("  #")[0] for block in re.findall(r"```bash\n(.*?)```", section, flags=re.S)
            for line in block.splitlines() if line.startswith("advsep ")]  # fmt: skip


def test_the_python_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    for block in blocks("python"):
        exec(compile(block, str(README), "exec"), namespace)  # the README's own code
    assert namespace["result"].test_accuracy >= 0.95  # type: ignore[attr-defined]
    assert namespace["clean"].test_accuracy < 0.5  # type: ignore[attr-defined]


def test_the_cli_lines_run_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lines = cli_lines()
    assert len(lines) == 4
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)  # the user's own data, in the documented layout
    np.savez("my_data.npz", x=rng.normal(size=(300, 1, 12, 12)).astype(np.float32), y=rng.integers(0, 3, 300))
    for line in lines:
        with preserved_global_state():
            assert app.main(shlex.split(line)[1:]) == 0, line
    assert (tmp_path / "runs" / "mnist1d-shuffled" / "model" / "model.safetensors").is_file()
    assert (tmp_path / "noise.npz").is_file()
    assert (tmp_path / "runs" / "width" / "sweep.png").is_file()
