"""``RPEAttention`` and ``URPEAttention`` as drop-in replacements for ``nn.MultiheadAttention``."""

from __future__ import annotations

import inspect

import pytest
import torch
from torch import nn
from torch.func import functional_call

from urpe import RelativePositionTable, RPEAttention, SequenceTooLongError, ShapeError, URPEAttention

E, H, L = 16, 4, 6


def inputs(batch: int = 2, length: int = L, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, length, E, generator=torch.Generator().manual_seed(seed))


def randomise_toeplitz(module: URPEAttention, seed: int = 1) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        module.toeplitz_table.weight.copy_(
            0.3 + 1.4 * torch.rand(module.toeplitz_table.weight.shape, generator=g)
        )


def test_fresh_urpe_with_shared_bias_equals_rpe() -> None:
    torch.manual_seed(0)
    rpe = RPEAttention(E, H, batch_first=True, max_len=16)
    urpe = URPEAttention(E, H, batch_first=True, max_len=16, bias_table=rpe.bias_table)
    missing, unexpected = urpe.load_state_dict(rpe.state_dict(), strict=False)
    assert missing == ["toeplitz_table.weight"]
    assert unexpected == []
    assert torch.equal(urpe.toeplitz_table.weight, torch.ones_like(urpe.toeplitz_table.weight))
    x = inputs()
    padding = torch.tensor([[False] * L, [False] * (L - 2) + [True] * 2])
    for kwargs in ({}, {"key_padding_mask": padding}, {"is_causal": True}):
        out_r, w_r = rpe(x, x, x, **kwargs)
        out_u, w_u = urpe(x, x, x, **kwargs)
        torch.testing.assert_close(out_u, out_r)
        torch.testing.assert_close(w_u, w_r)


def test_urpe_with_copied_state_and_unit_c_equals_rpe() -> None:
    torch.manual_seed(1)
    rpe = RPEAttention(E, H, batch_first=True, max_len=8)
    urpe = URPEAttention(E, H, batch_first=True, max_len=8)
    state = {**rpe.state_dict(), "toeplitz_table.weight": torch.ones(15, H)}
    urpe.load_state_dict(state)
    x, y = inputs(seed=2), inputs(seed=3)
    torch.testing.assert_close(urpe(x, y, y)[0], rpe(x, y, y)[0])


def test_rpe_with_zero_bias_equals_multihead_attention() -> None:
    torch.manual_seed(2)
    mha = nn.MultiheadAttention(E, H, batch_first=True)
    rpe = RPEAttention(E, H, batch_first=True, max_len=16)
    with torch.no_grad():
        nn.init.normal_(mha.in_proj_bias)
        nn.init.normal_(mha.out_proj.bias)
        rpe.bias_table.weight.zero_()
    assert rpe.load_state_dict(mha.state_dict(), strict=False).missing_keys == ["bias_table.weight"]
    q, kv = inputs(length=4, seed=4), inputs(seed=5)
    padding = torch.tensor([[False] * L, [True] + [False] * (L - 1)])
    blocked = torch.zeros(4, L, dtype=torch.bool)
    blocked[1, 3:] = True
    per_head = torch.randn(2 * H, 4, L)
    for kwargs in ({}, {"key_padding_mask": padding, "attn_mask": blocked}, {"attn_mask": per_head}):
        expected, expected_w = mha(q, kv, kv, **kwargs)
        out, w = rpe(q, kv, kv, **kwargs)
        torch.testing.assert_close(out, expected)
        torch.testing.assert_close(w, expected_w)
        _, w_heads = rpe(q, kv, kv, average_attn_weights=False, **kwargs)
        _, expected_heads = mha(q, kv, kv, average_attn_weights=False, **kwargs)
        torch.testing.assert_close(w_heads, expected_heads)


def test_weight_shapes_and_need_weights_false() -> None:
    module = URPEAttention(E, H, batch_first=True, max_len=16)
    q, kv = inputs(length=3), inputs(length=5)
    out, w = module(q, kv, kv)
    assert out.shape == (2, 3, E)
    assert w is not None
    assert w.shape == (2, 3, 5)
    _, w_heads = module(q, kv, kv, average_attn_weights=False)
    assert w_heads is not None
    assert w_heads.shape == (2, H, 3, 5)
    out_nw, none = module(q, kv, kv, need_weights=False)
    assert none is None
    torch.testing.assert_close(out_nw, out)


