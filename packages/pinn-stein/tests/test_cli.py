"""The ``pinn-stein`` command line: train/evaluate/reference runs, resume, and exit status 2 on bad input."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from papers_common import configure_logging, latest_checkpoint, preserved_global_state, read_jsonl
from pinn_stein import MLP, TestSet
from pinn_stein.cli import app


@pytest.fixture(autouse=True)
def _restore_torch_determinism() -> Iterator[None]:
    """Undo the process-wide settings that ``seed_everything`` (run by every command) changes."""
    with preserved_global_state():
        yield


SMALL = ["--width", "16", "--depth", "2", "--samples", "16", "--eval-samples", "16", "--test-points", "50",
         "--device", "cpu"]  # fmt: skip


def last_json(text: str) -> dict[str, float]:
    return json.loads(text.strip().splitlines()[-1])


def test_help_lists_the_commands() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "from pinn_stein.cli import main; main()", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    for command in ("train", "evaluate", "reference", "reproduce"):
        assert command in done.stdout


def test_train_resume_and_evaluate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    args = ["train", "--pde", "heat", "--dim", "4", "--method", "stein-vr", "--checkpoint-every", "5",
            "--batch", "domain=8", "initial=8", "boundary=8", "--out", str(out), *SMALL]  # fmt: skip
    assert app.main([*args, "--iterations", "10"]) == 0
    first = last_json(capsys.readouterr().out)
    assert first["iterations"] == 10
    assert 0 < first["rel_l2"] < 10
    config = json.loads((out / "config.json").read_text())
    assert config["train"]["batch"] == {"domain": 8, "initial": 8, "boundary": 8}
    assert config["train"]["weights"] == {"domain": 1.0, "initial": 1000.0, "boundary": 1000.0}
    assert (out / "test_set.safetensors").is_file()

    # a longer run in the same directory is refused (other settings), the same one resumes at its end
    assert app.main([*args, "--iterations", "20"]) == 2
    assert "other settings" in capsys.readouterr().err
    assert app.main([*args, "--iterations", "10"]) == 0
    assert last_json(capsys.readouterr().out)["rel_l2"] == pytest.approx(first["rel_l2"])

    assert Path(first["model"]) == out / "model"
    assert app.main(["evaluate", "--checkpoint", str(out), "--eval-samples", "16", "--device", "cpu"]) == 0
    evaluated = last_json(capsys.readouterr().out)
    assert set(evaluated) == {"rel_l1", "rel_l2", "raw_rel_l1", "raw_rel_l2"}
    assert evaluated["raw_rel_l2"] == pytest.approx(first["raw_rel_l2"], rel=1e-5)
    steps = [r["step"] for r in read_jsonl(out / "metrics.jsonl") if "loss" in r]
    assert steps == sorted(steps)
    assert MLP.from_pretrained(latest_checkpoint(out / "checkpoints")).config.in_dim == 5

    # a run directory of the layout before 0.2.0 (checkpoints/, no model/) evaluates the same
    shutil.rmtree(out / "model")
    assert app.main(["evaluate", "--checkpoint", str(out), "--device", "cpu"]) == 0
    assert last_json(capsys.readouterr().out) == evaluated


def test_evaluate_from_the_model_folder_alone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Copied elsewhere with the run deleted, model/ still evaluates: it draws the same test set again."""
    out = tmp_path / "run"
    args = ["train", "--pde", "heat", "--dim", "3", "--method", "stein-vr", "--iterations", "4",
            "--batch", "domain=8", "initial=8", "boundary=8", "--out", str(out), *SMALL]  # fmt: skip
    assert app.main(args) == 0
    trained = last_json(capsys.readouterr().out)
    moved = tmp_path / "elsewhere" / "heat-model"
    shutil.copytree(out / "model", moved)
    shutil.rmtree(out)
    assert app.main(["evaluate", "--checkpoint", str(moved), "--device", "cpu"]) == 0
    evaluated = last_json(capsys.readouterr().out)
    assert evaluated["raw_rel_l2"] == pytest.approx(trained["raw_rel_l2"], rel=1e-6)
    assert evaluated["rel_l2"] == pytest.approx(trained["rel_l2"], rel=0.2)  # other smoothing noise, N = 16
    reference = tmp_path / "heat.safetensors"
    assert app.main(["reference", "--pde", "heat", "--dim", "3", "--points", "50", "--seed", "1",
                     "--out", str(reference)]) == 0  # fmt: skip
    capsys.readouterr()
    given = [
        "evaluate",
        "--checkpoint",
        str(moved / "config.json"),
        "--test-set",
        str(reference),
        "--device",
        "cpu",
    ]
    assert app.main(given) == 0
    assert last_json(capsys.readouterr().out)["raw_rel_l2"] == pytest.approx(trained["raw_rel_l2"], rel=1e-6)


