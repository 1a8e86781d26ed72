"""``graphormer2 reproduce``: the technical note's claims, measured on this machine from offline data.

1. Expressiveness: Graphormer's spatial (shortest-path) encoding tells apart graphs that 1-WL cannot — decalin vs
   bicyclopentyl, cyclohexane vs two cyclopropanes, cyclooctane vs two cyclobutanes — while the GIN baseline, a
   1-WL-bounded message-passing network, gives each pair the same representation. The models are the ones trained
   in claim 2 (every seed's), in evaluation mode, evaluated in float64 so that rounding cannot pass for a
   difference.
2. TPSA regression on RDKit's NCI set (spec §8.2): Graphormer's test MAE is lower than GIN-with-virtual-node's at a
   similar parameter count and the same epochs, batches and optimiser (targets standardised with the training
   split's mean and deviation for both).
3. Post-LN (V2) vs Pre-LN (V1) Graphormer on the same task: both measured; the note reports that Post-LN
   generalises better, and the claim records whether that holds here.
4. Mini relaxation (spec §8.3): Graphormer-3D trained with the auxiliary Δpos loss (λ 15 → 1) reaches a lower
   energy MAE than the same model trained on the energy alone.

Claims 2–4 compare two methods and are decided over several training seeds
(:func:`papers_common.claim_over_seeds`): every model is trained once per seed (weights, batch order and dropout
drawn from it) on the same data and split (drawn from ``seed``), the advantage is taken per seed, and a claim holds
only when its mean exceeds the seed-to-seed standard deviation. Claim 1 is a yes/no property checked on every
seed's models.

Progress: one reporter over the stages (:func:`stages`), a log line as each begins, and inside them the progress of
featurisation, conformer generation, training and evaluation. Every run's ``best/`` folder is a saved model that
``graphormer2 predict`` (2D) or ``Graphormer3D.from_pretrained`` (3D) uses on its own.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from graphormer2 import __version__
from graphormer2.atoms import collate_atoms
from graphormer2.collate import GraphBatch, collate
from graphormer2.datasets import MAX_NODES, MoleculeDataset, from_smiles, split, tpsa_task
from graphormer2.features import FEATURE_VERSION
from graphormer2.gin import GIN, GINConfig
from graphormer2.model import Graphormer, GraphormerConfig
from graphormer2.model3d import Graphormer3D, Graphormer3DConfig
from graphormer2.relaxation import relaxation_task
from graphormer2.train import (
    ModelLossObjective,
    RegressionObjective,
    TrainConfig,
    atoms_inputs,
    evaluate,
    fit,
)
from papers_common import (
    Claim,
    Paper,
    Results,
    RunDir,
    claim,
    claim_over_seeds,
    plot_bars,
    progress,
    write_results,
)

LOGGER = logging.getLogger(__name__)

PAPER = Paper("Benchmarking Graphormer on Large-Scale Molecular Modeling Datasets", "2203.04810")

WL_PAIRS: dict[str, tuple[str, str]] = {
    "decalin / bicyclopentyl": ("C1CCC2CCCCC2C1", "C1CCC(C1)C1CCCC1"),
    "cyclohexane / two cyclopropanes": ("C1CCCCC1", "C1CC1.C1CC1"),
    "cyclooctane / two cyclobutanes": ("C1CCCCCCC1", "C1CCC1.C1CCC1"),
}
"""Pairs of 1-WL-equivalent molecular graphs (every atom sees the same multiset of neighbour colours)."""

DISTINCT, IDENTICAL = 1e-7, 1e-10
"""Relative representation differences ‖r₁ − r₂‖ / max(‖r₁‖, ‖r₂‖) that count as "distinguished" and as
"identical". They are measured on float64 copies of the models, where summing in another atom order changes a
representation by ~1e-16 relative (in float32 that rounding reaches ~1e-7 after a few layers and would blur the
test). The differences of a 1-WL-equivalent pair are small even for Graphormer — the graph token's state is
layer-normalised and dominated by what the pair shares (the same atoms, bonds and degrees); only the structural
bias differs — but they are about ten orders of magnitude above rounding."""


PAPER_SOURCES: dict[str, str] = {
    "expressiveness": "no such experiment in the note; the V1 paper (Ying et al. 2021) argues Graphormer is "
    "more expressive than 1-WL",
    "tpsa": "no TPSA task in the paper; PCQM4Mv2 valid MAE (official README): V2 0.0865 eV, GIN-VN 0.1083 eV",
    "post-ln": "qualitative in the paper: Post-LN below Pre-LN in PCQM4M valid MAE (ablation figures not "
    "quoted here)",
    "relaxation": "no Δpos-loss ablation in the paper; OC20 IS2RE test energy MAE with it: 0.4722 eV avg "
    "(ensemble, official README)",
}
"""What each claim's paper column says. The paper reports no figure measured like ours (other tasks, units and
scales), so each gives the reason, with the paper's nearest reported numbers where it has some."""