def test_sequence_first_layout() -> None:
    torch.manual_seed(3)
    first = URPEAttention(E, H, batch_first=True, max_len=16)
    second = URPEAttention(E, H, batch_first=False, max_len=16)
    randomise_toeplitz(first)
    second.load_state_dict(first.state_dict())
    x = inputs()
    out_b, w_b = first(x, x, x)
    out_s, w_s = second(x.transpose(0, 1), x.transpose(0, 1), x.transpose(0, 1))
    assert out_s.shape == (L, 2, E)
    torch.testing.assert_close(out_s.transpose(0, 1), out_b)
    torch.testing.assert_close(w_s, w_b)


def test_urpe_weights_are_rpe_weights_times_c() -> None:
    torch.manual_seed(4)
    urpe = URPEAttention(E, H, batch_first=True, max_len=16)
    randomise_toeplitz(urpe)
    rpe = RPEAttention(E, H, batch_first=True, max_len=16, bias_table=urpe.bias_table)
    rpe.load_state_dict(urpe.state_dict(), strict=False)
    x = inputs()
    _, w_u = urpe(x, x, x, average_attn_weights=False)
    _, w_r = rpe(x, x, x, average_attn_weights=False)
    c = urpe.toeplitz_table(L, L)
    torch.testing.assert_close(w_u, w_r * c)
    # the theory: RPE rows are probability vectors, URPE rows are not once C != 1
    torch.testing.assert_close(w_r.sum(-1), torch.ones(2, H, L))
    assert (w_u.sum(-1) - 1).abs().max() > 0.05


def test_relu_activation_keeps_c_non_negative() -> None:
    torch.manual_seed(5)
    plain = URPEAttention(E, H, batch_first=True, max_len=8)
    relu = URPEAttention(E, H, batch_first=True, max_len=8, toeplitz_activation="relu")
    with torch.no_grad():
        plain.toeplitz_table.weight.normal_()
    relu.load_state_dict(plain.state_dict())
    assert (plain.toeplitz(L, L) < 0).any()
    torch.testing.assert_close(relu.toeplitz(L, L), torch.relu(plain.toeplitz(L, L)))
    x = inputs()
    _, w = relu(x, x, x, average_attn_weights=False)
    assert w is not None
    assert (w >= 0).all()
    assert (w == 0).any()
    with pytest.raises(ValueError, match="toeplitz_activation"):
        URPEAttention(E, H, toeplitz_activation="tanh")  # type: ignore[arg-type]


@pytest.mark.parametrize("cls", [RPEAttention, URPEAttention])
def test_is_causal_weights_are_zero_above_the_diagonal(cls: type[RPEAttention]) -> None:
    torch.manual_seed(6)
    module = cls(E, H, batch_first=True, max_len=16)
    if isinstance(module, URPEAttention):
        randomise_toeplitz(module)
    x = inputs()
    out, w = module(x, x, x, is_causal=True, average_attn_weights=False)
    assert w is not None
    future = torch.ones(L, L, dtype=torch.bool).triu(1)
    assert torch.count_nonzero(w[..., future]) == 0
    assert (w[..., ~future] > 0).all()
    # changing the last position's key and value leaves every earlier output unchanged
    y = x.clone()
    y[:, -1] += 5.0
    out_y, _ = module(x, y, y, is_causal=True)
    torch.testing.assert_close(out_y[:, :-1], out[:, :-1])
    assert not torch.allclose(out_y[:, -1], out[:, -1])


@pytest.mark.parametrize("need_weights", [True, False])
def test_fully_padded_sequence_gives_finite_outputs_and_gradients(need_weights: bool) -> None:
    torch.manual_seed(10)
    module = URPEAttention(E, H, batch_first=True, max_len=16, chunk_size=None if need_weights else 2)
    randomise_toeplitz(module)
    x = inputs().requires_grad_(True)
    padding = torch.zeros(2, L, dtype=torch.bool)
    padding[1] = True
    out, w = module(x, x, x, key_padding_mask=padding, need_weights=need_weights)
    assert torch.isfinite(out).all()
    if w is not None:
        assert torch.count_nonzero(w[1]) == 0
    # with no key to attend to, the output is the output projection's bias alone
    torch.testing.assert_close(out[1], module.out_proj.bias.expand(L, E))
    out.square().sum().backward()
    assert x.grad is not None
    assert torch.isfinite(x.grad).all()
    for name, p in module.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name


