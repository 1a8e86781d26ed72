"""The fused path ``toeplitz_attention`` against the autograd reference: tables, outputs and every gradient."""

from __future__ import annotations

import pytest
import torch

import urpe.attention
import urpe.toeplitz
from urpe import RelativePositionTable, ShapeError, URPEAttention, urpe_attention
from urpe.toeplitz import Toeplitz, ToeplitzRows, toeplitz_attention

B, H, D = 2, 3, 4


def explicit(diagonals: torch.Tensor, q_len: int, k_len: int) -> torch.Tensor:
    """``T[h, i, j] = diagonals[h, j - i + q_len - 1]`` entry by entry."""
    table = torch.empty(diagonals.shape[0], q_len, k_len, dtype=diagonals.dtype)
    for i in range(q_len):
        for j in range(k_len):
            table[:, i, j] = diagonals[:, j - i + q_len - 1]
    return table


@pytest.fixture(
    params=[1 << 20, H * 9 * 9, 9 * 9, 7], ids=["one-chunk", "batch-chunks", "head-chunks", "row-chunks"]
)
def blocks(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    """Runs a test with everything in one chunk, one batch element, one head or a few rows per chunk.

    Tables and diagonal sums then work on blocks of 2 rows.
    """
    monkeypatch.setattr(urpe.toeplitz, "BLOCK_ELEMENTS", request.param)
    monkeypatch.setattr(urpe.toeplitz, "SUB_ROWS", 2)
    return request.param


@pytest.mark.parametrize(
    ("block", "expected"), [(1 << 20, [(0, 2, 0, 7)]), (150, [(0, 1, 0, 7), (1, 2, 0, 7)])]
)
def test_chunks_cover_the_tensor_once(
    block: int, expected: list[tuple[int, ...]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(urpe.toeplitz, "BLOCK_ELEMENTS", block)
    chunks = urpe.toeplitz._chunks(B, H, 7, 7, tables=0)
    assert [(c.batch.start, c.batch.stop, c.rows.start, c.rows.stop) for c in chunks] == expected


@pytest.mark.parametrize("block", [1 << 20, 150, 49, 20, 1])
def test_chunks_are_contiguous_and_cover_each_entry_once(block: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(urpe.toeplitz, "BLOCK_ELEMENTS", block)
    counts = torch.zeros(B, H, 7, 7)
    for chunk in urpe.toeplitz._chunks(B, H, 7, 7, tables=0):
        part = chunk.of(counts)
        assert part.is_contiguous()
        part += 1
    assert torch.equal(counts, torch.ones_like(counts))


@pytest.mark.parametrize(("q_len", "k_len"), [(5, 5), (3, 7), (7, 2), (1, 1)])
def test_toeplitz_rows_are_the_table(q_len: int, k_len: int) -> None:
    diagonals = torch.randn(H, q_len + k_len - 1)
    table = explicit(diagonals, q_len, k_len)
    torch.testing.assert_close(Toeplitz(diagonals, q_len).rows(0, q_len), table, rtol=0, atol=0)
    assert Toeplitz(diagonals, q_len).k_len == k_len
    for height in range(1, q_len + 1):  # every block height, every block of rows
        rows = ToeplitzRows(diagonals, q_len, height)
        for start in range(q_len):
            for stop in range(start + 1, min(q_len, start + height) + 1):
                torch.testing.assert_close(rows(start, stop), table[:, start:stop], rtol=0, atol=0)


@pytest.mark.parametrize("mode", ["unique", "bucket"])
@pytest.mark.parametrize(("q_len", "k_len"), [(6, 6), (4, 9), (9, 4)])
def test_table_diagonals_describe_the_table(mode: str, q_len: int, k_len: int) -> None:
    table = RelativePositionTable(H, mode=mode, max_len=10, num_buckets=8, max_distance=5)
    diagonals = table.diagonals(q_len, k_len)
    assert diagonals.shape == (H, q_len + k_len - 1)
    torch.testing.assert_close(explicit(diagonals, q_len, k_len), table(q_len, k_len), rtol=0, atol=0)


def test_diagonal_sums_equal_a_scatter_add(blocks: int) -> None:
    q_len, k_len = 7, 3
    grad = torch.randn(B, H, q_len, k_len, dtype=torch.float64)
    sums = urpe.toeplitz._DiagonalSums(grad, H, q_len, k_len)
    assert sums.height == 2
    for heads in (slice(0, 2), slice(2, 3)):  # every block height, both heads of a group, in any row order
        for start, stop in [(5, 7), (0, 1), (1, 3), (3, 4), (4, 5)]:
            for element in range(B):
                sums.block(heads, start, stop - start).add_(grad[element, heads, start:stop])
    offsets = torch.arange(k_len)[None, :] - torch.arange(q_len)[:, None] + q_len - 1
    expected = torch.zeros(H, q_len + k_len - 1, dtype=torch.float64)
    expected.index_add_(1, offsets.flatten(), grad.sum(0).flatten(1))
    torch.testing.assert_close(sums.result(), expected)


MASKS = ["none", "padding", "causal", "float", "fully-masked-row", "all"]


def masks(kind: str, q_len: int, k_len: int) -> dict[str, object]:
    g = torch.Generator().manual_seed(3)
    kwargs: dict[str, object] = {}
    if kind in ("padding", "all"):
        padding = torch.zeros(B, k_len, dtype=torch.bool)
        padding[0, -2:] = True
        padding[1] = True  # a sequence that is all padding: every row fully masked
        kwargs["key_padding_mask"] = padding
    if kind in ("causal", "all"):
        kwargs["is_causal"] = True
    if kind == "float":
        additive = torch.randn(B, H, q_len, k_len, generator=g, dtype=torch.float64)
        additive[0, 1, 2, 1] = float("-inf")
        kwargs["attn_mask"] = additive
    if kind in ("fully-masked-row", "all"):
        blocked = torch.rand(q_len, k_len, generator=g) < 0.3
        blocked[2] = True
        kwargs["attn_mask"] = blocked
    return kwargs


@pytest.mark.parametrize("kind", MASKS)
@pytest.mark.parametrize("tables", ["rpe", "urpe", "toeplitz-only"])
@pytest.mark.parametrize(("q_len", "k_len"), [(7, 7), (7, 3), (4, 9)])
def test_fused_equals_autograd_reference(blocks: int, kind: str, tables: str, q_len: int, k_len: int) -> None:
    g = torch.Generator().manual_seed(0)
    leaves = {
        "q": torch.randn(B, H, q_len, D, generator=g, dtype=torch.float64),
        "k": torch.randn(B, H, k_len, D, generator=g, dtype=torch.float64),
        "v": torch.randn(B, H, k_len, D + 1, generator=g, dtype=torch.float64),
        "bias": torch.randn(H, q_len + k_len - 1, generator=g, dtype=torch.float64),
        "toeplitz": torch.randn(H, q_len + k_len - 1, generator=g, dtype=torch.float64),
    }
    if tables == "rpe":
        del leaves["toeplitz"]
    if tables == "toeplitz-only":
        del leaves["bias"]
    upstream = torch.randn(B, H, q_len, D + 1, generator=g, dtype=torch.float64)
    kwargs = masks(kind, q_len, k_len)

    def run(fused: bool) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        inputs = {name: t.clone().requires_grad_(True) for name, t in leaves.items()}
        tabs = {name: Toeplitz(inputs[name], q_len) for name in ("bias", "toeplitz") if name in inputs}
        out, _ = urpe_attention(inputs["q"], inputs["k"], inputs["v"], **tabs, fused=fused, **kwargs)
        grads = torch.autograd.grad(out, list(inputs.values()), upstream)
        return out, dict(zip(inputs, grads, strict=True))

    calls: list[int] = []
    original = urpe.attention.toeplitz_attention

    def counting(*args: object, **kw: object) -> torch.Tensor:
        calls.append(1)
        return original(*args, **kw)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(urpe.attention, "toeplitz_attention", counting)
        fused_out, fused_grads = run(True)
        assert calls == [1]  # the fused path was taken
        reference_out, reference_grads = run(False)
        assert calls == [1]
    assert torch.isfinite(fused_out).all()
    torch.testing.assert_close(fused_out, reference_out)
    for name, grad in reference_grads.items():
        assert torch.isfinite(fused_grads[name]).all()
        torch.testing.assert_close(
            fused_grads[name], grad, msg=lambda m, name=name: f"gradient of {name}: {m}"
        )


def test_gradcheck_fused_path(blocks: int) -> None:
    g = torch.Generator().manual_seed(5)
    q_len, k_len = 4, 3
    inputs = (
        torch.randn(1, 2, q_len, 3, generator=g, dtype=torch.float64),
        torch.randn(1, 2, k_len, 3, generator=g, dtype=torch.float64),
        torch.randn(1, 2, k_len, 2, generator=g, dtype=torch.float64),
        torch.randn(2, q_len + k_len - 1, generator=g, dtype=torch.float64),
        torch.randn(2, q_len + k_len - 1, generator=g, dtype=torch.float64),
    )
    inputs = tuple(t.requires_grad_(True) for t in inputs)
    masked = torch.ones(q_len, k_len, dtype=torch.bool).triu(1)

    def f(
        q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, b: torch.Tensor, c: torch.Tensor
    ) -> torch.Tensor:
        return toeplitz_attention(q, k, v, b, c, masked=masked, scale=0.7)

    assert torch.autograd.gradcheck(f, inputs)


@pytest.mark.parametrize("mode", ["unique", "bucket"])
@pytest.mark.parametrize("activation", ["none", "relu"])
def test_fused_module_equals_reference_module(mode: str, activation: str) -> None:
    torch.manual_seed(0)
    fused = URPEAttention(8, 2, batch_first=True, mode=mode, max_len=8, num_buckets=8, max_distance=4,
                          toeplitz_activation=activation, dtype=torch.float64)  # fmt: skip
    with torch.no_grad():
        fused.toeplitz_table.weight.normal_()
        fused.bias_table.weight.normal_()
    reference = URPEAttention(8, 2, batch_first=True, mode=mode, max_len=8, num_buckets=8, max_distance=4,
                              toeplitz_activation=activation, dtype=torch.float64, fused=False)  # fmt: skip
    reference.load_state_dict(fused.state_dict())
    x = torch.randn(2, 6, 8, dtype=torch.float64)
    padding = torch.tensor([[False] * 5 + [True], [False] * 6])
    results = []
    for module in (fused, reference):
        inputs = x.clone().requires_grad_(True)
        out, _ = module(inputs, inputs, inputs, key_padding_mask=padding, is_causal=True, need_weights=False)
        params = dict(module.named_parameters())
        grads = torch.autograd.grad((out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum(),
                                    [inputs, *params.values()])  # fmt: skip
        results.append((out, dict(zip(["input", *params], grads, strict=True))))
    (out, grads), (reference_out, reference_grads) = results
    torch.testing.assert_close(out, reference_out)
    for name, grad in reference_grads.items():
        torch.testing.assert_close(grads[name], grad, msg=lambda m, name=name: f"gradient of {name}: {m}")


def test_module_takes_the_fused_path_only_where_it_applies(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    original = urpe.attention.toeplitz_attention

    def counting(*args: object, **kw: object) -> torch.Tensor:
        calls.append(1)
        return original(*args, **kw)

    monkeypatch.setattr(urpe.attention, "toeplitz_attention", counting)
    module = URPEAttention(8, 2, dropout=0.5, batch_first=True, max_len=8)
    x = torch.randn(2, 5, 8)
    module.eval()
    module(x, x, x, need_weights=False)
    assert calls == [1]
    module(x, x, x, need_weights=True)  # returns the weights: reference path
    module.train()
    first, _ = module(x, x, x, need_weights=False)  # dropout on the weights: reference path
    assert calls == [1]
    assert not torch.equal(first, module(x, x, x, need_weights=False)[0])
    URPEAttention(8, 2, batch_first=True, max_len=8, chunk_size=2)(x, x, x, need_weights=False)
    assert calls == [1]


def test_toeplitz_table_of_the_wrong_size_is_refused() -> None:
    q = k = v = torch.randn(B, H, 5, D)
    with pytest.raises(
        ShapeError, match="toeplitz must be a Toeplitz table for 3 heads, 5 queries and 5 keys"
    ):
        urpe_attention(q, k, v, toeplitz=Toeplitz(torch.randn(H, 8), 4))
