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
                   "degrade-epochs", "above-clean-epochs", "degrade-lr", "above-clean-lr", "ntk-depth",
                   "ntk-depth-gaussian", "width"]  # fmt: skip
    assert load_results(tmp_path / "results.json").claims[0].id == "init-digits"
    # every claim states the paper's figure with its source, or why there is none (never a bare dash)
    assert all(c.paper_source for c in results.claims), [c.id for c in results.claims if not c.paper_source]
    assert all(c.paper_source for c in load_results(tmp_path / "results.json").claims)
    # the claims that do not depend on a long sweep hold even on this plan
    held = {c.id: c.holds for c in results.claims}
    assert held["init-digits"]
    assert held["init-mnist1d"]
    assert held["mnist1d-vs-clean"]
    assert held["control-true"]
    assert len(results.figures) == 6
    for figure in results.figures:
        assert (tmp_path / figure).stat().st_size > 1000
    sweeps = json.loads((tmp_path / "sweeps.json").read_text())
    assert set(sweeps["sweeps"]) == {"width", "epochs", "lr", "depth", "depth_gaussian", "steps"}
    degrade = next(c for c in results.claims if c.id == "degrade-epochs")
    assert f"relative distance 0.00 → {sweeps['sweeps']['epochs'][-1]['distance']:.2f}" in degrade.statement
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


def test_a_claim_that_the_measurement_contradicts_prints_fails() -> None:
    """Depth 8 at initialisation on the 10-class mixture: the noise probe below the clean probe is a failure."""

    def rows(*points: tuple[float, float, float]) -> list[dict]:
        return [
            {"value": v, "noise_test_accuracy": a, "distance": d, "model_test_accuracy": 0.5}
            for v, a, d in points
        ]

    init = {"noise_test_accuracy": 0.99}
    found = {
        "clean": {"digits": 0.975, "mnist1d": 0.329, "gaussian": 0.571},
        "init": {"digits": init, "mnist1d": init},
        "control": {"noise_test_accuracy": 0.98, "noise_test_accuracy_true_labels": 0.1},
        "sweeps": {
            "epochs": rows((0, 0.99, 0.0), (50, 0.82, 0.87)),
            "lr": rows((1, 0.96, 0.05), (100, 0.86, 0.7)),
            "depth": rows((2, 0.99, 0.0), (8, 0.51, 0.0)),
            "depth_gaussian": rows((2, 0.97, 0.0), (8, 0.505, 0.0)),
            "width": rows((2, 0.27, 0.0), (2048, 0.99, 0.0)),
        },
    }
    claims = {c.id: c for c in reproduce._claims(reproduce.QUICK, found)}
    assert all(c.paper_source for c in claims.values())
    assert claims["degrade-epochs"].holds
    assert "relative distance 0.00 → 0.87" in claims["degrade-epochs"].statement
    assert claims["ntk-depth"].holds
    assert not claims["ntk-depth-gaussian"].holds
    summary = reproduce.Results("advsep", "0", reproduce.PAPER, "quick", {}, 1.0, list(claims.values()))
    assert any(line.startswith("FAILS  ntk-depth-gaussian") for line in summary.summary_lines())
