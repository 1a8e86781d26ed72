from __future__ import annotations

import torch

from metro_lm.positions import RelativePositionBias, relative_position_bucket


def test_bucket_values_at_known_distances() -> None:
    # 32 bidirectional buckets, max distance 128: 16 per direction, exact below 8, log-spaced up to 128.
    offsets = torch.tensor([0, 1, 7, 8, 16, 32, 64, 127, 128, 1000, -1, -7, -8, -1000])
    expected = torch.tensor([0, 17, 23, 24, 26, 28, 30, 31, 31, 31, 1, 7, 8, 15])
    assert torch.equal(relative_position_bucket(offsets, num_buckets=32, max_distance=128), expected)


def test_buckets_are_monotone_in_distance_and_bounded() -> None:
    distance = torch.arange(0, 500)
    after = relative_position_bucket(distance)
    before = relative_position_bucket(-distance)
    assert torch.all(after[1:] >= after[:-1])
    assert torch.all(before[1:] >= before[:-1])
    assert after.max() == 31
    assert before.max() == 15
    assert after[1:].min() == 17


def test_unidirectional_buckets_ignore_future_keys() -> None:
    buckets = relative_position_bucket(torch.tensor([5, 0, -3]), bidirectional=False)
    assert buckets.tolist() == [0, 0, 3]


def test_bias_is_toeplitz_with_heads_first() -> None:
    bias = RelativePositionBias(3, num_buckets=8, max_distance=16)
    out = bias(10)
    assert out.shape == (1, 3, 10, 10)
    # depends on j - i only
    assert torch.equal(out[0, :, 2, 5], out[0, :, 4, 7])
    assert torch.equal(out[0, :, 3, 3], bias.relative_attention_bias.weight[0])
