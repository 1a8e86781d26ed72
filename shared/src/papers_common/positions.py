"""T5's relative-position buckets (Raffel et al., 2020, §2.1), shared by the packages that use relative positions.

An offset ``j − i`` between key position ``j`` and query position ``i`` maps to a bucket: offsets of magnitude
below ``max_exact`` (half of a direction's buckets) each have their own bucket, larger ones share logarithmically
wider buckets up to ``max_distance``, beyond which all fall in the direction's last bucket. Bidirectional
bucketing spends half of the buckets on keys after the query; unidirectional (causal) bucketing maps every future
offset (``j > i``) to bucket 0.
"""

from __future__ import annotations

import math

import torch


def t5_relative_bucket(
    offsets: torch.Tensor, *, num_buckets: int = 32, max_distance: int = 128, bidirectional: bool = True
) -> torch.Tensor:
    """Bucket index of each offset ``j − i``.

    Args:
        offsets: integer offsets, any shape.
        num_buckets: buckets in all (bidirectional: ``num_buckets // 2`` per direction).
        max_distance: offsets of at least this magnitude share the last bucket of their direction.
        bidirectional: distinguish keys after the query from keys before it.

    Returns:
        Long tensor of the same shape, values in ``[0, num_buckets)``.
    """
    buckets = torch.zeros_like(offsets, dtype=torch.long)
    n = num_buckets
    if bidirectional:
        n //= 2
        buckets = buckets + (offsets > 0).long() * n
        distance = offsets.abs()
    else:
        distance = (-offsets).clamp(min=0)
    max_exact = n // 2
    is_small = distance < max_exact
    # log-spaced buckets for max_exact <= distance < max_distance; clamp(min=1) keeps log() finite in the branch
    # torch.where discards.
    scaled = torch.log(distance.clamp(min=1).float() / max_exact) / math.log(max_distance / max_exact)
    large = (max_exact + (scaled * (n - max_exact)).long()).clamp(max=n - 1)
    return buckets + torch.where(is_small, distance, large)