def test_chunked_module_equals_full_module() -> None:
    torch.manual_seed(7)
    full = URPEAttention(E, H, batch_first=True, max_len=16)
    randomise_toeplitz(full)
    chunked = URPEAttention(E, H, batch_first=True, max_len=16, chunk_size=2)
    chunked.load_state_dict(full.state_dict())
    x = inputs(length=7)
    padding = torch.zeros(2, 7, dtype=torch.bool)
    padding[1, 4:] = True
    out_f, _ = full(x, x, x, key_padding_mask=padding, is_causal=True, need_weights=False)
    out_c, _ = chunked(x, x, x, key_padding_mask=padding, is_causal=True, need_weights=False)
    torch.testing.assert_close(out_c, out_f)
    out_f.sum().backward()
    out_c.sum().backward()
    for (name, p_f), p_c in zip(full.named_parameters(), chunked.parameters(), strict=True):
        torch.testing.assert_close(p_c.grad, p_f.grad, msg=lambda m, name=name: f"{name}: {m}")


def test_shared_tables_are_one_parameter() -> None:
    bias = RelativePositionTable(H, max_len=8)
    c = RelativePositionTable(H, max_len=8, init="ones")
    first = URPEAttention(E, H, batch_first=True, bias_table=bias, toeplitz_table=c)
    second = URPEAttention(E, H, batch_first=True, bias_table=bias, toeplitz_table=c)
    assert first.bias_table is second.bias_table
    assert first.toeplitz_table is second.toeplitz_table
    stack = nn.ModuleList([first, second])
    own = 4 * (E * E + E)
    assert sum(p.numel() for p in stack.parameters()) == 2 * own + 2 * 15 * H
    x = inputs()
    (first(x, x, x)[0].sum() + second(x, x, x)[0].sum()).backward()
    assert c.weight.grad is not None
    assert c.weight.grad.abs().sum() > 0


