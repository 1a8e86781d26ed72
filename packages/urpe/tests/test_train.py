"""Training: the schedule, the paper's position-identification result, exact resumption and language modelling."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest
import torch

from papers_common import InputError, RunDir, latest_checkpoint, load_checkpoint, pretrained_extra
from urpe import (
    Schedule,
    SyntheticTask,
    TextCorpus,
    evaluate_synthetic,
    load_trained,
    train_lm,
    train_synthetic,
)
from urpe.experiment import ModelSize, language_model, synthetic_model
from urpe.train import masked_cross_entropy

TINY = ModelSize(d_model=16, num_heads=2, num_layers=2, ffn_dim=32)


def test_schedule_warms_up_then_decays_to_zero() -> None:
    schedule = Schedule(steps=10, warmup=4)
    factors = [schedule.lr_factor(step) for step in range(11)]
    assert factors[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert factors[4:] == pytest.approx([1.0, 5 / 6, 4 / 6, 3 / 6, 2 / 6, 1 / 6, 0.0])
    assert Schedule(steps=5, warmup=0).lr_factor(0) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("overrides", "name"),
    [
        ({"batch_size": 0}, "batch_size"),
        ({"eval_batches": 0}, "eval_batches"),
        ({"steps": -1}, "steps"),
        ({"warmup": -1}, "warmup"),
        ({"log_every": 0}, "log_every"),
        ({"checkpoint_every": -5}, "checkpoint_every"),
        ({"lr": -1e-3}, "lr"),
        ({"lr": float("nan")}, "lr must be a finite"),
        ({"weight_decay": float("inf")}, "weight_decay must be a finite"),
    ],
)
def test_invalid_schedule(overrides: dict[str, float], name: str) -> None:
    with pytest.raises(InputError, match=name):
        Schedule(**overrides)  # type: ignore[arg-type]


def test_masked_cross_entropy_counts_only_scored_positions() -> None:
    logits = torch.randn(2, 3, 4, generator=torch.Generator().manual_seed(0))
    targets = torch.tensor([[0, 1, 2], [3, 0, 1]])
    scored = torch.tensor([[True, False, False], [False, False, True]])
    expected = (
        torch.nn.functional.cross_entropy(logits[0, 0:1], targets[0, 0:1])
        + torch.nn.functional.cross_entropy(logits[1, 2:3], targets[1, 2:3])
    ) / 2
    torch.testing.assert_close(masked_cross_entropy(logits, targets, scored), expected)
    everything = torch.nn.functional.cross_entropy(logits.reshape(6, 4), targets.reshape(6))
    torch.testing.assert_close(masked_cross_entropy(logits, targets), everything)


def test_urpe_learns_position_identification_and_rpe_cannot() -> None:
    task = SyntheticTask("position-identification", seq_len=16, vocab=10)
    size = ModelSize(d_model=32, num_heads=2, num_layers=2, ffn_dim=64)
    schedule = Schedule(steps=200, batch_size=16, lr=3e-3, warmup=20, eval_batches=4, log_every=1000)
    accuracy = {}
    for position in ("rpe", "urpe"):
        torch.manual_seed(0)
        result = train_synthetic(synthetic_model(task, position, size), task, schedule, seed=0)
        assert result.steps == 200
        accuracy[position] = result.metrics["accuracy"]
    assert accuracy["rpe"] < 0.25, accuracy
    assert accuracy["urpe"] > 0.7, accuracy
    assert accuracy["urpe"] > accuracy["rpe"] + 0.5, accuracy


def test_evaluation_is_reproducible() -> None:
    task = SyntheticTask("even-token", seq_len=8, vocab=5)
    torch.manual_seed(0)
    model = synthetic_model(task, "urpe", TINY)
    first = evaluate_synthetic(model, task, batches=2, batch_size=4, seed=3, device=torch.device("cpu"))
    second = evaluate_synthetic(model, task, batches=2, batch_size=4, seed=3, device=torch.device("cpu"))
    assert first == second
    assert 0.0 <= first["accuracy"] <= 1.0
    assert model.training  # evaluation puts the model back into training mode


def run_synthetic(directory: Path, steps: int, init_seed: int) -> dict[str, torch.Tensor]:
    task = SyntheticTask("even-token", seq_len=8, vocab=6)
    torch.manual_seed(init_seed)
    model = synthetic_model(task, "urpe", TINY)
    schedule = Schedule(
        steps=steps, batch_size=4, lr=1e-2, warmup=3, eval_batches=1, log_every=2, checkpoint_every=4
    )
    train_synthetic(model, task, schedule, seed=5, run=RunDir(directory))
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_resumed_run_matches_uninterrupted_run(tmp_path: Path) -> None:
    full = run_synthetic(tmp_path / "a", steps=12, init_seed=0)
    run_a = RunDir(tmp_path / "a")
    steps_kept = sorted(p.name for p in run_a.checkpoints.glob("step-*.json"))
    assert steps_kept == ["step-00000008.json", "step-00000012.json"]  # the two newest are kept

    # a run directory that holds only the step-8 checkpoint, as if the run had died after step 8
    resumed_dir = tmp_path / "b"
    (resumed_dir / "checkpoints").mkdir(parents=True)
    for suffix in (".json", ".safetensors"):
        shutil.copy(run_a.checkpoints / f"step-00000008{suffix}", resumed_dir / "checkpoints")
    resumed = run_synthetic(resumed_dir, steps=12, init_seed=123)  # initial weights are overwritten on resume
    assert full.keys() == resumed.keys()
    for name in full:
        assert torch.equal(full[name], resumed[name]), name

    checkpoint = load_checkpoint(latest_checkpoint(RunDir(resumed_dir).checkpoints))
    assert checkpoint.step == 12
    assert (resumed_dir / "final_metrics.json").is_file()
    assert (run_a.root / "final_metrics.json").read_text() == (resumed_dir / "final_metrics.json").read_text()
    logged = [r["step"] for r in RunDir(resumed_dir).metrics() if "loss" in r]
    assert logged == [10, 12]


def test_restarting_a_finished_run_keeps_its_weights(tmp_path: Path) -> None:
    first = run_synthetic(tmp_path, steps=4, init_seed=0)
    again = run_synthetic(tmp_path, steps=4, init_seed=99)
    for name in first:
        assert torch.equal(first[name], again[name]), name
    losses = [r["step"] for r in RunDir(tmp_path).metrics() if "loss" in r]
    assert losses == [2, 4]  # records after the restored step were dropped, none duplicated
    evaluations = [r["step"] for r in RunDir(tmp_path).metrics() if "eval_loss" in r]
    assert evaluations == [4]


def test_run_directory_of_another_model_is_refused(tmp_path: Path) -> None:
    run_synthetic(tmp_path, steps=4, init_seed=0)
    task = SyntheticTask("even-token", seq_len=8, vocab=6)
    wider = synthetic_model(task, "urpe", ModelSize(d_model=24, num_heads=2, num_layers=2, ffn_dim=32))
    config_before = (tmp_path / "config.json").read_text()
    with pytest.raises(InputError, match="different model"):
        train_synthetic(wider, task, Schedule(steps=4, batch_size=4, eval_batches=1), run=RunDir(tmp_path))
    assert (tmp_path / "config.json").read_text() == config_before


def test_run_directory_contents(tmp_path: Path) -> None:
    run_synthetic(tmp_path, steps=8, init_seed=0)
    run = RunDir(tmp_path)
    config = run.read_config()
    assert config["task"] == {"name": "even-token", "seq_len": 8, "vocab": 6}
    assert config["model"]["position"] == "urpe"
    assert config["schedule"]["steps"] == 8
    records = run.metrics()
    assert [r["step"] for r in records if "loss" in r] == [2, 4, 6, 8]
    assert "eval_accuracy" in records[-1]
    assert math.isfinite(records[0]["loss"])
    # a training checkpoint is also a pretrained model
    from urpe import TransformerModel

    model = TransformerModel.from_pretrained(run.checkpoints)
    assert model.config.position == "urpe"
    # the finished run's model folder holds the same weights and the task
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == ["config.json", "model.safetensors"]
    trained = load_trained(tmp_path)
    assert trained.source == tmp_path / "model"
    assert trained.task == SyntheticTask("even-token", seq_len=8, vocab=6)
    for (name, a), b in zip(model.state_dict().items(), trained.model.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_language_model_training(text_folder: Path, tmp_path: Path) -> None:
    corpus = TextCorpus(text_folder)
    torch.manual_seed(0)
    model = language_model(16, "urpe", TINY)
    schedule = Schedule(steps=6, batch_size=4, lr=3e-3, warmup=2, eval_batches=2, log_every=3)
    result = train_lm(model, corpus, schedule, seed=0, run=RunDir(tmp_path / "lm"))
    assert set(result.metrics) == {"loss", "perplexity"}
    assert result.metrics["perplexity"] == pytest.approx(math.exp(result.metrics["loss"]))
    assert result.metrics["perplexity"] < 256  # better than uniform over bytes after a few steps
    assert (tmp_path / "lm" / "final_metrics.json").is_file()
    trained = load_trained(tmp_path / "lm" / "model")
    assert trained.task is None
    assert trained.text == corpus.settings()
    assert trained.corpus(text_folder).valid.equal(corpus.valid)
    assert pretrained_extra(tmp_path / "lm" / "model")["metrics"] == pytest.approx(result.metrics)


def test_language_modelling_needs_a_causal_model(text_folder: Path) -> None:
    corpus = TextCorpus(text_folder)
    task = SyntheticTask("position-identification", seq_len=8, vocab=256)
    model = synthetic_model(task, "urpe", TINY)
    with pytest.raises(ValueError, match="causal"):
        train_lm(model, corpus, Schedule(steps=1))
