"""Global metrics equal scikit-learn's; the official mini-batch average is a different number."""

from __future__ import annotations

import numpy as np
import pytest
from portal_learning.metrics import average_precision, classification_metrics, f1, minibatch_average, roc_auc
from sklearn.metrics import average_precision_score, f1_score, roc_auc_score

from papers_common import InputError


@pytest.mark.parametrize("seed", range(6))
def test_metrics_equal_scikit_learn_on_random_inputs(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 400))
    labels = rng.integers(0, 2, n)
    labels[:2] = [0, 1]
    scores = rng.normal(size=n) + labels * rng.uniform(0, 2)
    if seed % 2:  # many ties
        scores = np.round(scores, 1)
    assert roc_auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    assert average_precision(labels, scores) == pytest.approx(
        average_precision_score(labels, scores), abs=1e-12
    )
    predictions = (scores > 0.5).astype(int)
    assert f1(labels, predictions) == pytest.approx(f1_score(labels, predictions), abs=1e-12)


def test_perfect_and_reversed_rankings():
    labels = np.array([0, 0, 1, 1])
    assert roc_auc(labels, np.array([0.1, 0.2, 0.8, 0.9])) == 1.0
    assert roc_auc(labels, np.array([0.9, 0.8, 0.2, 0.1])) == 0.0
    assert roc_auc(labels, np.zeros(4)) == 0.5
    assert classification_metrics(labels, np.array([0.1, 0.2, 0.8, 0.9]))["f1"] == 1.0


def test_the_minibatch_average_differs_from_the_global_value():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 2000)
    scores = labels * 0.6 + rng.normal(size=2000) + np.repeat(rng.normal(size=20), 100)  # group shifts
    whole = roc_auc(labels, scores)
    batches = minibatch_average(roc_auc, labels, scores, batch=8, draws=500)
    assert 0.5 < whole < 1.0
    assert batches != pytest.approx(whole, abs=1e-3)


def test_bad_inputs_are_named():
    with pytest.raises(InputError, match="both classes"):
        roc_auc(np.ones(4), np.arange(4.0))
    with pytest.raises(InputError, match="3 labels but 2 scores"):
        roc_auc(np.array([0, 1, 1]), np.array([0.1, 0.2]))
    with pytest.raises(InputError, match="0 or 1"):
        roc_auc(np.array([0, 2]), np.array([0.1, 0.2]))