MODELS_2D = ("Graphormer (Post-LN)", "Graphormer (Pre-LN)", "GIN-VN")
"""The 2D models trained on TPSA, once per seed."""
MODELS_3D = ("with Δpos loss", "energy only")
"""The two Graphormer-3D trainings of the relaxation task, once per seed."""


def stages(seeds: Sequence[int]) -> list[str]:
    """The stages of :func:`run` for these training seeds, in order."""
    return [
        "TPSA molecules",
        *(f"{name} on TPSA, seed {seed}" for seed in seeds for name in MODELS_2D),
        "1-WL pairs",
        "relaxation molecules",
        *(f"Graphormer-3D {name}, seed {seed}" for seed in seeds for name in MODELS_3D),
        "figures and results",
    ]


@dataclass(frozen=True)
class Plan:
    """Sizes and budgets of one reproduction mode.

    Attributes:
        molecules: TPSA molecules used (the first ones of the file; None: all 4,999); split 80/10/10.
        graphormer: overrides of the ``slim`` preset (both Post-LN and Pre-LN runs).
        gin: the GIN-VN baseline's sizes (hidden size chosen for a similar parameter count).
        train2d: the optimiser and budget shared by the three 2D runs.
        relaxation_molecules: NCI molecules of the relaxation task; split 80/10/10.
        model3d: Graphormer-3D sizes (both runs).
        train3d: the optimiser and budget of both 3D runs.
        seeds: training seeds per model (``seed``, ``seed + 1``, ...); the comparisons are decided over them.
    """

    molecules: int | None
    graphormer: dict[str, Any]
    gin: GINConfig
    train2d: TrainConfig
    relaxation_molecules: int
    model3d: dict[str, Any]
    train3d: TrainConfig = field(default_factory=TrainConfig)
    seeds: int = 3


_SLIM_6 = {"num_layers": 6, "attention_dropout": 0.0, "activation_dropout": 0.0}
# MMFF94 types elements up to iodine (53) only, so the relaxation molecules need no more than 64 atom types: the
# quick and full runs keep that table (and so the weights and results the README reports), not the default 128.
_SMALL_3D = {"layers": 4, "blocks": 2, "embed_dim": 64, "ffn_embed_dim": 64, "attention_heads": 8,
             "num_kernel": 32, "atom_types": 64, "attention_dropout": 0.0, "head_dropout": 0.0,
             "deltapos_projection": "shared"}  # fmt: skip

# Quick: three training seeds, each at a third of the budget of one longer run (TPSA 4 epochs rather than 12, at
# batch 32 for as many updates as 8 epochs at 64; relaxation 7 epochs rather than 20): the three cost about as much.
QUICK = Plan(
    molecules=1500,
    graphormer=_SLIM_6,
    gin=GINConfig(num_layers=5, hidden_dim=48, dropout=0.0),
    train2d=TrainConfig(epochs=4, batch_size=32, lr=5e-4, warmup_steps=20, log_every=20),
    relaxation_molecules=600,
    model3d=_SMALL_3D,
    train3d=TrainConfig(epochs=7, batch_size=16, lr=1e-3, warmup_steps=30, log_every=20),
    seeds=3,
)
FULL = Plan(
    molecules=None,
    graphormer=_SLIM_6,
    gin=GINConfig(num_layers=5, hidden_dim=48, dropout=0.0),
    train2d=TrainConfig(epochs=60, batch_size=64, lr=5e-4, warmup_steps=200, log_every=50),
    relaxation_molecules=2000,
    model3d=_SMALL_3D,
    train3d=TrainConfig(epochs=60, batch_size=16, lr=1e-3, warmup_steps=200, log_every=50),
    seeds=3,
)


