"""``house-kge reproduce`` on a miniature plan and miniature datasets: every claim measured and written."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import logging
import math
from collections.abc import Iterator
from pathlib import Path

import pytest
from house_kge import TrainConfig, reproduce
from house_kge.cli import app
from house_kge.data import shipped_dataset

from papers_common import load_results, preserved_global_state

TINY_TRAIN = TrainConfig(steps=20, batch_size=16, negatives=4, lr=1e-2, checkpoint_every=10, log_every=10)
TINY = reproduce.Plan(
    patterns=reproduce.Setting(16, 4, 6.0, TINY_TRAIN),
    small=reproduce.Setting(16, 4, 6.0, TINY_TRAIN),
    countries=reproduce.Setting(16, 4, 0.1, TINY_TRAIN),
    wn18rr=None,
    seeds=2,
)


@pytest.fixture(autouse=True)
def _restore_torch_determinism() -> Iterator[None]:
    with preserved_global_state():
        yield


def write(root: Path, rows: list[tuple[str, str, str]], regions: list[str] | None = None) -> None:
    root.mkdir(parents=True)
    splits = {"train": rows[:-4], "valid": rows[-4:-2], "test": rows[-2:]}
    for split, triples in splits.items():
        (root / f"{split}.txt").write_text(
            "".join(f"{h}\t{r}\t{t}\n" for h, r, t in triples), encoding="utf-8"
        )
    if regions:
        (root / "regions.list").write_text("\n".join(regions) + "\n", encoding="utf-8")


def fake_data(root: Path) -> Path:
    ring = [(f"e{i}", "next", f"e{(i + 1) % 10}") for i in range(10)] + [
        (f"e{(i + 1) % 10}", "prev", f"e{i}") for i in range(10)
    ]
    write(root / "umls", ring)
    write(root / "nations", ring)
    countries = [(f"c{i}", "neighbor", f"c{(i + 1) % 8}") for i in range(8)]
    countries += [(f"c{i}", "locatedin", f"region{i % 2}") for i in range(8)]
    write(root / "countries_S3", countries, regions=["region0", "region1"])  # test: two locatedin queries
    return root


def test_reproduce_measures_every_claim(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    monkeypatch.setenv("PAPERS_PROGRESS", "log")
    monkeypatch.setattr(reproduce, "QUICK", TINY)
    data = fake_data(tmp_path / "kg")
    out = tmp_path / "report"
    assert (
        app.main(["reproduce", "--quick", "--data-dir", str(data), "--out", str(out), "--device", "cpu"]) == 0
    )
    results = load_results(out / "results.json")
    assert [c.id for c in results.claims] == ["patterns", "umls-mrr", "nations-mrr", "countries-s3"]
    assert all(c.ours is not None for c in results.claims)
    assert all(c.paper_source for c in results.claims)  # the paper's figure or why there is none
    tables = json.loads((out / "tables.json").read_text())
    assert tables["patterns"]["seeds"] == [0, 1]
    patterns = tables["patterns"]["mrr"]
    assert set(patterns) == {"symmetric", "antisymmetric", "inverse", "composition"}
    assert all(len(values) == 2 for values in patterns.values())  # a graph and a training per seed
    assert results.claims[0].ours == pytest.approx(min(sum(v) / 2 for v in patterns.values()))
    assert "mean over seeds 0, 1" in results.claims[0].statement
    assert json.loads((out / "config.json").read_text())["seeds"] == [0, 1]
    # the two-model comparisons: one training of each model per seed, decided over the seeds
    for name in ("umls", "nations"):
        rows = tables["small"][name]
        assert rows["seeds"] == [0, 1]
        assert [len(rows["HousE"]), len(rows["RotatE"])] == [2, 2]
        assert all(
            (out / "runs" / f"{name}-{m}-seed{s}" / "model").is_dir()
            for m in ("house", "rotate")
            for s in (0, 1)
        )
        found = next(c for c in results.claims if c.id == f"{name}-mrr")
        assert found.spread is not None
        assert found.spread.seeds == (0, 1)
        assert found.spread.ours == tuple(r["mrr"] for r in rows["HousE"])
        assert found.spread.baseline == tuple(r["mrr"] for r in rows["RotatE"])
        assert found.ours == pytest.approx(sum(r["mrr"] for r in rows["HousE"]) / 2)
        assert found.baseline is not None
        assert found.baseline.name == "RotatE"
        assert found.baseline.value == pytest.approx(sum(r["mrr"] for r in rows["RotatE"]) / 2)
    assert [c.spread is None for c in results.claims] == [
        True,
        False,
        False,
        True,
    ]  # HousE alone: no baseline
    assert (out / "patterns.png").stat().st_size > 1000
    assert "countries-s3" in capsys.readouterr().out
    messages = [record.getMessage() for record in caplog.records]
    # a progress record over the experiments, and the training and evaluation progress inside them
    assert any(m.startswith("reproduce: 4/4 (100%)") and m.endswith("(done)") for m in messages)
    assert any(m.startswith("umls/RotatE: 20/20 (100%)") for m in messages)
    assert any(m.startswith("patterns/composition/seed 1: ") for m in messages)


def small_rows(house: list[float], rotate: list[float]) -> dict:
    return {"seeds": list(range(len(house))), "HousE": [{"mrr": v} for v in house],
            "RotatE": [{"mrr": v} for v in rotate]}  # fmt: skip


@pytest.mark.parametrize(
    ("house", "rotate", "holds"),
    [
        ([0.84, 0.83, 0.84], [0.76, 0.78, 0.76], True),  # a steady lead
        ([0.80, 0.86, 0.79], [0.78, 0.78, 0.80], False),  # a mean lead within the spread
        ([0.80, 0.80, 0.80], [0.80, 0.80, 0.80], False),  # a tie
        ([0.70, 0.72, 0.71], [0.80, 0.81, 0.79], False),  # RotatE ahead
        ([0.84, float("nan"), 0.84], [0.76, 0.78, 0.76], False),  # a run that diverged
    ],
)
def test_comparisons_are_decided_over_seeds(house: list[float], rotate: list[float], holds: bool) -> None:
    tables = {"patterns": {"seeds": [0, 1], "mrr": {"symmetric": [0.95, 0.95]}}, "countries_S3": {"auc_pr": 0.95},
              "small": {"umls": small_rows(house, rotate), "nations": small_rows([0.7, 0.7], [0.6, 0.6])}}  # fmt: skip
    claims = {c.id: c for c in reproduce._claims(tables)}
    advantages = [h - r for h, r in zip(house, rotate, strict=True)]
    mean = sum(advantages) / 3
    sd = math.sqrt(sum((a - mean) ** 2 for a in advantages) / 2)
    assert claims["umls-mrr"].holds == (all(map(math.isfinite, advantages)) and mean > sd)
    assert claims["umls-mrr"].holds is holds
    assert claims["umls-mrr"].spread.seeds == (0, 1, 2)
    assert claims["umls-mrr"].paper_source.startswith("no UMLS experiment in the paper")
    assert claims["nations-mrr"].holds  # the same lead at both seeds: no spread to exceed
    assert claims["nations-mrr"].rule.startswith("over 2 seeds: mean(ours - RotatE) - 0 > sd(ours - RotatE)")


def test_reproduce_runs_without_a_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On a fresh machine: Countries S3 from the copy shipped in the package, UMLS and Nations from PyKEEN."""
    monkeypatch.setattr(reproduce, "QUICK", TINY)
    monkeypatch.setenv("PYKEEN_HOME", str(tmp_path / "pykeen"))
    out = tmp_path / "report"
    assert app.main(["reproduce", "--quick", "--out", str(out), "--device", "cpu"]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["data_dir"] is None
    assert config["datasets"] == {
        "umls": "pykeen.datasets.umls",
        "nations": "pykeen.datasets.nations",
        "countries_S3": str(shipped_dataset("countries_S3")),
    }
    results = load_results(out / "results.json")
    assert [c.id for c in results.claims] == ["patterns", "umls-mrr", "nations-mrr", "countries-s3"]
    # the shipped Countries S3: 24 test queries over its 5 regions, not a data folder's graph
    runs = json.loads((out / "runs" / "countries_S3-house" / "config.json").read_text())
    assert runs["dataset"] == {"name": "countries_S3", "entities": 271, "relations": 2, "train": 985, "valid": 24,
                               "test": 24, "unseen": {}, "skipped": {}}  # fmt: skip


def test_a_data_dir_overrides_the_shipped_copies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reproduce, "QUICK", TINY)
    data = fake_data(tmp_path / "kg")
    out = tmp_path / "report"
    assert app.main(["reproduce", "--data-dir", str(data), "--out", str(out), "--device", "cpu"]) == 0
    sources = json.loads((out / "config.json").read_text())["datasets"]
    assert sources == {name: str(data / name) for name in ("umls", "nations", "countries_S3")}


