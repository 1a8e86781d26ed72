"""The README's commands and code, run as written (read from the README itself, so they cannot drift apart)."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from graphormer2.cli import app
from graphormer2.collate import collate
from graphormer2.datasets import from_smiles
from graphormer2.predictor import load_predictor
from rdkit import Chem
from rdkit.Chem import Descriptors

from papers_common import preserved_global_state

README = Path(__file__).parents[1] / "README.md"
SMILES = ["CCO", "c1ccccc1", "CC(=O)O", "CCN", "C1CCCCC1", "CCCC", "CC(C)O", "OCCO", "c1ccncc1", "CCOC",
          "CC#N", "CCCO", "NCCN", "CC(C)C", "CCCl", "CCBr", "COC", "CC=O", "C=CC", "CCS", "OC(=O)C(=O)O",
          "c1ccoc1", "c1ccsc1", "CCCCO", "CC(N)C", "NC(=O)N", "CCOCC", "C1CC1", "C1CCC1", "CCC#N"]  # fmt: skip


def readme_blocks(language: str) -> list[str]:
    """The README's fenced code blocks of ``language``, in order."""
    return re.findall(rf"```{language}\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def readme_command(start: str) -> list[str]:
    """The one README command line that starts with ``start``, split as a shell would (comments dropped)."""
    lines = [line for block in readme_blocks("bash") for line in block.splitlines() if line.startswith(start)]
    assert len(lines) == 1, lines
    return shlex.split(lines[0], comments=True)


def write_tpsa_csv(path: Path) -> None:
    """``data.csv`` of the README's CLI block: a ``smiles`` column and a target ``y`` (here RDKit's TPSA)."""
    rows = [f"{s},{Descriptors.TPSA(Chem.MolFromSmiles(s)):.4f}" for s in SMILES]
    path.write_text("\n".join(["smiles,y", *rows]) + "\n", encoding="utf-8")


def test_readme_torchrun_line_trains_on_two_processes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The CLI block's ``preprocess`` line, then its ``torchrun`` line exactly as written: two gloo processes train
    the slim Graphormer in step (DDP all-reduces every update, so rank 0 finishing means rank 1 trained too)."""
    monkeypatch.chdir(tmp_path)
    write_tpsa_csv(tmp_path / "data.csv")
    preprocess = readme_command("graphormer2 preprocess")
    with preserved_global_state():
        assert app.main(preprocess[1:]) == 0
    assert "kept 30 molecules" in capsys.readouterr().out

    torchrun = readme_command("torchrun ")
    # the launcher next to this interpreter; CPU workers (gloo) also where a GPU is visible
    env = {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
           "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1", "CI": "1",
           "PYTHONDONTWRITEBYTECODE": "", "PYTHONPYCACHEPREFIX": str(tmp_path / "pycache")}  # fmt: skip
    done = subprocess.run(torchrun, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240,
                          check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    assert done.stderr.count("reading the dataset") == 2, done.stderr[-4000:]  # both ranks loaded data.pt
    run = tmp_path / "runs" / "ddp"
    config = json.loads((run / "config.json").read_text(encoding="utf-8"))
    assert config["data"] == {"train": 24, "valid": 3, "world_size": 2}
    assert (config["model"]["num_layers"], config["model"]["hidden_dim"]) == (12, 80)  # --preset slim
    summary = json.loads(done.stdout.strip().splitlines()[-1])  # printed by rank 0 alone
    assert summary == json.loads((run / "test_metrics.json").read_text(encoding="utf-8"))
    assert summary["steps"] == 10  # 10 epochs (the default) of one batch per rank
    assert (run / "best" / "model.safetensors").is_file()

    # the CLI block's predict line on that model (placed where the line looks for it), in the target's units
    shutil.copytree(run, tmp_path / "runs" / "tpsa")
    predict = readme_command("graphormer2 predict")
    with preserved_global_state():
        assert app.main(predict[1:]) == 0
    printed = [line.split("\t") for line in capsys.readouterr().out.strip().splitlines()]
    expected = load_predictor(run, device="cpu").predict(["CCO", "c1ccccc1O"])
    assert [smiles for smiles, _ in printed] == ["CCO", "c1ccccc1O"]
    for (_, cell), value in zip(printed, expected["y"].tolist(), strict=True):
        assert float(cell.removeprefix("y=")) == pytest.approx(value, rel=1e-5)


def test_readme_quickstart_trains_saves_and_predicts_in_target_units(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The quickstart block as written on a 30-molecule ``molecules.csv``: the predictor loaded back from the
    saved folder gives the model's outputs mapped to target units, μ + σ·ŷ."""
    monkeypatch.chdir(tmp_path)
    rows = [f"{s},{Descriptors.TPSA(Chem.MolFromSmiles(s)):.4f}" for s in SMILES]
    (tmp_path / "molecules.csv").write_text(
        "\n".join(["smiles,homo_lumo_gap", *rows]) + "\n", encoding="utf-8"
    )
    quickstart = readme_blocks("python")[0]
    namespace: dict = {}
    with preserved_global_state():
        exec(compile(quickstart, str(README), "exec"), namespace)
    printed = capsys.readouterr().out
    model, objective, predictions = namespace["model"], namespace["objective"], namespace["predictions"]
    with torch.no_grad():
        raw = model.eval()(collate(list(from_smiles(["CCO", "c1ccccc1O"]))))
    expected = objective.predict(raw)
    assert predictions.target_names == ["homo_lumo_gap"]
    assert predictions.smiles == ["CCO", "c1ccccc1O"]
    torch.testing.assert_close(predictions.values, expected.double(), rtol=1e-5, atol=1e-6)
    assert printed.startswith("tensor([")
    torch.testing.assert_close(predictions["homo_lumo_gap"], predictions.values[:, 0])
    # the bare model's outputs are standardised: the scaling is what the predictor adds
    assert not torch.allclose(predictions.values, raw.double(), atol=1.0)
