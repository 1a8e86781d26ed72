"""Relative offsets, T5 buckets and the per-head relative-position tables (Toeplitz by construction)."""

from __future__ import annotations

import math

import pytest
import torch

from papers_common import InputError
from urpe import RelativePositionTable, SequenceTooLongError, relative_offsets, t5_bucket


def t5_reference(offset: int, num_buckets: int, max_distance: int, bidirectional: bool) -> int:
    """T5's bucket of one offset ``j - i``, evaluated with Python scalars (Raffel et al., 2020, Mesh TF code)."""
    bucket = 0
    if bidirectional:
        num_buckets //= 2
        if offset > 0:
            bucket += num_buckets
        distance = abs(offset)
    else:
        distance = max(-offset, 0)
    max_exact = num_buckets // 2
    if distance < max_exact:
        return bucket + distance
    large = max_exact + int(
        math.log(distance / max_exact) / math.log(max_distance / max_exact) * (num_buckets - max_exact)
    )
    return bucket + min(large, num_buckets - 1)


# Worked by hand for num_buckets=32, max_distance=128.
# Bidirectional: 16 buckets per direction, distances < 8 exact, then 8 + floor(ln(d/8) / ln(16) * 8), capped at 15;
# keys after the query (j > i) add 16.  d=20: 8 + floor(2.64) = 10; d=127: 8 + floor(7.98) = 15; d>=128: 15.
BIDIRECTIONAL = {
    0: 0,
    1: 17,
    -1: 1,
    7: 23,
    -7: 7,
    8: 24,
    -8: 8,
    20: 26,
    -20: 10,
    127: 31,
    -127: 15,
    128: 31,
    -128: 15,
    1000: 31,
    -1000: 15,
}
# Causal: 32 buckets for past keys only, distances < 16 exact, then 16 + floor(ln(d/16) / ln(8) * 16), capped at 31;
# future keys share bucket 0.  d=20: 16 + floor(1.72) = 17; d=127: 16 + floor(15.94) = 31.
CAUSAL = {
    0: 0,
    1: 0,
    -1: 1,
    7: 0,
    -7: 7,
    8: 0,
    -8: 8,
    20: 0,
    -20: 17,
    127: 0,
    -127: 31,
    128: 0,
    -128: 31,
    1000: 0,
    -1000: 31,
}


@pytest.mark.parametrize(("bidirectional", "expected"), [(True, BIDIRECTIONAL), (False, CAUSAL)])
def test_t5_bucket_at_known_offsets(bidirectional: bool, expected: dict[int, int]) -> None:
    offsets = torch.tensor(list(expected))
    buckets = t5_bucket(offsets, num_buckets=32, max_distance=128, bidirectional=bidirectional)
    assert buckets.dtype == torch.long
    assert dict(zip(expected, buckets.tolist(), strict=True)) == expected
    assert {o: t5_reference(o, 32, 128, bidirectional) for o in expected} == expected


@pytest.mark.parametrize("bidirectional", [True, False])
@pytest.mark.parametrize(("num_buckets", "max_distance"), [(32, 128), (64, 128), (8, 20)])
def test_t5_bucket_matches_scalar_reference_everywhere(
    bidirectional: bool, num_buckets: int, max_distance: int
) -> None:
    offsets = torch.arange(-300, 301)
    buckets = t5_bucket(
        offsets, num_buckets=num_buckets, max_distance=max_distance, bidirectional=bidirectional
    )
    expected = [t5_reference(o, num_buckets, max_distance, bidirectional) for o in offsets.tolist()]
    assert buckets.tolist() == expected
    assert int(buckets.min()) >= 0
    assert int(buckets.max()) == num_buckets - 1


def test_t5_bucket_keeps_shape() -> None:
    offsets = relative_offsets(4, 6)
    assert t5_bucket(offsets, num_buckets=32, max_distance=128, bidirectional=True).shape == (4, 6)


def test_relative_offsets() -> None:
    offsets = relative_offsets(3, 4)
    assert offsets.tolist() == [[0, 1, 2, 3], [-1, 0, 1, 2], [-2, -1, 0, 1]]


