"""Saved models: the ``config.json`` + ``model.safetensors`` folder, the committed 0.2.0 fixture, old checkpoints.

The fixture ``tests/fixtures/pretrained-0.2.0/transformer/`` is a tiny URPE encoder for position identification
(L = 8, width 8, 2 heads, 2 layers; 8 KB) saved by urpe 0.2.0, with ``expected.safetensors`` holding an input
(``tokens``) and the logits that model gave for it (``logits``). It is regenerated only when the saved format is
meant to change, from ``packages/urpe``::

    python -c "import sys; sys.path.insert(0, 'tests'); import test_pretrained; test_pretrained.write_fixture()"
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from papers_common import InputError, pretrained_extra, save_checkpoint
from urpe import SyntheticTask, TransformerConfig, TransformerModel, load_trained
from urpe.experiment import ModelSize, synthetic_model

FIXTURE = Path(__file__).parent / "fixtures" / "pretrained-0.2.0" / "transformer"
FIXTURE_TASK = SyntheticTask("position-identification", seq_len=8, vocab=10)

CONFIGS = {
    "urpe": dict(position="urpe"),
    "urpe-causal-bucket": dict(
        position="urpe", causal=True, rel_mode="bucket", num_buckets=8, max_distance=16
    ),
    "urpe-unshared": dict(position="urpe", share_tables=False, norm_first=True),
    "rpe-causal": dict(position="rpe", causal=True),
    "absolute": dict(position="absolute", num_classes=5),
    "none": dict(position="none"),
}


def small(**overrides: object) -> TransformerConfig:
    settings: dict[str, object] = dict(
        vocab_size=11, max_len=12, d_model=16, num_heads=2, num_layers=3, ffn_dim=32
    )
    settings.update(overrides)
    return TransformerConfig(**settings)  # type: ignore[arg-type]


def perturb(model: TransformerModel, seed: int = 0) -> TransformerModel:
    """Move every parameter (B and C included) away from its initial value, so that each one matters."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=g))
    return model


def tokens(batch: int = 3, length: int = 9, vocab: int = 11) -> torch.Tensor:
    return torch.randint(0, vocab, (batch, length), generator=torch.Generator().manual_seed(0))


def write_fixture(folder: Path = FIXTURE) -> None:
    """Write the 0.2.0 fixture: the saved model (seed 0, perturbed by seed 1) and its expected output."""
    torch.manual_seed(0)
    size = ModelSize(d_model=8, num_heads=2, num_layers=2, ffn_dim=16)
    model = perturb(synthetic_model(FIXTURE_TASK, "urpe", size), seed=1).eval()
    model.save_pretrained(folder, extra={"kind": "synthetic", "task": dataclasses.asdict(FIXTURE_TASK)})
    x = FIXTURE_TASK.sample(4, torch.Generator().manual_seed(2)).tokens
    with torch.no_grad():
        save_file({"tokens": x, "logits": model(x)}, str(folder / "expected.safetensors"))


@pytest.mark.parametrize("name", list(CONFIGS))
def test_save_pretrained_writes_a_folder_that_loads_back_identically(tmp_path: Path, name: str) -> None:
    torch.manual_seed(6)
    model = perturb(TransformerModel(small(**CONFIGS[name]))).eval()
    folder = model.save_pretrained(tmp_path / "model", extra={"note": "hello"})
    assert folder == tmp_path / "model"
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    stored = json.loads((folder / "config.json").read_text())
    assert stored["architectures"] == ["TransformerModel"]
    assert stored["position"] == model.config.position
    assert stored["extra"] == {"note": "hello"}
    assert pretrained_extra(folder) == {"note": "hello"}
    x = tokens()
    with torch.no_grad():
        expected = model(x)
    for source in (folder, folder / "config.json", folder / "model.safetensors"):
        loaded = TransformerModel.from_pretrained(source).eval()
        assert loaded.config == model.config
        with torch.no_grad():
            assert torch.equal(loaded(x), expected)
        for (key, a), b in zip(model.state_dict().items(), loaded.state_dict().values(), strict=True):
            assert torch.equal(a, b), key


