"""The training loop: schedule, objectives, learning, early stopping, checkpoints, resumption and torchrun/DDP.

The models and data here are tiny stand-ins of our own (a batch with ``x`` and ``y``), so the loop is tested apart
from the Graphormer models.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import torch
from graphormer2.train import (
    BEST_DIR,
    ClassificationObjective,
    FitResult,
    ModelLossObjective,
    RegressionObjective,
    TrainConfig,
    _best_weights,
    fit,
    learning_rate,
    observed_bce,
    observed_l1,
    roc_auc,
)
from safetensors.torch import load_file
from torch import nn

from papers_common import (
    InputError,
    RunDir,
    latest_checkpoint,
    load_checkpoint,
    pretrained_extra,
    save_checkpoint,
)

torch.set_num_threads(1)

F64 = torch.float64


@dataclass
class ToyBatch:
    """x: float (B, F); y: float (B, C)."""

    x: torch.Tensor
    y: torch.Tensor

    def to(self, device: torch.device | str) -> ToyBatch:
        return ToyBatch(self.x.to(device), self.y.to(device))


def collate_toy(items: list[tuple[torch.Tensor, torch.Tensor]]) -> ToyBatch:
    return ToyBatch(torch.stack([x for x, _ in items]), torch.stack([y for _, y in items]))


class ToyRegressor(nn.Module):
    """x -> Linear -> ReLU -> Dropout -> Linear: (B, F) -> (B, C)."""

    def __init__(
        self, features: int = 3, targets: int = 2, hidden: int = 8, dropout: float = 0.0, seed: int = 0
    ):
        super().__init__()
        torch.manual_seed(seed)
        self.net = nn.Sequential(
            nn.Linear(features, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, targets)
        )

    def forward(self, batch: ToyBatch) -> torch.Tensor:
        return self.net(batch.x)


def linear_data(n: int, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """y = x W + b with fixed W, b (3 features, 2 targets), x ~ N(0, 1)."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=generator)
    weight = torch.tensor([[1.0, -2.0], [0.5, 0.0], [-1.5, 1.0]])
    y = x @ weight + torch.tensor([0.5, -1.0])
    return list(zip(x, y, strict=True))


def weights(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: value.detach().clone() for name, value in model.state_dict().items()}


def without_time(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in record.items() if k != "time"} for record in records]


# ------------------------------------------------------------------------------------------------ schedule


def test_learning_rate_is_fairseq_polynomial_decay() -> None:
    config = TrainConfig(lr=1e-3, warmup_steps=10, end_lr=1e-9)
    total = 110
    assert learning_rate(config, 0, total) == 0.0  # fairseq's first update is taken at rate 0
    assert learning_rate(config, 5, total) == pytest.approx(5e-4, rel=1e-12)
    assert learning_rate(config, 10, total) == pytest.approx(1e-3, rel=1e-12)
    assert learning_rate(config, 60, total) == pytest.approx((1e-3 - 1e-9) * 0.5 + 1e-9, rel=1e-12)
    assert learning_rate(config, 110, total) == 1e-9
    assert learning_rate(config, 500, total) == 1e-9
    squared = TrainConfig(lr=1e-3, warmup_steps=10, end_lr=0.0, power=2.0)
    assert learning_rate(squared, 60, total) == pytest.approx(0.25e-3, rel=1e-12)
    assert learning_rate(TrainConfig(lr=1e-3, end_lr=0.0), 0, 100) == 1e-3  # no warm-up: the peak at once


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [({"batch_size": 0}, "batch_size"), ({"lr": 0.0}, "lr"), ({"end_lr": 1.0}, "end_lr"),
     ({"max_steps": 0}, "max_steps"), ({"betas": (0.9, 1.0)}, "betas"), ({"patience": -1}, "patience")],
)  # fmt: skip
def test_bad_settings_are_input_errors_naming_the_field(kwargs: dict[str, Any], name: str) -> None:
    with pytest.raises(InputError, match=name):
        TrainConfig(**kwargs)


# ---------------------------------------------------------------------------------------------- objectives


