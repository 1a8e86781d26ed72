"""``pinn-linf reproduce`` end to end on a reduced budget: every claim is measured over seeds and the report is
complete."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import statistics
from pathlib import Path

import pytest

import pinn_linf.reproduce as reproduce
from papers_common import load_results

TINY = dataclasses.replace(reproduce.QUICK, lqg_dim=3, lin_dim=4, width=8, iterations=12, lin_iterations=12,
                           batch=8, steps=2, test_points=30, mc_samples=256, probe_points=40, eval_every=4,
                           seeds=2)  # fmt: skip
IDS = ["lqg-w11", "lqg-l2", "lqg-equal-time-w11", "lqg-equal-time-l2", "lqg-linf-loss", "lqg-max-pde-residual",
       "lin-w11", "lin-l2"]  # fmt: skip
# claim id -> (ours, baseline, metric key, factor): which runs each claim pairs, seed by seed
PAIRS = {
    "lqg-w11": ("lqg-adversarial", "lqg-l2", "rel_w11", 2.0),
    "lqg-l2": ("lqg-adversarial", "lqg-l2", "rel_l2", 1.0),
    "lqg-equal-time-w11": ("lqg-adversarial", "lqg-l2-equal-time", "rel_w11", 1.0),
    "lqg-equal-time-l2": ("lqg-adversarial", "lqg-l2-equal-time", "rel_l2", 1.0),
    "lqg-linf-loss": ("lqg-adversarial", "lqg-l2", "linf_loss", 1.0),
    "lqg-max-pde-residual": ("lqg-adversarial", "lqg-l2", "max_residual", 1.0),
    "lin-w11": ("lin-adversarial", "lin-l2", "rel_w11", 2.0),
    "lin-l2": ("lin-adversarial", "lin-l2", "rel_l2", 1.0),
}


def test_the_modes_run_at_least_the_seeds_a_comparison_needs() -> None:
    assert reproduce.QUICK.seeds >= 2
    assert reproduce.FULL.seeds >= 3


def test_reproduce_decides_every_claim_over_seeds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(reproduce, "QUICK", TINY)
    monkeypatch.setattr(reproduce, "HEARTBEAT_SECONDS", 0.05)
    caplog.set_level(logging.INFO, logger=reproduce.LOG.name)
    results = reproduce.run(tmp_path, quick=True, seed=5)
    # while runs are in flight a line names them at least every HEARTBEAT_SECONDS
    assert any(r.getMessage().startswith("reproduce: running ") for r in caplog.records)
    assert [c.id for c in results.claims] == IDS
    loaded = load_results(tmp_path / "results.json")
    assert [c.id for c in loaded.claims] == IDS
    # every claim states the paper's figure with its source, or why there is none (never a bare dash)
    assert all(c.paper_source for c in results.claims), [c.id for c in results.claims if not c.paper_source]
    assert all(c.paper_source for c in loaded.claims)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["seeds"] == [5, 6]
    assert config["plan"]["steps"] == 2
    runs = json.loads((tmp_path / "runs.json").read_text())
    methods = ("lqg-adversarial", "lqg-l2", "lqg-l2-equal-time", "lin-adversarial", "lin-l2")
    assert set(runs) == {f"{m}-seed{s}" for m in methods for s in (5, 6)}
    assert all(runs[name]["seed"] == int(name.rsplit("seed", 1)[1]) for name in runs)
    # the seeds give different runs: the comparison is over different initial weights and points
    assert runs["lqg-adversarial-seed5"]["metrics"] != runs["lqg-adversarial-seed6"]["metrics"]
    # each claim pairs the right runs seed by seed, and its verdict follows the rule over the seeds
    for c in loaded.claims:
        ours_run, base_run, key, factor = PAIRS[c.id]
        assert c.spread is not None
        assert c.spread.seeds == (5, 6)
        ours = [runs[f"{ours_run}-seed{s}"]["metrics"][key] for s in (5, 6)]
        base = [runs[f"{base_run}-seed{s}"]["metrics"][key] for s in (5, 6)]
        assert c.spread.ours == pytest.approx(tuple(ours))
        assert c.spread.baseline == pytest.approx(tuple(base))
        assert c.ours == pytest.approx(statistics.mean(ours))
        advantage = [b - factor * o for o, b in zip(ours, base, strict=True)]
        assert c.spread.sd == pytest.approx(statistics.stdev(advantage))
        assert c.holds == (all(map(math.isfinite, ours + base)) and statistics.mean(advantage) > c.spread.sd)
        assert "(2 seeds)" in c.ours_cell()
    assert "(2 seeds)" in (tmp_path / "results.md").read_text()
    for figure in results.figures:
        assert (tmp_path / figure).stat().st_size > 1000
    assert runs["lqg-adversarial-seed5"]["iterations"] == 12
    # each seed's equal-time run trains for that seed's adversarial seconds; it stops at the first iteration past
    # the budget, which here is a fraction of a second, so the overshoot is bounded in seconds, not relative to
    # the budget, and how many iterations fit depends on the machine's load
    for s in (5, 6):
        budget = runs[f"lqg-adversarial-seed{s}"]["seconds"]
        equal = runs[f"lqg-l2-equal-time-seed{s}"]
        assert 0.5 * budget <= equal["seconds"] <= budget + 1.0
        assert equal["iterations"] >= 1
    for name in runs:
        assert (tmp_path / "runs" / name / "model" / "model.safetensors").is_file()
    assert "| lqg-adversarial | 5 | 12 |" in (tmp_path / "tables.md").read_text()
