"""The benchmark's rule for equal wall-clock comparisons (the benchmark itself runs in nox, not here)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    """``benchmarks/run.py`` as a module (it imports its sibling ``official_loop`` from its own folder)."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        spec = importlib.util.spec_from_file_location("pinn_linf_benchmark_run", BENCHMARKS / "run.py")
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # its dataclasses look their module up while they are built
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCHMARKS))
    return module


def test_a_comparison_where_a_side_ran_under_50_iterations_is_invalid(bench: ModuleType) -> None:
    assert bench.MIN_ITERATIONS == 50
    assert bench.too_few_iterations(60, 400) is None
    assert bench.too_few_iterations(50, 50) is None
    reason = bench.too_few_iterations(60, 5)  # the anchor starved of its budget under load
    assert reason is not None
    assert "the anchor ran 5" in reason
    assert "fewer than 50" in reason
    both = bench.too_few_iterations(49, 5)
    assert both is not None
    assert "ours ran 49" in both
    assert "the anchor ran 5" in both


def _run(iterations: int, w11: float) -> dict:
    return {"seconds": 30.0, "iterations": iterations, "metrics": {"rel_w11": w11, "rel_l2": w11 / 4}}


def test_the_headline_is_against_our_own_l2_pinn_and_is_refused_when_starved(bench: ModuleType) -> None:
    anchor = bench.Anchor("pinn-linf L2 PINN", "0")
    results = {"train-ours": _run(120, 0.199), bench.HEADLINE_RUN: _run(900, 0.148)}
    rows, invalid = bench.headline_rows(bench.QUICK, results, anchor)
    assert invalid is None
    label, headline = rows[0]
    assert "our L2 PINN" in label
    assert headline.metric == "relative W^{1,1} error"
    assert headline.ratio == pytest.approx(0.199 / 0.148)
    results[bench.HEADLINE_RUN] = _run(5, 0.9)
    _, invalid = bench.headline_rows(bench.QUICK, results, anchor)
    assert invalid is not None
    assert "the anchor ran 5" in invalid
