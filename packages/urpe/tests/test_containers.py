"""URPE/RPE attention inside torch's own Transformer containers, in training and evaluation mode.

With neutral tables (B = 0, C = 1) and the weights of the ``nn.MultiheadAttention`` it replaces, every container
must give exactly what the stock one gives, and with non-neutral tables it must not: in evaluation mode torch's
fused fast path would otherwise compute plain attention from the weights and silently drop B and C.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable

import pytest
import torch
from torch import nn

from urpe import RelativePositionTable, RPEAttention, ShapeError, URPEAttention, replace_multihead_attention

E, H, FFN, L, S, N = 16, 4, 32, 7, 5, 3


def data(seed: int, *shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def padding(length: int, additive: bool = False) -> torch.Tensor:
    """``(N, length)``, True (or ``-inf`` when ``additive``, to go with a float mask) at padding: the second
    sequence ends two positions early."""
    mask = torch.zeros(N, length, dtype=torch.bool)
    mask[1, length - 2 :] = True
    return torch.zeros(N, length).masked_fill(mask, float("-inf")) if additive else mask


def causal(length: int) -> torch.Tensor:
    return nn.Transformer.generate_square_subsequent_mask(length)


def encoder_layer(batch_first: bool) -> nn.Module:
    return nn.TransformerEncoderLayer(E, H, FFN, dropout=0.0, batch_first=batch_first)


def decoder_layer(batch_first: bool) -> nn.Module:
    return nn.TransformerDecoderLayer(E, H, FFN, dropout=0.0, batch_first=batch_first)


def encoder(batch_first: bool) -> nn.Module:
    return nn.TransformerEncoder(encoder_layer(batch_first), 2, enable_nested_tensor=batch_first)


def transformer(batch_first: bool) -> nn.Module:
    with warnings.catch_warnings():  # torch's own advice to use batch_first, from the stock model
        warnings.filterwarnings("ignore", message="enable_nested_tensor is True")
        return nn.Transformer(E, H, 2, 2, FFN, dropout=0.0, batch_first=batch_first)


def layout(t: torch.Tensor, batch_first: bool) -> torch.Tensor:
    """``(N, L, E)`` -> the container's layout."""
    return t if batch_first else t.transpose(0, 1)


# how to call each container (with or without masks); `real_rows` says which output rows to compare
Call = Callable[[nn.Module, bool, bool], torch.Tensor]


def call_encoder(model: nn.Module, batch_first: bool, masked: bool) -> torch.Tensor:
    src = layout(data(0, N, L, E), batch_first)
    if masked:
        return model(src, src_key_padding_mask=padding(L))
    return model(src)


def call_causal_encoder(model: nn.Module, batch_first: bool, masked: bool) -> torch.Tensor:
    src = layout(data(0, N, L, E), batch_first)
    if masked:
        return model(src, causal(L), padding(L, additive=True))
    return model(src, causal(L), is_causal=True)


def call_decoder(model: nn.Module, batch_first: bool, masked: bool) -> torch.Tensor:
    tgt = layout(data(1, N, L, E), batch_first)
    memory = layout(data(2, N, S, E), batch_first)
    if masked:
        return model(
            tgt,
            memory,
            tgt_mask=causal(L),
            tgt_key_padding_mask=padding(L, additive=True),
            memory_key_padding_mask=padding(S),
        )
    return model(tgt, memory)


def call_transformer(model: nn.Module, batch_first: bool, masked: bool) -> torch.Tensor:
    src = layout(data(3, N, S, E), batch_first)
    tgt = layout(data(4, N, L, E), batch_first)
    if masked:
        return model(
            src,
            tgt,
            tgt_mask=causal(L),
            src_key_padding_mask=padding(S),
            tgt_key_padding_mask=padding(L, additive=True),
            memory_key_padding_mask=padding(S),
            tgt_is_causal=True,
        )
    return model(src, tgt)


CONTAINERS: dict[str, tuple[Callable[[bool], nn.Module], Call]] = {
    "TransformerEncoderLayer": (encoder_layer, call_encoder),
    "TransformerEncoderLayer-causal": (encoder_layer, call_causal_encoder),
    "TransformerDecoderLayer": (decoder_layer, call_decoder),
    "TransformerEncoder": (encoder, call_encoder),
    "TransformerEncoder-causal": (encoder, call_causal_encoder),
    "Transformer": (transformer, call_transformer),
}


def real_rows(name: str, batch_first: bool, masked: bool) -> torch.Tensor:
    """Output positions that are not padding, in the container's layout: ``(N, L)`` or ``(L, N)`` bool."""
    encoder_only = name.startswith("TransformerEncoder")
    keep = ~padding(L) if masked and encoder_only else torch.ones(N, L, dtype=torch.bool)
    return keep if batch_first else keep.T


