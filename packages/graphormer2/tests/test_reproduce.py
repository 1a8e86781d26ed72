"""``graphormer2 reproduce`` on a miniature plan: every claim measured, tables, figures and results written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from graphormer2 import GINConfig, Graphormer, GraphormerConfig, TrainConfig, collate, from_smiles, reproduce
from graphormer2.cli import app

from papers_common import load_results, pretrained_extra

torch.set_num_threads(1)

TINY = reproduce.Plan(
    molecules=48,
    graphormer={"num_layers": 1, "hidden_dim": 16, "ffn_dim": 16, "num_heads": 2},
    gin=GINConfig(num_layers=2, hidden_dim=8, dropout=0.0),
    train2d=TrainConfig(epochs=1, batch_size=16, lr=1e-3, log_every=1),
    relaxation_molecules=10,
    model3d={"layers": 1, "blocks": 1, "embed_dim": 8, "ffn_embed_dim": 8, "attention_heads": 2, "num_kernel": 4,
             "deltapos_projection": "shared"},
    train3d=TrainConfig(epochs=1, batch_size=4, lr=1e-3, log_every=1),
    seeds=2,
)  # fmt: skip


def test_reproduce_measures_every_claim(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(reproduce, "QUICK", TINY)
    results = reproduce.run(tmp_path / "report", quick=True, seed=0, device="cpu")
    assert [c.id for c in results.claims] == ["expressiveness", "tpsa", "post-ln", "relaxation"]
    assert all(c.ours is not None for c in results.claims)
    loaded = load_results(tmp_path / "report" / "results.json")
    assert [c.id for c in loaded.claims] == [c.id for c in results.claims]
    # every claim states the paper's figure with its source, or why there is none: never a bare dash
    assert all(c.paper_source for c in results.claims)
    assert [c.paper_cell() for c in loaded.claims] == [c.paper_cell() for c in results.claims]
    tables = json.loads((tmp_path / "report" / "tables.json").read_text())
    assert tables["seeds"] == [0, 1]
    assert json.loads((tmp_path / "report" / "config.json").read_text())["seeds"] == [0, 1]
    assert set(tables["tpsa"]["runs"]) == {"Graphormer (Post-LN)", "Graphormer (Pre-LN)", "GIN-VN"}
    assert sum(tables["tpsa"]["split"]) == tables["tpsa"]["molecules"] == 48
    for model in tables["expressiveness"].values():
        assert set(model) == {"0", "1"}
    gin = [d for per_seed in tables["expressiveness"]["GIN-VN"].values() for d in per_seed.values()]
    assert len(gin) == 2 * len(reproduce.WL_PAIRS)
    assert max(gin) < reproduce.IDENTICAL  # 1-WL-equivalent pairs look the same to GIN, trained or not
    assert set(tables["relaxation"]) >= {"with Δpos loss", "energy only"}

    # the comparisons are decided over the seeds, paired by seed, from the per-seed test errors in tables.json
    def per_seed(runs: dict, key: str) -> list[float]:
        return [runs[seed][key] for seed in ("0", "1")]

    tpsa, relaxation = tables["tpsa"]["runs"], tables["relaxation"]
    post = per_seed(tpsa["Graphormer (Post-LN)"], "test_mae")
    assert post[0] != post[1]  # each seed trains its own weights
    expected = {
        "tpsa": (post, per_seed(tpsa["GIN-VN"], "test_mae")),
        "post-ln": (post, per_seed(tpsa["Graphormer (Pre-LN)"], "test_mae")),
        "relaxation": (per_seed(relaxation["with Δpos loss"], "test_energy_mae"),
                       per_seed(relaxation["energy only"], "test_energy_mae")),
    }  # fmt: skip
    assert loaded.claims[0].spread is None  # a yes/no property of every seed's models
    for c in loaded.claims[1:]:
        ours, baseline = expected[c.id]
        assert c.spread is not None
        assert c.spread.seeds == (0, 1)
        assert list(c.spread.ours) == pytest.approx(ours)
        assert list(c.spread.baseline) == pytest.approx(baseline)
        assert c.ours == pytest.approx(sum(ours) / 2)
        assert c.baseline.value == pytest.approx(sum(baseline) / 2)
        advantages = [b - o for o, b in zip(ours, baseline, strict=True)]  # lower is better
        sd = abs(advantages[0] - advantages[1]) / 2**0.5
        assert c.spread.sd == pytest.approx(sd)
        assert c.holds == (sum(advantages) / 2 > sd)
        assert c.ours_cell().endswith("(2 seeds)")
        assert "± " in c.ours_cell()
    for figure in results.figures:
        assert (tmp_path / "report" / figure).stat().st_size > 1000

    # every run's best/ is a saved model; the 2D ones predict TPSA on their own, in Å²
    runs = tmp_path / "report" / "runs"
    for name in ("tpsa-post-ln", "tpsa-pre-ln", "tpsa-gin", "relaxation-node-loss", "relaxation-energy-only"):
        for seed in ("seed-0", "seed-1"):
            assert sorted(p.name for p in (runs / name / seed / "best").iterdir()) == [
                "config.json",
                "model.safetensors",
            ]
    assert pretrained_extra(runs / "relaxation-energy-only" / "seed-1" / "best")["node_loss"] is False
    moved = shutil.copytree(runs / "tpsa-post-ln" / "seed-1" / "best", tmp_path / "tpsa-model")
    capsys.readouterr()
    assert app.main(["predict", "--checkpoint", str(moved), "--smiles", "CCO", "--device", "cpu"]) == 0
    smiles, value = capsys.readouterr().out.strip().split("\t")
    extra = pretrained_extra(moved)
    model = Graphormer.from_pretrained(moved).eval()
    with torch.no_grad():
        expected = model(collate([from_smiles(["CCO"])[0]]))[0, 0].item() * extra["target_std"][0]
    assert (smiles, value.split("=")[0]) == ("CCO", "tpsa")
    assert float(value.split("=")[1]) == pytest.approx(expected + extra["target_mean"][0], rel=1e-5)


def test_the_plans_decide_comparisons_over_seeds(tmp_path: Path) -> None:
    assert reproduce.QUICK.seeds >= 2
    assert reproduce.FULL.seeds >= 3
    with pytest.raises(ValueError, match="two distinct training seeds"):
        reproduce.run(tmp_path / "report", seeds=[0])


def test_spatial_encoding_separates_the_pairs_gin_cannot() -> None:
    """With weights at unit scale (the official N(0, 0.02) init shrinks every difference to float-rounding size)
    Graphormer gives each 1-WL-equivalent pair clearly different graph representations: the spatial bias sees the
    different shortest-path distances."""
    torch.manual_seed(0)
    model = Graphormer(GraphormerConfig.preset("slim", num_layers=2, hidden_dim=32, ffn_dim=32, num_heads=4))
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.ndim >= 2:
                parameter.normal_(0.0, parameter.shape[-1] ** -0.5)
    differences = reproduce.pair_differences(model, reproduce.WL_PAIRS)
    assert min(differences.values()) > reproduce.DISTINCT


def test_relative_difference() -> None:
    a, b = torch.tensor([3.0, 4.0]), torch.tensor([3.0, 4.5])
    assert reproduce.relative_difference(a, b) == pytest.approx(0.5 / b.norm().item())
    assert reproduce.relative_difference(torch.zeros(2), torch.zeros(2)) == 0.0