def test_shared_tables_are_stored_once(tmp_path: Path) -> None:
    model = TransformerModel(small(position="urpe", num_layers=3))
    folder = model.save_pretrained(tmp_path / "model")
    stored = load_file(str(folder / "model.safetensors"))
    assert sum("toeplitz_table" in key for key in stored) == 1
    assert sum("bias_table" in key for key in stored) == 1


def test_the_0_2_0_fixture_still_loads_and_gives_the_same_output() -> None:
    model = TransformerModel.from_pretrained(FIXTURE).eval()
    expected = load_file(str(FIXTURE / "expected.safetensors"))
    with torch.no_grad():
        torch.testing.assert_close(model(expected["tokens"]), expected["logits"])
    trained = load_trained(FIXTURE)
    assert trained.task == FIXTURE_TASK
    assert trained.model.config == model.config


def test_the_fixture_is_tiny() -> None:
    sizes = {p.name: p.stat().st_size for p in FIXTURE.iterdir()}
    assert set(sizes) == {"config.json", "model.safetensors", "expected.safetensors"}
    assert sum(sizes.values()) < 100_000


def test_a_training_checkpoint_of_the_old_layout_loads(tmp_path: Path) -> None:
    """``step-*.json`` + ``step-*.safetensors`` with the config under "model" (what 0.1.0 wrote), file or folder."""
    torch.manual_seed(3)
    config = small(position="urpe", causal=True)
    model = perturb(TransformerModel(config)).eval()
    save_checkpoint(tmp_path, 7, model, config={"model": dataclasses.asdict(config)}, rng=False)
    x = tokens()
    with torch.no_grad():
        expected = model(x)
    for source in (tmp_path, tmp_path / "step-00000007.json", tmp_path / "step-00000007.safetensors"):
        loaded = TransformerModel.from_pretrained(source).eval()
        with torch.no_grad():
            assert torch.equal(loaded(x), expected)
    trained = load_trained(tmp_path)
    assert trained.task is None  # a causal model without a task: a language model
    assert trained.text == {}


@pytest.mark.parametrize("name", ["urpe", "urpe-unshared", "rpe-causal"])
def test_weights_with_the_0_1_0_attention_names_load(tmp_path: Path, name: str) -> None:
    """urpe 0.1.0 stored ``q_proj``/``k_proj``/``v_proj`` linear layers where 0.2.0 has ``in_proj_weight/bias``."""
    torch.manual_seed(8)
    model = perturb(TransformerModel(small(**CONFIGS[name]))).eval()
    folder = model.save_pretrained(tmp_path / "model")
    stored = load_file(str(folder / "model.safetensors"))
    old: dict[str, torch.Tensor] = {}
    for key, value in stored.items():
        if key.endswith(("in_proj_weight", "in_proj_bias")):
            prefix, _, kind = key.rpartition(".")
            for part, piece in zip("qkv", value.chunk(3), strict=True):
                old[f"{prefix}.{part}_proj.{kind.removeprefix('in_proj_')}"] = piece.contiguous()
        else:
            old[key] = value
    assert not any("in_proj" in key for key in old)
    save_file(old, str(folder / "model.safetensors"))
    loaded = TransformerModel.from_pretrained(folder).eval()
    x = tokens()
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


def test_load_trained_needs_the_task_of_an_encoder(tmp_path: Path) -> None:
    TransformerModel(small()).save_pretrained(tmp_path / "model")
    with pytest.raises(InputError, match="without its synthetic task"):
        load_trained(tmp_path / "model")


def test_load_trained_from_a_copied_folder(tmp_path: Path) -> None:
    shutil.copytree(FIXTURE, tmp_path / "elsewhere")
    trained = load_trained(tmp_path / "elsewhere", map_location="cpu")
    assert trained.source == tmp_path / "elsewhere"
    assert trained.task == FIXTURE_TASK
