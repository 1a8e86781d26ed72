"""The ``urpe`` command line: train and evaluate runs, and exit status 2 with a clear message on bad input."""

from __future__ import annotations

import importlib.util
import json
import logging
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from papers_common import RunDir, configure_logging, pretrained_extra
from urpe import TransformerModel
from urpe.cli import app

pytestmark = pytest.mark.usefixtures("restore_torch_determinism")

SMALL = [
    "--d-model", "16", "--num-heads", "2", "--num-layers", "1", "--ffn-dim", "32",
    "--batch-size", "8", "--eval-batches", "2", "--warmup", "5", "--device", "cpu",
]  # fmt: skip


def last_json(text: str) -> dict[str, float]:
    return json.loads(text.strip().splitlines()[-1])


def evaluate(checkpoint: Path, *extra: str) -> list[str]:
    return ["evaluate", "--checkpoint", str(checkpoint), "--batch-size", "8", "--device", "cpu", *extra]


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

    # the trained model is saved as config.json + model.safetensors with the task it needs
    saved = out / "model"
    assert sorted(p.name for p in saved.iterdir()) == ["config.json", "model.safetensors"]
    extra = pretrained_extra(saved)
    assert extra["kind"] == "synthetic"
    assert extra["task"] == {"name": "position-identification", "seq_len": 8, "vocab": 10}
    assert extra["steps"] == 20
    assert extra["metrics"] == pytest.approx(printed_metrics(printed))

    # that folder alone is enough: copy it elsewhere, delete the run, evaluate the copy
    shutil.copytree(saved, tmp_path / "elsewhere")
    shutil.rmtree(out)
    assert app.main(evaluate(tmp_path / "elsewhere", "--eval-batches", "2")) == 0
    assert last_json(capsys.readouterr().out) == pytest.approx(expected)


def printed_metrics(printed: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in printed.items() if k not in ("steps", "seconds")}


