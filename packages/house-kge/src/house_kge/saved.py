"""A trained model as one folder that predicting and evaluating need nothing else for.

:func:`save_trained` writes the Hugging Face–style folder of :meth:`papers_common.Pretrained.save_pretrained` and
one more file::

    config.json           the model config, "architectures": ["HousE"] or ["RotatE"], and "extra":
                          the graph's name, its entity and relation names in id order, the Countries regions
                          and the counts of each split
    model.safetensors     the weights
    triples.safetensors   the train, valid and test id triples (int64, (n, 3)): the filter of filtered ranking
                          and of ``predict``, and the splits ``evaluate`` ranks

so that ``house-kge predict``/``evaluate`` work from this folder alone, after the data folder and the rest of the
run have moved. Ids are positions in ``extra["entities"]``/``extra["relations"]``.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import torch

from house_kge.data import SPLITS, KnowledgeGraph
from house_kge.models import BlockModel, HousE, RotatE
from papers_common import InputError, atomic_path, pretrained_extra

LOGGER = logging.getLogger(__name__)

MODEL_FOLDER = "model"
"""The folder of a run directory where ``house-kge train`` saves the trained model."""

TRIPLES_NAME = "triples.safetensors"
ARCHITECTURES: dict[str, type[BlockModel]] = {"HousE": HousE, "RotatE": RotatE}


def save_trained(model: BlockModel, graph: KnowledgeGraph, directory: str | os.PathLike[str]) -> Path:
    """Save ``model`` with the vocabulary and triples of ``graph`` (see the module docstring); the folder."""
    from safetensors.torch import save_file

    from house_kge import __version__

    if (model.config.num_entities, model.config.num_relations) != (graph.num_entities, graph.num_relations):
        raise ValueError(
            f"the model has {model.config.num_entities} entities and {model.config.num_relations} relations, "
            f"the graph {graph.num_entities} and {graph.num_relations}"
        )
    folder = Path(directory)
    with atomic_path(folder / TRIPLES_NAME) as tmp:
        tensors = {split: getattr(graph, split).long().contiguous().cpu() for split in SPLITS}
        save_file(tensors, os.fspath(tmp), metadata={"format": "pt"})
    regions = None if graph.regions is None else [graph.entities[i] for i in graph.regions.tolist()]
    extra = {
        "house_kge_version": __version__,
        "dataset": graph.describe(),
        "entities": list(graph.entities),
        "relations": list(graph.relations),
        "regions": regions,
        "triples": TRIPLES_NAME,
    }
    model.save_pretrained(folder, extra=extra)  # config.json last: its presence marks a complete folder
    LOGGER.info("saved the trained model to %s", folder)
    return folder


def trained_folder(path: str | os.PathLike[str]) -> Path | None:
    """The saved-model folder at ``path``: the folder itself, a file in it, or a run directory's ``model/``."""
    path = Path(path)
    for folder in (path, path.parent if path.is_file() else None, path / MODEL_FOLDER):
        if folder is not None and _architecture(folder) is not None:
            return folder
    return None


def load_trained(
    path: str | os.PathLike[str], *, map_location: str | torch.device = "cpu"
) -> tuple[BlockModel, KnowledgeGraph]:
    """The model and its graph (names, regions, id triples) from a :func:`save_trained` folder.

    Raises:
        InputError: ``path`` holds no saved model, or one saved without the vocabulary and triples.
    """
    folder = trained_folder(path)
    if folder is None:
        raise InputError(f"{path}: no saved house-kge model here (config.json with 'architectures')")
    name = _architecture(folder)
    if name not in ARCHITECTURES:
        raise InputError(f"{folder / 'config.json'}: a {name} model, not one of {', '.join(ARCHITECTURES)}")
    model = ARCHITECTURES[name].from_pretrained(folder, map_location=map_location)
    extra = pretrained_extra(folder)
    missing = [key for key in ("entities", "relations") if key not in extra]
    triples_path = folder / str(extra.get("triples", TRIPLES_NAME))
    if missing or not triples_path.is_file():
        what = f"'extra' lacks {', '.join(missing)}" if missing else f"{triples_path.name} is missing"
        raise InputError(
            f"{folder}: {what}; predicting and evaluating need a folder written by `house-kge train` "
            "(house_kge.saved.save_trained), not a bare save_pretrained"
        )
    from safetensors.torch import load_file

    try:
        splits = load_file(os.fspath(triples_path))
    except Exception as err:  # OSError, or safetensors' own SafetensorError for a damaged file
        raise InputError(f"{triples_path}: not readable ({err})") from None
    entities, relations = list(extra["entities"]), list(extra["relations"])
    if (len(entities), len(relations)) != (model.config.num_entities, model.config.num_relations):
        raise InputError(
            f"{folder}: {len(entities)} entity and {len(relations)} relation names for a model of "
            f"{model.config.num_entities} entities and {model.config.num_relations} relations"
        )
    ids = {e: i for i, e in enumerate(entities)}
    regions = extra.get("regions")
    description = extra.get("dataset") or {}
    graph = KnowledgeGraph(
        name=str(description.get("name", folder.name)),
        entities=entities,
        relations=relations,
        train=splits["train"].long(),
        valid=splits["valid"].long(),
        test=splits["test"].long(),
        skipped=dict(description.get("skipped") or {}),
        regions=None if regions is None else torch.tensor([ids[r] for r in regions], dtype=torch.long),
        unseen=dict(description.get("unseen") or {}),
    )
    return model, graph


def _architecture(folder: Path) -> str | None:
    """The model class named by ``folder/config.json``, or None when that is no saved model's config."""
    config = folder / "config.json"
    if not config.is_file():
        return None
    try:
        stored: Any = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    kinds = stored.get("architectures") if isinstance(stored, dict) else None
    return str(kinds[0]) if isinstance(kinds, list) and kinds else None
