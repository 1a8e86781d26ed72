from __future__ import annotations

import torch

from metro_lm.positions import RelativePositionBias


def test_bias_at_known_distances_reads_the_t5_bucket() -> None:
    # 32 bidirectional buckets, max distance 128: 16 per direction, exact below 8, log-spaced up to 128.
    bias = RelativePositionBias(2, num_buckets=32, max_distance=128)
    out = bias(300)[0, :, 150]  # (heads, keys) for the query at position 150
    table = {0: 0, 1: 17, 7: 23, 8: 24, 16: 26, 32: 28, 64: 30, 127: 31, 128: 31, 149: 31, -1: 1, -7: 7, -8: 8,
             -150: 15}  # fmt: skip
    for offset, bucket in table.items():
        assert torch.equal(out[:, 150 + offset], bias.relative_attention_bias.weight[bucket]), offset


def test_bias_is_toeplitz_with_heads_first() -> None:
    bias = RelativePositionBias(3, num_buckets=8, max_distance=16)
    out = bias(10)
    assert out.shape == (1, 3, 10, 10)
    # depends on j - i only
    assert torch.equal(out[0, :, 2, 5], out[0, :, 4, 7])
    assert torch.equal(out[0, :, 3, 3], bias.relative_attention_bias.weight[0])
