"""The benchmark runs our method and its anchors at equal compute and writes a valid bench.json."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from papers_common import load_bench

RUN = Path(__file__).parents[1] / "benchmarks" / "run.py"


def load_benchmark():
    spec = importlib.util.spec_from_file_location("vad_asr_benchmark", RUN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_small_benchmark_compares_at_equal_compute(tmp_path, have_espeak, capsys):
    bench = load_benchmark()
    assert bench.main(["--out", str(tmp_path), "--minutes", "0.4", "--window", "6"]) == 0
    data = load_bench(tmp_path / "bench.json")  # schema-checked

    def row(text: str) -> dict:
        [found] = [r for r in data["rows"] if r["workload"].startswith(text)]
        return found

    assert data["ratio"] == pytest.approx(data["ours"] / data["anchor_value"])
    for name in ("compute ratio (decoded s / audio s) vs HF stride", "compute ratio vs NeMo LCS"):
        assert row(name)["ratio"] == pytest.approx(1.0, abs=0.08), name  # equal compute by construction
    assert row("compute ratio vs OI-50")["ratio"] < 0.95
    printed = json.loads(capsys.readouterr().out.rsplit("}\n", 1)[0] + "}")
    assert printed["ours"]["wer"] == pytest.approx(data["ours"])


def test_bad_flags_are_named(tmp_path, capsys):
    bench = load_benchmark()
    assert bench.main(["--out", str(tmp_path), "--minutes", "0"]) == 2
    assert "--minutes" in capsys.readouterr().err
    (tmp_path / "file").write_text("x")
    assert bench.main(["--out", str(tmp_path / "file")]) == 2
    assert "a file is in the way" in capsys.readouterr().err
