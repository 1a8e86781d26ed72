"""T5 relative position buckets (Raffel et al., 2020, §2.1), the relative positions METRO uses (Bajaj et al., §4).

Attention between query position i and key position j gets a learned scalar per head, indexed by the bucket of the
offset j − i: offsets below ``max_exact`` in magnitude each have their own bucket, larger ones share
logarithmically wider buckets up to ``max_distance``, beyond which they all fall in the last one. Bidirectional
buckets spend half the buckets on keys after the query.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def relative_position_bucket(
    relative_position: torch.Tensor,
    *,
    num_buckets: int = 32,
    max_distance: int = 128,
    bidirectional: bool = True,
) -> torch.Tensor:
    """Bucket index of each offset ``key − query``.

    Args:
        relative_position: integer offsets j − i, any shape.
        num_buckets: buckets in all (bidirectional: ``num_buckets // 2`` per direction).
        max_distance: offsets of at least this magnitude share the last bucket of their direction.
        bidirectional: distinguish keys after the query from keys before it.

    Returns:
        Long tensor of the same shape, values in ``[0, num_buckets)``.
    """
    buckets = torch.zeros_like(relative_position, dtype=torch.long)
    if bidirectional:
        num_buckets //= 2
        buckets += (relative_position > 0).long() * num_buckets
        distance = relative_position.abs()
    else:
        distance = (-relative_position).clamp(min=0)
    max_exact = num_buckets // 2
    is_small = distance < max_exact
    # log-spaced buckets for max_exact <= distance < max_distance; clamp(min=1) only guards log(0) in the
    # branch torch.where discards.
    log_ratio = torch.log(distance.clamp(min=1).float() / max_exact) / math.log(max_distance / max_exact)
    large = (max_exact + (log_ratio * (num_buckets - max_exact)).long()).clamp(max=num_buckets - 1)
    return buckets + torch.where(is_small, distance, large)


class RelativePositionBias(nn.Module):
    """A learned bias per (bucket, head), added to the attention logits of every layer of one encoder stack.

    Args:
        num_heads: attention heads.
        num_buckets, max_distance: see :func:`relative_position_bucket`.
    """

    def __init__(self, num_heads: int, *, num_buckets: int = 32, max_distance: int = 128) -> None:
        super().__init__()
        self.num_buckets = num_buckets
        self.max_distance = max_distance
        self.relative_attention_bias = nn.Embedding(num_buckets, num_heads)

    def forward(self, length: int) -> torch.Tensor:
        """The bias for a sequence of ``length`` tokens, shape ``(1, heads, length, length)``."""
        device = self.relative_attention_bias.weight.device
        positions = torch.arange(length, device=device)
        offsets = positions[None, :] - positions[:, None]  # (query i, key j) -> j - i
        buckets = relative_position_bucket(
            offsets, num_buckets=self.num_buckets, max_distance=self.max_distance
        )
        return self.relative_attention_bias(buckets).permute(2, 0, 1).unsqueeze(0)