def relative_difference(a: torch.Tensor, b: torch.Tensor) -> float:
    """‖a − b‖ / max(‖a‖, ‖b‖) of two representation vectors (0 for two zero vectors)."""
    scale = max(float(a.norm()), float(b.norm()))
    return float((a - b).norm()) / scale if scale > 0 else 0.0


@torch.no_grad()
def pair_differences(model: torch.nn.Module, pairs: dict[str, tuple[str, str]]) -> dict[str, float]:
    """Relative difference of the graph representations of each pair, by a float64 copy of ``model`` in
    evaluation mode (the model itself is left as it is)."""
    exact = copy.deepcopy(model).double().eval()
    molecules = from_smiles([smiles for pair in pairs.values() for smiles in pair])
    device = next(exact.parameters()).device
    batch: GraphBatch = collate([molecules[i] for i in range(len(molecules))]).to(device)
    batch = dataclasses.replace(batch, attn_bias=batch.attn_bias.double())
    representation = exact.graph_representation(batch).cpu()
    return {name: relative_difference(representation[2 * i], representation[2 * i + 1])
            for i, name in enumerate(pairs)}  # fmt: skip


def mae_on(
    model: torch.nn.Module, objective: RegressionObjective, test: Dataset, batch_size: int = 256
) -> float:
    """L1 error (target units) of a 2D model on ``test`` (observed targets)."""
    device = next(model.parameters()).device
    loader = DataLoader(test, batch_size=batch_size, collate_fn=collate)
    batches = (batch.to(device) for batch in loader)
    return evaluate(model, objective, batches, desc="test", total=len(loader))["mae"]


def prediction_settings(molecules: MoleculeDataset, objective: RegressionObjective) -> dict[str, Any]:
    """What ``graphormer2 predict`` reads from a 2D run's ``best/`` folder (the keys ``graphormer2 train`` writes)."""
    return {"data": {"task": "tpsa"}, "target_names": molecules.target_names, "objective": "regression",
            "max_nodes": MAX_NODES, "multi_hop_max_dist": molecules.multi_hop_max_dist,
            "target_mean": objective.target_mean, "target_std": objective.target_std,
            "features": FEATURE_VERSION}  # fmt: skip


def _fit_2d(model: torch.nn.Module, data: tuple[Dataset, Dataset, Dataset], objective: RegressionObjective,
            train: TrainConfig, run_dir: Path, device: torch.device | str,
            settings: dict[str, Any]) -> dict[str, float]:  # fmt: skip
    train_part, valid, test = data
    result = fit(model, train_part, valid, collate, objective, train, run=RunDir(run_dir), device=device,
                 best_extra=settings)  # fmt: skip
    model.load_state_dict(result.best_state)
    return {"test_mae": mae_on(model, objective, test), "valid_mae": result.best_metric,
            "best_step": result.best_step, "seconds": result.seconds,
            "parameters": sum(p.numel() for p in model.parameters())}  # fmt: skip


def _fit_3d(task: Any, model3d: dict[str, Any], train: TrainConfig, run_dir: Path, node_loss: bool,
            device: torch.device | str) -> dict[str, float]:  # fmt: skip
    torch.manual_seed(train.seed)
    config = Graphormer3DConfig(**model3d).with_standardisation(task.standardisation)
    model = Graphormer3D(config)
    objective = ModelLossObjective(
        inputs=atoms_inputs, metric="energy_mae", loss_options={"node_loss": node_loss}
    )
    settings = {"data": {"task": "relaxation", "molecules": len(task.items), "energy_target": "relaxation"},
                "node_loss": node_loss}  # fmt: skip
    result = fit(model, task.train, task.valid, collate_atoms, objective, train, run=RunDir(run_dir),
                 device=device, best_extra=settings)  # fmt: skip
    model.load_state_dict(result.best_state)
    loader = DataLoader(task.test, batch_size=64, collate_fn=collate_atoms)
    batches = (batch.to(next(model.parameters()).device) for batch in loader)
    metrics = evaluate(model, objective, batches, desc="test", total=len(loader))
    return {"test_energy_mae": metrics["energy_mae"], "test_deltapos_l1": metrics["deltapos"],
            "test_ewt": metrics["ewt"], "valid_energy_mae": result.best_metric, "seconds": result.seconds}  # fmt: skip


