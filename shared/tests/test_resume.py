"""``papers_common.resume_run``: start or resume a run directory, refusing a checkpoint of other settings."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from papers_common import InputError, RunDir, resume_run, save_checkpoint


def test_a_fresh_run_writes_its_config(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "run")
    assert resume_run(run, {"model": {"width": 2}}, ("model",), nn.Linear(2, 1)) is None
    assert run.read_config() == {"model": {"width": 2}}


def test_resume_restores_weights_optimizer_and_truncates_metrics(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "run")
    torch.manual_seed(0)
    model = nn.Linear(2, 1)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    model(torch.ones(1, 2)).sum().backward()
    optimizer.step()
    config = {"model": {"width": 2}, "note": "anything"}
    save_checkpoint(run.checkpoints, 3, model, optimizer=optimizer, config=config, extra={"cursor": 7})
    for step in (1, 3, 5):
        run.log(step, loss=1.0)
    fresh = nn.Linear(2, 1)
    fresh_optimizer = torch.optim.Adam(fresh.parameters(), lr=0.1)
    checkpoint = resume_run(run, {**config, "note": "changed"}, ("model",), fresh, fresh_optimizer)
    assert checkpoint is not None
    assert checkpoint.step == 3
    assert checkpoint.extra["cursor"] == 7
    assert torch.equal(fresh.weight, model.weight)
    assert fresh_optimizer.state_dict()["state"][0]["step"] == 1
    assert [r["step"] for r in run.metrics()] == [1, 3]
    assert run.read_config()["note"] == "changed"


def test_a_checkpoint_of_other_settings_is_refused_and_left_alone(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "run")
    save_checkpoint(run.checkpoints, 1, nn.Linear(2, 1), config={"model": {"width": 2}, "train": {"lr": 1}})
    run.write_config({"model": {"width": 2}, "train": {"lr": 1}})
    with pytest.raises(InputError, match=r"other settings \(a different train\)"):
        resume_run(run, {"model": {"width": 2}, "train": {"lr": 2}}, ("model", "train"), nn.Linear(2, 1))
    assert run.read_config()["train"] == {"lr": 1}
