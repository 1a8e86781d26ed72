"""The functional core ``urpe_attention`` and ``combine_masks``: shapes, masks, chunking, gradients and errors."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import urpe
from urpe import ShapeError, combine_masks, urpe_attention

B, H, L, D = 2, 3, 5, 4


def qkv(
    batch: int = B,
    heads: int = H,
    q_len: int = L,
    k_len: int = L,
    dim: int = D,
    dtype: torch.dtype = torch.float32,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(batch, heads, q_len, dim, generator=g, dtype=dtype)
    k = torch.randn(batch, heads, k_len, dim, generator=g, dtype=dtype)
    v = torch.randn(batch, heads, k_len, dim + 1, generator=g, dtype=dtype)
    return q, k, v


def tables(heads: int = H, q_len: int = L, k_len: int = L, dtype: torch.dtype = torch.float32, seed: int = 1):
    """A bias B and a Toeplitz-like C far from 1 (so that URPE differs from RPE)."""
    g = torch.Generator().manual_seed(seed)
    bias = torch.randn(heads, q_len, k_len, generator=g, dtype=dtype)
    toeplitz = 0.5 + torch.rand(heads, q_len, k_len, generator=g, dtype=dtype) * 1.5
    return bias, toeplitz


def reference(q, k, v, bias=None, toeplitz=None, masked=None, scale=None):
    """Direct evaluation of ``(softmax(q k^T * scale + B) ⊙ C) v`` with masked weights set to 0, row by row."""
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    batch, heads, q_len, _ = q.shape
    k_len = k.shape[-2]
    weights = torch.zeros(batch, heads, q_len, k_len, dtype=q.dtype)
    for b in range(batch):
        for h in range(heads):
            for i in range(q_len):
                row = (k[b, h] @ q[b, h, i]) * scale
                if bias is not None:
                    row = row + bias.expand(batch, heads, q_len, k_len)[b, h, i]
                allowed = torch.ones(k_len, dtype=torch.bool)
                if masked is not None:
                    allowed = ~masked.expand(batch, heads, q_len, k_len)[b, h, i]
                if not allowed.any():
                    continue
                e = torch.exp(row[allowed] - row[allowed].max())
                weights[b, h, i, allowed] = e / e.sum()
    if toeplitz is not None:
        weights = weights * toeplitz
    return weights @ v, weights


# --------------------------------------------------------------------------------------------- shapes


@pytest.mark.parametrize(("q_len", "k_len"), [(5, 5), (3, 7), (7, 3), (1, 1)])
def test_output_and_weight_shapes(q_len: int, k_len: int) -> None:
    q, k, v = qkv(q_len=q_len, k_len=k_len)
    out, weights = urpe_attention(q, k, v, need_weights=True)
    assert out.shape == (B, H, q_len, D + 1)
    assert weights is not None
    assert weights.shape == (B, H, q_len, k_len)
    out2, none = urpe_attention(q, k, v)
    assert none is None
    torch.testing.assert_close(out2, out)


def test_matches_reference_with_tables() -> None:
    q, k, v = qkv()
    bias, toeplitz = tables()
    out, weights = urpe_attention(q, k, v, bias=bias, toeplitz=toeplitz, need_weights=True)
    ref_out, ref_weights = reference(q, k, v, bias, toeplitz)
    torch.testing.assert_close(out, ref_out)
    torch.testing.assert_close(weights, ref_weights)


def test_custom_scale() -> None:
    q, k, v = qkv()
    out, _ = urpe_attention(q, k, v, scale=0.3)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, scale=0.3))
    torch.testing.assert_close(out, reference(q, k, v, scale=0.3)[0])


# ------------------------------------------------------------------------------- agreement with SDPA


@pytest.mark.parametrize("is_causal", [False, True])
@pytest.mark.parametrize(("q_len", "k_len"), [(5, 5), (4, 6), (6, 4)])
def test_no_tables_equals_sdpa(is_causal: bool, q_len: int, k_len: int) -> None:
    q, k, v = qkv(q_len=q_len, k_len=k_len)
    out, _ = urpe_attention(q, k, v, is_causal=is_causal)
    expected = F.scaled_dot_product_attention(q, k, v, is_causal=is_causal)
    torch.testing.assert_close(out, expected)


def test_float_attn_mask_equals_sdpa_additive_bias() -> None:
    q, k, v = qkv()
    additive = torch.randn(B, H, L, L, generator=torch.Generator().manual_seed(3))
    out, _ = urpe_attention(q, k, v, attn_mask=additive)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=additive))
    # the same additive term given as the bias B
    out_bias, _ = urpe_attention(q, k, v, bias=additive)
    torch.testing.assert_close(out_bias, out)


def test_float_attn_mask_with_causal_equals_sdpa() -> None:
    q, k, v = qkv()
    additive = torch.randn(L, L, generator=torch.Generator().manual_seed(4))
    causal = torch.ones(L, L, dtype=torch.bool).triu(1)
    out, _ = urpe_attention(q, k, v, attn_mask=additive, is_causal=True)
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=additive.masked_fill(causal, float("-inf")))
    torch.testing.assert_close(out, expected)


def test_bool_attn_mask_equals_sdpa() -> None:
    q, k, v = qkv()
    blocked = torch.rand(L, L, generator=torch.Generator().manual_seed(5)) < 0.4
    blocked.fill_diagonal_(False)  # every row keeps a key
    out, _ = urpe_attention(q, k, v, attn_mask=blocked)
    # SDPA's boolean mask is the opposite convention: True = may attend
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=~blocked))


# ---------------------------------------------------------------------------------------------- masks


def test_bool_and_float_key_padding_masks_agree_and_zero_the_keys() -> None:
    q, k, v = qkv()
    bias, toeplitz = tables()
    padding = torch.tensor([[False, False, False, True, True], [False, True, False, False, False]])
    as_float = torch.zeros(B, L).masked_fill(padding, float("-inf"))
    out_bool, w_bool = urpe_attention(
        q, k, v, bias=bias, toeplitz=toeplitz, key_padding_mask=padding, need_weights=True
    )
    out_float, w_float = urpe_attention(
        q, k, v, bias=bias, toeplitz=toeplitz, key_padding_mask=as_float, need_weights=True
    )
    torch.testing.assert_close(out_bool, out_float)
    torch.testing.assert_close(w_bool, w_float)
    assert w_bool is not None
    masked_weights = w_bool.masked_select(padding[:, None, None, :].expand(B, H, L, L))
    assert masked_weights.numel() == H * L * int(padding.sum())
    assert torch.count_nonzero(masked_weights) == 0
    ref_out, _ = reference(q, k, v, bias, toeplitz, padding[:, None, None, :])
    torch.testing.assert_close(out_bool, ref_out)


def test_finite_float_key_padding_mask_is_added_to_scores() -> None:
    q, k, v = qkv()
    offsets = torch.randn(B, L, generator=torch.Generator().manual_seed(6))
    out, _ = urpe_attention(q, k, v, key_padding_mask=offsets)
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=offsets[:, None, None, :])
    torch.testing.assert_close(out, expected)


def test_attn_mask_2d_3d_4d_agree() -> None:
    q, k, v = qkv()
    bias, toeplitz = tables()
    g = torch.Generator().manual_seed(7)
    blocked4 = torch.rand(B, H, L, L, generator=g) < 0.5
    blocked4[..., 0] = False
    blocked3 = blocked4.reshape(B * H, L, L)  # nn.MultiheadAttention order: index b * heads + h
    out4, w4 = urpe_attention(q, k, v, bias=bias, toeplitz=toeplitz, attn_mask=blocked4, need_weights=True)
    out3, w3 = urpe_attention(q, k, v, bias=bias, toeplitz=toeplitz, attn_mask=blocked3, need_weights=True)
    torch.testing.assert_close(out3, out4)
    torch.testing.assert_close(w3, w4)
    ref_out, _ = reference(q, k, v, bias, toeplitz, blocked4)
    torch.testing.assert_close(out4, ref_out)
    assert w4 is not None
    assert torch.count_nonzero(w4[blocked4]) == 0

    # a 2-D mask equals the same mask repeated for every batch and head
    blocked2 = blocked4[0, 0]
    out2, _ = urpe_attention(q, k, v, bias=bias, toeplitz=toeplitz, attn_mask=blocked2)
    out2_as4, _ = urpe_attention(
        q, k, v, bias=bias, toeplitz=toeplitz, attn_mask=blocked2.expand(B, H, L, L).clone()
    )
    torch.testing.assert_close(out2, out2_as4)

    # float versions of the same masks give the same result
    as_float = torch.zeros(B, H, L, L).masked_fill(blocked4, float("-inf"))
    out_f3, _ = urpe_attention(q, k, v, bias=bias, toeplitz=toeplitz, attn_mask=as_float.reshape(B * H, L, L))
    out_f4, _ = urpe_attention(q, k, v, bias=bias, toeplitz=toeplitz, attn_mask=as_float)
    torch.testing.assert_close(out_f3, out4)
    torch.testing.assert_close(out_f4, out4)


def test_is_causal_weights_vanish_above_diagonal() -> None:
    q, k, v = qkv()
    bias, toeplitz = tables()
    out, weights = urpe_attention(q, k, v, bias=bias, toeplitz=toeplitz, is_causal=True, need_weights=True)
    assert weights is not None
    future = torch.ones(L, L, dtype=torch.bool).triu(1)
    assert torch.count_nonzero(weights[..., future]) == 0
    assert (weights[..., ~future] > 0).all()
    explicit, _ = urpe_attention(q, k, v, bias=bias, toeplitz=toeplitz, attn_mask=future)
    torch.testing.assert_close(out, explicit)


def test_causal_with_rectangular_inputs_masks_keys_after_the_query() -> None:
    q, k, v = qkv(q_len=3, k_len=6)
    _, weights = urpe_attention(q, k, v, is_causal=True, need_weights=True)
    assert weights is not None
    offsets = torch.arange(6)[None, :] - torch.arange(3)[:, None]
    assert torch.count_nonzero(weights[..., offsets > 0]) == 0
    assert (weights[..., offsets <= 0] > 0).all()


def test_combined_masks_are_a_union() -> None:
    q, k, v = qkv()
    padding = torch.zeros(B, L, dtype=torch.bool)
    padding[0, 0] = True
    blocked = torch.zeros(L, L, dtype=torch.bool)
    blocked[:, 2] = True
    _, weights = urpe_attention(
        q, k, v, key_padding_mask=padding, attn_mask=blocked, is_causal=True, need_weights=True
    )
    assert weights is not None
    expected = padding[:, None, None, :] | blocked | torch.ones(L, L, dtype=torch.bool).triu(1)
    expected = expected.expand(B, H, L, L)
    assert torch.equal(weights == 0, expected)


def test_combine_masks_outputs() -> None:
    assert combine_masks(B, H, L, L) == (None, None)
    additive = torch.zeros(L, L)
    additive[1, 3] = float("-inf")
    additive[0, 0] = 2.0
    masked, add = combine_masks(B, H, L, L, attn_mask=additive)
    assert masked is not None
    assert add is not None
    assert masked.dtype == torch.bool
    assert masked.sum() == 1
    assert bool(masked[1, 3])
    assert float(add[0, 0]) == 2.0


@pytest.mark.parametrize("chunk_size", [None, 2])
@pytest.mark.parametrize("kind", ["padding-bool", "padding-float", "attn-bool", "attn-float", "causal"])
def test_fully_masked_rows_give_zeros_and_finite_gradients(kind: str, chunk_size: int | None) -> None:
    q_len, k_len = 5, 6
    q, k, v = qkv(q_len=q_len, k_len=k_len)
    bias, toeplitz = tables(q_len=q_len, k_len=k_len)
    leaves = [t.clone().requires_grad_(True) for t in (q, k, v, bias, toeplitz)]
    kwargs: dict[str, object] = {}
    dead = torch.zeros(B, H, q_len, dtype=torch.bool)  # rows whose every key is masked
    if kind.startswith("padding"):
        padding = torch.zeros(B, k_len, dtype=torch.bool)
        padding[1] = True  # the whole second sequence is padding
        kwargs["key_padding_mask"] = (
            padding if kind == "padding-bool" else torch.zeros(B, k_len).masked_fill(padding, float("-inf"))
        )
        dead[1] = True
    elif kind.startswith("attn"):
        blocked = torch.zeros(q_len, k_len, dtype=torch.bool)
        blocked[2] = True  # query 2 may attend to nothing
        kwargs["attn_mask"] = (
            blocked if kind == "attn-bool" else torch.zeros(q_len, k_len).masked_fill(blocked, float("-inf"))
        )
        dead[:, :, 2] = True
    else:
        blocked = torch.zeros(q_len, k_len, dtype=torch.bool)
        blocked[:, 0] = True  # with causal masking, query 0 has only key 0, which this blocks
        kwargs["attn_mask"] = blocked
        kwargs["is_causal"] = True
        dead[:, :, 0] = True
    out, _ = urpe_attention(*leaves[:3], bias=leaves[3], toeplitz=leaves[4], chunk_size=chunk_size, **kwargs)
    assert torch.isfinite(out).all()
    assert torch.count_nonzero(out[dead]) == 0
    assert (out[~dead].abs().sum(-1) > 0).all()
    (out * torch.randn_like(out)).sum().backward()
    for t in leaves:
        assert t.grad is not None
        assert torch.isfinite(t.grad).all()
    assert leaves[2].grad.abs().sum() > 0


# ------------------------------------------------------------------------------------------- chunking


@pytest.mark.parametrize("masks", ["none", "padding", "attn2d", "attn4d-float", "causal", "all"])
def test_chunked_path_equals_full_path(masks: str) -> None:
    q, k, v = qkv(q_len=7, k_len=7)
    bias, toeplitz = tables(q_len=7, k_len=7)
    g = torch.Generator().manual_seed(8)
    kwargs: dict[str, object] = {}
    if masks in ("padding", "all"):
        padding = torch.zeros(B, 7, dtype=torch.bool)
        padding[0, 5:] = True
        kwargs["key_padding_mask"] = padding
    if masks in ("attn2d", "all"):
        blocked = torch.rand(7, 7, generator=g) < 0.3
        blocked[3] = True  # one fully masked row
        kwargs["attn_mask"] = blocked
    if masks == "attn4d-float":
        kwargs["attn_mask"] = torch.randn(B, H, 7, 7, generator=g)
    if masks in ("causal", "all"):
        kwargs["is_causal"] = True

    def run(chunk_size: int | None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        leaves = [t.clone().requires_grad_(True) for t in (q, k, v, bias, toeplitz)]
        out, _ = urpe_attention(
            *leaves[:3], bias=leaves[3], toeplitz=leaves[4], chunk_size=chunk_size, **kwargs
        )
        (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
        return out.detach(), [t.grad for t in leaves]

    full, full_grads = run(None)
    chunked, chunked_grads = run(3)
    torch.testing.assert_close(chunked, full)
    for name, a, b in zip(("q", "k", "v", "bias", "toeplitz"), chunked_grads, full_grads, strict=True):
        torch.testing.assert_close(a, b, msg=lambda m, name=name: f"gradient of {name}: {m}")
    with torch.no_grad():
        no_grad_chunked, _ = urpe_attention(q, k, v, bias=bias, toeplitz=toeplitz, chunk_size=2, **kwargs)
    torch.testing.assert_close(no_grad_chunked, full)


def test_chunking_with_broadcast_tables() -> None:
    q, k, v = qkv(q_len=6, k_len=4)
    bias = torch.randn(H, 1, 4)  # one row for every query
    toeplitz = torch.rand(1, H, 6, 4) + 0.5
    full, _ = urpe_attention(q, k, v, bias=bias, toeplitz=toeplitz)
    chunked, _ = urpe_attention(q, k, v, bias=bias, toeplitz=toeplitz, chunk_size=4)
    torch.testing.assert_close(chunked, full)


def test_large_inputs_chunk_automatically(monkeypatch: pytest.MonkeyPatch) -> None:
    q, k, v = qkv(q_len=8, k_len=8)
    bias, toeplitz = tables(q_len=8, k_len=8)
    full, _ = urpe_attention(q, k, v, bias=bias, toeplitz=toeplitz)
    calls: list[int] = []
    original = urpe.attention._block

    def counting(q_chunk: torch.Tensor, *args: object) -> torch.Tensor:
        calls.append(q_chunk.shape[-2])
        return original(q_chunk, *args)

    monkeypatch.setattr(urpe.attention, "CHUNK_ELEMENTS", B * H * 8 * 3)
    monkeypatch.setattr(urpe.attention, "_block", counting)
    auto, _ = urpe_attention(q, k, v, bias=bias, toeplitz=toeplitz)
    assert calls == [3, 3, 2]
    torch.testing.assert_close(auto, full)


# --------------------------------------------------------------------------------------------- theory


def test_weights_are_softmax_times_toeplitz_and_multiply_v() -> None:
    q, k, v = qkv()
    bias, toeplitz = tables()
    out, weights = urpe_attention(q, k, v, bias=bias, toeplitz=toeplitz, need_weights=True)
    _, probs = urpe_attention(q, k, v, bias=bias, need_weights=True)
    assert weights is not None
    assert probs is not None
    torch.testing.assert_close(weights, probs * toeplitz)
    torch.testing.assert_close(out, weights @ v)


def test_rpe_rows_sum_to_one_and_urpe_rows_do_not() -> None:
    q, k, v = qkv()
    bias, toeplitz = tables()
    _, rpe = urpe_attention(q, k, v, bias=bias, need_weights=True)
    _, urpe_w = urpe_attention(q, k, v, bias=bias, toeplitz=toeplitz, need_weights=True)
    assert rpe is not None
    assert urpe_w is not None
    torch.testing.assert_close(rpe.sum(-1), torch.ones(B, H, L))
    assert (urpe_w.sum(-1) - 1).abs().max() > 0.05
    _, ones = urpe_attention(q, k, v, bias=bias, toeplitz=torch.ones(H, L, L), need_weights=True)
    torch.testing.assert_close(ones, rpe)


# ------------------------------------------------------------------------------------------ gradients


@pytest.mark.parametrize("chunk_size", [None, 2])
def test_gradcheck_bias_and_toeplitz(chunk_size: int | None) -> None:
    q, k, v = qkv(batch=1, heads=2, q_len=4, k_len=4, dim=3, dtype=torch.float64)
    bias, toeplitz = tables(heads=2, q_len=4, k_len=4, dtype=torch.float64)
    bias.requires_grad_(True)
    toeplitz.requires_grad_(True)
    padding = torch.tensor([[False, False, False, True]])

    def f(b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return urpe_attention(
            q, k, v, bias=b, toeplitz=c, key_padding_mask=padding, is_causal=True, chunk_size=chunk_size
        )[0]

    assert torch.autograd.gradcheck(f, (bias, toeplitz))


def test_gradcheck_all_inputs_with_float_mask() -> None:
    q, k, v = qkv(batch=1, heads=2, q_len=3, k_len=4, dim=2, dtype=torch.float64)
    bias, toeplitz = tables(heads=2, q_len=3, k_len=4, dtype=torch.float64)
    additive = torch.randn(3, 4, dtype=torch.float64)
    additive[0, 1] = float("-inf")
    inputs = tuple(t.clone().requires_grad_(True) for t in (q, k, v, bias, toeplitz))

    def f(q, k, v, b, c):
        return urpe_attention(q, k, v, bias=b, toeplitz=c, attn_mask=additive)[0]

    assert torch.autograd.gradcheck(f, inputs)


# ---------------------------------------------------------------------------------------------- errors


def test_rejects_inputs_that_are_not_4d() -> None:
    q, k, v = qkv()
    with pytest.raises(ShapeError, match="4-D"):
        urpe_attention(q[0], k, v)
    with pytest.raises(ShapeError, match="4-D"):
        urpe_attention(q, k, v[..., 0])


def test_rejects_incompatible_qkv() -> None:
    q, k, v = qkv()
    with pytest.raises(ShapeError, match="incompatible shapes"):
        urpe_attention(q, k[..., :-1], v)
    with pytest.raises(ShapeError, match="incompatible shapes"):
        urpe_attention(q, k, v[:, :, :-1])
    with pytest.raises(ShapeError, match="incompatible shapes"):
        urpe_attention(q, k[:, :2], v[:, :2])


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"key_padding_mask": torch.zeros(B, L + 1, dtype=torch.bool)}, "key_padding_mask"),
        ({"key_padding_mask": torch.zeros(L, dtype=torch.bool)}, "key_padding_mask"),
        ({"key_padding_mask": torch.zeros(B, L, dtype=torch.long)}, "key_padding_mask"),
        ({"attn_mask": torch.zeros(L, L + 1, dtype=torch.bool)}, "attn_mask"),
        ({"attn_mask": torch.zeros(B, L, L, dtype=torch.bool)}, "attn_mask"),
        ({"attn_mask": torch.zeros(B, H + 1, L, L)}, "attn_mask"),
        ({"attn_mask": torch.zeros(1, B, H, L, L)}, "attn_mask"),
        ({"attn_mask": torch.zeros(L, L, dtype=torch.int32)}, "attn_mask"),
    ],
)
def test_bad_masks_raise_shape_error_naming_the_mask(kwargs: dict[str, torch.Tensor], name: str) -> None:
    q, k, v = qkv()
    with pytest.raises(ShapeError, match=name):
        urpe_attention(q, k, v, **kwargs)


def test_shape_error_is_an_input_error() -> None:
    from papers_common import InputError

    assert issubclass(ShapeError, InputError)
    assert issubclass(urpe.SequenceTooLongError, InputError)
