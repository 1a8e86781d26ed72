"""T5 relative position buckets (Raffel et al., 2020, §2.1), the relative positions METRO uses (Bajaj et al., §4).

Attention between query position i and key position j gets a learned scalar per head, indexed by the bucket of the
offset j − i (:func:`papers_common.t5_relative_bucket`: offsets below half a direction's buckets exact, larger
ones in logarithmically wider buckets up to ``max_distance``, half of the buckets for keys after the query).
"""

from __future__ import annotations

import torch
from torch import nn

from papers_common import t5_relative_bucket


class RelativePositionBias(nn.Module):
    """A learned bias per (bucket, head), added to the attention logits of every layer of one encoder stack.

    Args:
        num_heads: attention heads.
        num_buckets, max_distance: see :func:`papers_common.t5_relative_bucket`.
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
        buckets = t5_relative_bucket(offsets, num_buckets=self.num_buckets, max_distance=self.max_distance)
        return self.relative_attention_bias(buckets).permute(2, 0, 1).unsqueeze(0)