def run(
    out: Path,
    *,
    quick: bool = True,
    seed: int = 0,
    device: str | torch.device = "cpu",
    seeds: Sequence[int] | None = None,
) -> Results:
    """Measure every claim of the chosen mode; write results.json/.md, tables.json and figures into ``out``.

    ``seed`` draws the data (molecules, conformers, splits); every model is trained once per training seed,
    ``seeds`` (default: the plan's number of seeds counted up from ``seed``), into ``out/runs/<run>/seed-<s>``.
    """
    plan = QUICK if quick else FULL
    seeds = tuple(int(s) for s in (range(seed, seed + plan.seeds) if seeds is None else seeds))
    if len(seeds) < 2 or len(set(seeds)) < len(seeds):
        raise ValueError(f"reproduce needs at least two distinct training seeds, got {list(seeds)}")
    started = time.perf_counter()
    out = Path(out)
    record = RunDir(out)
    config: dict[str, Any] = {"mode": "quick" if quick else "full", "seed": seed, "seeds": list(seeds),
                              "plan": asdict(plan)}  # fmt: skip
    record.write_config(config)
    cache = out / "cache"
    tables: dict[str, Any] = {"seeds": list(seeds)}
    names = stages(seeds)
    bar = progress(total=len(names), desc="reproduce", unit="stage")
    stage = _stages(bar, names)

    with stage():
        molecules = tpsa_task(cache_dir=cache, limit=plan.molecules)
        data = split(molecules, (0.8, 0.1, 0.1), seed=seed)
        train_targets = molecules.targets[torch.tensor(data[0].indices)]
        test_targets = molecules.targets[torch.tensor(data[2].indices)]
        mean_predictor = float((test_targets - train_targets.nanmean(0)).abs().nanmean())
        objective = RegressionObjective.standardising(train_targets)
        settings = prediction_settings(molecules, objective)
    runs: dict[str, dict[str, dict[str, float]]] = {name: {} for name in MODELS_2D}
    models: dict[str, list[torch.nn.Module]] = {name: [] for name in MODELS_2D}
    for run_seed in seeds:
        train2d = dataclasses.replace(plan.train2d, seed=run_seed)
        for name, tag in zip(MODELS_2D, ("tpsa-post-ln", "tpsa-pre-ln", "tpsa-gin"), strict=True):
            with stage():
                torch.manual_seed(run_seed)
                if name == "GIN-VN":
                    model: torch.nn.Module = GIN(plan.gin)
                else:
                    norm_first = name == "Graphormer (Pre-LN)"
                    model = Graphormer(
                        GraphormerConfig.preset("slim", norm_first=norm_first, **plan.graphormer)
                    )
                run_dir = out / "runs" / tag / f"seed-{run_seed}"
                runs[name][str(run_seed)] = _fit_2d(
                    model, data, objective, train2d, run_dir, device, settings
                )
                models[name].append(model)
    tables["tpsa"] = {"molecules": len(molecules), "split": [len(part) for part in data],
                      "skipped": molecules.skipped, "mean_predictor_test_mae": mean_predictor, "runs": runs}  # fmt: skip

    with stage():
        tables["expressiveness"] = {
            name: {str(run_seed): pair_differences(model, WL_PAIRS)
                   for run_seed, model in zip(seeds, models[name], strict=True)}
            for name in ("Graphormer (Post-LN)", "GIN-VN")
        }  # fmt: skip

    with stage():
        task = relaxation_task(plan.relaxation_molecules, seed=seed, cache_dir=cache, energy_target="relaxation",
                               split=(0.8, 0.1))  # fmt: skip
    relaxation: dict[str, Any] = {
        "molecules": len(task.items), "split": [len(task.train), len(task.valid), len(task.test)],
        "skipped": task.skipped, "energy": "E(initial) - E(relaxed), MMFF94, kcal/mol",
        **{name: {} for name in MODELS_3D},
    }  # fmt: skip
    for run_seed in seeds:
        train3d = dataclasses.replace(plan.train3d, seed=run_seed)
        for name, tag in zip(MODELS_3D, ("relaxation-node-loss", "relaxation-energy-only"), strict=True):
            with stage():
                run_dir = out / "runs" / tag / f"seed-{run_seed}"
                relaxation[name][str(run_seed)] = _fit_3d(
                    task, plan.model3d, train3d, run_dir, name == "with Δpos loss", device
                )
    tables["relaxation"] = relaxation

    with stage():
        record.write_json("tables.json", tables)
        tpsa_means = {name: _mean(runs[name], "test_mae") for name in MODELS_2D}
        relaxation_means = {name: _mean(relaxation[name], "test_energy_mae") for name in MODELS_3D}
        figures = [
            plot_bars(out / "tpsa_mae.png", {**tpsa_means, "mean predictor": mean_predictor},
                      ylabel=f"test MAE (Å²), mean of {len(seeds)} seeds",
                      title="TPSA regression, NCI molecules").name,
            plot_bars(out / "relaxation_mae.png", relaxation_means,
                      ylabel=f"test energy MAE (kcal/mol), mean of {len(seeds)} seeds",
                      title="Mini relaxation: Graphormer-3D").name,
        ]  # fmt: skip
        results = Results("graphormer2", __version__, PAPER, config["mode"], config, time.perf_counter() - started,
                          _claims(tables), figures)  # fmt: skip
        write_results(results, out)
    bar.close()
    return results