def test_missing_targets_do_not_count_in_the_losses() -> None:
    target = torch.tensor([[1.0, float("nan")], [float("nan"), -2.0], [0.0, 1.0]], dtype=F64)
    prediction = torch.tensor([[0.5, 7.0], [3.0, -1.0], [0.25, 1.5]], dtype=F64, requires_grad=True)
    loss = observed_l1(prediction, target)
    assert loss.item() == pytest.approx((0.5 + 1.0 + 0.25 + 0.5) / 4, rel=1e-12)
    loss.backward()
    assert prediction.grad[0, 1] == 0  # exactly zero, not NaN
    assert prediction.grad[1, 0] == 0
    moved = prediction.detach().clone()
    moved[0, 1], moved[1, 0] = -100.0, 42.0  # only the missing positions change
    assert observed_l1(moved, target).item() == loss.item()
    labels = torch.tensor([[1.0, float("nan")], [float("nan"), 0.0], [0.0, 1.0]], dtype=F64)
    expected = (
        -(
            torch.log(torch.sigmoid(torch.tensor(0.5, dtype=F64)))
            + torch.log(1 - torch.sigmoid(torch.tensor(-1.0, dtype=F64)))
            + torch.log(1 - torch.sigmoid(torch.tensor(0.25, dtype=F64)))
            + torch.log(torch.sigmoid(torch.tensor(1.5, dtype=F64)))
        )
        / 4
    )
    assert observed_bce(prediction.detach(), labels).item() == pytest.approx(expected.item(), rel=1e-12)
    assert observed_bce(moved, labels).item() == observed_bce(prediction.detach(), labels).item()


def brute_force_auc(scores: list[float], labels: list[float]) -> float:
    """P(score of a positive > score of a negative) + P(tie) / 2, over every (positive, negative) pair."""
    positives = [s for s, y in zip(scores, labels, strict=True) if y == 1]
    negatives = [s for s, y in zip(scores, labels, strict=True) if y == 0]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(positives, negatives))
    return wins / (len(positives) * len(negatives))


def test_roc_auc_matches_the_pairwise_definition_with_ties_and_missing_labels() -> None:
    generator = torch.Generator().manual_seed(1)
    scores = torch.randint(0, 5, (30, 3), generator=generator).double()  # few values: many ties
    labels = torch.randint(0, 2, (30, 3), generator=generator).double()
    labels[torch.rand(30, 3, generator=generator) < 0.3] = float("nan")
    labels[:, 2] = torch.where(torch.isnan(labels[:, 2]), labels[:, 2], 1.0)  # task 2: positives only
    auc = roc_auc(scores, labels)
    for task in range(2):
        kept = ~torch.isnan(labels[:, task])
        expected = brute_force_auc(scores[kept, task].tolist(), labels[kept, task].tolist())
        assert auc[task].item() == pytest.approx(expected, rel=1e-12)
    assert torch.isnan(auc[2])


class FirstColumnTwice(nn.Module):
    """Scores (B, 2): the first feature of x, for both tasks."""

    def forward(self, batch: ToyBatch) -> torch.Tensor:
        return batch.x[:, :1].expand(-1, 2)


def test_classification_objective_reports_one_minus_mean_auc() -> None:
    x = torch.tensor([[0.1], [0.4], [0.35], [0.8], [0.2], [0.9]])
    y = torch.tensor([[0.0, 1.0], [0.0, float("nan")], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0], [1.0, 1.0]])
    batches = [ToyBatch(x[:4], y[:4]), ToyBatch(x[4:], y[4:])]
    metrics = ClassificationObjective().evaluate(FirstColumnTwice(), batches)
    kept = ~torch.isnan(y[:, 1])
    expected = [brute_force_auc(x[:, 0].tolist(), y[:, 0].tolist()),
                brute_force_auc(x[kept, 0].tolist(), y[kept, 1].tolist())]  # fmt: skip
    assert metrics["auc"] == pytest.approx(sum(expected) / 2, rel=1e-6)
    assert metrics["one_minus_auc"] == pytest.approx(1 - metrics["auc"], rel=1e-12)
    assert metrics["bce"] == pytest.approx(observed_bce(x.expand(-1, 2), y).item(), rel=1e-6)
    with pytest.raises(InputError, match="both positive and negative"):
        ClassificationObjective().evaluate(FirstColumnTwice(), [ToyBatch(x, torch.ones(6, 2))])


# --------------------------------------------------------------------------------------------------- fitting


