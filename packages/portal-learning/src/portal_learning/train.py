"""Training with stress model selection (Portal 3): ERM or out-of-cluster meta-learning (Portal 2).

The model trains on OOD-train pairs, by ERM (cross-entropy over shuffled mini-batches, Adam; a round is one
epoch) or by meta-learning over families (:mod:`portal_learning.meta`; a round is ``steps_per_round`` meta-steps,
the outer Adam's learning rate annealed by a cosine over ``cosine_rounds`` rounds). After every round the model is
scored globally on IID-dev, OOD-dev and OOD-test (zero-shot: no adaptation to the test families); two checkpoints
are kept: the round best on **OOD-dev** (stress model selection, the paper's) and the round best on **IID-dev**
(what a standard pipeline would ship). For each, the deployment gap is its OOD-test ROC-AUC minus the ROC-AUC on
the split it was selected on: how much the selection metric overstates what the model does on unseen families.
A run may start from a step-wise transfer folder (:func:`portal_learning.transfer.initialise_from`) with parameter
groups frozen. A run folder holds the config, the split, per-round metrics (``metrics.jsonl``), checkpoints (resumed after an
interruption) and both selected models in the Hugging Face layout.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from papers_common import InputError, RunDir, resume_run, save_checkpoint, write_json
from portal_learning.featurize import Graph, batch_graphs, mol_graph, residue_tokens
from portal_learning.meta import FamilyTasks, MetaConfig, meta_step
from portal_learning.metrics import classification_metrics
from portal_learning.model import CPIConfig, CPIModel, train_mode
from portal_learning.records import Interaction
from portal_learning.splits import Split

LOG = logging.getLogger(__name__)
SELECTIONS = ("ood-dev", "iid-dev")
METHODS = ("erm", "ooc-fomaml", "ooc-maml", "ooc-official")


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation and selection settings. ``epochs`` counts rounds: epochs for ERM, ``meta.steps_per_round``
    meta-steps for the meta-learning methods; ``lr`` is Adam's (the outer optimiser's for meta-learning)."""

    method: str = "erm"
    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.0
    select: str = "ood-dev"
    seed: int = 0
    meta: MetaConfig = field(default_factory=MetaConfig)

    def check(self) -> None:
        if self.method not in METHODS:
            raise InputError(f"--method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.epochs < 1 or self.batch_size < 1:
            raise InputError(
                f"--epochs and --batch-size must be at least 1, got {self.epochs}, {self.batch_size}"
            )
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise InputError(f"--lr must be a positive number, got {self.lr}")
        if self.select not in SELECTIONS:
            raise InputError(f"--select must be one of {', '.join(SELECTIONS)}, got {self.select!r}")
        self.meta.check()

    @property
    def meta_mode(self) -> str | None:
        """``fomaml``, ``maml`` or ``official`` for the meta-learning methods, ``None`` for ERM."""
        return None if self.method == "erm" else self.method.removeprefix("ooc-")


class PairData:
    """Featurised pairs: each distinct molecule and sequence is featurised once; batches index into them."""

    def __init__(self, records: Sequence[Interaction], model_config: CPIConfig) -> None:
        self.config = model_config
        self.smiles = [r.smiles for r in records]
        self.sequences = [r.sequence for r in records]
        self.labels = np.array([r.label for r in records], dtype=np.int64)
        molecules = list(dict.fromkeys(self.smiles))
        if model_config.chemical == "gin":
            self.graphs: dict[str, Graph] = {s: mol_graph(s) for s in molecules}
        else:
            from portal_learning.synthetic import morgan_fingerprints

            bits = morgan_fingerprints(molecules, bits=model_config.fingerprint_bits)
            self.fingerprints = dict(zip(molecules, torch.from_numpy(bits), strict=True))

    def batch(self, rows: Sequence[int], device: torch.device, length: int | None = None) -> tuple:
        """Model inputs of ``rows``; residue tokens padded to ``length`` when given (see ``residue_tokens``)."""
        if self.config.chemical == "gin":
            molecules: Any = batch_graphs([self.graphs[self.smiles[i]] for i in rows]).to(device)
        else:
            molecules = torch.stack([self.fingerprints[self.smiles[i]] for i in rows]).to(device)
        tokens, mask = residue_tokens([self.sequences[i] for i in rows], self.config.max_length, length)
        return molecules, tokens.to(device), mask.to(device)

    @torch.no_grad()
    def probabilities(
        self, model: CPIModel, rows: Sequence[int], device: torch.device, batch_size: int
    ) -> np.ndarray:
        model.eval()
        out = [torch.softmax(model(*self.batch(rows[k : k + batch_size], device)), 1)[:, 1].cpu()
               for k in range(0, len(rows), batch_size)]  # fmt: skip
        train_mode(model)
        return torch.cat(out).numpy()


@dataclass
class TrainResult:
    """What a run selected and measured: per selection, its epoch, metrics on every split and deployment gap."""

    selected: dict[str, dict[str, Any]]
    history: list[dict[str, Any]]
    seconds: float
    out: Path


def _scores(
    data: PairData, model: CPIModel, split: Split, device: torch.device, batch: int
) -> dict[str, dict]:
    found = {}
    for name in ("iid_dev", "ood_dev", "ood_test"):
        rows = split.part(name)
        found[name] = classification_metrics(
            data.labels[rows], data.probabilities(model, rows, device, batch)
        )
    return found


def _erm_round(
    model: CPIModel, optimizer: torch.optim.Optimizer, data: PairData, rows: np.ndarray, config: TrainConfig,
    rng: np.random.Generator, device: torch.device,
) -> list[float]:  # fmt: skip
    """One epoch of cross-entropy over shuffled mini-batches of ``rows``; the batches' losses."""
    order = rng.permutation(rows)
    losses = []
    for k in range(0, len(order), config.batch_size):
        batch = order[k : k + config.batch_size]
        if len(batch) < 2:  # BatchNorm needs two pairs
            continue
        loss = torch.nn.functional.cross_entropy(
            model(*data.batch(batch.tolist(), device)), torch.from_numpy(data.labels[batch]).to(device)
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def _labelled(
    data: PairData, rows: np.ndarray, device: torch.device, length: int | None
) -> tuple[tuple, torch.Tensor]:
    return data.batch(rows.tolist(), device, length), torch.from_numpy(data.labels[rows]).to(device)


def _meta_round(
    model: CPIModel, optimizer: torch.optim.Optimizer, data: PairData, tasks: FamilyTasks, meta: MetaConfig,
    rng: np.random.Generator, device: torch.device,
) -> list[float]:  # fmt: skip
    """``meta.steps_per_round`` meta-steps; the steps' mean query losses. Tasks are computed together (batched) when
    their inputs have equal shapes (fingerprints, residue tokens padded to one length)."""
    batched = meta.vmap and data.config.chemical == "fingerprint"
    losses = []
    for _ in range(meta.steps_per_round):
        episodes = tasks.sample(rng, meta.tasks, meta.support, meta.query)
        rows = np.concatenate([np.concatenate([e.support, e.query]) for e in episodes])
        length = min(max(len(data.sequences[i]) for i in rows), data.config.max_length) if batched else None
        supports = [_labelled(data, e.support, device, length) for e in episodes]
        queries = [_labelled(data, e.query, device, length) for e in episodes]
        losses.append(meta_step(model, supports, queries, meta, optimizer, batched=batched))
    return losses


def train_model(
    records: Sequence[Interaction],
    split: Split,
    out: str | Path,
    *,
    model_config: CPIConfig | None = None,
    config: TrainConfig | None = None,
    init: str | Path | None = None,
    freeze: Sequence[str] = (),
    device: str = "cpu",
) -> TrainResult:
    """Train on OOD-train by ``config.method``, score every round, keep the OOD-dev- and IID-dev-selected models
    (resumable). ``init``: a folder of :mod:`portal_learning.transfer` whose encoders start the model; ``freeze``:
    parameter groups (:data:`portal_learning.transfer.FREEZE_GROUPS`) kept at their initial values."""
    from portal_learning.transfer import freeze as freeze_groups
    from portal_learning.transfer import initialise_from

    model_config = model_config or CPIConfig()
    config = config or TrainConfig()
    model_config.check()
    config.check()
    meta = replace(config.meta, mode=config.meta_mode or config.meta.mode)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    resolved = {"model": asdict(model_config), "train": asdict(replace(config, meta=meta)), "records": split.records_digest,
                "init": str(init) if init is not None else None, "freeze": list(freeze)}  # fmt: skip
    torch.manual_seed(config.seed)
    model = CPIModel(model_config).to(device)
    loaded = initialise_from(model, Path(init)) if init is not None else []
    frozen = freeze_groups(model, freeze)
    optimizer = torch.optim.Adam((p for p in model.parameters() if p.requires_grad), lr=config.lr,
                                 weight_decay=config.weight_decay)  # fmt: skip
    scheduler = (torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=meta.cosine_rounds)
                 if config.meta_mode else None)  # fmt: skip
    data = PairData(records, model_config)
    train_rows = np.array(split.part("ood_train"))
    tasks = (FamilyTasks(np.array([r.family for r in records]), data.labels, train_rows)
             if config.meta_mode else None)  # fmt: skip
    history: list[dict[str, Any]] = []
    best: dict[str, dict[str, Any]] = {}
    start = 0
    run = RunDir(out)
    recorded = {**resolved, "loaded": loaded, "frozen": frozen}
    checkpoint = resume_run(run, recorded, list(resolved), model, optimizer)
    if checkpoint is not None:
        if scheduler is not None:
            scheduler.load_state_dict(checkpoint.extra["scheduler"])
        start, history, best = checkpoint.step, run.metrics(), checkpoint.extra["best"]
    split.save(out / "split.json")
    started = time.perf_counter()
    dev = torch.device(device)
    train_mode(model)
    for epoch in range(start, config.epochs):
        rng = np.random.default_rng([config.seed, epoch])
        if tasks is None:
            losses = _erm_round(model, optimizer, data, train_rows, config, rng, dev)
        else:
            losses = _meta_round(model, optimizer, data, tasks, meta, rng, dev)
            assert scheduler is not None
            scheduler.step()
        scores = _scores(data, model, split, dev, 256)
        record = {"epoch": epoch + 1, "loss": float(np.mean(losses)), "seconds": time.perf_counter() - started,
                  **{f"{name}_{key}": value for name, values in scores.items() for key, value in values.items()}}  # fmt: skip
        history.append(run.log(epoch + 1, **record))
        LOG.info("round %d: loss %.4f, ROC-AUC IID-dev %.4f, OOD-dev %.4f, OOD-test %.4f", epoch + 1, record["loss"],
                 record["iid_dev_roc_auc"], record["ood_dev_roc_auc"], record["ood_test_roc_auc"])  # fmt: skip
        for selection in SELECTIONS:
            key = f"{selection.replace('-', '_')}_roc_auc"
            if selection not in best or record[key] > best[selection]["selection_roc_auc"]:
                best[selection] = {"epoch": epoch + 1, "selection_roc_auc": record[key], "metrics": scores,
                                   "deployment_gap": scores["ood_test"]["roc_auc"] - record[key]}  # fmt: skip
                model.save_pretrained(out / f"model-{selection}", extra={"selected_on": selection,
                                                                          "epoch": epoch + 1})  # fmt: skip
        save_checkpoint(run.checkpoints, epoch + 1, model, optimizer=optimizer, config=recorded, keep=1,
                        extra={"best": best,
                               "scheduler": scheduler.state_dict() if scheduler is not None else None})  # fmt: skip
    write_json(out / "summary.json", {"selected": best, "select": config.select, "method": config.method})
    return TrainResult(best, history, time.perf_counter() - started, out)


def compare_runs(folder: str | Path, on: str = "ood-dev") -> list[dict[str, Any]]:
    """Hyperparameter selection: every finished run under ``folder`` (a ``summary.json`` in a subfolder), ranked by
    the ROC-AUC of its model selected on ``on``, best first, with that model's OOD-test ROC-AUC and deployment gap."""
    if on not in SELECTIONS:
        raise InputError(f"--on must be one of {', '.join(SELECTIONS)}, got {on!r}")
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"--runs {folder}: not a folder")
    found = []
    for summary in sorted(folder.glob("*/summary.json")):
        chosen = json.loads(summary.read_text(encoding="utf-8"))["selected"][on]
        settings = json.loads((summary.parent / "config.json").read_text(encoding="utf-8"))
        found.append({"run": summary.parent.name, "epoch": chosen["epoch"], "selection_roc_auc": chosen["selection_roc_auc"],
                      "ood_test_roc_auc": chosen["metrics"]["ood_test"]["roc_auc"],
                      "deployment_gap": chosen["deployment_gap"], "settings": settings})  # fmt: skip
    if not found:
        raise InputError(f"--runs {folder}: no finished portal-learning train runs (no */summary.json)")
    return sorted(found, key=lambda r: r["selection_roc_auc"], reverse=True)
