"""ERM training with stress model selection (Portal 3).

The model trains on OOD-train pairs (cross-entropy, Adam). After every epoch it is scored globally on IID-dev,
OOD-dev and OOD-test; two checkpoints are kept: the epoch best on **OOD-dev** (stress model selection, the paper's)
and the epoch best on **IID-dev** (what a standard pipeline would ship). For each, the deployment gap is its OOD-test
ROC-AUC minus the ROC-AUC on the split it was selected on: how much the selection metric overstates what the model
does on unseen families. A run folder holds the config, the split, per-epoch metrics, checkpoints (resumed after an
interruption) and both selected models in the Hugging Face layout.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from papers_common import InputError, latest_checkpoint, load_checkpoint, save_checkpoint, write_json
from portal_learning.featurize import Graph, batch_graphs, mol_graph, residue_tokens
from portal_learning.metrics import classification_metrics
from portal_learning.model import CPIConfig, CPIModel
from portal_learning.records import Interaction
from portal_learning.splits import Split

LOG = logging.getLogger(__name__)
SELECTIONS = ("ood-dev", "iid-dev")
HISTORY_FILE = "history.jsonl"


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation and selection settings."""

    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.0
    select: str = "ood-dev"
    seed: int = 0

    def check(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise InputError(
                f"--epochs and --batch-size must be at least 1, got {self.epochs}, {self.batch_size}"
            )
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise InputError(f"--lr must be a positive number, got {self.lr}")
        if self.select not in SELECTIONS:
            raise InputError(f"--select must be one of {', '.join(SELECTIONS)}, got {self.select!r}")


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

    def batch(self, rows: Sequence[int], device: torch.device) -> tuple:
        if self.config.chemical == "gin":
            molecules: Any = batch_graphs([self.graphs[self.smiles[i]] for i in rows]).to(device)
        else:
            molecules = torch.stack([self.fingerprints[self.smiles[i]] for i in rows]).to(device)
        tokens, mask = residue_tokens([self.sequences[i] for i in rows], self.config.max_length)
        return molecules, tokens.to(device), mask.to(device)

    @torch.no_grad()
    def probabilities(
        self, model: CPIModel, rows: Sequence[int], device: torch.device, batch_size: int
    ) -> np.ndarray:
        model.eval()
        out = [torch.softmax(model(*self.batch(rows[k : k + batch_size], device)), 1)[:, 1].cpu()
               for k in range(0, len(rows), batch_size)]  # fmt: skip
        model.train()
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


def train_erm(
    records: Sequence[Interaction],
    split: Split,
    out: str | Path,
    *,
    model_config: CPIConfig | None = None,
    config: TrainConfig | None = None,
    device: str = "cpu",
) -> TrainResult:
    """Train on OOD-train, score every epoch, keep the OOD-dev- and IID-dev-selected models (resumable)."""
    model_config = model_config or CPIConfig()
    config = config or TrainConfig()
    model_config.check()
    config.check()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    resolved = {"model": asdict(model_config), "train": asdict(config), "records": split.records_digest}
    torch.manual_seed(config.seed)
    model = CPIModel(model_config).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    data = PairData(records, model_config)
    train_rows = np.array(split.part("ood_train"))
    history: list[dict[str, Any]] = []
    best: dict[str, dict[str, Any]] = {}
    start = 0
    checkpoints = out / "checkpoints"
    found = latest_checkpoint(checkpoints)
    if found is not None:
        state = load_checkpoint(found)
        if state.config != json.loads(json.dumps(resolved)):
            raise InputError(f"{out}: holds a run with other settings or data; use a new --out")
        state.restore(model, optimizer)
        start, history, best = state.step, state.extra["history"], state.extra["best"]
    else:
        write_json(out / "config.json", resolved)
        split.save(out / "split.json")
    started = time.perf_counter()
    dev = torch.device(device)
    loss_fn = torch.nn.CrossEntropyLoss()
    model.train()
    for epoch in range(start, config.epochs):
        order = np.random.default_rng([config.seed, epoch]).permutation(train_rows)
        losses = []
        for k in range(0, len(order), config.batch_size):
            rows = order[k : k + config.batch_size]
            if len(rows) < 2:  # BatchNorm needs two pairs
                continue
            loss = loss_fn(
                model(*data.batch(rows.tolist(), dev)), torch.from_numpy(data.labels[rows]).to(dev)
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        scores = _scores(data, model, split, dev, 256)
        record = {"epoch": epoch + 1, "loss": float(np.mean(losses)), "seconds": time.perf_counter() - started,
                  **{f"{name}_{key}": value for name, values in scores.items() for key, value in values.items()}}  # fmt: skip
        history.append(record)
        LOG.info("epoch %d: loss %.4f, ROC-AUC IID-dev %.4f, OOD-dev %.4f, OOD-test %.4f", epoch + 1, record["loss"],
                 record["iid_dev_roc_auc"], record["ood_dev_roc_auc"], record["ood_test_roc_auc"])  # fmt: skip
        for selection in SELECTIONS:
            key = f"{selection.replace('-', '_')}_roc_auc"
            if selection not in best or record[key] > best[selection]["selection_roc_auc"]:
                best[selection] = {"epoch": epoch + 1, "selection_roc_auc": record[key], "metrics": scores,
                                   "deployment_gap": scores["ood_test"]["roc_auc"] - record[key]}  # fmt: skip
                model.save_pretrained(out / f"model-{selection}", extra={"selected_on": selection,
                                                                          "epoch": epoch + 1})  # fmt: skip
        save_checkpoint(checkpoints, epoch + 1, model, optimizer=optimizer, config=resolved,
                        extra={"history": history, "best": best}, keep=1)  # fmt: skip
    with (out / HISTORY_FILE).open("w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(h) + "\n" for h in history)
    write_json(out / "summary.json", {"selected": best, "select": config.select})
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
