"""``benchmarks/run.py`` on a tiny setting: the curve, the equal-time errors, bench.json's consistency, the flags."""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest

from papers_common import load_bench, preserved_global_state
from pinn_stein import Heat

RUN = Path(__file__).resolve().parents[1] / "benchmarks" / "run.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("pinn_stein_bench", RUN)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def _restore_torch_state() -> Iterator[None]:
    with preserved_global_state():
        yield


TINY = ["--dims", "4,8", "--repeats", "1", "--error-dims", "4", "--budget-s", "0.2", "--width", "16"]


def test_curve_and_equal_time_are_consistent(bench: ModuleType, tmp_path: Path) -> None:
    assert bench.main(["--out", str(tmp_path), *TINY, "--test-points", "50", "--eval-samples", "16"]) == 0
    data = load_bench(tmp_path / "bench.json")  # validates against the schema
    details = json.loads((tmp_path / "bench_details.json").read_text())
    assert (tmp_path / "cost_vs_dimension.png").stat().st_size > 0

    timings = details["timings"]
    labels = {v.label for v in bench.VARIANTS}
    assert {(t["label"], t["dim"]) for t in timings} >= {(label, d) for label in labels for d in (4, 8)}
    seconds = {(t["label"], t["dim"]): t["seconds"] for t in timings if t["seconds"] is not None}
    assert all(t["skipped"] for t in timings if t["seconds"] is None)

    # the headline: Stein-VR N=256 against the fastest exact method at the largest d (250 is not measured)
    assert details["headline_dim"] == 8
    exact = {label: seconds[(label, 8)] for label in bench.EXACT_NAMES if (label, 8) in seconds}
    best = min(exact, key=exact.__getitem__)
    assert f"vs best exact {best}" in data["workload"]
    assert data["ours"] == pytest.approx(seconds[("stein-vr N=256", 8)])
    assert data["anchor_value"] == pytest.approx(exact[best])
    assert data["ratio"] == pytest.approx(data["ours"] / data["anchor_value"])
    assert data["anchor"]["name"] == bench.EXACT_NAMES[best]

    curve = [r for r in data["rows"] if r["metric"] == "seconds per iteration"]
    for d in (4, 8):
        assert any(r["workload"].startswith(f"heat-{d} ") for r in curve)
    for row in data["rows"]:
        assert row["ratio"] == pytest.approx(row["ours"] / row["anchor_value"])

    runs = details["equal_time"]
    assert {r["label"] for r in runs} == labels
    assert {r["dim"] for r in runs} == {4}
    assert all(r["diverged"] or r["training_seconds"] >= 0.2 for r in runs)
    errors = [r for r in data["rows"] if r["metric"] == "test relative L2 error at equal wall time"]
    ours = next(r["rel_l2"] for r in runs if r["label"] == "stein-vr N=256")
    assert errors
    assert all(r["ours"] == pytest.approx(ours) for r in errors)
    assert details["network_rows_per_iteration"]["stein-vr N=256"] == 50 * 257 + 100 * 256
    # width 16: inputs of 5 and 9 are wide enough to split the first layer off (N/2 + 1 rows per point)
    assert details["first_layer_rows_per_iteration"]["stein-vr N=256"] == {"4": 150 * 129, "8": 150 * 129}
    assert "38,450 network rows, 19,350 first-layer rows per iteration" in data["workload"]


def test_sweep_skips_over_budget_and_stays_skipped(bench: ModuleType) -> None:
    settings = bench.Settings((2, 4, 8), (2,), 16, 2, 0.05, 1.0, 10, 16, "cpu", 1)
    slow = bench.Variant("slow", "pinn")

    def make_step(pde: Heat, variant: object) -> Callable[[], None]:
        pause = 0.1 if variant is slow and pde.dim >= 4 else 0.0
        return lambda: time.sleep(pause)

    timings = bench.sweep((bench.OURS, slow), settings, make_step)
    found = {(t.label, t.dim): t for t in timings}
    assert found[("slow", 2)].seconds is not None
    assert "warm-up" in found[("slow", 4)].skipped
    assert found[("slow", 8)].skipped.startswith("skipped from d = 4")
    assert all(found[(bench.OURS.label, d)].seconds is not None for d in (2, 4, 8))


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--dims", "0,4"),
        ("--dims", "4,4"),
        ("--repeats", "0"),
        ("--max-iteration-s", "nan"),
        ("--error-dims", "x"),
        ("--budget-s", "-1"),
        ("--width", "1.5"),
        ("--test-points", "0"),
        ("--eval-samples", "15"),
        ("--threads", "0"),
        ("--device", "tpu"),
    ],
)
def test_every_flag_is_validated(
    bench: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str, value: str
) -> None:
    with pytest.raises(SystemExit) as raised:
        bench.main(["--out", str(tmp_path), flag, value])
    assert raised.value.code == 2
    assert flag in capsys.readouterr().err.splitlines()[-1]