def _mean(per_seed: dict[str, dict[str, float]], key: str) -> float:
    """The mean of ``key`` over the per-seed metrics of one model."""
    values = [metrics[key] for metrics in per_seed.values()]
    return sum(values) / len(values)


def _stages(bar: Any, names: Sequence[str]) -> Any:
    """A context manager per call: logs the start of the next of ``names`` and counts it on ``bar`` when done."""
    numbered = enumerate(names, start=1)

    @contextlib.contextmanager
    def stage() -> Iterator[None]:
        number, name = next(numbered)
        LOGGER.info("reproduce: %s (stage %d of %d)", name, number, len(names))
        yield
        bar.update(1)

    return stage


def _claims(tables: dict[str, Any]) -> list[Claim]:
    seeds = tables["seeds"]
    keys = [str(s) for s in seeds]
    expressiveness = tables["expressiveness"]
    ours = [d for k in keys for d in expressiveness["Graphormer (Post-LN)"][k].values()]
    gin = [d for k in keys for d in expressiveness["GIN-VN"][k].values()]
    separated = min(ours) > DISTINCT and max(gin) < IDENTICAL
    runs = tables["tpsa"]["runs"]

    def per_seed(model_runs: dict[str, dict[str, float]], key: str) -> list[float]:
        return [model_runs[k][key] for k in keys]

    post = per_seed(runs["Graphormer (Post-LN)"], "test_mae")
    pre = per_seed(runs["Graphormer (Pre-LN)"], "test_mae")
    baseline = per_seed(runs["GIN-VN"], "test_mae")
    parameters = (runs["Graphormer (Post-LN)"][keys[0]]["parameters"], runs["GIN-VN"][keys[0]]["parameters"])
    relaxation = tables["relaxation"]
    return [
        claim("expressiveness", f"Graphormer separates every 1-WL-equivalent pair (relative difference > {DISTINCT:g}; "
              f"smallest {min(ours):.3g}) while GIN-VN gives identical representations (< {IDENTICAL:g}; "
              f"largest {max(gin):.2g}), with the models of each of the {len(seeds)} seeds",
              metric="pairs separated by Graphormer and not by GIN", ours=separated,
              paper_source=PAPER_SOURCES["expressiveness"]),
        claim_over_seeds("tpsa", "TPSA regression: Graphormer (Post-LN) test MAE below GIN-VN's at a similar "
                         f"parameter count ({parameters[0]:,} vs {parameters[1]:,}) and equal epochs",
                         metric="test MAE (Å²)", seeds=seeds, ours=post, baseline_name="GIN-VN", baseline=baseline,
                         higher_is_better=False, paper_source=PAPER_SOURCES["tpsa"]),
        claim_over_seeds("post-ln", "Post-LN (V2) generalises better than Pre-LN (V1): lower test MAE",
                         metric="test MAE (Å²)", seeds=seeds, ours=post, baseline_name="Pre-LN", baseline=pre,
                         higher_is_better=False, paper_source=PAPER_SOURCES["post-ln"]),
        claim_over_seeds("relaxation", "Mini relaxation: the auxiliary Δpos loss lowers Graphormer-3D's test energy "
                         "MAE", metric="test energy MAE (kcal/mol)", seeds=seeds,
                         ours=per_seed(relaxation["with Δpos loss"], "test_energy_mae"), baseline_name="energy only",
                         baseline=per_seed(relaxation["energy only"], "test_energy_mae"), higher_is_better=False,
                         paper_source=PAPER_SOURCES["relaxation"]),
    ]  # fmt: skip
