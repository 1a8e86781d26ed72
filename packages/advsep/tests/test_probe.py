"""Linear probes: separable and random-label toy sets, agreement between backends, bad input."""

from __future__ import annotations

import pytest
import torch

from advsep import linear_probe
from papers_common import InputError


def separable(n: int, d: int = 6, k: int = 3, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Points labelled by the largest of k fixed linear scores, with a margin: linearly separable by construction."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(d, k, generator=g)
    x = torch.randn(4 * n, d, generator=g)
    scores = x @ w
    top = scores.topk(2, dim=1).values
    keep = (top[:, 0] - top[:, 1]) > 0.3
    return x[keep][:n], scores[keep][:n].argmax(1)


@pytest.mark.parametrize("backend", ["lbfgs", "sklearn", "precursor"])
def test_a_linearly_separable_set_is_learned(backend):
    x, y = separable(600)
    result = linear_probe(x[:400], y[:400], x[400:], y[400:], backend=backend, l2=1e-6)
    assert result.train_accuracy == 1.0
    assert result.test_accuracy >= 0.97
    assert result.classes == 3
    assert result.test_predictions.shape == (200,)
    assert float((result.test_predictions == y[400:]).double().mean()) == result.test_accuracy


def test_ridge_separates_two_separated_clusters():
    g = torch.Generator().manual_seed(1)
    y = torch.randint(0, 2, (300,), generator=g)
    x = torch.randn(300, 8, generator=g) + 4.0 * (2 * y[:, None] - 1)
    result = linear_probe(x[:200], y[:200], x[200:], y[200:], backend="ridge")
    assert result.train_accuracy == result.test_accuracy == 1.0


def test_random_labels_are_learned_on_training_points_only():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(1200, 20, generator=g)
    y = torch.randint(0, 4, (1200,), generator=g)
    result = linear_probe(x[:200], y[:200], x[200:], y[200:])
    assert result.test_accuracy == pytest.approx(0.25, abs=0.05)  # chance on unseen points
    assert result.train_accuracy > 0.45  # 20 features memorise part of 200 random labels


def test_lbfgs_and_sklearn_agree_on_the_same_objective():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(500, 10, generator=g)
    scores = x[:, :3] @ torch.randn(3, 3, generator=g) + 0.7 * torch.randn(500, 3, generator=g)
    y = scores.argmax(1)  # three classes: sklearn's multinomial objective is then ours exactly
    ours = linear_probe(x[:300], y[:300], x[300:], y[300:], backend="lbfgs", l2=1e-2)
    anchor = linear_probe(x[:300], y[:300], x[300:], y[300:], backend="sklearn", l2=1e-2)
    assert abs(ours.test_accuracy - anchor.test_accuracy) <= 0.01
    assert abs(ours.train_accuracy - anchor.train_accuracy) <= 0.01


def test_scale_of_the_features_does_not_matter():
    x, y = separable(400, seed=4)
    a = linear_probe(x[:300], y[:300], x[300:], y[300:])
    b = linear_probe(1e-3 * x[:300], y[:300], 1e-3 * x[300:], y[300:])
    assert a.test_accuracy == b.test_accuracy


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"backend": "svm"}, "unknown probe backend 'svm'"),
        ({"l2": -1.0}, "l2 penalty must be non-negative"),
        ({"test_x": torch.zeros(5, 4)}, "training features have 6 dimensions, its test features 4"),
        ({"train_y": torch.zeros(9, dtype=torch.long)}, "probe training set: 10 examples but labels"),
        ({"test_y": torch.full((5,), 7)}, r"probe test set: label 7 is outside \[0, 3\)"),
    ],
)
def test_bad_input_is_named(change, message):
    args = {"train_x": torch.randn(10, 6), "train_y": torch.arange(10) % 3, "test_x": torch.randn(5, 6),
            "test_y": torch.arange(5) % 3, "classes": 3}  # fmt: skip
    args.update(change)
    with pytest.raises(InputError, match=message):
        linear_probe(args.pop("train_x"), args.pop("train_y"), args.pop("test_x"), args.pop("test_y"), **args)
