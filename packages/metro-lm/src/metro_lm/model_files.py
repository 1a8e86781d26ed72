"""Saved METRO model folders: finding them, checking their weights against their config, describing them.

A folder written by ``save_pretrained`` holds ``config.json`` and ``model.safetensors`` (or shards listed in
``model.safetensors.index.json``). The checks here read the safetensors headers only (names, shapes), so they are
cheap and run before ``from_pretrained``, whose own failures (a missing path retried on the network, a size
mismatch re-initialised under ``ignore_mismatched_sizes``) would be slow or silent.

Parameter groups by weight name: ``metro.embeddings.`` the token (and position, segment) embeddings shared by the
main model and the generator; ``metro.encoder.`` the main Transformer; ``generator.`` and ``generator_head.`` the
auxiliary generator; ``rtd_head.`` and ``lm_head.`` the main model's pretraining heads; anything else a task head.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from papers_common import InputError, read_json

WEIGHTS_NAME = "model.safetensors"
INDEX_NAME = "model.safetensors.index.json"
TOKEN_EMBEDDING = "metro.embeddings.word_embeddings.weight"
GROUPS = (
    ("embeddings", ("metro.embeddings.",)),
    ("main_encoder", ("metro.encoder.",)),
    ("generator", ("generator.", "generator_head.")),
    ("pretraining_heads", ("rtd_head.", "lm_head.")),
)


def model_folder(path: str | os.PathLike[str]) -> tuple[Path, dict[str, Any]]:
    """A saved METRO model's folder and its ``config.json``; anything else is an :class:`InputError` naming it."""
    folder = Path(path)
    if not folder.is_dir():
        raise InputError(f"{folder}: no such model folder")
    if not (folder / "config.json").is_file():
        held = sorted(p.name for p in folder.iterdir())
        raise InputError(
            f"{folder}: not a saved model (no config.json); it holds {', '.join(held) or 'nothing'}"
        )
    config = read_json(folder / "config.json", "model config")
    if config.get("model_type") != "metro":
        raise InputError(f"{folder}: model_type is {config.get('model_type')!r}, expected 'metro' (a model saved "
                         "by metro-lm pretraining or fine-tuning)")  # fmt: skip
    return folder, config


def weight_shapes(folder: Path) -> dict[str, tuple[int, ...]]:
    """Every tensor's name and shape in a model folder's safetensors file(s), read from their headers only."""
    from safetensors import SafetensorError, safe_open

    index = folder / INDEX_NAME
    if index.is_file():
        weight_map = read_json(index, "weights index").get("weight_map")
        if not isinstance(weight_map, dict):
            raise InputError(f"{index}: has no 'weight_map' object")
        files = sorted({folder / str(name) for name in weight_map.values()})
    else:
        files = [folder / WEIGHTS_NAME]
    shapes: dict[str, tuple[int, ...]] = {}
    for file in files:
        if not file.is_file():
            raise InputError(f"{file}: no such weights file")
        try:
            with safe_open(str(file), framework="pt") as handle:
                for name in handle.keys():  # noqa: SIM118 (safe_open has no __iter__)
                    shapes[name] = tuple(handle.get_slice(name).get_shape())
        except (SafetensorError, OSError, ValueError) as error:
            raise InputError(f"{file}: not a readable safetensors file ({error})") from None
    return shapes


