"""``portal-learning reproduce``: the paper's three portals on the synthetic out-of-family benchmark, over seeds.

Per seed, a benchmark is generated (:func:`portal_learning.synthetic.generate`, the seed also drawing the
families and the hidden rule), split four ways by family, and these arms are trained with the same model
(fingerprint encoder, protein CNN, attentive bilinear head) and the same budget of rounds, each scored after every
round on IID-dev, OOD-dev and OOD-test:

- ``erm``: ERM; its OOD-dev-selected model is "ERM + stress selection", its IID-dev-selected one "ERM + IID
  selection".
- ``mlm-erm``: ERM from a protein encoder pretrained by masked-residue modelling (step 1 of step-wise transfer) on
  the benchmark's sequence database (every member of the labelled families and of ``unlabelled_families`` more —
  sequences of families without ligands are what Pfam holds), its contextual layers frozen (:data:`FREEZE`, the
  counterpart of the official code's frozen ALBERT layers).
- ``ooc-fomaml``, ``ooc-maml``, ``ooc-official``: out-of-cluster meta-learning, first-order, full second-order, and
  the released code's sequential update.
- ``stl-fomaml``: all three portals — the structure step (contacts of OOD-train proteins only) after the
  pretraining, then first-order meta-learning with the same layers frozen.

Claims, each decided over the seeds, paired by seed (:func:`papers_common.claim_over_seeds`: the mean advantage
must exceed its standard deviation):

1. OOD-test ROC-AUC: OOC meta-learning + stress selection ≥ ERM + stress selection (1a) ≥ ERM + IID selection (1b).
2. The deployment gap |OOD-test − selection ROC-AUC| is smaller with OOD-dev selection than with IID-dev selection
   (ERM).
3. Protein pretraining (step 1) improves the OOD-test ROC-AUC of the OOD-dev-selected ERM model.

Full MAML against first-order MAML (the paper's point 4; full MAML runs on ``Plan.maml_seeds``, as it is the
slowest arm) is reported in ``tables.md`` with its time, as are the released code's update and the three-portal
arm. The deployment-gap plot shows every arm's gap under both selections.
"""

from __future__ import annotations

import logging
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from papers_common import (
    Claim,
    Paper,
    Results,
    RunDir,
    claim_over_seeds,
    configure_logging,
    plot_bars,
    write_results,
)
from portal_learning import __version__

LOG = logging.getLogger(__name__)
PAPER = Paper(
    "Exploration of Dark Chemical Genomics Space via Portal Learning: Applied to Targeting the Undruggable "
    "Genome and COVID-19 Anti-Infective Polypharmacology",
    "2111.14283",
)
ARMS = ("erm", "mlm-erm", "ooc-fomaml", "ooc-maml", "ooc-official", "stl-fomaml")
REPRODUCTION_MODEL = {"chemical": "fingerprint", "gin_hidden": 64, "protein_embedding": 32, "protein_channels": 64,
                      "protein_layers": 2}  # fmt: skip
"""The interaction model of the reproduction (and of the benchmark): fingerprint encoder, 2-layer protein CNN."""
PAPER_QUALITATIVE = "qualitative in the paper (its tables are not quoted here)"
FREEZE = ("protein-convs",)
"""Groups the arms that start from step-wise transfer keep fixed (:data:`portal_learning.transfer.FREEZE_GROUPS`)."""


@dataclass(frozen=True)
class Plan:
    """One mode's sizes. ``maml_seeds``: the seeds full MAML (the slowest arm) runs on (``None``: all)."""

    families: int
    molecules: int
    pairs_per_member: int
    seeds: tuple[int, ...]
    rounds: int
    steps_per_round: int
    mlm_epochs: int
    structure_epochs: int
    unlabelled_families: int = 200
    arms: tuple[str, ...] = ARMS
    maml_seeds: tuple[int, ...] | None = None
    model: dict[str, Any] = field(default_factory=lambda: dict(REPRODUCTION_MODEL))
    workers: int = 2


