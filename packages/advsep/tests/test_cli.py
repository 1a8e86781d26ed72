"""The ``advsep`` command line: probe, sweep, saved models and noises, one-line errors on bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

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
    saved = load_dataset(noise)  # the noises are themselves a dataset in the .npz layout
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