def check_weights(folder: Path, config: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """Raise an :class:`InputError` unless the token embedding matrix has the config's ``(V, H)`` shape.

    Returns:
        the folder's :func:`weight_shapes`.
    """
    shapes = weight_shapes(folder)
    if TOKEN_EMBEDDING not in shapes:
        raise InputError(f"{folder}: the weights lack {TOKEN_EMBEDDING}; not a METRO model's weights")
    want = (int(config.get("vocab_size", -1)), int(config.get("hidden_size", -1)))
    found = shapes[TOKEN_EMBEDDING]
    if found != want:
        raise InputError(f"{folder}: {TOKEN_EMBEDDING} is {found[0]} x {found[1]} but config.json has vocab_size "
                         f"{want[0]} and hidden_size {want[1]}; the config does not belong to these weights")  # fmt: skip
    return shapes


@dataclass
class ModelInventory:
    """What a saved METRO model holds.

    Attributes:
        folder: the model folder.
        architecture: the saved class (``config.json``'s ``architectures``).
        config: the main fields of its :class:`~metro_lm.MetroConfig`.
        parameters: stored parameter count per group (module docstring) and ``"task_head"``, plus ``"main_model"``
            (embeddings + main encoder) and ``"total"``.
        embedding_matrices: names of the stored ``(V, H)`` tensors.
        tied: the token embedding matrix is stored once and every LM head decodes against it.
        loaded_parameters: the parameter count of the model built from the folder, shared tensors counted once;
            equal to ``parameters["total"]`` when nothing is duplicated or left out.
    """

    folder: Path
    architecture: str
    config: dict[str, Any]
    parameters: dict[str, int]
    embedding_matrices: list[str]
    tied: bool
    loaded_parameters: int
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """A human-readable description, one fact per line."""
        shown = ", ".join(f"{key}={value}" for key, value in self.config.items())
        out = [f"{self.folder}: {self.architecture}", f"config: {shown}"]
        out += [f"parameters {name}: {count:,}" for name, count in self.parameters.items()]
        out.append(f"parameters loaded (shared counted once): {self.loaded_parameters:,}")
        out.append(f"token embeddings stored as: {', '.join(self.embedding_matrices) or 'nothing'}")
        out.append(f"tied embeddings: {'yes' if self.tied else 'NO'}")
        return out + self.notes

    def to_json(self) -> str:
        data = {key: value for key, value in self.__dict__.items() if key != "folder"}
        return json.dumps({"folder": str(self.folder), **data}, indent=2)


SHOWN_FIELDS = ("objective", "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                "intermediate_size", "generator_layers", "max_position_embeddings", "position_embedding",
                "layer_norm", "scaled_init")  # fmt: skip


def inventory(path: str | os.PathLike[str]) -> ModelInventory:
    """Describe a saved METRO model: its config, parameter counts by part and whether its embeddings are tied.

    The model is also built from the folder with the Auto class of its architecture, so a file that does not
    load, or weights the class does not expect, are reported here rather than at training time.
    """
    from transformers import (
        AutoModel,
        AutoModelForMaskedLM,
        AutoModelForPreTraining,
        AutoModelForSequenceClassification,
        AutoModelForTokenClassification,
    )

    folder, config = model_folder(path)
    shapes = check_weights(folder, config)
    architecture = (config.get("architectures") or ["MetroModel"])[0]
    auto = {"MetroForPreTraining": AutoModelForPreTraining, "MetroForMaskedLM": AutoModelForMaskedLM,
            "MetroForSequenceClassification": AutoModelForSequenceClassification,
            "MetroForTokenClassification": AutoModelForTokenClassification}.get(architecture, AutoModel)  # fmt: skip
    try:
        model, info = auto.from_pretrained(str(folder), local_files_only=True, output_loading_info=True)
    except (OSError, ValueError, RuntimeError) as error:
        raise InputError(
            f"{folder}: does not load as {architecture} ({str(error).splitlines()[0]})"
        ) from None
    missing = sorted(info["missing_keys"])
    notes = [f"missing weights (initialised at random on loading): {', '.join(missing)}"] if missing else []
    numel = {name: math.prod(shape) for name, shape in shapes.items()}
    parameters = {group: sum(n for name, n in numel.items() if name.startswith(prefixes))
                  for group, prefixes in GROUPS}  # fmt: skip
    parameters["task_head"] = sum(numel.values()) - sum(parameters.values())
    parameters = {name: count for name, count in parameters.items() if count}
    if "main_encoder" in parameters:
        parameters["main_model"] = parameters["embeddings"] + parameters["main_encoder"]
    parameters["total"] = sum(numel.values())
    token_shape = shapes[TOKEN_EMBEDDING]
    matrices = sorted(name for name, shape in shapes.items() if shape == token_shape)
    embedding = model.get_input_embeddings().weight
    decoders = [module for name, module in model.named_modules() if name in ("generator_head", "lm_head")]
    loaded = sum(p.numel() for p in model.parameters())
    tied = matrices == [TOKEN_EMBEDDING] and all(
        not any(p.shape == embedding.shape for p in module.parameters()) for module in decoders
    )
    return ModelInventory(
        folder=folder, architecture=architecture,
        config={key: config[key] for key in SHOWN_FIELDS if key in config},
        parameters=parameters, embedding_matrices=matrices, tied=tied, loaded_parameters=loaded, notes=notes,
    )  # fmt: skip
