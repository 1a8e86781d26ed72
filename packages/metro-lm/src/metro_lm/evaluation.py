"""Held-out pretraining metrics: the losses, and how well the main model detects replaced tokens (METRO §6).

RTD accuracy is compared with the trivial detector that calls every token original (its accuracy is one minus the
replaced rate), and RTD AUC with 0.5, the AUC of any score independent of the labels.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import torch

from metro_lm.randomness import sequence_keys

if TYPE_CHECKING:
    from metro_lm.data import PackedDataset
    from metro_lm.modeling import MetroForPreTraining

EVAL_SEED = 20220413  # the held-out text is corrupted identically at every evaluation and by every model


def roc_auc(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """Area under the ROC curve by the Mann–Whitney rank statistic, ties counted half.

    Args:
        scores: ``(n,)`` higher means "positive".
        labels: ``(n,)`` 0/1.

    Returns:
        The AUC, or NaN when one class is absent.
    """
    scores, labels = scores.double().flatten(), labels.bool().flatten()
    positives, negatives = int(labels.sum()), int((~labels).sum())
    if positives == 0 or negatives == 0:
        return math.nan
    _values, inverse, counts = torch.unique(scores, return_inverse=True, return_counts=True)
    # average 1-based rank of each distinct value: (first + last) / 2
    last = counts.cumsum(0).double()
    average_rank = last - (counts.double() - 1) / 2
    rank_sum = average_rank[inverse][labels].sum().item()
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


@torch.no_grad()
def pretraining_metrics(
    model: MetroForPreTraining,
    dataset: PackedDataset,
    *,
    batch_size: int = 32,
    max_sequences: int | None = 512,
    device: torch.device | str = "cpu",
) -> dict[str, float]:
    """Evaluate a pretraining model on held-out sequences, corrupted with fixed keys (eval mode, no dropout).

    Returns:
        ``mlm_loss`` (the generator's; ``"mlm"``: the main model's), and for ELECTRA/METRO also ``rtd_loss``,
        ``rtd_accuracy``, ``rtd_auc``, ``replaced_fraction`` (of valid tokens), ``trivial_rtd_accuracy`` and, for
        METRO, ``clm_loss``: averages over all sequences (losses weighted by their token counts).
    """
    was_training = model.training
    model.eval()
    count = len(dataset) if max_sequences is None else min(len(dataset), max_sequences)
    sums: dict[str, float] = {}
    weights: dict[str, float] = {}
    logits_all, labels_all = [], []
    for start in range(0, count, batch_size):
        index = np.arange(start, min(start + batch_size, count))
        ids = dataset.batch(index).to(device)
        mask = (ids != model.config.pad_token_id).long()
        out = model(ids, mask, sequence_keys=sequence_keys(EVAL_SEED, 0, torch.as_tensor(index)))
        masked = float(out.masked_positions.sum())
        valid = mask.bool()
        for name, value, weight in (("mlm_loss", out.mlm_loss, masked), ("clm_loss", out.clm_loss, masked),
                                    ("rtd_loss", out.rtd_loss, float(valid.sum()))):  # fmt: skip
            if value is not None:
                sums[name] = sums.get(name, 0.0) + float(value) * weight
                weights[name] = weights.get(name, 0.0) + weight
        if out.rtd_logits is not None:
            logits_all.append(out.rtd_logits[valid].float().cpu())
            labels_all.append(out.rtd_labels[valid].cpu())
    model.train(was_training)
    metrics = {name: sums[name] / max(weights[name], 1.0) for name in sums}
    if logits_all:
        logits, labels = torch.cat(logits_all), torch.cat(labels_all)
        replaced = float(labels.mean())
        metrics.update(
            rtd_accuracy=float(((logits > 0).float() == labels).float().mean()),
            rtd_auc=roc_auc(logits, labels),
            replaced_fraction=replaced,
            trivial_rtd_accuracy=1.0 - replaced,
        )
    return metrics
