"""The README's examples run as written: its Python block, its CLI lines and its torchrun line."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import write_documents

from metro_lm.cli import app
from papers_common import preserved_global_state, read_json

README = Path(__file__).parents[1] / "README.md"
TEXT = README.read_text(encoding="utf-8")


def section(name: str) -> str:
    return TEXT.split(f"## {name}", 1)[1].split("\n## ", 1)[0]


def bash_lines(name: str, prefix: str) -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", section(name), flags=re.S)
    return [
        line.split("  #")[0] for block in blocks for line in block.splitlines() if line.startswith(prefix)
    ]


def write_sst2(folder: Path) -> None:
    folder.mkdir(parents=True)
    for name, count in (("train.tsv", 40), ("dev.tsv", 12)):
        rows = ["sentence\tlabel"] + [
            f"a {'good' if i % 2 else 'bad'} film {i}\t{i % 2}" for i in range(count)
        ]
        (folder / name).write_text("\n".join(rows) + "\n", encoding="utf-8")


def test_the_python_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    classes, pretraining = re.findall(r"```python\n(.*?)```", TEXT, flags=re.S)
    with preserved_global_state():
        exec(compile(classes, str(README), "exec"), namespace)  # the README's own code
    assert type(namespace["generator"]).__name__ == "MetroForMaskedLM"
    assert len(namespace["generator"].generator.layer) == 2  # type: ignore[attr-defined]
    assert type(namespace["encoder"]).__name__ == "MetroModel"
    with preserved_global_state():
        exec(compile(pretraining, str(README), "exec"), namespace)
    assert namespace["hidden"].shape[-1] == 64  # type: ignore[attr-defined]
    assert namespace["tuned"].metrics["accuracy"] >= 0.9  # type: ignore[attr-defined]
    assert read_json(tmp_path / "runs" / "quickstart" / "config.json")["settings"]["steps"] == 30


def test_the_cli_lines_run_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lines = bash_lines("CLI", "metro-lm ")
    assert len(lines) == 7
    monkeypatch.chdir(tmp_path)
    write_documents(tmp_path / "my_corpus", files=6, sentences=120)  # the user's own text
    write_sst2(tmp_path / "glue" / "SST-2")
    for line in lines:
        with preserved_global_state():
            assert app.main(shlex.split(line)[1:]) == 0, line
    assert len((tmp_path / "predictions.txt").read_text().split()) == 12
    assert (
        read_json(tmp_path / "runs" / "electra" / "model" / "config.json")["position_embedding"] == "absolute"
    )


def test_the_torchrun_line_runs_as_written(tmp_path: Path) -> None:
    (line,) = bash_lines("CLI", "torchrun ")
    write_documents(tmp_path / "my_corpus", files=6, sentences=120)
    argv = shlex.split(line)
    command = [sys.executable, "-m", "torch.distributed.run", *argv[1:]]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    subprocess.run([sys.executable, "-m", "metro_lm.cli", "tokenizer", "--files", "my_corpus", "--vocab-size", "2000",
                    "--out", "tok"], cwd=tmp_path, env=env, check=True, capture_output=True)  # fmt: skip
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    config = read_json(tmp_path / "runs" / "ddp" / "config.json")
    assert config["world_size"] == 2
    assert (tmp_path / "runs" / "ddp" / "model" / "model.safetensors").is_file()
