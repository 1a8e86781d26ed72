"""The README's examples run as written: its Python blocks in one namespace, its CLI lines in a fresh directory."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import torch

from papers_common import preserved_global_state
from pinn_linf.cli import app

README = Path(__file__).parents[1] / "README.md"


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def cli_lines() -> list[str]:
    """The `pinn-linf` lines of the CLI section (reproduce lines are run by the nox reproduce session)."""
    section = README.read_text(encoding="utf-8").split("## CLI", 1)[1].split("\n## ", 1)[0]
    return [line for block in re.findall(r"```bash\n(.*?)```", section, flags=re.S) for line in block.splitlines()
            if line.startswith("pinn-linf ")]  # fmt: skip


def test_the_python_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    for block in blocks("python"):
        exec(compile(block, str(README), "exec"), namespace)  # the README's own code
    assert namespace["result"].metrics["rel_l2"] < 0.5  # type: ignore[attr-defined]
    assert namespace["u"].shape == (5,)  # type: ignore[attr-defined]
    assert isinstance(namespace["grad"], torch.Tensor)
    assert (tmp_path / "runs" / "hjb10" / "model" / "model.safetensors").is_file()


def test_the_cli_lines_run_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each line's arguments, given to the ``pinn-linf`` program in this process (its entry point is tested apart)."""
    lines = cli_lines()
    assert len(lines) == 5
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PINN_LINF_CACHE", str(tmp_path / "cache"))
    for line in lines:
        with preserved_global_state():
            assert app.main(shlex.split(line)[1:]) == 0, line
    assert (tmp_path / "runs" / "lqg20-adv" / "model" / "config.json").is_file()
    assert (tmp_path / "runs" / "lin10" / "final_metrics.json").is_file()