def perturb(model: nn.Module, seed: int) -> None:
    """Move every parameter off its initial value (non-zero projection biases, ...), so that each one matters."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.2 * torch.randn(p.shape, generator=g))


def stock_and_converted(
    name: str, batch_first: bool, attention: type[RPEAttention]
) -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    stock = CONTAINERS[name][0](batch_first)
    perturb(stock, seed=1)
    converted = replace_multihead_attention(copy.deepcopy(stock), attention, max_len=16)
    return stock, converted


def run_both(
    name: str, batch_first: bool, mode: str, masked: bool, stock: nn.Module, converted: nn.Module
) -> tuple[torch.Tensor, torch.Tensor]:
    call = CONTAINERS[name][1]
    for model in (stock, converted):
        model.train(mode == "train")
    with torch.no_grad(), warnings.catch_warnings():
        # torch's own prototype warning, from the stock encoder's nested tensors
        warnings.filterwarnings("ignore", message="The PyTorch API of nested tensors")
        expected = call(stock, batch_first, masked)
        if expected.is_nested:
            expected = expected.to_padded_tensor(0.0)
        out = call(converted, batch_first, masked)
    keep = real_rows(name, batch_first, masked)
    return expected[keep], out[keep]


MATRIX = [
    pytest.param(
        name,
        batch_first,
        mode,
        masked,
        id=f"{name}-{'bf' if batch_first else 'sf'}-{mode}-{'mask' if masked else 'nomask'}",
    )
    for name in CONTAINERS
    for batch_first in (True, False)
    for mode in ("train", "eval")
    for masked in (False, True)
]


@pytest.mark.parametrize(("name", "batch_first", "mode", "masked"), MATRIX)
def test_neutral_tables_reproduce_the_stock_container(
    name: str, batch_first: bool, mode: str, masked: bool
) -> None:
    stock, converted = stock_and_converted(name, batch_first, URPEAttention)
    converted_attention = [m for m in converted.modules() if isinstance(m, URPEAttention)]
    assert converted_attention
    assert not any(isinstance(m, nn.MultiheadAttention) for m in converted.modules())
    for m in converted_attention:
        assert torch.equal(m.bias_table.weight, torch.zeros_like(m.bias_table.weight))
        assert torch.equal(m.toeplitz_table.weight, torch.ones_like(m.toeplitz_table.weight))
    expected, out = run_both(name, batch_first, mode, masked, stock, converted)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(("name", "batch_first", "mode", "masked"), MATRIX)
@pytest.mark.parametrize("table", ["bias_table", "toeplitz_table"])
def test_the_tables_change_the_output_in_every_container(
    name: str, batch_first: bool, mode: str, masked: bool, table: str
) -> None:
    stock, converted = stock_and_converted(name, batch_first, URPEAttention)
    with torch.no_grad():
        for m in converted.modules():
            if isinstance(m, URPEAttention):
                getattr(m, table).weight.add_(0.5 * data(5, *getattr(m, table).weight.shape))
    expected, out = run_both(name, batch_first, mode, masked, stock, converted)
    assert (out - expected).abs().max() > 1e-2


@pytest.mark.parametrize("name", list(CONTAINERS))
def test_rpe_with_zero_bias_reproduces_the_stock_container_in_eval_mode(name: str) -> None:
    stock, converted = stock_and_converted(name, True, RPEAttention)
    expected, out = run_both(name, True, "eval", True, stock, converted)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


def test_attention_placed_in_a_stock_layer_skips_the_fast_path_and_builds_an_encoder() -> None:
    torch.manual_seed(2)
    layer = nn.TransformerEncoderLayer(E, H, FFN, dropout=0.0, batch_first=True)
    layer.self_attn = URPEAttention(E, H, batch_first=True, max_len=16)
    assert (
        layer.self_attn._qkv_same_embed_dim is False
    )  # what torch's fast path tests first after batch_first
    with pytest.warns(UserWarning, match="_qkv_same_embed_dim was not True"):
        stack = nn.TransformerEncoder(layer, 2)  # the stock warning: nested tensors are off
    assert stack.use_nested_tensor is False
    stack.eval()
    x = data(6, N, L, E)
    with torch.no_grad():
        out = stack(x, src_key_padding_mask=padding(L))
        manual = x
        for block in stack.layers:
            attended = block.self_attn(manual, manual, manual, key_padding_mask=padding(L))[0]
            manual = block.norm1(manual + attended)
            manual = block.norm2(manual + block.linear2(block.activation(block.linear1(manual))))
    torch.testing.assert_close(out, manual)


def test_attention_swapped_into_a_built_encoder_refuses_its_nested_tensors() -> None:
    stack = nn.TransformerEncoder(encoder_layer(True), 2).eval()  # built around MHA: nested tensors on
    for block in stack.layers:
        block.self_attn = URPEAttention(E, H, batch_first=True, max_len=16)
    with torch.no_grad(), pytest.raises(ShapeError, match="replace_multihead_attention"):
        stack(data(7, N, L, E), src_key_padding_mask=padding(L))
    replace_multihead_attention(stack)
    with torch.no_grad():
        assert stack(data(7, N, L, E), src_key_padding_mask=padding(L)).shape == (N, L, E)


def test_replacing_a_single_module_and_sharing_tables() -> None:
    mha = nn.MultiheadAttention(E, H)
    single = replace_multihead_attention(mha, max_len=16)
    assert isinstance(single, URPEAttention)
    assert single.batch_first is False
    b = RelativePositionTable(H, max_len=16)
    c = RelativePositionTable(H, max_len=16, init="ones")
    model = replace_multihead_attention(transformer(True), bias_table=b, toeplitz_table=c)
    attention = [m for m in model.modules() if isinstance(m, URPEAttention)]
    assert len(attention) == 2 + 2 * 2  # encoder self, decoder self and cross attention
    assert all(m.bias_table is b and m.toeplitz_table is c for m in attention)
    assert sum("toeplitz_table" in name for name, _ in model.named_parameters()) == 1