QUICK = Plan(families=40, molecules=300, pairs_per_member=16, seeds=(0, 1, 2), rounds=5, steps_per_round=20,
             mlm_epochs=8, structure_epochs=3, maml_seeds=(0,))  # fmt: skip
FULL = Plan(families=40, molecules=1000, pairs_per_member=20, seeds=(0, 1, 2, 3, 4), rounds=10,
            steps_per_round=80, mlm_epochs=20, structure_epochs=5)  # fmt: skip


def _summary(result: Any) -> dict[str, Any]:
    found = {"seconds": result.seconds}
    for selection, chosen in result.selected.items():
        found[selection] = {"round": chosen["epoch"], "selection_roc_auc": chosen["selection_roc_auc"],
                            "ood_test_roc_auc": chosen["metrics"]["ood_test"]["roc_auc"],
                            "ood_test_pr_auc": chosen["metrics"]["ood_test"]["pr_auc"],
                            "deployment_gap": chosen["deployment_gap"]}  # fmt: skip
    return found


def _setup(plan: Plan, seed: int) -> tuple[Any, Any, Any]:
    """The benchmark of ``seed``, its split and the model configuration (deterministic: every job remakes them);
    one torch thread and progress logged to stderr in the worker process."""
    import torch

    from portal_learning.model import CPIConfig
    from portal_learning.splits import SplitSettings, four_way_split
    from portal_learning.synthetic import SynthSettings, generate

    torch.set_num_threads(1)
    configure_logging()
    benchmark = generate(SynthSettings(families=plan.families, molecules=plan.molecules,
                                       pairs_per_member=plan.pairs_per_member,
                                       unlabelled_families=plan.unlabelled_families, seed=seed))  # fmt: skip
    return benchmark, four_way_split(benchmark.records, SplitSettings(seed=seed)), CPIConfig(**plan.model)


def prepare(plan: Plan, seed: int, out: str) -> dict[str, Any]:
    """Step-wise transfer's first two steps on the benchmark of ``seed``: masked-residue pretraining on its
    sequence database, then the structure step on the OOD-train proteins' contacts; what each measured."""
    from portal_learning.transfer import pretrain_protein, train_structure

    benchmark, split, model = _setup(plan, seed)
    records = benchmark.records
    folder = Path(out) / f"seed-{seed}"
    step = pretrain_protein([text for _, _, text in benchmark.sequences], folder / "pretrain-protein", model_config=model,
                            epochs=plan.mlm_epochs, seed=seed)  # fmt: skip
    found = {
        "pretrain-protein": {
            **step.metrics["after"],
            "before": step.metrics["before"],
            "seconds": step.seconds,
        }
    }
    train_families = {records[i].family for i in split.ood_train}
    contacts = {r.protein: benchmark.pocket_positions for r in records if r.family in train_families}
    step = train_structure([r for r in records if r.family in train_families], contacts, folder / "structure",
                           model_config=model, init=folder / "pretrain-protein", epochs=plan.structure_epochs,
                           seed=seed)  # fmt: skip
    found["structure"] = {**step.metrics["after"], "before": step.metrics["before"]["contact_roc_auc"],
                          "seconds": step.seconds}  # fmt: skip
    return found


def train_arm(plan: Plan, seed: int, arm: str, out: str) -> dict[str, Any]:
    """One arm on the benchmark of ``seed`` (after :func:`prepare` for ``mlm-erm`` and ``stl-fomaml``); what each
    selection chose."""
    from portal_learning.meta import MetaConfig
    from portal_learning.train import TrainConfig, train_model

    benchmark, split, model = _setup(plan, seed)
    folder = Path(out) / f"seed-{seed}"
    starts = {"mlm-erm": folder / "pretrain-protein", "stl-fomaml": folder / "structure"}
    method = "erm" if arm.endswith("erm") else f"ooc-{arm.rsplit('-', 1)[1]}"
    config = TrainConfig(method=method, epochs=plan.rounds, seed=seed,
                         meta=MetaConfig(steps_per_round=plan.steps_per_round))  # fmt: skip
    result = train_model(benchmark.records, split, folder / arm, model_config=model, config=config,
                         init=starts.get(arm), freeze=FREEZE if arm in starts else ())  # fmt: skip
    found = _summary(result)
    LOG.info("reproduce: seed %d, %s: OOD-test ROC-AUC %.4f (OOD-dev selection), %.4f (IID-dev selection), %.0f s",
             seed, arm, found["ood-dev"]["ood_test_roc_auc"], found["iid-dev"]["ood_test_roc_auc"], result.seconds)  # fmt: skip
    return found