def test_reproduce_without_pykeen_or_a_data_dir_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, *args, **kwargs):
        return None if name.split(".")[0] == "pykeen" else real(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    assert app.main(["reproduce", "--quick", "--out", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err == (
        "house-kge: error: reproduce reads umls and nations from the pykeen wheel: pip install "
        "'house-kge[reproduce]', or give --data-dir DIR holding umls/, nations/\n"
    )


def test_full_mode_adds_wn18rr_when_present(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With wn18rr/ under --data-dir the full plan trains HousE on it and states the MRR and time claims."""
    monkeypatch.setattr(
        reproduce, "FULL", dataclasses.replace(TINY, wn18rr=reproduce.Setting(16, 4, 6.0, TINY_TRAIN))
    )
    data = fake_data(tmp_path / "kg")
    ring = [(f"w{i}", "hypernym", f"w{(i + 1) % 12}") for i in range(12)]
    write(data / "wn18rr", ring + [(f"w{i}", "hypernym", f"w{(i + 2) % 12}") for i in range(4)])
    out = tmp_path / "report"
    assert (
        app.main(["reproduce", "--full", "--data-dir", str(data), "--out", str(out), "--device", "cpu"]) == 0
    )
    claims = {c.id: c for c in load_results(out / "results.json").claims}
    assert claims["wn18rr"].paper_value == 0.511
    assert claims["wn18rr"].paper_cell() == "0.511 (HousE, WN18RR, d = 800, main link-prediction table)"
    assert all(c.paper_source for c in claims.values())  # every claim of the full plan, wn18rr's included
    assert claims["wn18rr-time"].holds  # seconds, far below 45 minutes
    wn = json.loads((out / "tables.json").read_text())["wn18rr"]
    assert 0 < wn["HousE"]["mrr"] <= 1
    assert wn["HousE"]["total_seconds"] >= wn["HousE"]["seconds"]
    assert wn["paper"]["RotatE"]["mrr"] == 0.477


@pytest.mark.parametrize(
    ("composition", "holds"),
    [
        ([0.95, 0.92], True),
        ([0.95, 0.72], False),  # the first seed alone passes; the mean over seeds does not
        ([0.95, float("nan")], False),
    ],
)
def test_the_pattern_claim_is_decided_on_the_mean_over_seeds(composition: list[float], holds: bool) -> None:
    patterns = {"seeds": [0, 1], "mrr": {"symmetric": [1.0, 1.0], "composition": composition}}
    tables = {"patterns": patterns, "countries_S3": {"auc_pr": 0.95},
              "small": {"umls": small_rows([0.7, 0.7], [0.6, 0.6])}}  # fmt: skip
    found = reproduce._claims(tables)[0]
    assert found.id == "patterns"
    assert found.holds is holds
    assert "lowest: composition" in found.statement
    mean = sum(composition) / 2
    assert found.ours == (pytest.approx(mean) if math.isfinite(mean) else None)  # a non-finite mean: null
