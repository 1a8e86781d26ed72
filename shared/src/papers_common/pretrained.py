"""``save_pretrained`` / ``from_pretrained`` for models built from one dataclass config.

A saved model is a folder in the layout Hugging Face tools use::

    config.json         the config's fields, plus "architectures": [class name], "papers_common_version" and,
                        when given, "extra": what else using the model needs (target scaling, label names)
    model.safetensors   the weights (tied weights stored once)

These are the file names of ``huggingface_hub``'s ``PyTorchModelHubMixin`` and of ``transformers``. The mixin
itself is not used: it would add ``huggingface_hub`` and its network stack to every install, and its
``from_pretrained`` takes a path that does not exist for a hub repository id (a download); here it is an error that
names the path. :meth:`Pretrained.from_pretrained` also reads training checkpoints (``step-*.safetensors`` and
``step-*.json``, the layout ``save_pretrained`` wrote before 0.2.0), given as a file or as their directory. No
pickled Python objects are ever read.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from papers_common import atomic
from papers_common.errors import InputError
from papers_common.rundir import read_json, to_jsonable

if TYPE_CHECKING:
    import torch

T = TypeVar("T", bound="Pretrained")

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
_RESERVED = ("architectures", "papers_common_version", "extra")


class Pretrained:
    """Mixin for ``torch.nn.Module`` subclasses whose constructor takes one dataclass config, kept as ``self.config``.

    Subclasses set :attr:`config_class` (the dataclass) and :attr:`config_key` (the key of the config in a
    training checkpoint's ``config``, so that :meth:`from_pretrained` can read checkpoints written by
    :func:`papers_common.save_checkpoint` with that key).
    """

    config_class: ClassVar[type]
    config_key: ClassVar[str] = "model"
    config: Any

    def save_pretrained(
        self, directory: str | os.PathLike[str], *, extra: dict[str, Any] | None = None
    ) -> Path:
        """Write ``config.json`` and ``model.safetensors`` into ``directory`` (created); returns the directory.

        Args:
            extra: JSON values that predicting needs besides the weights (e.g. the target mean and scale), read
                back by :func:`pretrained_extra`.
        """
        from safetensors.torch import save_model

        from papers_common import __version__

        fields = to_jsonable(dataclasses.asdict(self.config))
        clash = sorted(set(fields) & set(_RESERVED))
        if clash:
            raise TypeError(f"{type(self.config).__name__}: field(s) {clash} clash with keys of config.json")
        folder = Path(directory)
        with atomic.atomic_path(folder / WEIGHTS_NAME) as tmp:
            save_model(self, os.fspath(tmp), metadata={"format": "pt"})  # type: ignore[arg-type]
        meta = {"architectures": [type(self).__name__], "papers_common_version": __version__}
        atomic.write_json(folder / CONFIG_NAME, {**fields, **meta, **({"extra": extra} if extra else {})})
        return folder

    @classmethod
    def from_pretrained(
        cls: type[T], path: str | os.PathLike[str], *, map_location: str | torch.device = "cpu"
    ) -> T:
        """Rebuild a model from a :meth:`save_pretrained` folder (or a file in it) or a training checkpoint.

        Raises:
            InputError: nothing loadable is at ``path``, or what is there was saved from another model or config.
        """
        folder = _pretrained_folder(Path(path))
        if folder is None:
            return cls._from_checkpoint(Path(path), map_location)
        from safetensors.torch import load_model

        config_path, weights = folder / CONFIG_NAME, folder / WEIGHTS_NAME
        stored = _read_config(config_path)
        kinds = stored.get("architectures") or [cls.__name__]
        if cls.__name__ not in kinds:
            raise InputError(f"{config_path}: holds a {kinds[0]} model, not a {cls.__name__}")
        fields = {k: v for k, v in stored.items() if k not in _RESERVED}
        model = cls(cls._config_from(fields, config_path))  # type: ignore[call-arg]
        if not weights.is_file():
            raise InputError(f"{folder}: {WEIGHTS_NAME} is missing beside {CONFIG_NAME}")
        try:
            load_model(model, os.fspath(weights), device=str(map_location))  # type: ignore[arg-type]
        except (RuntimeError, OSError, ValueError) as err:
            raise InputError(f"{weights}: does not fit {cls.__name__} with this config ({err})") from None
        return model.to(map_location)  # type: ignore[attr-defined]

    @classmethod
    def _from_checkpoint(cls: type[T], path: Path, map_location: str | torch.device) -> T:
        from papers_common.checkpoint import load_checkpoint

        checkpoint = load_checkpoint(path, map_location=map_location)
        stored = checkpoint.config.get(cls.config_key)
        if not isinstance(stored, dict):
            raise InputError(f"{checkpoint.path}: no {cls.config_key} config in this checkpoint")
        model = cls(cls._config_from(stored, checkpoint.path))  # type: ignore[call-arg]
        model.load_state_dict(checkpoint.model)  # type: ignore[attr-defined]
        return model.to(map_location)  # type: ignore[attr-defined]

    @classmethod
    def _config_from(cls, fields: dict[str, Any], where: Path) -> Any:
        try:
            return cls.config_class(**fields)
        except TypeError as err:
            raise InputError(
                f"{where}: its config does not fit {cls.config_class.__name__} ({err})"
            ) from None


def pretrained_extra(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``extra`` stored by :meth:`Pretrained.save_pretrained` (or a training checkpoint's ``extra``)."""
    folder = _pretrained_folder(Path(path))
    if folder is None:
        from papers_common.checkpoint import load_checkpoint

        return load_checkpoint(path).extra
    return dict(_read_config(folder / CONFIG_NAME).get("extra") or {})


def _pretrained_folder(path: Path) -> Path | None:
    """The folder of a ``save_pretrained`` layout at ``path`` (the folder or a file in it), else None."""
    if path.is_dir():
        return path if (path / CONFIG_NAME).is_file() else None
    if path.name in (CONFIG_NAME, WEIGHTS_NAME) and (path.parent / CONFIG_NAME).is_file():
        return path.parent
    return None


def _read_config(path: Path) -> dict[str, Any]:
    return read_json(path, "model config")