NEEDS_PREPARE = ("mlm-erm", "stl-fomaml")


def run(out: Path, *, quick: bool = True, plan: Plan | None = None) -> Results:
    """Every (seed, arm) job on ``plan.workers`` processes — the slowest first, the arms that start from transfer
    steps once their seed's steps are done — then results.json/.md, tables.md and the plot."""
    plan = plan or (QUICK if quick else FULL)
    started = time.perf_counter()
    out = Path(out)
    record = RunDir(out)
    config = {"mode": "quick" if quick else "full", "plan": asdict(plan), "threads_per_job": 1}
    record.write_config(config)
    per_seed: dict[int, dict[str, Any]] = {seed: {} for seed in plan.seeds}
    jobs = [(seed, arm) for arm in plan.arms for seed in plan.seeds
            if arm != "ooc-maml" or plan.maml_seeds is None or seed in plan.maml_seeds]  # fmt: skip
    independent = sorted((j for j in jobs if j[1] not in NEEDS_PREPARE), key=lambda j: j[1] != "ooc-maml")
    with ProcessPoolExecutor(
        max_workers=plan.workers, mp_context=multiprocessing.get_context("spawn")
    ) as pool:
        steps = {seed: pool.submit(prepare, plan, seed, str(out)) for seed in plan.seeds
                 if any(arm in NEEDS_PREPARE for arm in plan.arms)}  # fmt: skip
        futures = {job: pool.submit(train_arm, plan, *job, str(out)) for job in independent}
        for seed, step in steps.items():
            per_seed[seed].update(step.result())
            futures.update({(seed, arm): pool.submit(train_arm, plan, seed, arm, str(out))
                            for arm in plan.arms if arm in NEEDS_PREPARE})  # fmt: skip
        for (seed, arm), future in futures.items():
            per_seed[seed][arm] = future.result()
    record.write_json("per_seed.json", {str(seed): found for seed, found in per_seed.items()})
    _write_table(record, per_seed, plan)
    figures = [_plot(out, per_seed, plan)]
    results = Results("portal-learning", __version__, PAPER, config["mode"], config,
                      time.perf_counter() - started, claims(per_seed, plan), figures)  # fmt: skip
    write_results(results, out)
    return results


def _values(per_seed: dict[int, dict[str, Any]], arm: str, selection: str, key: str) -> list[float]:
    """``key`` of ``arm``'s ``selection`` on every seed that ran the arm, in seed order."""
    return [float(per_seed[seed][arm][selection][key]) for seed in sorted(per_seed) if arm in per_seed[seed]]


