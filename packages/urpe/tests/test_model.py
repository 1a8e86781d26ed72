"""``TransformerModel``: position switch, causality, padding, shared tables, checkpoints and input checks."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from papers_common import InputError, save_checkpoint
from urpe import TransformerConfig, TransformerModel, URPEAttention
from urpe.reproduce import row_sum_deviation

POSITIONS = ["none", "absolute", "rpe", "urpe"]


def small(**overrides: object) -> TransformerConfig:
    settings: dict[str, object] = dict(
        vocab_size=11, max_len=12, d_model=16, num_heads=2, num_layers=2, ffn_dim=32
    )
    settings.update(overrides)
    return TransformerConfig(**settings)  # type: ignore[arg-type]


def perturb_tables(model: TransformerModel, seed: int = 0) -> None:
    """Move B and C away from their initial values so that every table entry matters."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "bias_table" in name:
                p.copy_(torch.randn(p.shape, generator=g))
            elif "toeplitz_table" in name:
                p.copy_(0.2 + 1.6 * torch.rand(p.shape, generator=g))


def tokens(batch: int = 3, length: int = 9, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 11, (batch, length), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("position", POSITIONS)
def test_output_shape_and_attention_maps(position: str) -> None:
    torch.manual_seed(0)
    model = TransformerModel(small(position=position, num_classes=5))
    x = tokens()
    logits = model(x)
    assert logits.shape == (3, 9, 5)
    maps = model.attention_maps(x)
    assert len(maps) == 2
    for m in maps:
        assert m.shape == (3, 2, 9, 9)


def test_num_classes_defaults_to_vocab() -> None:
    config = small()
    assert config.output_size == 11
    assert TransformerModel(config)(tokens()).shape == (3, 9, 11)


@pytest.mark.parametrize("position", ["urpe", "rpe", "absolute", "none"])
def test_causal_model_never_looks_ahead(position: str) -> None:
    torch.manual_seed(1)
    model = TransformerModel(small(position=position, causal=True)).eval()
    perturb_tables(model)
    x = tokens()
    base = model(x)
    for t in (4, 8):
        changed = x.clone()
        changed[:, t] = (changed[:, t] + 1) % 11
        out = model(changed)
        torch.testing.assert_close(out[:, :t], base[:, :t], rtol=0, atol=1e-6)
        assert not torch.allclose(out[:, t], base[:, t])
    for m in model.attention_maps(x):
        assert torch.count_nonzero(m[..., torch.ones(9, 9, dtype=torch.bool).triu(1)]) == 0


@pytest.mark.parametrize("position", ["urpe", "rpe"])
def test_bidirectional_model_does_look_ahead(position: str) -> None:
    torch.manual_seed(2)
    model = TransformerModel(small(position=position)).eval()
    x = tokens()
    changed = x.clone()
    changed[:, -1] = (changed[:, -1] + 1) % 11
    assert not torch.allclose(model(changed)[:, 0], model(x)[:, 0])


@pytest.mark.parametrize("position", POSITIONS)
def test_padding_is_ignored(position: str) -> None:
    torch.manual_seed(3)
    model = TransformerModel(small(position=position)).eval()
    perturb_tables(model)
    x = tokens()
    padding = torch.zeros_like(x, dtype=torch.bool)
    padding[:, 6:] = True
    other = x.clone()
    other[:, 6:] = (other[:, 6:] + 3) % 11
    torch.testing.assert_close(model(other, padding)[:, :6], model(x, padding)[:, :6])


def test_fresh_urpe_model_equals_rpe_model() -> None:
    torch.manual_seed(4)
    urpe_model = TransformerModel(small(position="urpe"))
    for layer in urpe_model.layers:
        table = layer.attention.toeplitz_table.weight
        assert torch.equal(table, torch.ones_like(table))
    rpe_model = TransformerModel(small(position="rpe"))
    missing, unexpected = rpe_model.load_state_dict(urpe_model.state_dict(), strict=False)
    assert missing == []
    assert all("toeplitz_table" in key for key in unexpected)
    x = tokens()
    torch.testing.assert_close(urpe_model(x), rpe_model(x))
    perturb_tables(urpe_model)
    assert not torch.allclose(urpe_model(x), rpe_model(x))


def test_tables_are_shared_across_layers_unless_asked_otherwise() -> None:
    shared = TransformerModel(small(position="urpe", num_layers=3))
    first, *rest = (layer.attention for layer in shared.layers)
    assert isinstance(first, URPEAttention)
    for attention in rest:
        assert attention.bias_table is first.bias_table
        assert attention.toeplitz_table is first.toeplitz_table
    separate = TransformerModel(small(position="urpe", num_layers=3, share_tables=False))
    assert separate.layers[0].attention.bias_table is not separate.layers[1].attention.bias_table
    table_size = (2 * 12 - 1) * 2
    assert separate.num_parameters() - shared.num_parameters() == 2 * 2 * table_size


def test_row_sum_deviation() -> None:
    torch.manual_seed(5)
    x = tokens()
    rpe_model = TransformerModel(small(position="rpe"))
    perturb_tables(rpe_model)
    assert row_sum_deviation(rpe_model, x) < 1e-5
    urpe_model = TransformerModel(small(position="urpe"))
    assert row_sum_deviation(urpe_model, x) < 1e-5  # C = 1 at initialisation
    perturb_tables(urpe_model)
    assert row_sum_deviation(urpe_model, x) > 0.05


# ----------------------------------------------------------------------------------------- checkpoints
# (the saved-folder layout, the 0.2.0 fixture and old checkpoints: test_pretrained.py)


def test_loaded_model_keeps_tables_shared(tmp_path: Path) -> None:
    torch.manual_seed(7)
    model = TransformerModel(small(position="urpe", num_layers=3))
    perturb_tables(model)
    loaded = TransformerModel.from_pretrained(model.save_pretrained(tmp_path / "model"))
    layers = loaded.layers
    assert layers[0].attention.bias_table is layers[1].attention.bias_table
    assert layers[0].attention.bias_table is layers[2].attention.bias_table
    assert layers[0].attention.toeplitz_table is layers[1].attention.toeplitz_table
    assert torch.equal(
        layers[2].attention.toeplitz_table.weight, model.layers[0].attention.toeplitz_table.weight
    )
    # the loaded values are the saved ones, not the initial ones
    assert not torch.equal(
        layers[0].attention.toeplitz_table.weight, torch.ones_like(layers[0].attention.toeplitz_table.weight)
    )
    assert loaded.num_parameters() == model.num_parameters()
    # one update to the shared table is seen by every layer
    with torch.no_grad():
        layers[0].attention.toeplitz_table.weight.add_(1.0)
    assert torch.equal(layers[1].attention.toeplitz_table.weight, layers[0].attention.toeplitz_table.weight)


def test_from_pretrained_needs_a_model_config(tmp_path: Path) -> None:
    model = TransformerModel(small())
    save_checkpoint(tmp_path, 0, model, config={"something": "else"}, rng=False)
    with pytest.raises(InputError, match="no model config"):
        TransformerModel.from_pretrained(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no complete checkpoint"):
        TransformerModel.from_pretrained(empty)


# ---------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize("position", ["urpe", "rpe", "absolute"])
def test_tokens_longer_than_max_len(position: str) -> None:
    model = TransformerModel(small(position=position))
    with pytest.raises(InputError, match="max_len=12"):
        model(tokens(length=13))


def test_bucket_model_accepts_longer_sequences() -> None:
    model = TransformerModel(small(position="urpe", rel_mode="bucket", num_buckets=8, max_distance=16))
    assert model(tokens(length=20)).shape == (3, 20, 11)


def test_tokens_must_be_a_2d_long_tensor() -> None:
    model = TransformerModel(small())
    with pytest.raises(InputError, match="long tensor"):
        model(tokens().float())
    with pytest.raises(InputError, match="long tensor"):
        model(tokens()[0])


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"position": "sinusoidal"}, "position"),
        ({"d_model": 15, "num_heads": 2}, "divisible"),
        ({"num_layers": 0}, "num_layers"),
        ({"num_heads": 0}, "num_heads"),
        ({"vocab_size": 0}, "vocab_size"),
        ({"dropout": float("nan")}, "dropout must be a probability"),
        ({"attention_dropout": 1.5}, "attention_dropout must be a probability"),
    ],
)
def test_invalid_config(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(InputError, match=message):
        small(**overrides)


def test_config_round_trips_through_a_dict() -> None:
    config = small(position="rpe", causal=True, rel_mode="bucket")
    assert TransformerConfig(**dataclasses.asdict(config)) == config
