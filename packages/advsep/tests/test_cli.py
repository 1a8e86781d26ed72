"""The ``advsep`` command line: probe, sweep, saved models and noises, one-line errors on bad input."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from advsep import load_classifier, load_dataset
from advsep.cli import app


def last_json(text: str) -> dict:
    return json.loads(text.strip().splitlines()[-1])


def test_module_entry_point_runs() -> None:
    """``python -m advsep.cli`` is the same program as ``advsep`` (not a silent no-op)."""
    done = subprocess.run([sys.executable, "-m", "advsep.cli", "--help"], capture_output=True, text=True,
                          timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    for command in ("probe", "sweep", "reproduce"):
        assert command in done.stdout


def test_probe_writes_its_run_the_model_and_the_noises(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, noise = tmp_path / "run", tmp_path / "noise.npz"
    args = ["probe", "--dataset", "gaussian", "--width", "512", "--method", "grad_l2", "--eps", "0.5",
            "--out", str(out), "--save-noise", str(noise)]  # fmt: skip
    assert app.main(args) == 0
    result = last_json(capsys.readouterr().out)
    assert result["noise_test_accuracy"] >= 0.95
    assert result["method"] == "grad_l2"
    assert 0 < result["clean_test_accuracy"] <= 1
    assert json.loads((out / "result.json").read_text()) == result
    config = json.loads((out / "config.json").read_text())
    assert config["setup"]["width"] == 512
    assert config["dataset"]["name"] == "gaussian"
    model = load_classifier(out / "model")
    assert model.config.width == 512
    saved = load_dataset(
        noise, standardize_features=False
    )  # the noises are themselves a dataset (.npz layout)
    assert saved.x_train.shape == (2000, 64)
    assert saved.x_test.shape == (1000, 64)
    assert np.allclose(saved.x_train.norm(dim=1).numpy(), 0.5, atol=1e-5)


def test_sweep_writes_a_table_and_a_plot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sweep"
    assert app.main(["sweep", "--dataset", "gaussian", "--over", "width", "--values", "2", "64", "--out",
                     str(out)]) == 0  # fmt: skip
    printed = last_json(capsys.readouterr().out)
    assert [r["value"] for r in printed["rows"]] == [2, 64]
    assert (out / "sweep.png").stat().st_size > 1000
    assert "| 64 |" in (out / "sweep.md").read_text()
    assert len(json.loads((out / "sweep.json").read_text())["rows"]) == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["probe", "--dataset", "gaussian", "--eps", "0"], "--eps must be positive"),
        (["probe", "--dataset", "gaussian", "--lr", "nan"], "--lr must be positive and finite"),
        (["probe", "--dataset", "nowhere.npz"], "nowhere.npz: no such file"),
        (["probe", "--dataset", "svhn"], "unknown dataset 'svhn'"),
        (["sweep", "--dataset", "gaussian", "--over", "width", "--values", "2.5"], "width takes integers"),
    ],
)
def test_bad_input_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, args, message
) -> None:
    monkeypatch.chdir(tmp_path)
    assert app.main(args) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_an_unknown_choice_is_refused_by_the_parser(capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        app.main(["probe", "--method", "deepfool"])
    assert exit_.value.code == 2
    assert "invalid choice: 'deepfool'" in capsys.readouterr().err


def test_labels_out_of_range_in_a_users_file_are_named(tmp_path: Path, capsys) -> None:
    np.savez(tmp_path / "data.npz", x=np.zeros((20, 3)), y=np.arange(20) % 2, x_test=np.zeros((4, 3)),
             y_test=np.array([0, 1, 5, -2]))  # fmt: skip
    assert app.main(["probe", "--dataset", str(tmp_path / "data.npz")]) == 2
    assert "label" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--batch-size", "0"], "--batch-size must be an integer >= 1, got 0"),
        (["--width", "0"], "--width must be an integer >= 1, got 0"),
        (["--model", "mlp", "--depth", "0"], "--depth must be an integer >= 1, got 0"),
        (["--train-epochs", "-1"], "--train-epochs must be an integer >= 0, got -1"),
        (["--steps", "0"], "--steps must be an integer >= 1, got 0"),
        (["--seed", "-1"], "--seed: expected an integer in [0, 2**63)"),
        (["--model", "cnn", "--width", "64"], "--width: the cnn has fixed channels (32, 64)"),
        (["--model", "cnn", "--parameterization", "ntk"], "--parameterization: the cnn has fixed channels"),
        (["--depth", "4"], "--depth 4: the two-layer network has 2 weight layers; use --model mlp"),
    ],
)
def test_each_size_and_count_flag_is_checked_where_it_enters(capsys, args, message) -> None:
    assert app.main(["probe", "--dataset", "gaussian", *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert message in err


@pytest.mark.parametrize(
    ("over", "values", "message"),
    [
        ("width", ["8", "0"], "--values: width takes integers >= 1, got 0"),
        ("epochs", ["-2"], "--values: epochs takes integers >= 0, got -2"),
        ("lr", ["0.1", "-1"], "--values: lr takes positive finite numbers, got -1"),
    ],
)
def test_sweep_values_are_checked_where_they_enter(tmp_path: Path, capsys, over, values, message) -> None:
    out = tmp_path / "sweep"
    assert (
        app.main(["sweep", "--dataset", "gaussian", "--over", over, "--values", *values, "--out", str(out)])
        == 2
    )
    assert message in capsys.readouterr().err
    assert not out.exists()  # nothing half-made is left behind


@pytest.mark.parametrize("flag", ["--quick", "--full", "--device"])
def test_probe_and_sweep_take_no_flags_they_would_ignore(capsys, flag) -> None:
    for command in ("probe", "sweep"):
        with pytest.raises(SystemExit) as exit_:
            app.main([command, flag, *(["cpu"] if flag == "--device" else [])])
        assert exit_.value.code == 2
        assert f"unrecognized arguments: {flag}" in capsys.readouterr().err


def test_the_cnn_records_only_what_it_uses(tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    assert app.main(["probe", "--dataset", "gaussian", "--model", "cnn", "--activation", "tanh", "--out",
                     str(out)]) == 0  # fmt: skip
    result = last_json(capsys.readouterr().out)
    assert (result["width"], result["depth"], result["parameterization"]) == (None, None, "standard")
    model = load_classifier(out / "model")
    assert model.config.activation == "tanh"
    assert any(isinstance(m, torch.nn.Tanh) for m in model.modules())


@pytest.mark.parametrize(
    ("flag", "taken", "target", "message"),
    [
        ("--out", "file", "taken", "--out {tmp}/taken: exists and is not a folder"),
        ("--out", "file", "taken/run", "--out {tmp}/taken/run: {tmp}/taken is a file, not a folder"),
        ("--save-noise", "folder", "taken", "--save-noise {tmp}/taken: is a folder; give the path of a file"),
    ],
)
def test_output_paths_are_checked_before_anything_runs(
    tmp_path: Path, capsys, flag, taken, target, message
) -> None:
    if taken == "file":
        (tmp_path / "taken").write_text("x")
    else:
        (tmp_path / "taken").mkdir()
    assert app.main(["probe", "--dataset", "gaussian", flag, str(tmp_path / target)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert message.format(tmp=tmp_path) in err


def test_a_text_file_named_npz_is_not_an_npz_archive(tmp_path: Path, capsys) -> None:
    (tmp_path / "table.npz").write_text("x1,x2,y\n0.1,0.2,0\n")
    assert app.main(["probe", "--dataset", str(tmp_path / "table.npz")]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'table.npz'}: not an npz archive" in err
    assert "pickle" not in err


def test_one_class_is_refused_and_sparse_labels_are_mapped(tmp_path: Path, capsys) -> None:
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "one.npz", x=rng.normal(size=(40, 5)), y=np.full(40, 3))
    assert app.main(["probe", "--dataset", str(tmp_path / "one.npz")]) == 2
    assert "at least two classes" in capsys.readouterr().err
    y = np.array([0, 100, 200])[np.arange(90) % 3]
    np.savez(tmp_path / "sparse.npz", x=rng.normal(size=(90, 5)) + y[:, None] / 100, y=y)
    out = tmp_path / "run"
    assert (
        app.main(["probe", "--dataset", str(tmp_path / "sparse.npz"), "--width", "64", "--out", str(out)])
        == 0
    )
    result = last_json(capsys.readouterr().out)
    assert result["dataset"]["classes"] == 3  # not 201
    assert result["dataset"]["label_values"] == [0, 100, 200]
    assert json.loads((out / "config.json").read_text())["dataset"]["label_values"] == [0, 100, 200]


def test_users_features_are_standardised_and_the_statistics_saved_with_the_run(
    tmp_path: Path, capsys, caplog: pytest.LogCaptureFixture
) -> None:
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer()  # 30 features from 0.001 to 4,000
    np.savez(tmp_path / "cancer.npz", x=bunch.data, y=bunch.target)
    out = tmp_path / "run"
    args = ["probe", "--dataset", str(tmp_path / "cancer.npz"), "--model", "cnn", "--train-epochs", "3"]
    assert app.main([*args, "--out", str(out)]) == 0
    result = last_json(capsys.readouterr().out)
    assert result["dataset"]["standardized"] is True
    assert result["model_train_accuracy"] > result["majority_class_accuracy"] + 0.1
    assert "no better than always predicting" not in caplog.text
    saved = np.load(out / "standardization.npz")
    train = load_dataset(tmp_path / "cancer.npz", standardize_features=False).x_train.numpy()
    assert np.allclose(saved["mean"], train.mean(0), rtol=1e-4)
    # on the raw scale the same network stays at the majority class, and says so
    assert app.main([*args, "--no-standardize"]) == 0
    result = last_json(capsys.readouterr().out)
    assert result["dataset"]["standardized"] is False
    assert result["model_train_accuracy"] == pytest.approx(result["majority_class_accuracy"])
    assert "no better than always predicting the most common class (0.637)" in caplog.text


def test_a_run_repeats_on_one_core_and_on_two(tmp_path: Path) -> None:
    """With a fixed ``--threads`` the same seed gives the same numbers whatever the number of cores."""
    taskset = shutil.which("taskset")
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if taskset is None or len(cores) < 2:
        pytest.skip("needs taskset and at least two available cores")
    found = []
    for mask in (str(cores[0]), f"{cores[0]},{cores[1]}"):
        out = tmp_path / f"cores-{mask}"
        command = [taskset, "-c", mask, sys.executable, "-m", "advsep.cli", "probe", "--dataset", "gaussian",
                   "--width", "128", "--train-epochs", "2", "--lr", "1", "--threads", "1", "--out", str(out)]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False,
                              env={**os.environ, "HF_HUB_OFFLINE": "1"})  # fmt: skip
        assert done.returncode == 0, done.stderr
        found.append(((out / "result.json").read_text(), (out / "model" / "model.safetensors").read_bytes()))
    assert json.loads(found[0][0])["distance"] > 0  # the network was trained, not only initialised
    assert found[0] == found[1]
