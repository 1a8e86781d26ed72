from __future__ import annotations

import math

import pytest
import torch

from metro_lm.evaluation import roc_auc
from metro_lm.objectives import (
    crop_sequences,
    masked_lm_loss,
    replaced_token_detection_loss,
    sample_tokens,
    sequence_contrastive_loss,
)
from metro_lm.randomness import keyed_uniform


def test_sampling_draws_from_the_softmax() -> None:
    logits = torch.tensor([[2.0, 0.0, -1.0, 1.0]]).expand(100_000, 4)
    draws = sample_tokens(logits, keyed_uniform(torch.arange(100_000), 11))
    frequency = torch.bincount(draws, minlength=4).float() / len(draws)
    assert torch.allclose(frequency, torch.softmax(logits[0], 0), atol=0.005)


def test_sampling_never_picks_a_zero_probability_token() -> None:
    logits = torch.tensor([[0.0, -float("inf"), 0.0, -float("inf")]]).expand(5000, 4)
    draws = sample_tokens(logits, keyed_uniform(torch.arange(5000), 1))
    assert set(draws.unique().tolist()) == {0, 2}


def test_rtd_loss_averages_over_valid_positions_only() -> None:
    logits = torch.tensor([[0.0, 2.0, 5.0], [1.0, -1.0, 9.0]])
    labels = torch.tensor([[0.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    valid = torch.tensor([[True, True, False], [True, True, False]])
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    want = bce(logits[valid], labels[valid])
    assert torch.allclose(replaced_token_detection_loss(logits, labels, valid), want)


def test_weighted_lm_loss_is_the_mean_of_weighted_cross_entropies() -> None:
    logits = torch.randn(5, 9, requires_grad=True)
    targets = torch.tensor([1, 2, 3, 4, 5])
    weights = torch.tensor([0.1, 0.5, 1.0, 0.0, 0.3], requires_grad=True)
    ce = torch.nn.functional.cross_entropy(logits, targets, reduction="none")
    loss = masked_lm_loss(logits, targets, weights)
    assert torch.allclose(loss, (ce * weights).sum() / 5)
    loss.backward()
    assert weights.grad is None  # weights are constants


def test_contrastive_loss_closed_forms() -> None:
    same = torch.ones(4, 8)
    # every view identical: uniform over the 2B - 1 others
    assert sequence_contrastive_loss(same, same).item() == pytest.approx(math.log(7), rel=1e-6)
    # orthogonal pairs, low temperature: the partner wins by far
    eye = torch.eye(8)[:4]
    assert sequence_contrastive_loss(eye, eye, temperature=0.01).item() < 1e-6


def test_crop_keeps_a_contiguous_span_of_the_body() -> None:
    ids = torch.tensor([[2, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 3, 0, 0]])
    mask = (ids != 0).long()
    for u in (0.0, 0.5, 0.999):
        crop, crop_mask = crop_sequences(ids, mask, keep=0.5, cls_token_id=2, sep_token_id=3, pad_token_id=0,
                                         uniforms=torch.tensor([u]))  # fmt: skip
        row = crop[0][crop_mask[0].bool()].tolist()
        assert row[0] == 2
        assert row[-1] == 3
        assert len(row) == 7
        body = row[1:-1]
        assert body == list(range(body[0], body[0] + 5))
        assert 10 <= body[0] <= 15
        assert torch.all(crop[0][~crop_mask[0].bool()] == 0)


def test_auc_equals_pair_counting_with_ties() -> None:
    generator = torch.Generator().manual_seed(0)
    scores = torch.randint(0, 6, (300,), generator=generator).float()
    labels = (torch.rand(300, generator=generator) < 0.3).long()
    pos, neg = scores[labels == 1], scores[labels == 0]
    wins = (pos[:, None] > neg[None, :]).double() + 0.5 * (pos[:, None] == neg[None, :]).double()
    assert roc_auc(scores, labels) == pytest.approx(wins.mean().item(), abs=1e-12)
    assert roc_auc(torch.tensor([0.1, 0.9]), torch.tensor([0, 1])) == 1.0
    assert math.isnan(roc_auc(torch.tensor([0.1, 0.9]), torch.tensor([1, 1])))
