"""``papers_common.Pretrained``: the Hugging Face folder layout, training checkpoints, and saved fixtures."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from torch import nn

from papers_common import InputError, Pretrained, pretrained_extra, save_checkpoint

FIXTURES = Path(__file__).parent / "fixtures"


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


class Tied(nn.Module, Pretrained):
    """An embedding tied to the output layer, as language models do."""

    config_class = TinyConfig

    def __init__(self, config: TinyConfig) -> None:
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(5, config.width)
        self.out = nn.Linear(config.width, 5, bias=False)
        self.out.weight = self.embed.weight

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.out(self.embed(ids))


def fixed_tiny() -> Tiny:
    """The model the committed fixtures hold: weights 0.1, 0.2, 0.3, 0.4 and bias -0.5."""
    model = Tiny(TinyConfig(width=4, scale=0.5))
    with torch.no_grad():
        model.linear.weight.copy_(torch.tensor([[0.1, 0.2, 0.3, 0.4]]))
        model.linear.bias.fill_(-0.5)
    return model


def test_save_pretrained_writes_config_json_and_model_safetensors(tmp_path: Path) -> None:
    model = Tiny(TinyConfig(width=4, scale=0.5))
    folder = model.save_pretrained(tmp_path / "saved", extra={"target_mean": [1.5]})
    assert folder == tmp_path / "saved"
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    config = json.loads((folder / "config.json").read_text())
    assert (config["width"], config["scale"]) == (4, 0.5)
    assert config["architectures"] == ["Tiny"]
    assert config["extra"] == {"target_mean": [1.5]}
    with safe_open(folder / "model.safetensors", "pt") as weights:
        assert weights.metadata() == {"format": "pt"}  # what transformers checks before loading
        assert sorted(weights.keys()) == ["linear.bias", "linear.weight"]


def test_round_trip_gives_identical_outputs(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = Tiny(TinyConfig(width=4, scale=0.5))
    model.save_pretrained(tmp_path / "saved")
    x = torch.randn(5, 4)
    for source in ("saved", "saved/config.json", "saved/model.safetensors"):
        loaded = Tiny.from_pretrained(tmp_path / source)
        assert loaded.config == TinyConfig(width=4, scale=0.5)
        assert torch.equal(loaded(x), model(x))


def test_tied_weights_are_stored_once_and_stay_tied(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = Tied(TinyConfig())
    model.save_pretrained(tmp_path)
    with safe_open(tmp_path / "model.safetensors", "pt") as weights:
        assert len(list(weights.keys())) == 1
    loaded = Tied.from_pretrained(tmp_path)
    assert loaded.out.weight.data_ptr() == loaded.embed.weight.data_ptr()
    ids = torch.tensor([0, 3, 4])
    assert torch.equal(loaded(ids), model(ids))


def test_saved_files_get_the_mode_plain_open_gives(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        folder = Tiny(TinyConfig()).save_pretrained(tmp_path / "saved")
    finally:
        os.umask(old)
    assert {(p.name, p.stat().st_mode & 0o777) for p in folder.iterdir()} == {
        ("config.json", 0o644),
        ("model.safetensors", 0o644),
    }


def test_extra_is_read_back_from_either_layout(tmp_path: Path) -> None:
    model = Tiny(TinyConfig())
    model.save_pretrained(tmp_path / "new", extra={"target_std": [2.0], "names": ["y"]})
    assert pretrained_extra(tmp_path / "new") == {"target_std": [2.0], "names": ["y"]}
    assert pretrained_extra(Tiny(TinyConfig()).save_pretrained(tmp_path / "plain")) == {}
    save_checkpoint(tmp_path / "ckpt", 2, model, config={"tiny": {"width": 3, "scale": 2.0}}, extra={"k": 1})
    assert pretrained_extra(tmp_path / "ckpt") == {"k": 1}


def test_training_checkpoints_with_the_same_key_are_readable(tmp_path: Path) -> None:
    model = Tiny(TinyConfig())
    save_checkpoint(tmp_path, 3, model, config={"tiny": {"width": 3, "scale": 2.0}, "train": {"lr": 1.0}})
    x = torch.randn(2, 3)
    for source in (tmp_path, tmp_path / "step-00000003.json", tmp_path / "step-00000003.safetensors"):
        loaded = Tiny.from_pretrained(source)
        assert loaded.config == TinyConfig()
        assert torch.equal(loaded(x), model(x))


def test_committed_fixtures_still_load() -> None:
    """Folders saved by 0.2.0 (both layouts) load in every later version with the same outputs."""
    x = torch.tensor([[1.0, 2.0, 3.0, 4.0], [0.0, -1.0, 0.5, 2.0]])
    expected = 0.5 * (x @ torch.tensor([0.1, 0.2, 0.3, 0.4]) - 0.5).unsqueeze(1)
    for source in ("pretrained-0.2.0", "checkpoint-0.2.0"):
        loaded = Tiny.from_pretrained(FIXTURES / source)
        assert loaded.config == TinyConfig(width=4, scale=0.5)
        torch.testing.assert_close(loaded(x), expected)
    assert pretrained_extra(FIXTURES / "pretrained-0.2.0") == {"unit": "kcal/mol"}


def test_fixtures_match_what_this_version_writes(tmp_path: Path) -> None:
    fixed_tiny().save_pretrained(tmp_path, extra={"unit": "kcal/mol"})
    written = json.loads((tmp_path / "config.json").read_text())
    committed = json.loads((FIXTURES / "pretrained-0.2.0" / "config.json").read_text())
    assert {k: v for k, v in written.items() if k != "papers_common_version"} == {
        k: v for k, v in committed.items() if k != "papers_common_version"
    }


def test_a_folder_of_another_model_is_refused(tmp_path: Path) -> None:
    Tied(TinyConfig()).save_pretrained(tmp_path)
    with pytest.raises(InputError, match="holds a Tied model, not a Tiny"):
        Tiny.from_pretrained(tmp_path)


def test_missing_or_mismatched_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such checkpoint"):
        Tiny.from_pretrained(tmp_path / "nowhere")
    Tiny(TinyConfig(width=3)).save_pretrained(tmp_path / "a")
    Tiny(TinyConfig(width=5)).save_pretrained(tmp_path / "b")
    shutil.copy(tmp_path / "b" / "model.safetensors", tmp_path / "a" / "model.safetensors")
    with pytest.raises(InputError, match=r"a/model\.safetensors: does not fit Tiny"):
        Tiny.from_pretrained(tmp_path / "a")
    (tmp_path / "a" / "model.safetensors").unlink()
    with pytest.raises(InputError, match=r"model\.safetensors is missing"):
        Tiny.from_pretrained(tmp_path / "a")
    (tmp_path / "a" / "config.json").write_text("{broken")
    with pytest.raises(InputError, match=r"config\.json: not a readable model config"):
        Tiny.from_pretrained(tmp_path / "a")


def test_a_config_that_does_not_fit_is_refused(tmp_path: Path) -> None:
    save_checkpoint(tmp_path, 1, Tiny(TinyConfig()), config={"tiny": {"width": 3, "depth": 9}})
    with pytest.raises(InputError, match="does not fit TinyConfig"):
        Tiny.from_pretrained(tmp_path)
    Tiny(TinyConfig()).save_pretrained(tmp_path / "hf")
    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    (tmp_path / "hf" / "config.json").write_text(json.dumps({**config, "depth": 2}))
    with pytest.raises(InputError, match="does not fit TinyConfig"):
        Tiny.from_pretrained(tmp_path / "hf")


def test_a_checkpoint_without_the_config_is_refused(tmp_path: Path) -> None:
    save_checkpoint(tmp_path, 1, Tiny(TinyConfig()), config={"model": {"width": 3}})
    with pytest.raises(InputError, match="no tiny config"):
        Tiny.from_pretrained(tmp_path)


def test_config_fields_may_not_shadow_the_layout_keys(tmp_path: Path) -> None:
    @dataclass(frozen=True)
    class Clashing:
        extra: int = 1

    class Model(nn.Module, Pretrained):
        config_class = Clashing

        def __init__(self, config: Clashing) -> None:
            super().__init__()
            self.config = config

    with pytest.raises(TypeError, match="clash"):
        Model(Clashing()).save_pretrained(tmp_path)
