"""A miniature reproduction writes a valid report whose claims come from the measured per-seed numbers."""

from __future__ import annotations

import json

import numpy as np
import pytest
from portal_learning import SynthSettings, generate
from portal_learning.reproduce import Plan, claims, run
from portal_learning.transfer import _digest

from papers_common import load_results

MINI = Plan(
    families=12,
    molecules=120,
    pairs_per_member=6,
    seeds=(0, 1),
    rounds=2,
    steps_per_round=3,
    mlm_epochs=1,
    structure_epochs=1,
    unlabelled_families=6,
    arms=("erm", "mlm-erm", "ooc-fomaml", "ooc-maml", "stl-fomaml"),
    maml_seeds=(0,),
    model={
        "chemical": "fingerprint",
        "fingerprint_bits": 256,
        "gin_hidden": 16,
        "protein_embedding": 8,
        "protein_channels": 12,
        "protein_layers": 1,
        "protein_kernel": 3,
    },
    workers=1,
)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("reproduce")
    return out, run(out, plan=MINI)


def test_a_miniature_reproduction_writes_a_valid_report(report):
    out, _ = report
    loaded = load_results(out / "results.json")  # schema-checked
    assert {c.id for c in loaded.claims} == {
        "1a-ooc-vs-erm",
        "1b-stress-vs-iid",
        "2-deployment-gap",
        "3-pretraining",
    }
    assert (out / "results.md").is_file()
    assert (out / "deployment_gap.png").stat().st_size > 5_000
    table = (out / "tables.md").read_text()
    assert "| stl-fomaml | ood-dev |" in table
    assert "contact roc auc" in table
    for seed in MINI.seeds:  # each arm's selected models were saved in its run folder
        assert (out / f"seed-{seed}" / "ooc-fomaml" / "model-ood-dev" / "config.json").is_file()
    assert (out / "seed-0" / "ooc-maml" / "summary.json").is_file()  # full MAML on its seeds only
    # step 1 read the whole sequence database (unlabelled families included); the arms from it froze the convs
    benchmark = generate(SynthSettings(families=MINI.families, molecules=MINI.molecules,
                                       pairs_per_member=MINI.pairs_per_member,
                                       unlabelled_families=MINI.unlabelled_families, seed=0))  # fmt: skip
    database = list(dict.fromkeys(text for _, _, text in benchmark.sequences))
    assert len(database) > len({r.sequence for r in benchmark.records})
    pretrained = json.loads((out / "seed-0" / "pretrain-protein" / "config.json").read_text())
    assert pretrained["sequences"] == _digest(database)
    for arm in ("mlm-erm", "stl-fomaml"):
        assert json.loads((out / "seed-0" / arm / "config.json").read_text())["freeze"] == ["protein-convs"]
    assert json.loads((out / "seed-0" / "erm" / "config.json").read_text())["freeze"] == []
    assert not (out / "seed-1" / "ooc-maml").exists()
    assert "| ooc-maml | ood-dev |" in table


def test_claims_follow_from_the_per_seed_numbers(report):
    out, results = report
    per_seed = {int(k): v for k, v in json.loads((out / "per_seed.json").read_text()).items()}
    found = {c.id: c for c in results.claims}
    erm_ood = [per_seed[s]["erm"]["ood-dev"]["ood_test_roc_auc"] for s in MINI.seeds]
    erm_iid = [per_seed[s]["erm"]["iid-dev"]["ood_test_roc_auc"] for s in MINI.seeds]
    assert found["1b-stress-vs-iid"].ours == pytest.approx(np.mean(erm_ood))
    assert found["1b-stress-vs-iid"].baseline.value == pytest.approx(np.mean(erm_iid))
    gaps_ood = [abs(per_seed[s]["erm"]["ood-dev"]["deployment_gap"]) for s in MINI.seeds]
    gaps_iid = [abs(per_seed[s]["erm"]["iid-dev"]["deployment_gap"]) for s in MINI.seeds]
    advantage = np.subtract(gaps_iid, gaps_ood)
    assert found["2-deployment-gap"].holds == bool(advantage.mean() > advantage.std(ddof=1))
    # recomputing from the saved numbers gives the same verdicts
    assert [c.holds for c in claims(per_seed, MINI)] == [c.holds for c in results.claims]
    for seed in MINI.seeds:  # the selection's numbers are those of the chosen round in the run's history
        history = [
            json.loads(line)
            for line in (out / f"seed-{seed}" / "erm" / "metrics.jsonl").read_text().splitlines()
        ]
        chosen = per_seed[seed]["erm"]["ood-dev"]
        assert chosen["ood_test_roc_auc"] == pytest.approx(history[chosen["round"] - 1]["ood_test_roc_auc"])
