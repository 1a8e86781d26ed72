"""The ``pinn-linf`` command line: train / evaluate / reference runs, resume, and one-line errors on bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from papers_common import TestSet, preserved_global_state
from pinn_linf.cli import app


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A private reference cache, and the process-wide settings that ``seed_everything`` changes undone."""
    monkeypatch.setenv("PINN_LINF_CACHE", str(tmp_path / "cache"))
    with preserved_global_state():
        yield


SMALL = ["--width", "16", "--depth", "2", "--domain-batch", "16", "--terminal-batch", "16", "--test-points", "40",
         "--mc-samples", "512", "--probe-points", "64", "--device", "cpu"]  # fmt: skip


def last_json(text: str) -> dict:
    return json.loads(text.strip().splitlines()[-1])


def test_module_entry_point_runs() -> None:
    """``python -m pinn_linf.cli`` is the same program as ``pinn-linf`` (not a silent no-op)."""
    done = subprocess.run([sys.executable, "-m", "pinn_linf.cli", "--help"], capture_output=True, text=True,
                          timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    for command in ("train", "evaluate", "reference", "reproduce"):
        assert command in done.stdout


def test_train_resume_and_evaluate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    args = ["train", "--pde", "hjb-lqg", "--dim", "3", "--loss", "adversarial", "--steps", "2",
            "--checkpoint-every", "5", "--eval-every", "5", "--out", str(out), *SMALL]  # fmt: skip
    assert app.main([*args, "--iterations", "10"]) == 0
    first = last_json(capsys.readouterr().out)
    assert first["iterations"] == 10
    assert {"rel_l1", "rel_l2", "rel_w11", "max_residual"} <= first.keys()
    config = json.loads((out / "config.json").read_text())
    assert config["train"]["loss"]["ascent"]["steps"] == 2
    assert config["width"] == 16
    assert config["test_set"]["points"] == 40
    assert (out / "model" / "model.safetensors").is_file()
    # a longer run with the same settings is refused (other iteration count) ...
    assert app.main([*args, "--iterations", "20"]) == 2
    assert "other settings" in capsys.readouterr().err
    # ... and evaluating the saved model, moved away from its run, gives the run's numbers
    moved = tmp_path / "elsewhere"
    (out / "model").rename(moved)
    (out / "model").mkdir()
    assert app.main(["evaluate", "--model", str(moved), "--device", "cpu", "--test-points", "40",
                     "--mc-samples", "512"]) == 0  # fmt: skip
    again = last_json(capsys.readouterr().out)
    assert again["problem"]["pde"] == "hjb-lqg"
    assert again["rel_l2"] == pytest.approx(first["rel_l2"], rel=1e-5)


def test_evaluate_inside_a_run_uses_the_runs_test_set(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    assert app.main(["train", "--pde", "hjb-lin", "--dim", "4", "--loss", "l2", "--iterations", "5",
                     "--seed", "3", "--terminal-weight", "3", "--out", str(out), *SMALL]) == 0  # fmt: skip
    trained = last_json(capsys.readouterr().out)
    assert app.main(["evaluate", "--model", str(out), "--device", "cpu"]) == 0
    again = last_json(capsys.readouterr().out)
    # the same test set, probe set and loss weights as the run's own final evaluation
    for key in ("rel_l1", "max_residual", "max_terminal_error", "linf_loss"):
        assert again[key] == pytest.approx(trained[key], rel=1e-6), key
    assert trained["linf_loss"] == pytest.approx(
        trained["max_residual"] ** 2 + 3 * trained["max_terminal_error"] ** 2, rel=1e-12
    )


def test_reference_file_round_trips_into_train(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ref = tmp_path / "lqg.safetensors"
    assert app.main(["reference", "--pde", "hjb-lqg", "--dim", "2", "--points", "12", "--mc-samples", "256",
                     "--out", str(ref)]) == 0  # fmt: skip
    meta = last_json(capsys.readouterr().out)
    assert meta["monte_carlo_samples"] == 256
    test = TestSet.load(ref)
    assert test.x.shape == (12, 2)
    assert test.grad is not None
    out = tmp_path / "run"
    assert app.main(["train", "--pde", "hjb-lqg", "--dim", "2", "--loss", "lp", "--p", "6", "--iterations", "3",
                     "--test-set", str(ref), "--out", str(out), *SMALL]) == 0  # fmt: skip
    assert json.loads((out / "config.json").read_text())["test_set"] == {"file": str(ref)}
    assert app.main(["train", "--pde", "hjb-lqg", "--dim", "3", "--iterations", "3", "--test-set", str(ref),
                     "--out", str(tmp_path / "other"), *SMALL]) == 2  # fmt: skip
    assert "dimension 2, the problem 3" in capsys.readouterr().err


def test_quick_sizes_the_run_for_a_cpu(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert app.main(["train", "--pde", "hjb-lin", "--dim", "2", "--quick", "--iterations", "100000", "--steps", "1",
                     "--domain-batch", "8", "--terminal-batch", "8", "--out", str(out)]) == 0  # fmt: skip
    assert last_json(capsys.readouterr().out)["iterations"] == 100
    config = json.loads((out / "config.json").read_text())
    assert config["width"] == 64
    assert config["test_set"]["points"] == 200


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--pde", "hjb-lin", "--c", "2.5"], "the exponent c must lie in (1, 2]"),
        (["--pde", "hjb-lin", "--c", "1"], "the exponent c must lie in (1, 2]"),
        (["--mu", "0"], "mu must be positive"),
        (["--mu", "nan"], "mu must be positive"),
        (["--step-size", "-0.1"], "step size eta must be positive"),
        (["--steps", "-1"], "--steps -1: must be a positive integer"),
        (["--lr", "nan"], "lr must be positive and finite"),
        (["--dim", "0"], "--dim 0: must be a positive integer"),
        (["--test-set", "missing.safetensors"], "no such file"),
        (["--time-budget", "-5"], "time_budget must be positive"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(
    extra: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    assert app.main(["train", "--dim", "2", "--iterations", "2", "--out", str(out), *SMALL, *extra]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--width", "0"),  # once read as "not given", which trained width 64 without a word
        ("--width", "-8"),
        ("--depth", "0"),
        ("--iterations", "0"),
        ("--iterations", "-5"),
        ("--domain-batch", "0"),
        ("--terminal-batch", "-1"),
        ("--steps", "0"),
        ("--test-points", "0"),
        ("--mc-samples", "0"),
        ("--probe-points", "0"),
        ("--eval-every", "-1"),
        ("--checkpoint-every", "-1"),
        ("--dim", "-3"),
    ],
)
def test_zero_or_negative_sizes_are_refused_naming_the_flag(
    flag: str, value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    assert app.main(["train", "--dim", "2", "--iterations", "2", "--out", str(out), *SMALL, flag, value]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"{flag} {value}: must be" in err
    assert not out.exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["reference", "--points", "0"],
        ["reference", "--mc-samples", "-1"],
        ["reference", "--dim", "0"],
        ["evaluate", "--model", "run", "--test-points", "0"],
        ["evaluate", "--model", "run", "--mc-samples", "0"],
    ],
)
def test_sizes_of_the_other_commands_are_checked_too(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert app.main([*argv, *(["--out", "ref.safetensors"] if argv[0] == "reference" else [])]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"{argv[-2]} {argv[-1]}: must be a positive integer" in err
    assert list(tmp_path.iterdir()) == []


def _truncated(path: Path, source: bytes) -> None:
    path.write_bytes(source[: len(source) // 2])


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("text.safetensors", b"these are not tensors\n"),
        ("empty.safetensors", b""),
        ("truncated.safetensors", None),
        ("text.pkl", b"these are not tensors either\n"),
        ("truncated.pkl", None),
    ],
)
def test_an_unreadable_test_set_is_named_with_what_was_expected(
    name: str, content: bytes | None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch

    bad = tmp_path / name
    if content is not None:
        bad.write_bytes(content)
    elif bad.suffix == ".safetensors":
        TestSet(torch.randn(6, 2), torch.rand(6), torch.randn(6)).save(tmp_path / "whole.safetensors")
        _truncated(bad, (tmp_path / "whole.safetensors").read_bytes())
    else:  # a truncated copy of a torch.save file like the paper's
        torch.save(
            {"X": torch.randn(6, 3), "Y": torch.randn(6), "grad_x": torch.randn(6, 2)}, tmp_path / "whole"
        )
        _truncated(bad, (tmp_path / "whole").read_bytes())
    out = tmp_path / "run"
    argv = ["train", "--dim", "2", "--iterations", "2", "--test-set", str(bad), "--out", str(out), *SMALL]
    assert app.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert f"--test-set {bad}: not a readable test set" in err
    assert "expected a .safetensors file written by `pinn-linf reference`" in err
    assert "hjb_{100,250}_grad.pkl (X, Y, grad_x)" in err
    assert "Traceback" not in err
    assert not out.exists()


def test_the_papers_pickle_layout_is_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A torch.save file of X = [x, t], Y and grad_x, as the official hjb_{100,250}_grad.pkl, evaluates."""
    import torch

    generator = torch.Generator().manual_seed(0)
    x, t = torch.randn(10, 2, generator=generator), torch.rand(10, 1, generator=generator)
    u = x.sum(1) + 1 - t[:, 0]  # hjb-lin's solution, T = 1
    paper = tmp_path / "hjb_2_grad.pkl"
    torch.save({"X": torch.cat([x, t], 1), "Y": u, "grad_x": torch.ones(10, 2)}, paper)
    out = tmp_path / "run"
    assert app.main(["train", "--pde", "hjb-lin", "--dim", "2", "--iterations", "2", "--test-set", str(paper),
                     "--out", str(out), *SMALL]) == 0  # fmt: skip
    assert {"rel_l1", "rel_l2", "rel_w11"} <= last_json(capsys.readouterr().out).keys()


def test_an_allocation_that_cannot_fit_is_one_line_and_leaves_no_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """10^8 domain points at d = 100 ask for about 37 GiB at the first draw of points."""
    out = tmp_path / "run"
    argv = ["train", "--dim", "100", "--domain-batch", "100000000", "--out", str(out), "--width", "8",
            "--test-points", "4", "--mc-samples", "16", "--probe-points", "4", "--device", "cpu"]  # fmt: skip
    assert app.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "out of memory" in err
    assert "--domain-batch 100000000" in err
    assert not out.exists()
