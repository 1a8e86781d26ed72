"""The benchmark refuses a bad flag in one line before it measures anything; its rounds are balanced."""

from __future__ import annotations

import importlib.util
import itertools
from collections import Counter
from pathlib import Path
from types import ModuleType

import pytest

RUNNER = Path(__file__).parents[1] / "benchmarks" / "run.py"


def load_runner() -> ModuleType:
    spec = importlib.util.spec_from_file_location("urpe_benchmark_run", RUNNER)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--rounds", "0"], "--rounds must be at least 1"),
        (["--lengths", "128", "0"], "--lengths must be at least 1"),
        (["--embed", "10"], "--embed 10 is not a multiple of --heads 8"),
    ],
)
def test_bad_flags_are_refused_in_one_line(
    flags: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as raised:
        load_runner().main(["--out", str(tmp_path / "out"), *flags])
    assert raised.value.code == 2
    assert message in capsys.readouterr().err


def test_an_out_path_that_is_a_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = tmp_path / "taken"
    file.write_text("x")
    with pytest.raises(SystemExit):
        load_runner().main(["--out", str(file)])
    assert "is a file, not a folder" in capsys.readouterr().err


@pytest.mark.parametrize("n", [1, 2, 3, 5, 6])
def test_williams_orders_let_each_method_follow_every_other_equally_often(n: int) -> None:
    orders = load_runner().williams_orders(n)
    assert all(sorted(order) == list(range(n)) for order in orders)
    follows = Counter((a, b) for order in orders for a, b in itertools.pairwise(order))
    assert set(follows) == {(a, b) for a in range(n) for b in range(n) if a != b}
    assert len(set(follows.values())) <= 1