def test_a_tiny_regressor_learns_and_beats_the_mean_predictor(tmp_path: Path) -> None:
    train, valid = linear_data(64, seed=0), linear_data(32, seed=1)
    config = TrainConfig(epochs=40, batch_size=16, lr=0.03, warmup_steps=10, end_lr=1e-5, log_every=20,
                         eval_every=20)  # fmt: skip
    model = ToyRegressor(hidden=16)
    result = fit(
        model, train, valid, collate_toy, RegressionObjective(), config, run=RunDir(tmp_path / "run")
    )
    mean = torch.stack([y for _, y in train]).mean(0)
    baseline = torch.stack([(y - mean).abs() for _, y in valid]).mean().item()
    assert result.steps == 160
    assert result.best_metric < 0.1 * baseline
    assert result.best_metric < 0.15
    records = RunDir(tmp_path / "run").metrics()
    losses = [r["loss"] for r in records if "loss" in r]
    assert losses[-1] < 0.1 * losses[0]
    assert [r["step"] for r in records if "valid_mae" in r] == list(range(20, 161, 20))
    assert json.loads((tmp_path / "run" / "config.json").read_text())["train"]["lr"] == 0.03
    assert json.loads((tmp_path / "run" / "fit.json").read_text())["best_step"] == result.best_step


@dataclass
class Scripted(RegressionObjective):
    """Validation returns the next of a fixed list of scores."""

    scores: list[float] = field(default_factory=list)

    def evaluate(self, model: nn.Module, loader: Any) -> dict[str, float]:
        return {"mae": self.scores.pop(0)}


def test_early_stopping_after_patience_validations_without_improvement() -> None:
    data = linear_data(8, seed=0)
    config = TrainConfig(max_steps=20, batch_size=4, eval_every=1, patience=2, lr=1e-3)
    result = fit(ToyRegressor(), data, data, collate_toy, Scripted(scores=[5.0, 4.0, 4.5, 4.2, 3.0] + [9.0] * 15),
                 config)  # fmt: skip
    assert (result.steps, result.best_step, result.best_metric, result.stopped_early) == (4, 2, 4.0, True)
    assert [r["mae"] for r in result.history] == [5.0, 4.0, 4.5, 4.2]
    never = fit(ToyRegressor(), data, data, collate_toy, Scripted(scores=[5.0] * 20),
                TrainConfig(max_steps=20, batch_size=4, eval_every=1, lr=1e-3))  # fmt: skip
    assert (never.steps, never.stopped_early, never.best_step) == (20, False, 1)


@dataclass
class Interrupting(RegressionObjective):
    """Regression that raises KeyboardInterrupt when asked for the loss of step ``stop_at`` (0-based)."""

    stop_at: int | None = None

    def loss(self, model: nn.Module, batch: Any, step: int, total_steps: int) -> tuple[torch.Tensor, dict]:
        if step == self.stop_at:
            raise KeyboardInterrupt
        return super().loss(model, batch, step, total_steps)


def test_resume_after_an_interruption_is_bit_identical(tmp_path: Path) -> None:
    train, valid = linear_data(22, seed=0), linear_data(6, seed=1)
    # 5 batches per epoch; checkpoints at 3, 5 (epoch end), 6, ...; interrupted in step 8 of 2 epochs + 2.
    config = TrainConfig(max_steps=12, batch_size=5, lr=0.01, warmup_steps=3, checkpoint_every=3, log_every=2)
    straight_run = RunDir(tmp_path / "straight")
    straight = ToyRegressor(dropout=0.3, seed=0)
    expected = fit(straight, train, valid, collate_toy, Interrupting(), config, run=straight_run)

    run = RunDir(tmp_path / "interrupted")
    with pytest.raises(KeyboardInterrupt):
        fit(
            ToyRegressor(dropout=0.3, seed=0),
            train,
            valid,
            collate_toy,
            Interrupting(stop_at=7),
            config,
            run=run,
        )
    assert load_checkpoint(run.checkpoints).step == 6  # mid-epoch: step 6 is batch 1 of epoch 1
    resumed = ToyRegressor(
        dropout=0.3, seed=99
    )  # other initial weights: only the checkpoint can make them match
    result = fit(resumed, train, valid, collate_toy, Interrupting(), config, run=run)

    assert result.steps == expected.steps == 12
    for name, value in straight.state_dict().items():
        assert torch.equal(resumed.state_dict()[name], value), name
    assert result.history == expected.history
    assert (result.best_metric, result.best_step) == (expected.best_metric, expected.best_step)
    assert without_time(run.metrics()) == without_time(straight_run.metrics())