def claims(per_seed: dict[int, dict[str, Any]], plan: Plan) -> list[Claim]:
    """Claims 1–3 (module docstring) from the per-seed measurements."""
    seeds = sorted(per_seed)
    test = "ood_test_roc_auc"
    found = []
    if "ooc-fomaml" in plan.arms:
        found.append(claim_over_seeds(
            "1a-ooc-vs-erm", "OOD-test ROC-AUC: out-of-cluster meta-learning (FOMAML) + stress selection is at least "
            "ERM + stress selection", metric="OOD-test ROC-AUC", seeds=seeds,
            ours=_values(per_seed, "ooc-fomaml", "ood-dev", test), baseline_name="ERM, OOD-dev selection",
            baseline=_values(per_seed, "erm", "ood-dev", test), paper_source=PAPER_QUALITATIVE))  # fmt: skip
    found.append(claim_over_seeds(
        "1b-stress-vs-iid", "OOD-test ROC-AUC: ERM + stress selection (OOD-dev) is at least ERM + IID-dev selection",
        metric="OOD-test ROC-AUC", seeds=seeds, ours=_values(per_seed, "erm", "ood-dev", test),
        baseline_name="ERM, IID-dev selection", baseline=_values(per_seed, "erm", "iid-dev", test),
        paper_source=PAPER_QUALITATIVE))  # fmt: skip
    found.append(claim_over_seeds(
        "2-deployment-gap", "ERM: the deployment gap |OOD-test - selection ROC-AUC| is smaller with OOD-dev "
        "selection than with IID-dev selection", metric="|deployment gap|", seeds=seeds,
        ours=[abs(v) for v in _values(per_seed, "erm", "ood-dev", "deployment_gap")], baseline_name="IID-dev selection",
        baseline=[abs(v) for v in _values(per_seed, "erm", "iid-dev", "deployment_gap")], higher_is_better=False,
        paper_source=PAPER_QUALITATIVE))  # fmt: skip
    if "mlm-erm" in plan.arms:
        found.append(claim_over_seeds(
            "3-pretraining", "OOD-test ROC-AUC (OOD-dev selection): ERM from a masked-residue-pretrained protein "
            "encoder beats ERM from scratch", metric="OOD-test ROC-AUC", seeds=seeds,
            ours=_values(per_seed, "mlm-erm", "ood-dev", test), baseline_name="ERM from scratch",
            baseline=_values(per_seed, "erm", "ood-dev", test), paper_source=PAPER_QUALITATIVE))  # fmt: skip
    return found


def _mean_sd(values: list[float]) -> str:
    return f"{np.mean(values):.4f} ± {np.std(values, ddof=1):.4f}" if len(values) > 1 else f"{values[0]:.4f}"


def _write_table(record: RunDir, per_seed: dict[int, dict[str, Any]], plan: Plan) -> None:
    lines = [
        f"Synthetic out-of-family benchmark: {plan.families} families, {plan.molecules} NCI molecules, "
        f"{plan.pairs_per_member} pairs per member; {len(per_seed)} seeds (mean ± sd; full MAML on seeds "
        f"{', '.join(map(str, plan.maml_seeds or sorted(per_seed)))}); {plan.rounds} rounds "
        f"(ERM: epochs; meta-learning: {plan.steps_per_round} meta-steps of 5 families each).",
        "",
        "| arm | selection | selection ROC-AUC | OOD-test ROC-AUC | OOD-test PR-AUC | deployment gap | seconds |",
        "|---|---|---|---|---|---|---|",
    ]
    for arm in plan.arms:
        for selection in ("ood-dev", "iid-dev"):
            cells = [_mean_sd(_values(per_seed, arm, selection, key))
                     for key in ("selection_roc_auc", "ood_test_roc_auc", "ood_test_pr_auc", "deployment_gap")]  # fmt: skip
            seconds = np.mean([per_seed[s][arm]["seconds"] for s in per_seed if arm in per_seed[s]])
            lines.append(f"| {arm} | {selection} | {' | '.join(cells)} | {seconds:.0f} |")
    for step, key in (("pretrain-protein", "masked_accuracy"), ("structure", "contact_roc_auc")):
        if all(step in per_seed[s] for s in per_seed):
            after = [per_seed[s][step][key] for s in per_seed]
            lines.append(f"\n{step}: held-out {key.replace('_', ' ')} {_mean_sd(after)}")
    record.write_text("tables.md", "\n".join(lines) + "\n")


def _plot(out: Path, per_seed: dict[int, dict[str, Any]], plan: Plan) -> str:
    values = {f"{arm}\n{selection}": float(np.mean(_values(per_seed, arm, selection, "deployment_gap")))
              for arm in plan.arms for selection in ("ood-dev", "iid-dev")}  # fmt: skip
    path = plot_bars(out / "deployment_gap.png", values, ylabel="OOD-test − selection ROC-AUC (mean over seeds)",
                     title="Deployment gap by arm and model selection", reference=0.0)  # fmt: skip
    return path.name
