"""``pinn-stein reproduce`` on a miniature plan: every claim measured, tables, figures, resume."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from papers_common import load_results, preserved_global_state
from pinn_stein import reproduce
from pinn_stein.cli import app
from pinn_stein.experiments import Cost, EstimatorError, crossover

TINY = dataclasses.replace(
    reproduce.QUICK,
    estimator_dims=(10,),
    estimator_samples=(32, 64),
    estimator_reference_pairs=4,
    heat_dim=4,
    heat_width=16,
    heat_iterations=10,
    heat_samples=16,
    heat_test_points=50,
    heat_eval_every=5,
    cost_dims=(4, 8),
    cost_width=16,
    cost_samples=16,
    cost_iterations=1,
    cost_limits=(("smoothed-autograd", 4),),
)


@pytest.fixture(autouse=True)
def _restore_torch_determinism() -> Iterator[None]:
    with preserved_global_state():
        yield


def test_reproduce_writes_every_claim_table_and_figure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(reproduce, "QUICK", TINY)
    out = tmp_path / "report"
    assert app.main(["reproduce", "--quick", "--out", str(out), "--device", "cpu"]) == 0
    results = load_results(out / "results.json")
    ids = [c.id for c in results.claims]
    assert ids == ["estimator-vr", "heat-error", "cost-cpu"]
    assert all(c.paper_source for c in results.claims)  # the paper's figure or why there is none
    assert results.claims[0].holds  # variance reduction wins by orders of magnitude even here
    assert results.claims[0].ours > 100
    for figure in results.figures:
        assert (out / figure).stat().st_size > 1000
    tables = (out / "tables.md").read_text()
    assert "| float32 | 10 | 32 |" in tables
    assert "smoothed-autograd" in tables
    heat = json.loads((out / "heat.json").read_text())
    assert [h["iteration"] for h in heat["stein-vr"]["history"]] == [5, 10]
    assert "HOLDS  estimator-vr" in capsys.readouterr().out

    # started again with the same --out, the finished training runs are reused, not retrained
    assert app.main(["reproduce", "--quick", "--out", str(out), "--device", "cpu"]) == 0
    again = json.loads((out / "heat.json").read_text())
    assert again["pinn"]["metrics"] == heat["pinn"]["metrics"]
    assert again["pinn"]["history"] == heat["pinn"]["history"]
    assert again["pinn"]["seconds_per_iteration"] == pytest.approx(heat["pinn"]["seconds_per_iteration"])


def test_crossover_is_the_start_of_the_last_winning_stretch() -> None:
    def costs(pairs: dict[int, tuple[float, float]]) -> list[Cost]:
        found = []
        for dim, (ours, anchor) in pairs.items():
            found += [Cost("cpu", "stein-vr", dim, ours), Cost("cpu", "pinn", dim, anchor)]
        return found

    assert crossover(costs({10: (2, 1), 100: (1, 2), 1000: (1, 5)}), "stein-vr", "pinn") == 100
    assert crossover(costs({10: (1, 2), 100: (3, 2), 1000: (1, 5)}), "stein-vr", "pinn") == 1000
    assert crossover(costs({10: (2, 1), 100: (3, 2)}), "stein-vr", "pinn") is None


def test_every_claim_states_the_papers_figure_or_why_not() -> None:
    """Every claim of either mode, on any device, says where the paper's figure is or why there is none (claims
    built from given numbers: the full mode's extra claim and the GPU sweep's claim without running them)."""
    errors = [EstimatorError("float32", dim, 512, 1.0, 1e-3) for dim in (10, 100)]
    heat = {method: {"metrics": {"rel_l2": 0.01}} for method in ("pinn", "stein-vr")}
    costs = [Cost(device, method, dim, 1.0) for device in ("cpu", "cuda") for method in ("pinn", "stein-vr")
             for dim in (10, 1000)]  # fmt: skip
    for plan, quick in ((reproduce.QUICK, True), (reproduce.FULL, False)):
        claims = reproduce._claims(plan, errors, heat, costs, quick)
        assert {c.id for c in claims} >= {"estimator-vr", "heat-error", "cost-cpu", "cost-cuda"}
        assert ("heat-error-full" in {c.id for c in claims}) is not quick
        assert all(c.paper_source for c in claims), [c.id for c in claims if not c.paper_source]