@pytest.mark.parametrize(("q_len", "k_len"), [(5, 5), (3, 6), (6, 3), (8, 8)])
def test_unique_table_is_toeplitz_with_offset_indexing(q_len: int, k_len: int) -> None:
    max_len = 8
    table = RelativePositionTable(3, mode="unique", max_len=max_len)
    assert table.weight.shape == (2 * max_len - 1, 3)
    with torch.no_grad():
        table.weight.copy_(torch.randn(2 * max_len - 1, 3))
    values = table(q_len, k_len)
    assert values.shape == (3, q_len, k_len)
    for h in range(3):
        for i in range(q_len):
            for j in range(k_len):
                # offset j - i lives in row (j - i) + (max_len - 1) of the table
                assert values[h, i, j] == table.weight[j - i + max_len - 1, h]
    # Toeplitz: constant along every diagonal
    torch.testing.assert_close(values[:, 1:, 1:], values[:, :-1, :-1], rtol=0, atol=0)


def test_unique_table_indices_cover_the_full_range() -> None:
    table = RelativePositionTable(1, mode="unique", max_len=4)
    indices = table.indices(4, 4)
    assert indices[0, 3] == 6  # offset +3: last row
    assert indices[3, 0] == 0  # offset -3: first row
    assert indices.diagonal().tolist() == [3, 3, 3, 3]


def test_unique_table_rejects_longer_sequences() -> None:
    table = RelativePositionTable(2, mode="unique", max_len=6)
    table(6)
    with pytest.raises(SequenceTooLongError, match=r"max_len=6") as info:
        table(7)
    assert "7" in str(info.value)
    with pytest.raises(SequenceTooLongError, match=r"max_len=6"):
        table(3, 9)


def test_bucket_table_accepts_longer_sequences_and_is_toeplitz() -> None:
    table = RelativePositionTable(2, mode="bucket", max_len=4, num_buckets=16, max_distance=32)
    assert table.weight.shape == (16, 2)
    values = table(50)
    assert values.shape == (2, 50, 50)
    torch.testing.assert_close(values[:, 1:, 1:], values[:, :-1, :-1], rtol=0, atol=0)
    expected = t5_bucket(relative_offsets(50, 50), num_buckets=16, max_distance=32, bidirectional=True)
    assert torch.equal(table.indices(50, 50), expected)


def test_causal_bucket_table_uses_unidirectional_buckets() -> None:
    table = RelativePositionTable(1, mode="bucket", num_buckets=8, max_distance=20, bidirectional=False)
    indices = table.indices(5, 5)
    assert (indices[torch.ones(5, 5, dtype=torch.bool).triu(1)] == 0).all()
    assert indices[4, 0] == t5_reference(-4, 8, 20, False)


@pytest.mark.parametrize("bidirectional", [True, False])
def test_smallest_valid_max_distance_gives_valid_buckets(bidirectional: bool) -> None:
    smallest = (32 // 4 if bidirectional else 32 // 2) + 1
    table = RelativePositionTable(
        1, mode="bucket", num_buckets=32, max_distance=smallest, bidirectional=bidirectional
    )
    indices = table.indices(60, 60)
    assert int(indices.min()) >= 0
    assert int(indices.max()) == 31
    # buckets never decrease with the distance to a past key
    past = indices[-1].flip(0)
    assert bool((past[1:] >= past[:-1]).all())


def test_initialisation() -> None:
    torch.manual_seed(0)
    ones = RelativePositionTable(4, init="ones", max_len=16)
    assert torch.equal(ones.weight, torch.ones(31, 4))
    normal = RelativePositionTable(4, init="normal", max_len=256)
    assert 0.01 < float(normal.weight.detach().std()) < 0.03
    assert abs(float(normal.weight.detach().mean())) < 0.005


def test_table_gradients_accumulate_per_offset() -> None:
    table = RelativePositionTable(1, mode="unique", max_len=3)
    table(3).sum().backward()
    assert table.weight.grad is not None
    # offset -2 .. +2 appear 1, 2, 3, 2, 1 times in a 3 x 3 matrix
    assert table.weight.grad[:, 0].tolist() == [1.0, 2.0, 3.0, 2.0, 1.0]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mode": "linear"}, "mode must be"),
        ({"max_len": 0}, "must be positive"),
        ({"mode": "bucket", "num_buckets": 2}, "num_buckets >= 4"),
        ({"mode": "bucket", "num_buckets": 32, "max_distance": 8}, "max_distance"),
        ({"mode": "bucket", "num_buckets": 32, "max_distance": 16, "bidirectional": False}, "max_distance"),
    ],
)
def test_invalid_table_settings(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InputError, match=message):
        RelativePositionTable(2, **kwargs)  # type: ignore[arg-type]
