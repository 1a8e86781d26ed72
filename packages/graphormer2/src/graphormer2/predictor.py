"""Predicting in the target's units from a saved 2D model: :func:`load_predictor` and :class:`Predictor`.

``graphormer2 train`` ends with ``best/``, a saved model (``config.json`` + ``model.safetensors``) whose ``extra``
holds what turning its outputs into predictions needs: the target names, the objective, the training split's
target mean μ and deviation σ, ``max_nodes``, ``multi_hop_max_dist`` and the feature version. A regression model
outputs standardised values ŷ, so a prediction is y = μ + σ·ŷ per target (:meth:`RegressionObjective.predict`); a
classification model outputs logits, so a prediction is the probability sigmoid(ŷ).

Graphormer-3D keeps its standardisation in its config instead: ``Graphormer3D.from_pretrained(path).predict(batch)``
already answers in target units.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from rdkit import Chem

from graphormer2.collate import collate
from graphormer2.datasets import MAX_NODES, MoleculeDataset, Rejected, from_mols, from_sdf, from_smiles
from graphormer2.features import FEATURE_VERSION
from graphormer2.gin import GIN
from graphormer2.model import Graphormer
from graphormer2.train import RegressionObjective
from papers_common import InputError, latest_checkpoint, pick_device, pretrained_extra, progress, read_json

PREDICT_SETTINGS = ("objective", "target_names", "max_nodes", "multi_hop_max_dist")
"""What a saved model's ``extra`` must hold to predict (besides a regression's target_mean/target_std)."""

Molecules = str | os.PathLike[str] | Chem.Mol | Sequence[str] | Sequence[Chem.Mol | None]


@dataclass(frozen=True)
class Predictions:
    """One row per molecule given (per record of an SDF file), in the order given.

    Attributes:
        target_names: the ``C`` target names the model was trained on.
        values: float64 ``(M, C)``: regression values in the target's units, or classification probabilities;
            NaN rows for the molecules that were skipped.
        smiles: the ``M`` SMILES (as given; RDKit's canonical SMILES for RDKit molecules and SDF records, empty
            for an unreadable record).
        rejected: the skipped molecules with their 1-based ``row`` and the reason.
    """

    target_names: list[str]
    values: torch.Tensor
    smiles: list[str]
    rejected: list[Rejected]

    def __getitem__(self, name: str) -> torch.Tensor:
        """The ``(M,)`` column of the target ``name``."""
        if name not in self.target_names:
            raise KeyError(f"no target {name!r}; the targets are {', '.join(self.target_names)}")
        return self.values[:, self.target_names.index(name)]


class Predictor:
    """A 2D model (:class:`Graphormer` or :class:`GIN`, in eval mode) with what maps its outputs to predictions.

    Args:
        model: outputs ``(B, C)`` for a :class:`graphormer2.collate.GraphBatch`.
        target_names: the ``C`` names. objective: ``"regression"`` or ``"classification"``.
        target_mean, target_std: μ and σ of the regression targets (``None``: the model learned raw values).
        max_nodes, multi_hop_max_dist: the featurisation the model was trained with.
    """

    def __init__(
        self,
        model: Graphormer | GIN,
        *,
        target_names: Sequence[str],
        objective: Literal["regression", "classification"] = "regression",
        target_mean: Sequence[float] | None = None,
        target_std: Sequence[float] | None = None,
        max_nodes: int = MAX_NODES,
        multi_hop_max_dist: int = 5,
    ) -> None:
        if objective not in ("regression", "classification"):
            raise InputError(f"objective must be 'regression' or 'classification', got {objective!r}")
        self.model = model.eval()
        self.target_names = list(target_names)
        self.objective = objective
        self.scale = RegressionObjective(
            target_mean=None if target_mean is None else tuple(target_mean),
            target_std=None if target_std is None else tuple(target_std),
        )
        self.max_nodes = max_nodes
        self.multi_hop_max_dist = multi_hop_max_dist

    def save_pretrained(self, folder: str | os.PathLike[str]) -> Path:
        """Save the model with everything :func:`load_predictor` reads back (target names, objective, μ, σ,
        featurisation settings and feature version) in its ``config.json``'s ``extra``; returns the folder."""
        extra = {"target_names": self.target_names, "objective": self.objective,
                 "target_mean": self.scale.target_mean, "target_std": self.scale.target_std,
                 "max_nodes": self.max_nodes, "multi_hop_max_dist": self.multi_hop_max_dist,
                 "features": FEATURE_VERSION}  # fmt: skip
        return self.model.save_pretrained(folder, extra=extra)

    def molecules(self, molecules: Molecules, *, strict: bool = False) -> MoleculeDataset:
        """Featurise ``molecules`` as the model was trained: a path to an SDF file (a :class:`os.PathLike`, or a
        string ending in ``.sdf``), one SMILES or RDKit molecule, or a sequence of SMILES or of RDKit molecules."""
        settings = {
            "max_nodes": self.max_nodes,
            "multi_hop_max_dist": self.multi_hop_max_dist,
            "strict": strict,
        }
        if isinstance(molecules, os.PathLike) or (
            isinstance(molecules, str) and molecules.lower().endswith(".sdf")
        ):
            return from_sdf(molecules, [], **settings)
        if isinstance(molecules, str | Chem.Mol):
            molecules = [molecules]
        molecules = list(molecules)
        if not molecules:
            raise InputError("no molecules to predict (an empty list)")
        if all(isinstance(m, str) for m in molecules):
            return from_smiles(molecules, **settings)
        return from_mols(molecules, **settings)

    def predict_dataset(self, dataset: MoleculeDataset, batch_size: int = 64) -> torch.Tensor:
        """Predictions float64 ``(len(dataset), C)`` of featurised molecules, ``batch_size`` per forward pass."""
        if batch_size < 1:
            raise InputError(f"batch_size must be at least 1, got {batch_size}")
        device = next(self.model.parameters()).device
        rows = []
        for first in progress(range(0, len(dataset), batch_size), desc="predict", unit="batch", leave=False):
            batch = collate([dataset[i] for i in range(first, min(first + batch_size, len(dataset)))])
            with torch.no_grad():
                output = self.model(batch.to(device))
            values = (
                torch.sigmoid(output) if self.objective == "classification" else self.scale.predict(output)
            )
            rows.append(values.double().cpu())
        return torch.cat(rows)

    def predict(self, molecules: Molecules, *, batch_size: int = 64, strict: bool = False) -> Predictions:
        """Predict every molecule of ``molecules`` (see :meth:`molecules`); those the model cannot take (invalid
        SMILES, unreadable records, more atoms than ``max_nodes``) get NaN rows, or raise with ``strict``.

        Raises:
            InputError: no molecule can be used (the message names the first), an entry is neither a SMILES nor
                an RDKit molecule, an unreadable SDF file, or (``strict``) an unusable molecule.
        """
        dataset = self.molecules(molecules, strict=strict)
        skipped = {r.row for r in dataset.rejected}
        kept = [row for row in range(1, len(dataset) + len(skipped) + 1) if row not in skipped]
        values = torch.full(
            (len(kept) + len(skipped), len(self.target_names)), float("nan"), dtype=torch.float64
        )
        values[torch.tensor(kept) - 1] = self.predict_dataset(dataset, batch_size)
        smiles = [""] * len(values)
        for row, text in zip(kept, dataset.smiles, strict=True):
            smiles[row - 1] = text
        for rejected in dataset.rejected:
            smiles[rejected.row - 1] = rejected.smiles
        return Predictions(self.target_names, values, smiles, list(dataset.rejected))


