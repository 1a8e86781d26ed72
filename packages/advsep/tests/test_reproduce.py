"""``advsep reproduce`` end to end on a reduced plan: every claim is measured and the report is complete."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import advsep.reproduce as reproduce
from papers_common import load_results

TINY = reproduce.Plan(width=256, widths=(2, 64), epochs=(0, 2), epochs_lr=1.0, lrs=(0.01, 1.0), lrs_epochs=2,
                      depths=(2, 4), steps=(1, 3), seeds=(0,))  # fmt: skip


def test_reproduce_writes_every_claim_figure_and_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reproduce, "QUICK", TINY)
    results = reproduce.run(tmp_path, quick=True, seed=0)
    ids = [c.id for c in results.claims]
    assert ids == ["init-digits", "init-mnist1d", "mnist1d-vs-clean", "control-shuffled", "control-true",
                   "degrade-epochs", "above-clean-epochs", "degrade-lr", "above-clean-lr", "degrade-depth",
                   "above-clean-depth", "width"]  # fmt: skip
    assert load_results(tmp_path / "results.json").claims[0].id == "init-digits"
    # the claims that do not depend on a long sweep hold even on this plan
    held = {c.id: c.holds for c in results.claims}
    assert held["init-digits"]
    assert held["init-mnist1d"]
    assert held["mnist1d-vs-clean"]
    assert held["control-true"]
    assert len(results.figures) == 5
    for figure in results.figures:
        assert (tmp_path / figure).stat().st_size > 1000
    sweeps = json.loads((tmp_path / "sweeps.json").read_text())
    assert set(sweeps["sweeps"]) == {"width", "epochs", "lr", "depth", "steps"}
    assert "| mnist1d | shuffled |" in (tmp_path / "tables.md").read_text()
    assert json.loads((tmp_path / "config.json").read_text())["plan"]["width"] == 256


def test_seeds_are_averaged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from advsep import gaussian

    data = gaussian(dim=16, classes=3, train=90, test=60, seed=0)
    merged = reproduce._mean_over_seeds(data, reproduce.Setup(width=8), (0, 1))
    one = reproduce.run_experiment(data, reproduce.Setup(width=8, seed=0))
    two = reproduce.run_experiment(data, reproduce.Setup(width=8, seed=1))
    assert merged["noise_test_accuracy"] == pytest.approx(
        (one["noise_test_accuracy"] + two["noise_test_accuracy"]) / 2
    )
    assert merged["seeds"] == [0, 1]
