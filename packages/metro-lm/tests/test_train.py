"""The pretraining loop: it learns, it resumes bit-exactly, and two torchrun processes equal one."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import VOCAB, tiny_config

from metro_lm import MetroForPreTraining
from metro_lm.data import PackedDataset
from metro_lm.train import TrainConfig, learning_rate_factor, make_optimizer, pretrain
from papers_common import InputError, read_jsonl

SEQ_LEN = 32


def patterned_tokens(count: int, *, seed: int = 0) -> np.ndarray:
    """Phrases drawn from 30 fixed ones over a Zipf-like vocabulary: a masked token follows from its context."""
    phrases = np.random.default_rng(42).zipf(1.3, size=(30, 8)) % (VOCAB - 5) + 5
    order = np.random.default_rng(seed).integers(0, len(phrases), size=count // 8 + 1)
    return phrases[order].reshape(-1)[:count].astype("<u2")


def dataset(tmp_path: Path, count: int = 6000, *, seed: int = 0, name: str = "train") -> PackedDataset:
    path = tmp_path / f"{name}.bin"
    patterned_tokens(count, seed=seed).tofile(path)
    return PackedDataset(path, seq_len=SEQ_LEN, cls_id=2, sep_id=3, pad_id=0, dtype="<u2")


def fresh_model(seed: int = 0, **overrides: object) -> MetroForPreTraining:
    torch.manual_seed(seed)
    return MetroForPreTraining(tiny_config(**overrides))


def test_learning_rate_warms_up_then_decays_to_zero():
    factors = [learning_rate_factor(s, warmup=4, total=10) for s in range(10)]
    np.testing.assert_allclose(factors[:4], [0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(factors[4:], [1.0, 5 / 6, 4 / 6, 3 / 6, 2 / 6, 1 / 6])
    assert learning_rate_factor(10, warmup=4, total=10) == 0.0


def test_weight_decay_spares_biases_and_layer_norms():
    model = fresh_model()
    decay, no_decay = make_optimizer(model, TrainConfig()).param_groups
    names = {id(p): n for n, p in model.named_parameters()}
    assert all(p.ndim >= 2 for p in decay["params"])
    assert decay["weight_decay"] == 0.01
    assert no_decay["weight_decay"] == 0.0
    assert not any(names[id(p)].endswith(".bias") for p in decay["params"])
    assert any(names[id(p)].endswith(".bias") for p in no_decay["params"])
    assert any("relative_attention_bias" in names[id(p)] for p in no_decay["params"])
    assert all(p.ndim == 1 or "relative_attention_bias" in names[id(p)] for p in no_decay["params"])


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"steps": 0}, "steps"),
        ({"lr": float("nan")}, "lr"),
        ({"batch_size": 6, "grad_accumulation": 4}, "split"),
    ],
)
def test_bad_train_settings_are_refused(settings, message):
    with pytest.raises(InputError, match=message):
        TrainConfig(**settings).check()


def test_a_tiny_run_lowers_every_loss(tmp_path):
    train, valid = dataset(tmp_path), dataset(tmp_path, 1500, seed=1, name="valid")
    model = fresh_model(rtd_weight=10.0)
    before = {k: v for k, v in _eval(model, valid).items() if k.endswith("loss")}
    config = TrainConfig(steps=30, batch_size=16, lr=2e-3, warmup_steps=3, log_every=5, eval_sequences=64)
    result = pretrain(model, train, config, tmp_path / "run", valid=valid)
    after = result.final_eval
    assert result.diverged_at is None
    assert result.steps == 30
    assert set(before) == {"mlm_loss", "rtd_loss", "clm_loss"}
    for name, value in before.items():
        assert after[name] < value - 0.05, (name, value, after[name])
    assert after["rtd_auc"] > 0.6
    run = tmp_path / "run"
    assert (run / "model" / "config.json").is_file()
    assert (run / "summary.json").is_file()
    assert json.loads((run / "config.json").read_text())["train"]["steps"] == 30
    logged = read_jsonl(run / "metrics.jsonl")
    assert [r["step"] for r in logged if "loss" in r] == list(range(5, 31, 5))
    assert all(r["tokens_per_second"] > 0 for r in logged if "loss" in r)


def _eval(model: MetroForPreTraining, valid: PackedDataset) -> dict[str, float]:
    from metro_lm.evaluation import pretraining_metrics

    return pretraining_metrics(model, valid, max_sequences=64)


def test_a_resumed_run_continues_the_same_loss_curve_bit_exactly(tmp_path, monkeypatch):
    import metro_lm.train as train_module

    train = dataset(tmp_path)
    config = TrainConfig(steps=6, batch_size=8, grad_accumulation=2, lr=1e-3, warmup_steps=2, log_every=1,
                         save_every=3)  # fmt: skip
    model_a = fresh_model(hidden_dropout_prob=0.1, generator_dropout=0.1)
    pretrain(model_a, train, config, tmp_path / "a")

    real_save = train_module._save

    def save_then_die(run, step, *args, **kwargs):
        real_save(run, step, *args, **kwargs)
        if step == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "_save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        pretrain(fresh_model(hidden_dropout_prob=0.1, generator_dropout=0.1), train, config, tmp_path / "b")
    monkeypatch.setattr(train_module, "_save", real_save)
    model_b = fresh_model(
        seed=123, hidden_dropout_prob=0.1, generator_dropout=0.1
    )  # weights come from the checkpoint
    result = pretrain(model_b, train, config, tmp_path / "b")
    assert result.steps == 6
    curve_a = [(r["step"], r["loss"]) for r in read_jsonl(tmp_path / "a" / "metrics.jsonl")]
    curve_b = [(r["step"], r["loss"]) for r in read_jsonl(tmp_path / "b" / "metrics.jsonl")]
    assert curve_b == curve_a
    assert len(curve_a) == 6
    for (name, a), b in zip(model_a.state_dict().items(), model_b.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_resuming_with_another_model_is_refused(tmp_path):
    train = dataset(tmp_path)
    config = TrainConfig(steps=2, batch_size=4, log_every=1)
    pretrain(fresh_model(), train, config, tmp_path / "run", run_config={"model": {"hidden_size": 32}})
    with pytest.raises(InputError, match="model"):
        pretrain(fresh_model(), train, config, tmp_path / "run", run_config={"model": {"hidden_size": 64}})


def test_divergence_is_detected_and_recorded(tmp_path):
    train = dataset(tmp_path)
    model = fresh_model()
    with torch.no_grad():
        model.metro.embeddings.word_embeddings.weight.fill_(float("nan"))
    result = pretrain(model, train, TrainConfig(steps=5, batch_size=4, log_every=1), tmp_path / "run")
    assert result.diverged_at == 1
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["diverged_at"] == 1


WORKER = """
import json, sys, torch
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from test_train import dataset, fresh_model
from metro_lm.train import TrainConfig, pretrain
tmp = Path(sys.argv[2])
config = TrainConfig(steps=2, batch_size=8, grad_accumulation=int(sys.argv[3]), lr=1e-3, warmup_steps=1, log_every=1)
model = fresh_model(generator_dropout=0.1)
result = pretrain(model, dataset(tmp), config, tmp / sys.argv[4])
if torch.distributed.is_initialized():
    torch.distributed.destroy_process_group()
