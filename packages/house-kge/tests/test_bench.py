"""benchmarks/run.py: the --official-dir check, and the PyKEEN HousE anchor's measurement on a small graph.

The official code's own measurement needs a checkout of anrep/HousE and is not run here.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
from pathlib import Path
from types import ModuleType

# PyKEEN fixes its data folder when it is first imported (see test_interop.py).
os.environ.setdefault("PYKEEN_HOME", str(Path(tempfile.gettempdir()) / "house-kge-tests-pykeen-home"))

import pytest

from papers_common import preserved_global_state

RUN = Path(__file__).resolve().parents[1] / "benchmarks" / "run.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    """benchmarks/run.py imported as a module."""
    spec = importlib.util.spec_from_file_location("house_kge_bench", RUN)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve the module of their fields' types
    spec.loader.exec_module(module)
    return module


def test_official_dir_without_the_official_files_is_one_line(
    bench: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    checkout = tmp_path / "HousE"
    assert bench.main(["--out", str(tmp_path / "out"), "--official-dir", str(checkout)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0
    assert f"--official-dir {checkout}" in error
    assert "codes/model.py, codes/dataloader.py" in error

    (checkout / "codes").mkdir(parents=True)
    (checkout / "codes" / "model.py").write_text("", encoding="utf-8")
    assert bench.main(["--out", str(tmp_path / "out"), "--official-dir", str(checkout)]) == 2
    error = capsys.readouterr().err.strip()
    assert "no codes/dataloader.py there" in error
    assert not (tmp_path / "out").exists()


def test_pykeen_house_training_is_timed(bench: ModuleType) -> None:
    """PyKEEN's sLCWA loop trains house_kge.interop.HousEModel at the benchmark's batch and negatives."""
    request = bench.Request(
        "train", "pykeen", "house", dataset="countries_S1", dim=8, k=4, steps=1, warmup=1, threads=1
    )
    with preserved_global_state():  # the worker sets the thread count and seeds torch
        result = bench.worker(request)
    assert result["steps"] == 1
    assert result["seconds"] > 0
    assert result["triples_per_second"] == pytest.approx(bench.BATCH / result["seconds"])
    _, model = bench.build_pykeen(request, bench.load_graph(request))
    assert model.house_config.dim == 8
    assert model.house_config.projection_size == 1