def test_gradcheck_tables_through_urpe_attention() -> None:
    torch.manual_seed(8)
    module = URPEAttention(8, 2, batch_first=True, max_len=4).double()
    randomise_toeplitz(module)
    x = torch.randn(1, 4, 8, dtype=torch.float64)
    padding = torch.tensor([[False, False, False, True]])
    bias_w = module.bias_table.weight.detach().clone().requires_grad_(True)
    c_w = module.toeplitz_table.weight.detach().clone().requires_grad_(True)

    def f(b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        params = {"bias_table.weight": b, "toeplitz_table.weight": c}
        return functional_call(
            module, params, (x, x, x), {"key_padding_mask": padding, "need_weights": False}
        )[0]

    assert torch.autograd.gradcheck(f, (bias_w, c_w))


def test_dropout_only_in_training() -> None:
    torch.manual_seed(9)
    dropping = URPEAttention(E, H, batch_first=True, dropout=0.5, max_len=16)
    plain = URPEAttention(E, H, batch_first=True, dropout=0.0, max_len=16)
    plain.load_state_dict(dropping.state_dict())
    x = inputs()
    dropping.eval()
    torch.testing.assert_close(dropping(x, x, x)[0], plain(x, x, x)[0])
    dropping.train()
    assert not torch.allclose(dropping(x, x, x)[0], plain(x, x, x)[0])


def neutral_copy(mha: nn.MultiheadAttention, cls: type[RPEAttention] = URPEAttention) -> RPEAttention:
    """``cls`` with ``mha``'s settings and weights, B = 0 and C = 1, after moving ``mha``'s biases off zero."""
    with torch.no_grad():
        for p in mha.parameters():
            if p.dim() == 1:
                nn.init.normal_(p)
    return cls.from_multihead_attention(mha, max_len=16)


@pytest.mark.parametrize("cls", [RPEAttention, URPEAttention])
def test_constructor_matches_multihead_attention(cls: type[RPEAttention]) -> None:
    ours = list(inspect.signature(cls).parameters.values())[:11]
    theirs = list(inspect.signature(nn.MultiheadAttention).parameters.values())
    assert [(p.name, p.default, p.kind) for p in ours] == [(p.name, p.default, p.kind) for p in theirs]
    module = URPEAttention(E, H, 0.0, True, False, False, None, None, False, None, torch.float64)
    assert module.batch_first is False
    assert module.in_proj_weight.dtype == torch.float64
    assert URPEAttention(E, H).batch_first is False
    mha = nn.MultiheadAttention(E, H)
    names = {name for name, _ in module.named_parameters()}
    assert names == {name for name, _ in mha.named_parameters()} | {
        "bias_table.weight",
        "toeplitz_table.weight",
    }
    for name, p in mha.named_parameters():
        assert module.get_parameter(name).shape == p.shape, name


@pytest.mark.parametrize("extra", ["add_bias_kv", "add_zero_attn"])
def test_keys_without_a_position_are_refused(extra: str) -> None:
    with pytest.raises(ValueError, match=extra):
        URPEAttention(E, H, **{extra: True})
    with pytest.raises(ValueError, match=extra):
        URPEAttention(E, H, 0.0, True, extra == "add_bias_kv", extra == "add_zero_attn")


@pytest.mark.parametrize("dropout", [float("nan"), -0.1, 1.5])
def test_dropout_must_be_a_probability(dropout: float) -> None:
    with pytest.raises(ValueError, match="dropout must be a probability"):
        URPEAttention(E, H, dropout)


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("cls", [RPEAttention, URPEAttention])
def test_a_multihead_attention_state_dict_loads_and_gives_its_output(
    batch_first: bool, cls: type[RPEAttention]
) -> None:
    torch.manual_seed(11)
    mha = nn.MultiheadAttention(E, H, batch_first=batch_first)
    module = neutral_copy(mha, cls)
    assert module.batch_first is batch_first
    fresh = cls(E, H, batch_first=batch_first, max_len=16)
    result = fresh.load_state_dict(mha.state_dict(), strict=False)
    assert result.unexpected_keys == []
    assert sorted(result.missing_keys) == sorted(k for k in fresh.state_dict() if "table" in k)
    q, kv = inputs(length=4, seed=12), inputs(seed=13)
    if not batch_first:
        q, kv = q.transpose(0, 1), kv.transpose(0, 1)
    padding = torch.tensor([[False] * L, [True] + [False] * (L - 1)])
    for kwargs in ({}, {"key_padding_mask": padding}):
        expected, expected_w = mha(q, kv, kv, **kwargs)
        out, w = module(q, kv, kv, **kwargs)
        torch.testing.assert_close(out, expected)
        torch.testing.assert_close(w, expected_w)


def test_kdim_and_vdim_as_in_multihead_attention() -> None:
    torch.manual_seed(14)
    mha = nn.MultiheadAttention(E, H, kdim=6, vdim=10, batch_first=True)
    module = neutral_copy(mha)
    assert module.in_proj_weight is None
    assert (module.kdim, module.vdim) == (6, 10)
    assert module.k_proj_weight.shape == (E, 6)
    assert module.v_proj_weight.shape == (E, 10)
    q = inputs(length=4, seed=15)
    key = torch.randn(2, L, 6, generator=torch.Generator().manual_seed(16))
    value = torch.randn(2, L, 10, generator=torch.Generator().manual_seed(17))
    expected, expected_w = mha(q, key, value)
    out, w = module(q, key, value)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(w, expected_w)
    with pytest.raises(ShapeError, match="key must be"):
        module(q, q, value)


def test_unbatched_input_as_in_multihead_attention() -> None:
    torch.manual_seed(18)
    mha = nn.MultiheadAttention(E, H)
    module = neutral_copy(mha)
    q, kv = inputs(batch=1, length=4, seed=19)[0], inputs(batch=1, seed=20)[0]  # (L, E)
    padding = torch.tensor([True] + [False] * (L - 1))
    per_head = torch.randn(H, 4, L)
    for kwargs in ({}, {"key_padding_mask": padding}, {"attn_mask": per_head}):
        expected, expected_w = mha(q, kv, kv, **kwargs)
        out, w = module(q, kv, kv, **kwargs)
        assert out.shape == (4, E)
        torch.testing.assert_close(out, expected)
        torch.testing.assert_close(w, expected_w)
        _, w_heads = module(q, kv, kv, average_attn_weights=False, **kwargs)
        assert w_heads.shape == (H, 4, L)
        torch.testing.assert_close(w_heads, mha(q, kv, kv, average_attn_weights=False, **kwargs)[1])


def test_without_biases_as_in_multihead_attention() -> None:
    torch.manual_seed(21)
    mha = nn.MultiheadAttention(E, H, bias=False, batch_first=True)
    module = URPEAttention.from_multihead_attention(mha, max_len=16)
    assert module.in_proj_bias is None
    assert module.out_proj.bias is None
    x = inputs(seed=22)
    torch.testing.assert_close(module(x, x, x)[0], mha(x, x, x)[0])


def test_converting_an_rpe_module_keeps_its_tables() -> None:
    torch.manual_seed(24)
    rpe = RPEAttention(E, H, batch_first=True, max_len=16)
    urpe = URPEAttention.from_multihead_attention(rpe, max_len=16)
    assert torch.equal(urpe.bias_table.weight, rpe.bias_table.weight)
    assert urpe.bias_table.weight.abs().sum() > 0
    x = inputs(seed=25)
    torch.testing.assert_close(urpe(x, x, x)[0], rpe(x, x, x)[0])
    with pytest.raises(TypeError, match="expected an nn\\.MultiheadAttention, got Linear"):
        URPEAttention.from_multihead_attention(nn.Linear(E, E))  # type: ignore[arg-type]


def test_the_0_1_0_projection_layout_still_loads() -> None:
    torch.manual_seed(23)
    module = URPEAttention(E, H, batch_first=True, max_len=16)
    randomise_toeplitz(module)
    state = module.state_dict()
    old = {k: v for k, v in state.items() if not k.startswith("in_proj")}
    for i, name in enumerate("qkv"):
        old[f"{name}_proj.weight"] = state["in_proj_weight"][i * E : (i + 1) * E]
        old[f"{name}_proj.bias"] = state["in_proj_bias"][i * E : (i + 1) * E]
    loaded = URPEAttention(E, H, batch_first=True, max_len=16)
    loaded.load_state_dict(old)
    for key, value in state.items():
        assert torch.equal(loaded.state_dict()[key], value), key


# ---------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(("embed_dim", "num_heads"), [(10, 4), (0, 2), (8, 0)])
def test_embed_dim_must_be_a_multiple_of_heads(embed_dim: int, num_heads: int) -> None:
    with pytest.raises(ShapeError, match="multiple of num_heads"):
        URPEAttention(embed_dim, num_heads)


def test_shared_table_with_wrong_heads() -> None:
    with pytest.raises(ShapeError, match="bias_table has 3 heads"):
        RPEAttention(E, H, batch_first=True, bias_table=RelativePositionTable(3))
    with pytest.raises(ShapeError, match="toeplitz_table has 2 heads"):
        URPEAttention(E, H, batch_first=True, toeplitz_table=RelativePositionTable(2, init="ones"))


@pytest.mark.parametrize(
    ("query", "key", "name"),
    [
        (torch.zeros(L, E), torch.zeros(2, L, E), "all batched"),
        (
            torch.zeros(L, E + 1),
            torch.zeros(L, E),
            "query must be \\(length, E\\) with E = 16, got \\(6, 17\\)",
        ),
        (torch.zeros(2, L, E + 1), torch.zeros(2, L, E), "query"),
        (torch.zeros(2, L, E), torch.zeros(2, L, E - 1), "key"),
        (torch.zeros(1, 2, L, E), torch.zeros(2, L, E), "query"),
    ],
)
def test_bad_query_or_key_shape(query: torch.Tensor, key: torch.Tensor, name: str) -> None:
    module = RPEAttention(E, H, batch_first=True, max_len=16)
    with pytest.raises(ShapeError, match=name):
        module(query, key, key)


def test_key_and_value_must_agree() -> None:
    module = URPEAttention(E, H, batch_first=True, max_len=16)
    x = inputs()
    with pytest.raises(ShapeError, match="key"):
        module(x, x, x[:, :-1])
    with pytest.raises(ShapeError, match="key"):
        module(x, x[:1], x[:1])


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"key_padding_mask": torch.zeros(2, L - 1, dtype=torch.bool)}, "key_padding_mask"),
        ({"key_padding_mask": torch.zeros(2, L, dtype=torch.int64)}, "key_padding_mask"),
        ({"attn_mask": torch.zeros(L, L + 1)}, "attn_mask"),
        ({"attn_mask": torch.zeros(2, L, L, dtype=torch.bool)}, "attn_mask"),
        ({"attn_mask": torch.zeros(L, L, dtype=torch.uint8)}, "attn_mask"),
    ],
)
def test_bad_masks_through_the_module(kwargs: dict[str, torch.Tensor], name: str) -> None:
    module = URPEAttention(E, H, batch_first=True, max_len=16)
    x = inputs()
    with pytest.raises(ShapeError, match=name):
        module(x, x, x, **kwargs)


def test_sequence_longer_than_the_table() -> None:
    module = URPEAttention(E, H, batch_first=True, max_len=4)
    x = inputs(length=5)
    with pytest.raises(SequenceTooLongError, match="max_len=4"):
        module(x, x, x)
    bucketed = URPEAttention(E, H, batch_first=True, max_len=4, mode="bucket")
    assert bucketed(x, x, x)[0].shape == (2, 5, E)
