"""``pinn-linf reproduce`` end to end on a reduced budget: every claim is measured and the report is complete."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

import pinn_linf.reproduce as reproduce
from papers_common import load_results

TINY = dataclasses.replace(reproduce.QUICK, lqg_dim=3, lin_dim=4, width=8, iterations=12, lin_iterations=12,
                           batch=8, steps=2, test_points=30, mc_samples=256, probe_points=40, eval_every=4)  # fmt: skip


def test_reproduce_writes_every_claim_figure_and_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reproduce, "QUICK", TINY)
    results = reproduce.run(tmp_path, quick=True, seed=0)
    ids = [c.id for c in results.claims]
    assert ids == ["lqg-w11", "lqg-l2", "lqg-equal-time-w11", "lqg-equal-time-l2", "lqg-linf-loss",
                   "lqg-max-pde-residual", "lin-w11", "lin-l2"]  # fmt: skip
    assert load_results(tmp_path / "results.json").claims[0].id == "lqg-w11"
    # every claim states the paper's figure with its source, or why there is none (never a bare dash)
    assert all(c.paper_source for c in results.claims), [c.id for c in results.claims if not c.paper_source]
    assert all(c.paper_source for c in load_results(tmp_path / "results.json").claims)
    for figure in results.figures:
        assert (tmp_path / figure).stat().st_size > 1000
    runs = json.loads((tmp_path / "runs.json").read_text())
    assert set(runs) == {"lqg-adversarial", "lqg-l2", "lqg-l2-equal-time", "lin-adversarial", "lin-l2"}
    assert runs["lqg-adversarial"]["iterations"] == 12
    equal = runs["lqg-l2-equal-time"]
    # the equal-time run trains for the adversarial run's seconds; it stops at the first iteration past the budget,
    # which here is a fraction of a second, so the overshoot is bounded in seconds, not relative to the budget, and
    # how many iterations fit depends on the machine's load (on a quiet machine an L2 iteration is cheaper)
    budget = runs["lqg-adversarial"]["seconds"]
    assert 0.5 * budget <= equal["seconds"] <= budget + 1.0
    assert equal["iterations"] >= 1
    for name in runs:
        assert (tmp_path / "runs" / name / "model" / "model.safetensors").is_file()
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["plan"]["steps"] == 2
    assert "| lqg-adversarial | 12 |" in (tmp_path / "tables.md").read_text()
