"""The ``urpe`` command line: train and evaluate runs, and exit status 2 with a clear message on bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from papers_common import RunDir
from urpe import TransformerModel
from urpe.cli import app

pytestmark = pytest.mark.usefixtures("restore_torch_determinism")

SMALL = [
    "--d-model", "16", "--num-heads", "2", "--num-layers", "1", "--ffn-dim", "32",
    "--batch-size", "8", "--eval-batches", "2", "--warmup", "5", "--device", "cpu",
]  # fmt: skip


def last_json(text: str) -> dict[str, float]:
    return json.loads(text.strip().splitlines()[-1])


def test_help_lists_the_commands() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "from urpe.cli import main; main()", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    for command in ("train", "evaluate", "reproduce"):
        assert command in done.stdout


def test_train_help_shows_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        app.main(["train", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "--position" in out
    assert "default: 'urpe'" in out


def test_train_then_evaluate_a_synthetic_task(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    status = app.main(
        ["train", "--task", "position-identification", "--position", "urpe", "--steps", "20", "--seq-len", "8",
         "--checkpoint-every", "10", "--out", str(out), *SMALL]
    )  # fmt: skip
    assert status == 0
    printed = last_json(capsys.readouterr().out)
    assert printed["steps"] == 20
    assert 0.0 <= printed["accuracy"] <= 1.0

    run = RunDir(out)
    config = run.read_config()
    assert config["task"] == {"name": "position-identification", "seq_len": 8, "vocab": 10}
    assert config["model"]["position"] == "urpe"
    assert config["model"]["d_model"] == 16
    assert config["schedule"]["steps"] == 20
    records = run.metrics()
    assert [r["step"] for r in records if "loss" in r] == [20]
    assert records[-1]["eval_accuracy"] == printed["accuracy"]
    final = json.loads((out / "final_metrics.json").read_text())
    assert final["accuracy"] == printed["accuracy"]
    assert sorted(p.name for p in run.checkpoints.iterdir()) == [
        "step-00000010.json",
        "step-00000010.safetensors",
        "step-00000020.json",
        "step-00000020.safetensors",
    ]
    assert json.loads((out / "config.json").read_text())["command_line"]["position"] == "urpe"

    status = app.main(
        [
            "evaluate",
            "--checkpoint",
            str(run.checkpoints),
            "--eval-batches",
            "2",
            "--batch-size",
            "8",
            "--device",
            "cpu",
        ]
    )
    assert status == 0
    metrics = last_json(capsys.readouterr().out)
    assert set(metrics) == {"accuracy", "loss"}
    assert 0.0 <= metrics["accuracy"] <= 1.0
    # the same numbers as evaluating the checkpoint in Python
    from urpe import SyntheticTask, evaluate_synthetic

    model = TransformerModel.from_pretrained(run.checkpoints / "step-00000020.json")
    expected = evaluate_synthetic(
        model,
        SyntheticTask("position-identification", 8, 10),
        batches=2,
        batch_size=8,
        seed=0,
        device=torch.device("cpu"),
    )
    assert metrics == pytest.approx(expected)

    # the run directory itself is accepted too (its checkpoints/ folder is used)
    assert (
        app.main(
            [
                "evaluate",
                "--checkpoint",
                str(out),
                "--eval-batches",
                "2",
                "--batch-size",
                "8",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    assert last_json(capsys.readouterr().out) == pytest.approx(expected)


def test_train_and_evaluate_a_language_model(
    tmp_path: Path, text_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "lm"
    status = app.main(["train", "--task", "lm", "--data", str(text_folder), "--steps", "5", "--seq-len", "16",
                       "--position", "rpe", "--out", str(out), *SMALL])  # fmt: skip
    assert status == 0
    printed = last_json(capsys.readouterr().out)
    assert printed["steps"] == 5
    assert printed["perplexity"] > 1.0
    config = RunDir(out).read_config()
    assert config["corpus"]["files"] == 2
    assert config["model"]["causal"] is True
    assert (out / "final_metrics.json").is_file()

    status = app.main(["evaluate", "--checkpoint", str(out / "checkpoints"), "--data", str(text_folder),
                       "--eval-batches", "2", "--batch-size", "4", "--device", "cpu"])  # fmt: skip
    assert status == 0
    assert set(last_json(capsys.readouterr().out)) == {"loss", "perplexity"}

    status = app.main(["evaluate", "--checkpoint", str(out / "checkpoints"), "--device", "cpu"])
    assert status == 2
    assert "--data" in capsys.readouterr().err


def test_config_file_values_are_used(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "settings.json"
    config.write_text(json.dumps({"task": "even-token", "position": "rpe", "steps": 3, "seq_len": 6}))
    out = tmp_path / "run"
    assert app.main(["train", "--config", str(config), "--steps", "4", "--out", str(out), *SMALL]) == 0
    resolved = RunDir(out).read_config()
    assert resolved["task"]["name"] == "even-token"
    assert resolved["task"]["seq_len"] == 6
    assert resolved["model"]["position"] == "rpe"
    assert resolved["schedule"]["steps"] == 4  # flags win over the file
    capsys.readouterr()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--task", "lm"], "--task lm needs --data"),
        (["--task", "lm", "--data", "{missing}"], "no such directory"),
        (["--task", "lm", "--data", "{empty}"], "no files matching"),
        (["--seq-len", "1"], "seq_len"),
        (["--num-heads", "3"], "divisible"),
        (["--num-heads", "0"], "num_heads"),
        (["--batch-size", "0"], "batch_size"),
        (["--rel-mode", "bucket", "--num-buckets", "2"], "num_buckets"),
        (["--seed", "-1"], "--seed"),
    ],
)
def test_bad_input_exits_2_with_a_message(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "empty").mkdir()
    argv = [a.format(missing=tmp_path / "missing", empty=tmp_path / "empty") for a in argv]
    status = app.main(["train", "--steps", "2", *SMALL, "--out", str(tmp_path / "run"), *argv])
    assert status == 2
    err = capsys.readouterr().err
    assert err.startswith("urpe: error:")
    assert message in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "argv", [["train", "--position", "sinusoidal"], ["train", "--steps", "many"], ["fly"]]
)
def test_unparseable_flags_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        app.main(argv)
    assert info.value.code == 2
    assert "error" in capsys.readouterr().err


def test_evaluate_a_missing_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert app.main(["evaluate", "--checkpoint", str(tmp_path / "nothing.json"), "--device", "cpu"]) == 2
    assert "nothing.json" in capsys.readouterr().err
