"""T5 relative-position buckets against a hand-computed table."""

from __future__ import annotations

import torch

from papers_common import t5_relative_bucket


def test_bucket_values_at_known_distances() -> None:
    # 32 bidirectional buckets, max distance 128: 16 per direction, exact below 8, log-spaced up to 128.
    offsets = torch.tensor([0, 1, 7, 8, 16, 32, 64, 127, 128, 1000, -1, -7, -8, -1000])
    expected = torch.tensor([0, 17, 23, 24, 26, 28, 30, 31, 31, 31, 1, 7, 8, 15])
    assert torch.equal(t5_relative_bucket(offsets, num_buckets=32, max_distance=128), expected)


def test_buckets_are_monotone_in_distance_and_bounded() -> None:
    distance = torch.arange(0, 500)
    after = t5_relative_bucket(distance)
    before = t5_relative_bucket(-distance)
    assert torch.all(after[1:] >= after[:-1])
    assert torch.all(before[1:] >= before[:-1])
    assert after.max() == 31
    assert before.max() == 15
    assert after[1:].min() == 17


def test_unidirectional_buckets_ignore_future_keys() -> None:
    buckets = t5_relative_bucket(torch.tensor([5, 0, -3, -200]), bidirectional=False)
    assert buckets.tolist() == [0, 0, 3, 31]
    assert buckets.dtype == torch.long