def test_resume_with_other_settings_is_refused(tmp_path: Path) -> None:
    data = linear_data(8, seed=0)
    config = TrainConfig(max_steps=4, batch_size=4, lr=0.01)
    run = RunDir(tmp_path / "run")
    model = ToyRegressor()
    first = fit(model, data, data, collate_toy, RegressionObjective(), config, run=run)
    with pytest.raises(InputError, match="train"):
        fit(ToyRegressor(), data, data, collate_toy, RegressionObjective(), TrainConfig(max_steps=4, batch_size=4, lr=0.02), run=run)  # fmt: skip
    with pytest.raises(InputError, match="data"):
        fit(ToyRegressor(), data[:6], data, collate_toy, RegressionObjective(), config, run=run)
    # the same settings: nothing is left to do, and the weights are the finished run's
    again = ToyRegressor(seed=5)
    repeat = fit(again, data, data, collate_toy, RegressionObjective(), config, run=run)
    assert (repeat.steps, repeat.best_metric) == (first.steps, first.best_metric)
    for name, value in model.state_dict().items():
        assert torch.equal(again.state_dict()[name], value)


def test_checkpoints_and_best_weights_are_read_without_pickle(tmp_path: Path, monkeypatch) -> None:
    data = linear_data(12, seed=0)
    config = TrainConfig(max_steps=9, batch_size=4, lr=0.05, keep_checkpoints=2)
    run = RunDir(tmp_path / "run")
    result = fit(ToyRegressor(), data, data, collate_toy, RegressionObjective(), config, run=run)
    files = sorted(p.name for p in run.checkpoints.iterdir())
    assert files == [f"step-{s:08d}.{ext}" for s in (6, 9) for ext in ("json", "safetensors")]  # 2 kept
    best = run.root / "best"  # a save_pretrained folder, even for a model without a config
    assert sorted(p.name for p in best.iterdir()) == ["config.json", "model.safetensors"]
    assert pretrained_extra(best) == {"step": result.best_step, "valid_mae": result.best_metric}
    stored = load_file(best / "model.safetensors")
    assert stored.keys() == result.best_state.keys()
    for name, value in result.best_state.items():
        assert torch.equal(stored[name], value)

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("torch.load must not be used")

    monkeypatch.setattr(torch, "load", refuse)
    resumed = fit(ToyRegressor(seed=3), data, data, collate_toy, RegressionObjective(), config, run=run)
    assert resumed.best_metric == result.best_metric
    assert latest_checkpoint(run.checkpoints).name == "step-00000009.json"


def test_resume_takes_the_best_weights_only_when_the_checkpoint_vouches_for_them(tmp_path: Path) -> None:
    """The checkpoint after each validation records the best weights' SHA-256: best weights written after that
    checkpoint (a crash before the next one), even in part, are not taken for the recorded best step's."""
    data = linear_data(12, seed=0)
    run = RunDir(tmp_path / "run")
    module = ToyRegressor()
    result = fit(module, data, data, collate_toy, RegressionObjective(), TrainConfig(max_steps=6, batch_size=4),
                 run=run, best_extra={"target_names": ["a", "b"]})  # fmt: skip
    state = load_checkpoint(run.checkpoints).extra
    assert pretrained_extra(run.root / BEST_DIR)["target_names"] == ["a", "b"]
    found = _best_weights(run, state, ToyRegressor(seed=4))
    assert found.keys() == result.best_state.keys()
    assert all(torch.equal(found[name], value) for name, value in result.best_state.items())

    weights = run.root / BEST_DIR / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-4] + b"\0\0\0\0")  # torn: config.json still names the step
    assert _best_weights(run, state, ToyRegressor()) == {}

    # a run of graphormer2 0.1.0: a training checkpoint in best/, matched by its step
    for path in (run.root / BEST_DIR).iterdir():
        path.unlink()
    save_checkpoint(run.root / BEST_DIR, result.best_step, result.best_state, rng=False)
    old_state = {key: value for key, value in state.items() if key != "best_sha256"}
    assert _best_weights(run, old_state, ToyRegressor()).keys() == result.best_state.keys()
    assert _best_weights(run, {**old_state, "best_step": result.best_step + 1}, ToyRegressor()) == {}
    resumed = fit(ToyRegressor(seed=2), data, data, collate_toy, RegressionObjective(),
                  TrainConfig(max_steps=6, batch_size=4), run=run)  # fmt: skip
    assert all(torch.equal(resumed.best_state[n], v) for n, v in result.best_state.items())


