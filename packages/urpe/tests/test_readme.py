"""Every Python example in the README runs as written (in order, in one namespace, like a reader's session)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

README = Path(__file__).parents[1] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def test_the_readme_python_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the examples save a model folder in the working directory
    blocks = python_blocks()
    assert len(blocks) == 4
    namespace: dict[str, object] = {}
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)  # the README's own code
    out = namespace["out"]
    assert isinstance(out, torch.Tensor)
    assert (tmp_path / "my-model" / "model.safetensors").exists()