def test_a_run_directory_of_0_1_0_without_a_model_folder_evaluates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    argv = ["train", "--task", "even-token", "--steps", "4", "--seq-len", "6", "--out", str(out), *SMALL]
    assert app.main(argv) == 0
    capsys.readouterr()
    assert app.main(evaluate(out / "model", "--eval-batches", "2")) == 0
    from_model = last_json(capsys.readouterr().out)
    shutil.rmtree(out / "model")  # what 0.1.0 left: config.json, metrics and checkpoints/
    assert app.main(evaluate(out, "--eval-batches", "2")) == 0
    assert last_json(capsys.readouterr().out) == pytest.approx(from_model)


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

    # the saved folder holds the tokenizer and the text split; with the run and the training text moved away,
    # a copy of it evaluates the moved text exactly as the run's own folder did
    extra = pretrained_extra(out / "model")
    assert extra["kind"] == "language-model"
    assert extra["tokenizer"] == {"type": "bytes", "vocab_size": 256}
    assert extra["text"] == {
        "pattern": "*.txt",
        "valid_fraction": 0.1,
        "skip_prefixes": ["METADATA", "README"],
    }
    assert app.main(evaluate(out, "--data", str(text_folder), "--eval-batches", "2")) == 0
    before = last_json(capsys.readouterr().out)
    shutil.copytree(out / "model", tmp_path / "elsewhere")
    shutil.move(text_folder, tmp_path / "moved-text")
    shutil.rmtree(out)
    argv = evaluate(tmp_path / "elsewhere", "--data", str(tmp_path / "moved-text"), "--eval-batches", "2")
    assert app.main(argv) == 0
    assert last_json(capsys.readouterr().out) == pytest.approx(before)


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
    ("argv", "message"),
    [
        (["--lr", "nan"], "lr must be a finite non-negative number, got nan"),
        (["--lr", "inf"], "lr must be a finite non-negative number, got inf"),
        (["--dropout", "nan"], "dropout must be a probability in [0, 1], got nan"),
        (["--dropout", "1.5"], "dropout must be a probability in [0, 1], got 1.5"),
        (["--dropout=-0.5"], "dropout must be a probability in [0, 1], got -0.5"),
    ],
)
def test_bad_numbers_exit_2_before_a_run_directory_exists(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = app.main(["train", "--steps", "2", *SMALL, "--out", str(tmp_path / "run"), *argv])
    assert status == 2
    err = capsys.readouterr().err
    assert err.startswith("urpe: error:")
    assert message in err
    assert "Traceback" not in err
    assert not (tmp_path / "run").exists()


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


@pytest.mark.parametrize("hidden", [("matplotlib",), ("matplotlib", "jsonschema")])
def test_reproduce_without_its_extra_says_what_to_install(
    hidden: tuple[str, ...],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    real_find_spec = importlib.util.find_spec

    def find_spec(name: str, *args: object, **kwargs: object) -> object:
        return None if name.partition(".")[0] in hidden else real_find_spec(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    out = tmp_path / "report"
    assert app.main(["reproduce", "--quick", "--out", str(out), "--device", "cpu"]) == 2
    captured = capsys.readouterr()
    assert captured.err == (
        f"urpe: error: 'urpe reproduce' needs {', '.join(hidden)} from the 'reproduce' extra: "
        "pip install 'urpe[reproduce]'\n"
    )
    assert captured.out == ""
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_train_logs_progress_when_stderr_is_not_a_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """stderr captured (not a terminal): one log record per step at interval 0, naming the step; none with --quiet."""
    monkeypatch.delenv("PAPERS_PROGRESS", raising=False)
    monkeypatch.setenv("PAPERS_PROGRESS_INTERVAL", "0")
    argv = ["train", "--steps", "6", "--seq-len", "6", *SMALL]
    # pytest's log handlers off the root logger, as in a shell, so that App.main installs its stderr handler
    monkeypatch.setattr(logging.getLogger(), "handlers", [])
    monkeypatch.setattr(logging.getLogger(), "level", logging.getLogger().level)
    assert app.main([*argv, "--out", str(tmp_path / "loud")]) == 0
    loud = capsys.readouterr().err
    assert app.main([*argv, "--out", str(tmp_path / "quiet"), "--quiet"]) == 0
    quiet = capsys.readouterr()
    configure_logging()  # not quiet again
    steps = re.findall(r"train position-identification/urpe: (\d+)/6 \(\d+%\).*loss=", loud)
    assert steps == [str(n) for n in range(1, 7)] + ["6"], loud  # every step, then the closing record
    assert "(done)" in loud
    assert "evaluate position-identification: 2/2 (100%)" in loud
    assert "saved the trained model in" in loud
    assert quiet.err == ""
    assert last_json(quiet.out)["steps"] == 6


def test_reproduce_runs_every_stage_and_logs_its_progress(
    tmp_path: Path,
    text_folder: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The whole reproduction (full mode, language model included, two seeds) on a plan of a few steps per run."""
    from urpe import Schedule, reproduce
    from urpe.experiment import ModelSize

    schedule = Schedule(steps=3, batch_size=4, warmup=1, eval_batches=1)
    size = ModelSize(8, 2, 1, 16)
    tiny = reproduce.Plan(6, 4, size, schedule, schedule, schedule, lm_seq_len=8, num_seeds=2)
    monkeypatch.setattr(reproduce, "FULL", tiny)
    monkeypatch.delenv("PAPERS_PROGRESS", raising=False)
    monkeypatch.setenv("PAPERS_PROGRESS_INTERVAL", "0")
    out = tmp_path / "report"
    argv = ["reproduce", "--full", "--data-dir", str(text_folder), "--out", str(out), "--device", "cpu"]
    argv += ["--seed", "3"]
    monkeypatch.setattr(logging.getLogger(), "handlers", [])  # as in a shell: App.main installs its handler
    monkeypatch.setattr(logging.getLogger(), "level", logging.getLogger().level)
    assert app.main(argv) == 0
    captured = capsys.readouterr()
    results = json.loads((out / "results.json").read_text())
    assert results["config"]["seeds"] == [3, 4]
    assert len(results["claims"]) == 10
    assert all(c["paper_source"] for c in results["claims"])  # the paper's figure or why there is none
    seeded = {c["id"]: c["seeds"] for c in results["claims"] if "seeds" in c}
    assert sorted(seeded) == ["etp-urpe-vs-rpe", "lm-perplexity", "pi-urpe-vs-rpe"]
    for spread in seeded.values():
        assert spread["seeds"] == [3, 4]
        assert len(spread["ours"]) == len(spread["baseline"]) == 2
    assert "wrote" in captured.out
    runs = sorted(p.name for p in (out / "runs").iterdir())
    assert len(runs) == 16  # 4 + 2 synthetic and 2 language models, each with seeds 3 and 4
    assert {name.rsplit("-", 1)[1] for name in runs} == {"seed3", "seed4"}
    for name in runs:
        assert sorted(p.name for p in (out / "runs" / name / "model").iterdir()) == [
            "config.json",
            "model.safetensors",
        ]
    # the per-seed accuracies in results.json are those of the runs
    pi_rpe = [
        json.loads(
            (out / "runs" / f"position-identification-rpe-seed{s}" / "final_metrics.json").read_text()
        )["accuracy"]
        for s in (3, 4)
    ]
    assert seeded["pi-urpe-vs-rpe"]["baseline"] == pi_rpe
    stages = re.findall(r"reproduce: (\d+)/18 \(", captured.err)
    assert stages[-1] == "18", captured.err
    assert [int(s) for s in stages] == sorted(int(s) for s in stages)
    for name in runs:
        assert f"reproduce: training {name}" in captured.err
    assert "train even-token/urpe: 3/3 (100%)" in captured.err