"""


def test_two_torchrun_processes_match_one_process_with_accumulation(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    tests = str(Path(__file__).parent)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    env.pop("WORLD_SIZE", None)
    single = subprocess.run([sys.executable, str(script), tests, str(tmp_path), "2", "one"], env=env,
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert single.returncode == 0, single.stderr[-3000:]
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    double = subprocess.run([*launcher, str(script), tests, str(tmp_path), "1", "two"], env=env,
                            capture_output=True, text=True, timeout=180)  # fmt: skip
    assert double.returncode == 0, double.stderr[-3000:]
    one = read_jsonl(tmp_path / "one" / "metrics.jsonl")
    two = read_jsonl(tmp_path / "two" / "metrics.jsonl")
    assert [r["step"] for r in one] == [r["step"] for r in two] == [1, 2]
    for a, b in zip(one, two, strict=True):
        for name in ("loss", "mlm_loss", "rtd_loss", "clm_loss"):
            assert b[name] == pytest.approx(a[name], rel=1e-5, abs=1e-6), name
    assert json.loads((tmp_path / "two" / "config.json").read_text())["world_size"] == 2


KILLABLE = """
import sys, time
sys.path.insert(0, sys.argv[1])
import torch
torch.set_num_threads(1)
import metro_lm.train as train_module
from test_train import dataset, fresh_model, RESUME_CONFIG
from pathlib import Path

if sys.argv[3] == "slow":  # a pause after each checkpoint, so that the kill lands part-way through the run
    real_save = train_module._save
    def slow_save(*args, **kwargs):
        real_save(*args, **kwargs)
        time.sleep(0.4)
    train_module._save = slow_save
tmp = Path(sys.argv[2])
train_module.pretrain(fresh_model(hidden_dropout_prob=0.1), dataset(tmp), RESUME_CONFIG, tmp / "killed")
"""
RESUME_CONFIG = TrainConfig(steps=40, batch_size=8, lr=1e-3, warmup_steps=2, log_every=1, save_every=5)


def test_a_run_killed_with_sigkill_resumes_to_the_uninterrupted_result(tmp_path):
    import signal
    import time

    from safetensors.torch import load_file

    from papers_common import latest_checkpoint

    script = tmp_path / "killable.py"
    script.write_text(KILLABLE)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, str(script), str(Path(__file__).parent), str(tmp_path)]
    process = subprocess.Popen([*command, "slow"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        found = latest_checkpoint(tmp_path / "killed" / "checkpoints")
        if found is not None and int(re.sub(r"\D", "", found.name)) >= 15:
            break
        time.sleep(0.05)
    assert process.poll() is None, process.stderr.read().decode()[-2000:]  # still running: kill it mid-run
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert not (tmp_path / "killed" / "model").exists()
    done = subprocess.run([*command, "fast"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]

    reference = pretrain(
        fresh_model(hidden_dropout_prob=0.1), dataset(tmp_path), RESUME_CONFIG, tmp_path / "whole"
    )
    assert reference.steps == 40
    curve = [(r["step"], r["loss"]) for r in read_jsonl(tmp_path / "killed" / "metrics.jsonl") if "loss" in r]
    want = [(r["step"], r["loss"]) for r in read_jsonl(tmp_path / "whole" / "metrics.jsonl") if "loss" in r]
    assert curve == want
    a = load_file(tmp_path / "killed" / "model" / "model.safetensors")
    b = load_file(tmp_path / "whole" / "model" / "model.safetensors")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
