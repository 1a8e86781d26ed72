"""The ``graphormer2`` command line on tiny inputs: preprocess, train (2D, GIN, 3D), predict, resume, bad input.

Numbers the commands print are checked against the library called directly on the same weights and molecules.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
from graphormer2.atoms import collate_atoms
from graphormer2.cli import app
from graphormer2.collate import collate
from graphormer2.datasets import MoleculeDataset, from_smiles, split
from graphormer2.gin import GIN, GINConfig
from graphormer2.model import Graphormer
from graphormer2.model3d import Graphormer3D, Graphormer3DConfig
from graphormer2.predictor import load_predictor
from graphormer2.relaxation import relaxation_task
from rdkit import Chem
from rdkit.Chem import AllChem

from papers_common import (
    configure_logging,
    latest_checkpoint,
    preserved_global_state,
    pretrained_extra,
    read_jsonl,
    save_checkpoint,
)

torch.set_num_threads(1)

MOLECULES = [
    ("CCO", 1.0, 0), ("c1ccccc1", 2.0, 1), ("CC(=O)O", 3.0, 0), ("CCN", 1.5, 1), ("C1CCCCC1", 2.5, 0),
    ("not_a_smiles", 1.0, 1), ("CCCC", 4.0, 0), ("CC(C)O", 3.5, 1), ("OCCO", 0.5, 0), ("c1ccncc1", 2.2, 1),
    ("CCOC", 1.1, 0), ("CC#N", 0.3, 1), ("CCCO", 2.8, 0), ("NCCN", 1.9, 1), ("CC(C)C", 3.1, 0),
]  # fmt: skip
TINY = ["--layers", "1", "--hidden-dim", "16", "--heads", "2", "--ffn-dim", "16", "--batch-size", "4",
        "--device", "cpu", "--split", "0.6", "0.2", "0.2"]  # fmt: skip
TINY_3D = ["--layers", "1", "--blocks", "1", "--hidden-dim", "16", "--heads", "2", "--kernels", "8",
           "--batch-size", "2", "--epochs", "2", "--device", "cpu", "--split", "0.5", "0.25", "0.25"]  # fmt: skip


@pytest.fixture(autouse=True)
def _restore_torch_determinism() -> Iterator[None]:
    with preserved_global_state():
        yield


def write_csv(path: Path) -> Path:
    lines = ["smiles,y,active"] + [f"{smiles},{y},{active}" for smiles, y, active in MOLECULES]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def last_json(text: str) -> dict:
    return json.loads(text.strip().splitlines()[-1])


def prediction_lines(text: str) -> dict[str, dict[str, float]]:
    """``smiles<TAB>name=value...`` lines -> {smiles: {name: value}}."""
    table = {}
    for line in text.strip().splitlines():
        smiles, *cells = line.split("\t")
        table[smiles] = {name: float(value) for name, value in (cell.split("=") for cell in cells)}
    return table


def direct_outputs(model: torch.nn.Module, smiles: list[str]) -> torch.Tensor:
    """``model`` on freshly featurised ``smiles`` (default settings: max_nodes 128, L = 5), in eval mode."""
    model.eval()
    with torch.no_grad():
        return model(collate(list(from_smiles(smiles))))


@pytest.mark.parametrize("command", ["preprocess", "train", "train3d", "predict", "reproduce"])
def test_every_command_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        app.main([command, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert f"graphormer2 {command}" in text
    expected = {"preprocess": "--rejects", "train": "--pre-ln", "train3d": "--deltapos-projection",
                "predict": "--smiles", "reproduce": "--full"}  # fmt: skip
    assert expected[command] in text


def test_preprocess_counts_skips_and_writes_rejects(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = write_csv(tmp_path / "mols.csv")
    out, rejects = tmp_path / "mols.pt", tmp_path / "rejects.csv"
    args = ["preprocess", "--csv", str(csv), "--target-col", "y", "active", "--out", str(out)]
    assert app.main([*args, "--rejects", str(rejects)]) == 0
    assert "kept 14 molecules, skipped 1 (invalid_smiles: 1)" in capsys.readouterr().out
    assert rejects.read_text(encoding="utf-8").splitlines() == [
        "row,smiles,reason",
        "6,not_a_smiles,invalid_smiles",
    ]
    dataset = MoleculeDataset.load(out)
    assert dataset.target_names == ["y", "active"]
    assert dataset.smiles == [s for s, _, _ in MOLECULES if s != "not_a_smiles"]
    assert dataset.targets[1].tolist() == [2.0, 1.0]

    assert app.main([*args, "--strict"]) == 2
    assert "mols.csv:7 (row 6)" in capsys.readouterr().err


def test_train_on_a_dataset_file_then_predict(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv = write_csv(tmp_path / "mols.csv")
    data, out = tmp_path / "mols.pt", tmp_path / "run"
    assert app.main(["preprocess", "--csv", str(csv), "--target-col", "y", "active", "--out", str(data)]) == 0
    capsys.readouterr()
    assert app.main(["train", "--dataset", str(data), "--out", str(out), "--epochs", "2", *TINY]) == 0
    summary = last_json(capsys.readouterr().out)
    assert summary["sizes"] == {"train": 8, "valid": 2, "test": 4}
    assert summary["steps"] == 4  # 2 epochs of 2 batches of 4
    assert json.loads((out / "test_metrics.json").read_text()) == summary
    config = json.loads((out / "config.json").read_text())
    assert config["model_class"] == "Graphormer"
    assert config["extra"]["target_names"] == ["y", "active"]
    assert config["model"]["norm_first"] is False  # Post-LN by default

    # the model learns targets standardised with the training split's mean and deviation (recorded in the run);
    # the reported test MAE is that of the best weights on the seeded test split, in target units
    dataset = MoleculeDataset.load(data)
    train_part, _, test_part = split(dataset, (0.6, 0.2, 0.2), seed=0)
    train_targets = dataset.targets[torch.tensor(train_part.indices)]
    mean, std = train_targets.double().nanmean(0), train_targets.double().std(0)
    assert config["extra"]["target_mean"] == pytest.approx(mean.tolist())
    assert config["extra"]["target_std"] == pytest.approx(std.tolist())
    model = Graphormer.from_pretrained(out / "best").eval()
    items = [test_part[i] for i in range(len(test_part))]
    with torch.no_grad():
        predicted = model(collate(items)).double() * std + mean
        errors = (predicted - torch.stack([item.y for item in items])).abs()
    assert summary["test_mae"] == pytest.approx(errors.mean().item(), rel=1e-5)

    molecules = ["CCO", "c1ccccc1"]
    assert app.main(["predict", "--checkpoint", str(out), "--smiles", *molecules, "--device", "cpu"]) == 0
    printed = prediction_lines(capsys.readouterr().out)
    expected = direct_outputs(model, molecules).double() * std + mean
    assert list(printed) == molecules
    for row, smiles in enumerate(molecules):
        assert printed[smiles]["y"] == pytest.approx(expected[row, 0].item(), rel=1e-5, abs=1e-7)
        assert printed[smiles]["active"] == pytest.approx(expected[row, 1].item(), rel=1e-5, abs=1e-7)
    # the library call behind predict: load_predictor on the run directory, in the same units
    predictions = load_predictor(out, device="cpu").predict(molecules)
    assert predictions.target_names == ["y", "active"]
    torch.testing.assert_close(predictions.values, expected, rtol=1e-5, atol=1e-6)

    # one invalid SMILES among several is skipped with a note; alone it is an error that names it
    assert app.main(["predict", "--checkpoint", str(out), "--smiles", "CCO", "C1CC(", "--device", "cpu"]) == 0
    captured = capsys.readouterr()
    assert list(prediction_lines(captured.out)) == ["CCO"]
    assert "skipped smiles[1] 'C1CC('" in captured.err
    assert app.main(["predict", "--checkpoint", str(out), "--smiles", "C1CC(", "--device", "cpu"]) == 2
    assert "'C1CC('" in capsys.readouterr().err

    # a run of graphormer2 0.1.0 kept a training checkpoint in best/ and the settings in the run's config.json
    old = tmp_path / "old-run"
    shutil.copytree(out, old)
    shutil.rmtree(old / "best")
    save_checkpoint(old / "best", summary["best_step"], model, config=config, rng=False)
    assert app.main(["predict", "--checkpoint", str(old), "--smiles", *molecules, "--device", "cpu"]) == 0
    assert prediction_lines(capsys.readouterr().out) == printed
    torch.testing.assert_close(load_predictor(old).predict(molecules).values, expected, rtol=1e-5, atol=1e-6)

    # best/ alone is the model: it predicts in target units after the run and the data are gone
    best = out / "best"
    assert sorted(p.name for p in best.iterdir()) == ["config.json", "model.safetensors"]
    extra = pretrained_extra(best)
    assert extra["step"] == summary["best_step"]
    assert extra["valid_mae"] == summary["valid_mae"]
    assert (extra["target_names"], extra["objective"]) == (["y", "active"], "regression")
    assert (extra["max_nodes"], extra["multi_hop_max_dist"]) == (128, 5)
    assert extra["target_mean"] == pytest.approx(mean.tolist())
    assert extra["target_std"] == pytest.approx(std.tolist())
    moved = tmp_path / "elsewhere" / "tpsa-model"
    shutil.copytree(best, moved)
    for gone in (out, old, data, csv):
        shutil.rmtree(gone) if gone.is_dir() else gone.unlink()
    assert app.main(["predict", "--checkpoint", str(moved), "--smiles", *molecules, "--device", "cpu"]) == 0
    assert prediction_lines(capsys.readouterr().out) == printed


def test_gin_classification_predicts_probabilities(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = write_csv(tmp_path / "mols.csv")
    out = tmp_path / "gin"
    args = [
        "train",
        "--csv",
        str(csv),
        "--target-col",
        "active",
        "--model",
        "gin",
        "--objective",
        "classification",
        "--layers",
        "2",
        "--hidden-dim",
        "8",
        "--epochs",
        "1",
        "--batch-size",
        "5",
        "--device",
        "cpu",
        "--split",
        "0.4",
        "0.3",
        "0.3",
        "--out",
        str(out),
    ]  # both classes in valid and test
    assert app.main([*args, "--batch-size", "4"]) == 2  # 5 training molecules: a last batch of 1 graph
    assert "needs 2 graphs or more per batch" in capsys.readouterr().err
    assert app.main(args) == 0
    captured = capsys.readouterr()
    assert "skipped 1 (invalid_smiles: 1)" in captured.err
    summary = last_json(captured.out)
    assert 0.0 <= summary["test_auc"] <= 1.0
    assert summary["test_one_minus_auc"] == pytest.approx(1.0 - summary["test_auc"])
    assert json.loads((out / "config.json").read_text())["model_class"] == "GIN"

    assert app.main(["predict", "--checkpoint", str(out), "--smiles", "CCO", "CCN", "--device", "cpu"]) == 0
    printed = prediction_lines(capsys.readouterr().out)
    logits = direct_outputs(GIN.from_pretrained(out / "best"), ["CCO", "CCN"])
    assert [printed[s]["active"] for s in ("CCO", "CCN")] == pytest.approx(
        torch.sigmoid(logits[:, 0]).tolist(), rel=1e-5
    )
    assert pretrained_extra(out / "best")["objective"] == "classification"
    moved = shutil.copytree(out / "best", tmp_path / "gin-model")
    shutil.rmtree(out)
    args = [
        "predict",
        "--checkpoint",
        str(moved / "config.json"),
        "--smiles",
        "CCO",
        "CCN",
        "--device",
        "cpu",
    ]
    assert app.main(args) == 0
    assert prediction_lines(capsys.readouterr().out) == printed


def test_running_train_again_continues_the_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv = write_csv(tmp_path / "mols.csv")
    out = tmp_path / "run"
    args = ["train", "--csv", str(csv), "--target-col", "y", "--out", str(out), "--max-steps", "4",
            "--eval-every", "2", "--log-every", "1", *TINY]  # fmt: skip
    assert app.main(args) == 0
    first = last_json(capsys.readouterr().out)
    log = read_jsonl(out / "metrics.jsonl")

    assert app.main(args) == 0  # finished: nothing is trained again and the same best weights are tested
    assert last_json(capsys.readouterr().out)["test_mae"] == first["test_mae"]
    assert read_jsonl(out / "metrics.jsonl") == log

    # as if interrupted after step 2: the run resumes from that checkpoint instead of starting over
    newest = latest_checkpoint(out / "checkpoints")
    assert newest is not None
    assert newest.name == "step-00000004.json"
    newest.unlink()
    newest.with_suffix(".safetensors").unlink()
    assert app.main(args) == 0
    again = last_json(capsys.readouterr().out)
    resumed = read_jsonl(out / "metrics.jsonl")
    assert [r for r in resumed if r["step"] <= 2] == [r for r in log if r["step"] <= 2]  # kept, not re-logged
    assert [r["step"] for r in resumed] == [r["step"] for r in log]
    losses = [r["loss"] for r in log if "loss" in r]
    assert [r["loss"] for r in resumed if "loss" in r] == pytest.approx(losses, rel=1e-6)
    assert again["test_mae"] == pytest.approx(first["test_mae"], rel=1e-6)

    changed = [*args[:-8], "--lr", "1e-3", *args[-8:]]
    assert app.main(changed) == 2
    assert "other settings" in capsys.readouterr().err


def test_train3d_relaxation_reports_the_best_weights_test_mae(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache, out = tmp_path / "cache", tmp_path / "run3d"
    args = ["train3d", "--task", "relaxation", "--molecules", "8", "--energy-target", "relaxation",
            "--cache-dir", str(cache), "--out", str(out)]  # fmt: skip
    assert app.main([*args, *TINY_3D]) == 0
    summary = last_json(capsys.readouterr().out)
    assert summary["sizes"] == {"train": 4, "valid": 2, "test": 2}
    assert 0.0 <= summary["test_ewt"] <= 1.0
    config = json.loads((out / "config.json").read_text())
    assert config["extra"]["node_loss"] is True
    assert config["model"]["deltapos_projection"] == "shared"
    assert config["extra"]["data"]["energy_target"] == "relaxation"

    task = relaxation_task(8, seed=0, cache_dir=cache, energy_target="relaxation", split=(0.5, 0.25))
    assert task.from_cache
    # best/ alone predicts in kcal/mol: the target standardisation is part of the saved config
    moved = shutil.copytree(out / "best", tmp_path / "relaxation-model")
    shutil.rmtree(out)
    assert sorted(p.name for p in moved.iterdir()) == ["config.json", "model.safetensors"]
    extra = pretrained_extra(moved)
    assert (extra["step"], extra["valid_energy_mae"]) == (summary["best_step"], summary["valid_energy_mae"])
    assert extra["data"]["energy_target"] == "relaxation"
    assert extra["node_loss"] is True
    model = Graphormer3D.from_pretrained(moved).eval()
    assert model.config.energy_mean == pytest.approx(task.standardisation.energy_mean)
    batch = collate_atoms(task.test)
    energy, _ = model.predict(batch)
    expected = (energy.double() - batch.energy.double()).abs().mean().item()
    assert summary["test_energy_mae"] == pytest.approx(expected, rel=1e-5)
    baseline = (batch.energy.double() - torch.tensor([i.energy for i in task.train]).double().mean()).abs()
    assert summary["test_energy_mae_of_mean_predictor"] == pytest.approx(baseline.mean().item())


def write_sdf(path: Path, *, three_d: bool = True) -> Path:
    writer = Chem.SDWriter(str(path))
    for smiles in ("CCO", "CCN", "CC(=O)O", "CCCC", "OCCO", "CC#N"):
        mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
        if three_d:
            AllChem.EmbedMolecule(mol, randomSeed=0)
        else:
            AllChem.Compute2DCoords(mol)
        mol.SetProp("E", str(0.5 * mol.GetNumAtoms()))
        writer.write(mol)
    writer.close()
    return path


def test_train3d_on_an_sdf_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sdf, out = write_sdf(tmp_path / "mols.sdf"), tmp_path / "run"
    assert app.main(["train3d", "--sdf", str(sdf), "--energy-prop", "E", "--out", str(out), *TINY_3D]) == 0
    summary = last_json(capsys.readouterr().out)
    assert summary["sizes"] == {"train": 3, "valid": 1, "test": 2}
    assert (
        json.loads((out / "config.json").read_text())["extra"]["node_loss"] is False
    )  # no relaxed positions

    flat = write_sdf(tmp_path / "flat.sdf", three_d=False)
    assert (
        app.main(
            ["train3d", "--sdf", str(flat), "--energy-prop", "E", "--out", str(tmp_path / "f"), *TINY_3D]
        )
        == 2
    )
    assert "needs 3D coordinates" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--task", "tpsa"],
            "exactly one data source: --task, --dataset, --csv or --sdf (got --task, --csv)",
        ),
        ([], "--csv needs at least one --target-col"),
        (["--target-col", "nope"], "no column 'nope'; the header has: smiles, y, active"),
        (["--target-col", "y", "--target-prop", "P"], "--target-prop names SD properties"),
        (["--target-col", "y", "--split", "0.5", "0.5"], "--split: give three non-negative fractions"),
        (["--target-col", "y", "--split", "0.5", "0.5", "0"], "leaves the test part empty"),
        (["--target-col", "y", "--objective", "classification"], "targets that are 0 or 1"),
        (["--target-col", "y", "--model", "gin", "--heads", "4"], "--heads apply to --model graphormer only"),
        (["--target-col", "y", "--hidden-dim", "10", "--heads", "4"], "not a multiple of num_heads=4"),
    ],
)
def test_bad_train_input_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    csv = write_csv(tmp_path / "mols.csv")
    assert (
        app.main(["train", "--csv", str(csv), "--out", str(tmp_path / "run"), "--device", "cpu", *extra]) == 2
    )
    err = capsys.readouterr().err
    assert message in err
    assert err.strip().splitlines()[-1].startswith("graphormer2: error: ")
    assert "Traceback" not in err
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_bad_files_and_run_directories_are_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    garbage = tmp_path / "garbage.pt"
    garbage.write_text("smiles,y\nCCO,1\n", encoding="utf-8")
    assert app.main(["train", "--dataset", str(garbage), "--out", str(tmp_path / "run")]) == 2
    assert "not a dataset file written by `graphormer2 preprocess`" in capsys.readouterr().err
    assert app.main(["train", "--dataset", str(tmp_path / "missing.pt"), "--out", str(tmp_path / "run")]) == 2
    assert "no such file" in capsys.readouterr().err

    assert app.main(["predict", "--checkpoint", str(tmp_path), "--smiles", "CCO"]) == 2
    assert (
        "not a run directory of `graphormer2 train` nor a saved model (no config.json)"
        in capsys.readouterr().err
    )
    (tmp_path / "config.json").write_text(
        json.dumps({"model_class": "Graphormer", "extra": {}}), encoding="utf-8"
    )
    assert app.main(["predict", "--checkpoint", str(tmp_path), "--smiles", "CCO"]) == 2
    assert "no best weights" in capsys.readouterr().err
    assert app.main(["predict", "--checkpoint", str(tmp_path)]) == 2
    assert "give molecules to predict" in capsys.readouterr().err
    # saved models: one without prediction settings, and one that predict does not handle
    folder = GIN(GINConfig(num_layers=1, hidden_dim=4)).save_pretrained(tmp_path / "gin")
    assert app.main(["predict", "--checkpoint", str(folder), "--smiles", "CCO"]) == 2
    assert "has no objective, target_names, max_nodes, multi_hop_max_dist" in capsys.readouterr().err
    config = Graphormer3DConfig(
        layers=1, blocks=1, embed_dim=4, ffn_embed_dim=4, attention_heads=1, num_kernel=2
    )
    folder = Graphormer3D(config).save_pretrained(tmp_path / "g3d")
    assert app.main(["predict", "--checkpoint", str(folder), "--smiles", "CCO"]) == 2
    assert (
        "a 'Graphormer3D' model; predicting from molecules handles the 2D models" in capsys.readouterr().err
    )

    assert app.main(["train3d", "--out", str(tmp_path / "r")]) == 2
    assert (
        "exactly one data source: --task relaxation, --sdf FILE --energy-prop NAME or --oc20 LMDB"
        in capsys.readouterr().err
    )
    assert app.main(["train3d", "--sdf", str(tmp_path / "none.sdf"), "--out", str(tmp_path / "r")]) == 2
    assert "--sdf needs --energy-prop" in capsys.readouterr().err


def test_reproduce_without_its_extra_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    find_spec = importlib.util.find_spec

    def without_matplotlib(name: str, *args: object, **kwargs: object) -> object:
        return None if name == "matplotlib" else find_spec(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", without_matplotlib)
    out = tmp_path / "report"
    assert app.main(["reproduce", "--out", str(out)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        "graphormer2: error: 'graphormer2 reproduce' needs matplotlib from the 'reproduce' extra: "
        "pip install 'graphormer2[reproduce]'\n"
    )
    assert not out.exists()


@pytest.fixture
def stderr_log(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], None]]:
    """Progress records on (captured, not a terminal) stderr, one per update, as a redirected run would show.

    Call it in the test body: it sets pytest's logging handlers aside (pytest adds them as each phase starts), so
    that ``App.main`` installs its stderr handler.
    """
    monkeypatch.setenv("PAPERS_PROGRESS_INTERVAL", "0")
    monkeypatch.delenv("PAPERS_PROGRESS", raising=False)
    yield lambda: monkeypatch.setattr(logging.getLogger(), "handlers", [])
    configure_logging()  # not quiet again; the stderr handler goes with the set-aside list


def test_train_logs_progress_when_stderr_is_not_a_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], stderr_log: Callable[[], None]
) -> None:
    stderr_log()
    csv = write_csv(tmp_path / "mols.csv")
    args = ["train", "--csv", str(csv), "--target-col", "y", "--max-steps", "3", "--eval-every", "3", *TINY]
    assert app.main([*args, "--out", str(tmp_path / "run")]) == 0
    logged = capsys.readouterr().err
    for count in ("1/3 (33%)", "2/3 (67%)", "3/3 (100%)"):
        assert any(f"train: {count}" in line and "loss=" in line for line in logged.splitlines()), logged
    assert "validate at step 3: 1/1 (100%)" in logged  # the last record carries the validation metric
    assert "mae=" in logged
    assert "test: 1/1 (100%)" in logged
    assert "preprocessing" in logged
    assert "graphormer2: note: kept 14 molecules" in logged

    assert app.main([*args, "--out", str(tmp_path / "quiet"), "--quiet"]) == 0
    quiet = capsys.readouterr()
    assert "train:" not in quiet.err, quiet.err
    assert "elapsed" not in quiet.err, quiet.err
    assert last_json(quiet.out)["steps"] == 3


def test_python_dash_m_runs_the_command_line() -> None:
    """``python -m graphormer2.cli`` (and so ``torchrun -m graphormer2.cli``, as the README shows) runs the program."""
    done = subprocess.run([sys.executable, "-m", "graphormer2.cli", "--version"], capture_output=True, text=True,
                          timeout=300, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("graphormer2 ")


@pytest.mark.skipif(
    shutil.which("taskset") is None or len(os.sched_getaffinity(0)) < 2,
    reason="needs taskset and at least 2 available cores",
)
def test_a_run_repeats_exactly_on_one_core_and_on_two(tmp_path: Path) -> None:
    """``train --threads 1`` under ``taskset -c 0`` and under ``taskset -c 0,1``: the same seed writes the same
    metrics, test errors and weights, whatever the number of cores (only wall-clock times differ)."""
    # the second process reuses the bytecode the first one compiled, also where bytecode writing is turned off
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": "", "PYTHONDONTWRITEBYTECODE": "",
           "PYTHONPYCACHEPREFIX": str(tmp_path / "pycache")}  # fmt: skip
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):  # only --threads decides
        env.pop(variable, None)
    written = []
    for cores in ("0", "0,1"):
        out = tmp_path / f"cores-{cores}"
        command = ["taskset", "-c", cores, sys.executable, "-m", "graphormer2.cli", "train", "--quiet",
                   "--task", "tpsa", "--limit", "40", "--epochs", "2", *TINY[:8], "--batch-size", "8",
                   "--device", "cpu", "--threads", "1", "--out", str(out)]  # fmt: skip
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, done.stderr[-2000:]
        test = json.loads((out / "test_metrics.json").read_text(encoding="utf-8"))
        test.pop("seconds")
        metrics = [{k: v for k, v in row.items() if k != "time"} for row in read_jsonl(out / "metrics.jsonl")]
        written.append((test, metrics, (out / "best" / "model.safetensors").read_bytes()))
    assert written[0][0]["steps"] == 8
    assert written[0] == written[1]


def test_train3d_on_an_oc20_lmdb_only_with_trust_pickle(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``train3d --oc20``: refused without ``--trust-pickle`` (one line naming it, nothing unpickled); with it, the
    IS2RE records train with the displacement loss on and the run records its data source."""
    pytest.importorskip("lmdb")
    from test_oc20 import new_layout, system, write_lmdb

    path = tmp_path / "is2re.lmdb"
    write_lmdb(path, {str(k).encode(): new_layout(system(k, 4, 2)) for k in range(8)})
    out = tmp_path / "run"
    assert app.main(["train3d", "--oc20", str(path), "--out", str(out), *TINY_3D]) == 2
    err = capsys.readouterr().err
    assert "--trust-pickle" in err
    assert len(err.strip().splitlines()) == 1
    assert app.main(["train3d", "--oc20", str(path), "--trust-pickle", "--out", str(out), *TINY_3D]) == 0
    summary = last_json(capsys.readouterr().out)
    assert summary["sizes"] == {"train": 4, "valid": 2, "test": 2}
    extra = json.loads((out / "config.json").read_text())["extra"]
    assert extra["node_loss"] is True
    assert extra["data"]["task"] == "is2re"