@dataclass
class PoisonedAt(RegressionObjective):
    """Regression whose loss is NaN at step ``bad`` (0-based); remembers the weights seen at every step."""

    bad: int = 0
    seen: list[dict[str, torch.Tensor]] = field(default_factory=list)

    def loss(self, model: nn.Module, batch: Any, step: int, total_steps: int) -> tuple[torch.Tensor, dict]:
        self.seen.append(weights(model))
        loss, parts = super().loss(model, batch, step, total_steps)
        return (loss * torch.nan if step == self.bad else loss), parts


def test_a_non_finite_loss_names_the_step_and_keeps_the_last_good_weights(tmp_path: Path) -> None:
    data = linear_data(16, seed=0)
    model = ToyRegressor()
    objective = PoisonedAt(bad=2)
    run = RunDir(tmp_path / "run")
    with pytest.raises(InputError, match="non-finite at step 3"):
        fit(
            model,
            data,
            data,
            collate_toy,
            objective,
            TrainConfig(max_steps=8, batch_size=4, lr=0.05),
            run=run,
        )
    assert not torch.equal(objective.seen[2]["net.0.weight"], objective.seen[0]["net.0.weight"])
    checkpoint = load_checkpoint(run.checkpoints)
    assert checkpoint.step == 2
    for name, value in objective.seen[2].items():
        assert torch.equal(model.state_dict()[name], value)
        assert torch.equal(checkpoint.model[name], value)


class OwnLoss(nn.Module):
    """A stand-in for Graphormer-3D: forward(x, scale) and loss(batch, outputs, step, total) -> (loss, parts)."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(3, 2)

    def forward(self, x: torch.Tensor, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.linear(x) * scale
        return out[:, 0], out[:, 1]

    def loss(self, batch: ToyBatch, outputs: tuple, step: int, total_steps: int) -> tuple[torch.Tensor, dict]:
        first = (outputs[0] - batch.y[:, 0]).abs().mean()
        second = (outputs[1] - batch.y[:, 1]).abs().mean()
        weight = 1.0 - step / total_steps
        return first + weight * second, {"first": first.detach(), "second": second}


def test_model_loss_objective_logs_parts_and_averages_them_over_examples(tmp_path: Path) -> None:
    data = linear_data(10, seed=0)
    objective = ModelLossObjective(inputs=lambda batch: (batch.x, 1.0), metric="first")
    model = OwnLoss()
    run = RunDir(tmp_path / "run")
    result = fit(model, data, data[:4], collate_toy, objective, TrainConfig(max_steps=6, batch_size=3, lr=0.1,
                 log_every=1, eval_batch_size=3), run=run)  # fmt: skip
    train_records = [r for r in run.metrics() if "loss" in r]
    assert [r["step"] for r in train_records] == [1, 2, 3, 4, 5, 6]
    assert all({"first", "second", "lr", "grad_norm"} <= r.keys() for r in train_records)
    # validation batches of 3 and 1 examples: the mean is over the 4 examples, not over the 2 batches
    batch = collate_toy(data[:4])
    with torch.no_grad():
        outputs = model(batch.x, 1.0)
        first = (outputs[0] - batch.y[:, 0]).abs().mean().item()
    assert result.history[-1]["first"] == pytest.approx(first, rel=1e-6)
    assert result.history[-1]["loss"] == pytest.approx(
        first + (1 - 5 / 6) * (outputs[1] - batch.y[:, 1]).abs().mean().item(), rel=1e-6
    )


def test_fit_result_is_returned_without_a_run_directory() -> None:
    data = linear_data(6, seed=0)
    result = fit(ToyRegressor(), data, data, collate_toy, RegressionObjective(), TrainConfig(batch_size=4))
    assert isinstance(result, FitResult)
    assert (result.steps, len(result.history), result.best_step) == (2, 1, 2)
    with pytest.raises(InputError, match="train_set"):
        fit(ToyRegressor(), [], data, collate_toy, RegressionObjective(), TrainConfig())


# ------------------------------------------------------------------------------------------ torchrun / DDP

DDP_SCRIPT = """
import json, os, sys
import torch
from safetensors.torch import save_file
from graphormer2.train import RegressionObjective, TrainConfig, fit
from papers_common import RunDir
from test_train import ToyRegressor, collate_toy, linear_data

