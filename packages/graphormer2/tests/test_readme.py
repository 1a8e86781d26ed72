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


def readme_block_with(text: str) -> str:
    """The one Python block of the README that contains ``text``."""
    blocks = [block for block in readme_blocks("python") if text in block]
    assert len(blocks) == 1, text
    return blocks[0]


def test_readme_pyg_block_batches_like_from_smiles() -> None:
    """The PyG block as written: OGB-layout ``Data`` → graphormer2 batch, equal to the batch of ``from_smiles``."""
    pytest.importorskip("torch_geometric")
    namespace: dict = {}
    exec(compile(readme_block_with("dataset_from_pyg"), str(README), "exec"), namespace)
    expected = collate(list(from_smiles(["CCO", "c1ccccc1"], [[6.1], [5.2]])))
    for name in ("x", "attn_bias", "spatial_pos", "in_degree", "attn_edge_type", "edge_input", "y"):
        torch.testing.assert_close(getattr(namespace["batch"], name), getattr(expected, name), msg=name)


def test_readme_pcqm4mv2_block_reads_a_raw_layout_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The PCQM4Mv2 block as written, on ``data/pcqm4m-v2/`` holding three molecules, two of them in ``valid``."""
    import gzip

    import numpy as np

    monkeypatch.chdir(tmp_path)
    raw = tmp_path / "data" / "pcqm4m-v2" / "raw"
    raw.mkdir(parents=True)
    with gzip.open(raw / "data.csv.gz", "wt", encoding="utf-8") as f:
        f.write("idx,smiles,homolumogap\n0,CCO,6.5\n1,c1ccccc1,5.0\n2,CC(=O)O,7.25\n")
    split_dict = {"train": np.array([0]), "valid": np.array([1, 2]), "test-dev": np.array([], dtype=np.int64),
                  "test-challenge": np.array([], dtype=np.int64)}  # fmt: skip
    torch.save(split_dict, tmp_path / "data" / "pcqm4m-v2" / "split_dict.pt")
    namespace: dict = {}
    exec(compile(readme_block_with("read_pcqm4mv2"), str(README), "exec"), namespace)
    part = namespace["part"]
    assert part.index.tolist() == [1, 2]
    torch.testing.assert_close(
        part.dataset.targets[:, 0].double(), torch.tensor([5.0, 7.25], dtype=torch.float64)
    )
    assert namespace["seconds"] > 0
    assert namespace["mib"] > 0


def test_readme_oc20_block_loads_batches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The OC20 block as written, on ``is2re/train/data.lmdb`` holding the OC20 tests' three records."""
    pytest.importorskip("lmdb")
    from test_oc20 import SYSTEMS, new_layout, write_lmdb

    monkeypatch.chdir(tmp_path)
    (tmp_path / "is2re" / "train").mkdir(parents=True)
    write_lmdb(
        tmp_path / "is2re" / "train" / "data.lmdb",
        {str(i).encode(): new_layout(s) for i, s in enumerate(SYSTEMS)},
    )
    namespace: dict = {}
    exec(compile(readme_block_with("OC20Dataset"), str(README), "exec"), namespace)
    assert len(namespace["train"]) == 3
    batch = next(iter(namespace["loader"]))
    energies = sorted(batch.energy.tolist())  # shuffled: compare as a set
    assert energies == pytest.approx(sorted(float(s["y_relaxed"]) for s in SYSTEMS))


def test_readme_fairseq_lines_convert_and_export(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The two fairseq lines as written: an official-format checkpoint converts to a folder with equal outputs,
    and a model folder at ``runs/tpsa`` exports to a checkpoint that converts back to equal outputs."""
    from graphormer2 import Graphormer, GraphormerConfig, from_fairseq, to_fairseq

    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    config = GraphormerConfig(num_layers=2, hidden_dim=16, ffn_dim=16, num_heads=4, num_classes=1)
    official = Graphormer(config).eval()
    (tmp_path / "checkpoints").mkdir()
    torch.save(to_fairseq(official), tmp_path / "checkpoints" / "checkpoint_best.pt")
    Graphormer(config).save_pretrained(tmp_path / "runs" / "tpsa")
    batch = collate(list(from_smiles(["CCO", "c1ccccc1O"])))
    with preserved_global_state():
        assert app.main(readme_command("graphormer2 convert-fairseq")[1:]) == 0
        assert app.main(readme_command("graphormer2 export-fairseq")[1:]) == 0
    with torch.no_grad():
        converted = Graphormer.from_pretrained(tmp_path / "graphormer-fairseq").eval()(batch)
        torch.testing.assert_close(converted, official(batch), rtol=1e-6, atol=1e-6)
        exported = from_fairseq(tmp_path / "graphormer2-tpsa.pt")(batch)
        trained = Graphormer.from_pretrained(tmp_path / "runs" / "tpsa").eval()(batch)
        torch.testing.assert_close(exported, trained, rtol=1e-6, atol=1e-6)


def test_readme_train3d_oc20_line_trains(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The README's ``train3d --oc20`` line as written, on ``is2re/train/data.lmdb`` holding 20 small systems."""
    pytest.importorskip("lmdb")
    from test_oc20 import new_layout, system, write_lmdb

    monkeypatch.chdir(tmp_path)
    (tmp_path / "is2re" / "train").mkdir(parents=True)
    write_lmdb(
        tmp_path / "is2re" / "train" / "data.lmdb",
        {str(k).encode(): new_layout(system(k, 4, 2)) for k in range(20)},
    )
    with preserved_global_state():
        assert app.main(readme_command("graphormer2 train3d --oc20")[1:]) == 0
    assert (tmp_path / "runs" / "oc20" / "best" / "model.safetensors").is_file()