def test_train_logs_progress_when_stderr_is_not_a_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PAPERS_PROGRESS_INTERVAL", "0")
    monkeypatch.delenv("PAPERS_PROGRESS", raising=False)
    args = ["train", "--pde", "heat", "--dim", "3", "--method", "pinn", "--iterations", "6",
            "--batch", "domain=8", "initial=8", "boundary=8", *SMALL]  # fmt: skip
    # pytest's log handlers off the root logger, as in a shell, so that App.main installs its stderr handler
    monkeypatch.setattr(logging.getLogger(), "handlers", [])
    monkeypatch.setattr(logging.getLogger(), "level", logging.getLogger().level)
    assert app.main([*args, "--out", str(tmp_path / "a")]) == 0
    err = capsys.readouterr().err
    assert re.search(r"train heat-3 pinn: 3/6 \(50%\), .*loss=", err), err
    assert "train heat-3 pinn: 6/6 (100%)" in err
    assert app.main([*args, "--out", str(tmp_path / "b"), "--quiet"]) == 0
    captured = capsys.readouterr()
    configure_logging()  # not quiet again
    assert captured.err == ""
    assert "rel_l2" in captured.out


def test_reproduce_without_its_extra_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else find_spec(name, *a)
    )
    out = tmp_path / "report"
    assert app.main(["reproduce", "--quick", "--out", str(out), "--device", "cpu"]) == 2
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        "pinn-stein: error: 'pinn-stein reproduce' needs matplotlib from the 'reproduce' extra: "
        "pip install 'pinn-stein[reproduce]'"
    ]
    assert captured.out == ""
    assert not out.exists()


def test_reference_writes_a_monte_carlo_test_set(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "hjb.safetensors"
    status = app.main(
        ["reference", "--pde", "hjb", "--dim", "3", "--points", "20", "--samples", "256", "--out", str(out)]
    )
    assert status == 0
    printed = last_json(capsys.readouterr().out)
    assert printed["monte_carlo_samples"] == 256
    test = TestSet.load(out)
    assert test.x.shape == (20, 3)
    assert test.grad is not None
    assert torch.isfinite(test.u).all()


def test_train_on_a_given_reference(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    reference = tmp_path / "hjb.safetensors"
    assert (
        app.main(
            [
                "reference",
                "--pde",
                "hjb",
                "--dim",
                "3",
                "--points",
                "20",
                "--samples",
                "128",
                "--out",
                str(reference),
            ]
        )
        == 0
    )
    args = ["train", "--pde", "hjb", "--dim", "3", "--method", "pinn-forward", "--iterations", "5",
            "--test-set", str(reference), "--out", str(tmp_path / "run"), *SMALL]  # fmt: skip
    assert app.main(args) == 0
    assert last_json(capsys.readouterr().out)["rel_l2"] > 0
    wrong = [*args[:4], "5", *args[5:]]  # --dim 5 against a 3-dimensional reference
    assert app.main(wrong) == 2
    assert "dimension 3" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--batch", "domain"], "REGION=VALUE"),
        (["--weights", "domain=heavy"], "REGION=VALUE"),
        (["--batch", "inside=5"], "unknown ['inside']"),
        (["--method", "stein-vr", "--samples", "15"], "even"),
        (["--sigma-x", "0"], "sigma_x"),
        (["--dim", "0"], "dimension"),
        (["--lr", "-1"], "lr"),
    ],
)
def test_bad_input_exits_with_status_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    args = [
        "train",
        "--pde",
        "heat",
        "--dim",
        "3",
        "--iterations",
        "2",
        "--out",
        str(tmp_path / "run"),
        *SMALL,
        *extra,
    ]
    assert app.main(args) == 2
    assert message in capsys.readouterr().err


def test_evaluate_needs_a_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert app.main(["evaluate", "--checkpoint", str(tmp_path / "nothing"), "--device", "cpu"]) == 2
    assert "nothing" in capsys.readouterr().err


@pytest.mark.skipif(
    shutil.which("taskset") is None or len(os.sched_getaffinity(0)) < 2,
    reason="needs taskset and at least two cores",
)
def test_a_run_repeats_exactly_on_one_core_and_on_two(tmp_path: Path) -> None:
    """With a fixed thread count, training gives the same metrics and weights whatever the cores it may use."""
    # the thread count comes from --threads alone, not from variables an earlier command of this process set
    environ = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    command = [sys.executable, "-c", "from pinn_stein.cli import main; main()", "train", "--pde", "heat", "--dim", "8",
               "--method", "stein-vr", "--width", "32", "--depth", "2", "--samples", "64", "--eval-samples", "64",
               "--test-points", "200", "--iterations", "10", "--eval-every", "5", "--device", "cpu", "--threads", "1",
               "--quiet"]  # fmt: skip
    runs = {  # both at once: the start-up (importing torch) is most of the time
        cores: subprocess.Popen(
            ["taskset", "-c", cores, *command, "--out", str(tmp_path / f"cores-{cores}")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env={**environ, "HF_HUB_OFFLINE": "1"},
        )
        for cores in ("0", "0,1")
    }
    found = []
    for cores, process in runs.items():
        _, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, stderr
        out = tmp_path / f"cores-{cores}"
        rows = [{k: v for k, v in row.items() if k != "time"} for row in read_jsonl(out / "metrics.jsonl")]
        final = json.loads((out / "final_metrics.json").read_text())
        found.append((final, rows, (out / "model" / "model.safetensors").read_bytes()))
    assert found[0][0]["rel_l2"] > 0
    assert found[0] == found[1]