torch.set_num_threads(1)
out = sys.argv[1]
rank = int(os.environ["RANK"])
model = ToyRegressor(dropout=0.2, seed=rank)  # different initial weights: DDP starts every rank from rank 0's
config = TrainConfig(max_steps=2, batch_size=4, lr=0.05, log_every=1)
result = fit(model, linear_data(20, 0), linear_data(7, 1), collate_toy, RegressionObjective(), config,
             run=RunDir(os.path.join(out, "run")))
full = RegressionObjective().evaluate(model.eval(), [collate_toy(linear_data(7, 1))])
save_file({k: v.contiguous() for k, v in model.state_dict().items()}, os.path.join(out, f"rank{rank}.safetensors"))
with open(os.path.join(out, f"rank{rank}.json"), "w") as handle:
    json.dump({"history": result.history, "steps": result.steps, "full_mae": full["mae"]}, handle)
"""


def test_torchrun_two_cpu_processes_train_in_step(tmp_path: Path) -> None:
    (tmp_path / "tiny_ddp_run.py").write_text(textwrap.dedent(DDP_SCRIPT), encoding="utf-8")
    path = [
        str(tmp_path),
        str(Path(__file__).parent),
        os.environ.get("PYTHONPATH", ""),
    ]  # the script, the toys
    # Byte-code caching (off in some sandboxes) lets the two workers reuse what the launcher compiled.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path), "OMP_NUM_THREADS": "1", "CI": "1",
           "PYTHONDONTWRITEBYTECODE": "", "PYTHONPYCACHEPREFIX": str(tmp_path / "pycache")}  # fmt: skip
    completed = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "tiny_ddp_run", str(tmp_path)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-4000:]
    run = tmp_path / "run"
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [
        "step-00000002.json",
        "step-00000002.safetensors",
    ]
    records = RunDir(run).metrics()
    assert [(r["step"], "loss" in r) for r in records] == [
        (1, True),
        (2, True),
        (2, False),
    ]  # rank 0 alone logs
    first, second = load_file(tmp_path / "rank0.safetensors"), load_file(tmp_path / "rank1.safetensors")
    for name, value in first.items():
        assert torch.equal(second[name], value), name
    reports = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert reports[0]["steps"] == reports[1]["steps"] == 2
    # validation on 4 + 3 items gathered across ranks equals the single-process MAE of the same weights
    assert reports[0]["history"] == reports[1]["history"]
    assert reports[0]["history"][-1]["mae"] == pytest.approx(reports[0]["full_mae"], rel=1e-6)


def test_standardised_regression_learns_scaled_targets_and_reports_target_units() -> None:
    """standardising(): per-column mean and deviation over observed targets; the loss compares the output with
    (y − μ)/σ, and evaluate()/predict() map outputs back to target units."""
    targets = torch.tensor([[100.0, 1.0], [200.0, float("nan")], [300.0, 3.0]])
    objective = RegressionObjective.standardising(targets)
    assert objective.target_mean == pytest.approx((200.0, 2.0))
    assert objective.target_std == pytest.approx((100.0, 2**0.5))

    class Constant(nn.Module):
        def __init__(self, value: torch.Tensor) -> None:
            super().__init__()
            self.value = nn.Parameter(value)

        def forward(self, batch: ToyBatch) -> torch.Tensor:
            return self.value.expand(batch.y.shape[0], -1)

    batch = ToyBatch(torch.zeros(3, 1), targets)
    model = Constant(torch.tensor([1.0, 0.0]))  # predicts μ + σ = 300 and μ = 2
    loss, _ = objective.loss(model, batch, 0, 1)
    expected = (abs(1 - -1) + abs(1 - 0) + abs(1 - 1) + abs(0 - -(2**-0.5)) + abs(0 - 2**-0.5)) / 5
    assert loss.item() == pytest.approx(expected)
    mae = objective.evaluate(model, [batch])["mae"]
    assert mae == pytest.approx((200 + 100 + 0 + 1 + 1) / 5)
    assert RegressionObjective().evaluate(model, [batch])["mae"] == pytest.approx(
        (99 + 199 + 299 + 1 + 3) / 5
    )
