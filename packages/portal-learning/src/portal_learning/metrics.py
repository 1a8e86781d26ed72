"""Classification metrics computed globally over a split (never averaged over mini-batches).

:func:`roc_auc` is the Mann–Whitney statistic with tied scores counted half; :func:`average_precision` is the
area under the precision–recall step curve at every distinct score, Σ (R_k − R_{k−1}) P_k — both equal to
scikit-learn's ``roc_auc_score`` and ``average_precision_score``. The paper's official code instead averaged
metrics over random mini-batches of 8 pairs; :func:`minibatch_average` reproduces that for comparison.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from papers_common import InputError


def _check(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels).astype(np.int64).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise InputError(f"{len(y)} labels but {len(s)} scores")
    if not np.isin(y, (0, 1)).all():
        raise InputError("labels must be 0 or 1")
    if not np.isfinite(s).all():
        raise InputError("scores must be finite")
    return y, s


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve: P(score of a positive > score of a negative), ties counting 1/2."""
    y, s = _check(labels, scores)
    positives, negatives = int(y.sum()), int(len(y) - y.sum())
    if positives == 0 or negatives == 0:
        raise InputError("ROC-AUC needs both classes in the split")
    _, inverse, counts = np.unique(s, return_inverse=True, return_counts=True)
    first = np.cumsum(counts) - counts  # 0-based rank where each distinct score starts
    ranks = first[inverse] + (counts[inverse] + 1) / 2.0  # average 1-based rank
    return float((ranks[y == 1].sum() - positives * (positives + 1) / 2.0) / (positives * negatives))


def average_precision(labels: np.ndarray, scores: np.ndarray) -> float:
    """Average precision: Σ over distinct scores (high to low) of the recall gained times the precision there."""
    y, s = _check(labels, scores)
    positives = int(y.sum())
    if positives == 0:
        raise InputError("average precision needs positives in the split")
    order = np.argsort(-s, kind="mergesort")
    y, s = y[order], s[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # the last index of each run of equal scores
    true_pos = np.cumsum(y)[last]
    precision = true_pos / (last + 1.0)
    recall = true_pos / positives
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def f1(labels: np.ndarray, predictions: np.ndarray) -> float:
    """F1 of the positive class for 0/1 predictions (0 when there is no positive at all)."""
    y, p = _check(labels, predictions)
    true_pos = float(np.sum((y == 1) & (p == 1)))
    denominator = 2 * true_pos + np.sum((y == 0) & (p == 1)) + np.sum((y == 1) & (p == 0))
    return float(2 * true_pos / denominator) if denominator else 0.0


def classification_metrics(
    labels: np.ndarray, probabilities: np.ndarray, threshold: float = 0.5
) -> dict[str, float]:
    """ROC-AUC, PR-AUC (average precision) and F1 at ``threshold``, over the whole split."""
    return {"roc_auc": roc_auc(labels, probabilities), "pr_auc": average_precision(labels, probabilities),
            "f1": f1(labels, (np.asarray(probabilities) >= threshold).astype(np.int64))}  # fmt: skip


def minibatch_average(
    metric: Callable[[np.ndarray, np.ndarray], float],
    labels: np.ndarray,
    scores: np.ndarray,
    *,
    batch: int = 8,
    draws: int = 1000,
    seed: int = 0,
) -> float:
    """The official code's protocol: the mean of ``metric`` over ``draws`` random mini-batches of ``batch`` pairs
    (batches with one class are skipped, as the metric is undefined there)."""
    y, s = _check(labels, scores)
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(draws):
        pick = rng.choice(len(y), size=min(batch, len(y)), replace=False)
        if 0 < y[pick].sum() < len(pick):
            values.append(metric(y[pick], s[pick]))
    if not values:
        raise InputError("no mini-batch held both classes")
    return float(np.mean(values))