def load_predictor(path: str | os.PathLike[str], *, device: str = "auto") -> Predictor:
    """The predictor of a run directory of ``graphormer2 train`` or a saved-model folder (its ``best/``, also
    copied on its own; runs of graphormer2 0.1.0 too), on ``device`` (``"auto"``, ``"cpu"``, ``"cuda:N"``...).

    Raises:
        InputError: nothing loadable at ``path``, a model that is not a 2D one, a saved model without the settings
            of :data:`PREDICT_SETTINGS` in its ``extra``, or features of another version than this package's.
    """
    weights, kind, extra = _saved_model(Path(path))
    if extra.get("features", FEATURE_VERSION) != FEATURE_VERSION:
        raise InputError(
            f"{path}: trained on features of version {extra['features']}; this graphormer2 computes version "
            f"{FEATURE_VERSION}, which the model has not seen"
        )
    model_class = {"Graphormer": Graphormer, "GIN": GIN}[kind]
    model = model_class.from_pretrained(weights, map_location=pick_device(device))
    return Predictor(
        model,
        target_names=extra["target_names"],
        objective=extra["objective"],
        target_mean=extra.get("target_mean"),
        target_std=extra.get("target_std"),
        max_nodes=extra["max_nodes"],
        multi_hop_max_dist=extra["multi_hop_max_dist"],
    )


def _saved_model(path: Path) -> tuple[Path, str, dict[str, Any]]:
    """The weights to load, the model class and the prediction settings at ``path``.

    ``path`` is a saved-model folder (``config.json`` with ``architectures`` + ``model.safetensors``, as ``best/``
    of a run), a file in one, or a run directory of ``graphormer2 train``: its ``best/`` folder, or for a run of
    graphormer2 0.1.0 (a training checkpoint in ``best/``) the settings of the run's own ``config.json``.
    """
    if path.is_file() and path.name in ("config.json", "model.safetensors"):
        path = path.parent
    config = _read_json(path / "config.json", path)
    if "architectures" not in config and "model_class" in config:  # a run directory
        best = path / "best"
        if (best / "config.json").is_file():
            return _saved_model(best)
        if latest_checkpoint(best) is None:
            raise InputError(f"{path}: no best weights (no {best}); the run has not validated yet")
        kind, extra, weights = config["model_class"], config.get("extra") or {}, best
    elif "architectures" in config:
        kind, extra, weights = (config["architectures"] or ["?"])[0], pretrained_extra(path), path
    else:
        raise InputError(f"{path}: config.json is neither a run's nor a saved model's")
    if kind not in ("Graphormer", "GIN"):
        raise InputError(
            f"{path}: a {kind!r} model; predicting from molecules handles the 2D models of `graphormer2 train` "
            "(Graphormer or GIN); Graphormer3D.from_pretrained(path).predict(batch) answers in target units"
        )
    missing = [key for key in PREDICT_SETTINGS if key not in extra]
    if missing:
        raise InputError(
            f"{path}: the saved model has no {', '.join(missing)} in its extra settings; save it with "
            "`graphormer2 train` or save_pretrained(..., extra={...}) naming them"
        )
    return weights, kind, extra


def _read_json(file: Path, given: Path) -> dict[str, Any]:
    if not file.is_file():
        raise InputError(
            f"{given}: not a run directory of `graphormer2 train` nor a saved model (no config.json)"
        )
    return read_json(file, "model config")
