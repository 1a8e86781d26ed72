"""``house-kge reproduce`` on a miniature plan and miniature datasets: every claim measured and written."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import logging
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
    assert set(tables["patterns"]) == {"symmetric", "antisymmetric", "inverse", "composition"}
    assert set(tables["small"]["umls"]) == {"HousE", "RotatE"}
    assert (out / "patterns.png").stat().st_size > 1000
    assert "countries-s3" in capsys.readouterr().out
    messages = [record.getMessage() for record in caplog.records]
    # a progress record over the experiments, and the training and evaluation progress inside them
    assert any(m.startswith("reproduce: 4/4 (100%)") and m.endswith("(done)") for m in messages)
    assert any(m.startswith("umls/RotatE: 20/20 (100%)") for m in messages)
    assert any(m.startswith("patterns/composition: ") for m in messages)


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
