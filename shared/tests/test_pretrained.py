"""``papers_common.Pretrained``: a model rebuilt from its dataclass config and safetensors weights."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from torch import nn

from papers_common import InputError, Pretrained, save_checkpoint


@dataclass(frozen=True)
class TinyConfig:
    width: int = 3
    scale: float = 2.0


class Tiny(nn.Module, Pretrained):
    config_class = TinyConfig
    config_key = "tiny"

    def __init__(self, config: TinyConfig) -> None:
        super().__init__()
        self.config = config
        self.linear = nn.Linear(config.width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.config.scale * self.linear(x)


def test_round_trip_rebuilds_config_and_weights(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = Tiny(TinyConfig(width=4, scale=0.5))
    sidecar = model.save_pretrained(tmp_path / "saved", step=7, extra={"note": "hello"})
    assert sidecar.is_file()
    loaded = Tiny.from_pretrained(tmp_path / "saved")
    assert loaded.config == TinyConfig(width=4, scale=0.5)
    x = torch.randn(5, 4)
    assert torch.equal(loaded(x), model(x))


def test_training_checkpoints_with_the_same_key_are_readable(tmp_path: Path) -> None:
    model = Tiny(TinyConfig())
    save_checkpoint(tmp_path, 3, model, config={"tiny": {"width": 3, "scale": 2.0}, "train": {"lr": 1.0}})
    assert Tiny.from_pretrained(tmp_path).config == TinyConfig()


def test_a_checkpoint_without_the_config_is_refused(tmp_path: Path) -> None:
    save_checkpoint(tmp_path, 1, Tiny(TinyConfig()), config={"model": {"width": 3}})
    with pytest.raises(InputError, match="no tiny config"):
        Tiny.from_pretrained(tmp_path)


def test_a_config_that_does_not_fit_is_refused(tmp_path: Path) -> None:
    save_checkpoint(tmp_path, 1, Tiny(TinyConfig()), config={"tiny": {"width": 3, "depth": 9}})
    with pytest.raises(InputError, match="does not fit TinyConfig"):
        Tiny.from_pretrained(tmp_path)
