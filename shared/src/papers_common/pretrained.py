"""``save_pretrained`` / ``from_pretrained`` for models built from one dataclass config.

A model is rebuilt from the JSON config stored in a papers_common checkpoint's sidecar and the safetensors weights
beside it, in the spirit of Hugging Face's ``PreTrainedModel``: no pickled Python objects are ever read.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from papers_common.errors import InputError

if TYPE_CHECKING:
    import torch

T = TypeVar("T", bound="Pretrained")


class Pretrained:
    """Mixin for ``torch.nn.Module`` subclasses whose constructor takes one dataclass config, kept as ``self.config``.

    Subclasses set :attr:`config_class` (the dataclass) and :attr:`config_key` (the key of the config in the
    checkpoint's JSON). Training checkpoints written by :func:`papers_common.save_checkpoint` with the same key in their
    ``config`` can be read by :meth:`from_pretrained` as well.
    """

    config_class: ClassVar[type]
    config_key: ClassVar[str] = "model"
    config: Any

    def save_pretrained(
        self, directory: str | os.PathLike[str], *, step: int = 0, extra: dict[str, Any] | None = None
    ) -> Path:
        """Write the config and weights as a papers_common checkpoint (safetensors + JSON); returns the sidecar path."""
        from papers_common.checkpoint import save_checkpoint

        config = {self.config_key: dataclasses.asdict(self.config)}
        return save_checkpoint(directory, step, self, config=config, extra=extra, rng=False)  # type: ignore[arg-type]

    @classmethod
    def from_pretrained(
        cls: type[T], path: str | os.PathLike[str], *, map_location: str | torch.device = "cpu"
    ) -> T:
        """Rebuild a model from :meth:`save_pretrained` output or a training checkpoint (file or directory)."""
        from papers_common.checkpoint import load_checkpoint

        checkpoint = load_checkpoint(path, map_location=map_location)
        stored = checkpoint.config.get(cls.config_key)
        if not isinstance(stored, dict):
            raise InputError(f"{checkpoint.path}: no {cls.config_key} config in this checkpoint")
        try:
            config = cls.config_class(**stored)
        except TypeError as err:
            raise InputError(
                f"{checkpoint.path}: its {cls.config_key} config does not fit {cls.config_class.__name__} ({err})"
            ) from None
        model = cls(config)  # type: ignore[call-arg]
        model.load_state_dict(checkpoint.model)  # type: ignore[attr-defined]
        return model.to(map_location)  # type: ignore[attr-defined]
