"""Choosing and corrupting the positions the generator fills in (Devlin et al., 2019; Clark et al., 2020, §2).

A fixed fraction of each sequence's *maskable* tokens (not padding, not special tokens) is selected: the count per
sequence is ``floor(p · n + u)``, u ~ U(0, 1), so its expectation is exactly p·n, and at least one token is masked in
every sequence that has a maskable token (a sequence never contributes an empty masked-LM term).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from metro_lm.randomness import Noise

# Streams of :class:`~metro_lm.randomness.Noise`, one per kind of draw.
COUNT_STREAM, ORDER_STREAM, MODE_STREAM, RANDOM_TOKEN_STREAM = 1, 2, 3, 4


def maskable_positions(
    input_ids: torch.Tensor, attention_mask: torch.Tensor | None, special_token_ids: Sequence[int]
) -> torch.Tensor:
    """Positions that may be masked: real tokens that are not special. ``(batch, L)`` bool."""
    special = torch.as_tensor(list(special_token_ids), device=input_ids.device, dtype=input_ids.dtype)
    allowed = ~torch.isin(input_ids, special)
    if attention_mask is not None:
        allowed &= attention_mask.bool()
    return allowed


def select_masked_positions(
    maskable: torch.Tensor, mask_prob: float, *, noise: Noise | None = None
) -> torch.Tensor:
    """Pick ``floor(p · n_b + u_b)`` (at least 1 where n_b > 0) of the n_b maskable positions of each row b.

    Args:
        maskable: ``(batch, L)`` bool, from :func:`maskable_positions`.
        mask_prob: p.
        noise: source of the uniform draws (default: torch's global generator).

    Returns:
        ``(batch, L)`` bool, a subset of ``maskable``, chosen uniformly at random among subsets of that size.
    """
    noise = noise or Noise()
    batch, length = maskable.shape
    n = maskable.sum(dim=1)
    u = noise.rows(COUNT_STREAM, (batch,), maskable.device)
    count = torch.floor(mask_prob * n + u).long().clamp(max=n)
    count = torch.where(n > 0, count.clamp(min=1), count)
    scores = noise.rows(ORDER_STREAM, (batch, length), maskable.device)
    scores = scores.masked_fill(~maskable, 2.0)  # never among the smallest `count`
    rank = scores.argsort(dim=1).argsort(dim=1)
    return rank < count[:, None]


def corrupt_for_mlm(
    input_ids: torch.Tensor,
    masked: torch.Tensor,
    *,
    mask_token_id: int,
    vocab_size: int,
    special_token_ids: Sequence[int],
    mode: str = "mask",
    noise: Noise | None = None,
) -> torch.Tensor:
    """The generator's input: ``input_ids`` with the ``masked`` positions replaced.

    ``mode="mask"`` puts [MASK] at every masked position (the METRO/COCO-LM default); ``mode="bert"`` puts [MASK] at
    80% of them, a uniformly drawn non-special token at 10% and leaves 10% unchanged.

    Returns:
        ``(batch, L)`` long, a new tensor.
    """
    corrupted = input_ids.masked_fill(masked, mask_token_id)
    if mode == "mask":
        return corrupted
    if mode != "bert":
        raise ValueError(f"mask mode must be 'mask' or 'bert', got {mode!r}")
    noise = noise or Noise()
    shape, device = tuple(input_ids.shape), input_ids.device
    draw = noise.rows(MODE_STREAM, shape, device)
    special = torch.as_tensor(list(special_token_ids), device=device)
    vocab = torch.arange(vocab_size, device=device)
    candidates = vocab[~torch.isin(vocab, special)]
    pick = (
        (noise.rows(RANDOM_TOKEN_STREAM, shape, device) * len(candidates))
        .long()
        .clamp(max=len(candidates) - 1)
    )
    random_ids = candidates[pick]
    corrupted = torch.where(masked & (draw >= 0.8) & (draw < 0.9), random_ids, corrupted)
    return torch.where(masked & (draw >= 0.9), input_ids, corrupted)
