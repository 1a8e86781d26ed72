"""Linear probes: does a linear classifier fitted on the training examples' noises classify the test noises?

Features are flattened to ``(N, D)``. Backends:

- ``lbfgs`` (default): multinomial logistic regression on standardised features (training-set mean and
  standard deviation per feature), L2 penalty λ‖W‖² on the weights, full-batch L-BFGS with a strong-Wolfe line
  search, in float64;
- ``ridge``: least squares on one-hot targets with the same standardisation, closed form
  (XᵀX + λN I)⁻¹XᵀY, prediction by the largest output;
- ``sklearn``: scikit-learn's ``LogisticRegression`` (lbfgs) on the same standardised features, the anchor;
- ``precursor``: the probe of Yu et al.'s linear-separability script, which the paper's authors wrote before
  it: global min–max scaling to [0, 1] (the training set's minimum and maximum), a linear layer, cross-entropy,
  L-BFGS with learning rate 0.5 for 50 full-batch steps, no penalty.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal, get_args

import torch
from torch.nn import functional as F

from advsep.noise import check_labelled
from papers_common import InputError

Backend = Literal["lbfgs", "ridge", "sklearn", "precursor"]
BACKENDS: tuple[str, ...] = get_args(Backend)


@dataclass(frozen=True)
class ProbeResult:
    """Accuracies of one probe; ``classes`` is K, so chance is 1/K for balanced labels.

    ``test_predictions`` ``(M,)`` are the probe's labels for the test features, to score against other labels
    without fitting again.
    """

    train_accuracy: float
    test_accuracy: float
    backend: str
    classes: int
    test_predictions: torch.Tensor = field(repr=False, compare=False)


def _standardise(train: torch.Tensor, test: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mean = train.mean(0)
    std = train.std(0, unbiased=False)
    scale = torch.where(std > 1e-12 * std.max().clamp_min(1e-300), std, torch.ones_like(std))
    return (train - mean) / scale, (test - mean) / scale


def _fit_logistic(
    x: torch.Tensor, y: torch.Tensor, classes: int, *, l2: float, lr: float, steps: int, max_iter: int,
    line_search: str | None,
) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    weight = torch.zeros(x.shape[1], classes, dtype=x.dtype, requires_grad=True)
    bias = torch.zeros(classes, dtype=x.dtype, requires_grad=True)
    optimizer = torch.optim.LBFGS(
        [weight, bias], lr=lr, max_iter=max_iter, line_search_fn=line_search, tolerance_grad=1e-9,
        tolerance_change=1e-12, history_size=20,
    )  # fmt: skip

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(x @ weight + bias, y) + l2 * weight.square().sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        for _ in range(steps):
            optimizer.step(closure)
    return weight.detach(), bias.detach()


def accuracy_of(predictions: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of ``predictions`` ``(M,)`` equal to ``y`` ``(M,)`` (NaN for none)."""
    return float((predictions == y).double().mean()) if y.numel() else float("nan")


def _result(train: torch.Tensor, ytr: torch.Tensor, test: torch.Tensor, yte: torch.Tensor, backend: str,
            k: int) -> ProbeResult:  # fmt: skip
    return ProbeResult(accuracy_of(train, ytr), accuracy_of(test, yte), backend, k, test)


def linear_probe(
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    test_x: torch.Tensor,
    test_y: torch.Tensor,
    *,
    backend: Backend = "lbfgs",
    classes: int | None = None,
    l2: float = 1e-4,
    max_iter: int = 500,
) -> ProbeResult:
    """Fit a linear classifier on ``(train_x, train_y)`` and score it on both sets.

    Args:
        train_x, test_x: ``(N, ...)`` features (noises or clean inputs), flattened to ``(N, D)``.
        train_y, test_y: ``(N,)`` integer labels.
        backend: see the module docstring.
        classes: K (default: the largest label + 1).
        l2: λ, the penalty of ``lbfgs`` and ``ridge`` (``sklearn`` uses C = 1 / (2 λ N), the same objective).
        max_iter: L-BFGS iterations of ``lbfgs`` and ``sklearn``.
    """
    if backend not in BACKENDS:
        raise InputError(f"unknown probe backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if not (math.isfinite(l2) and l2 >= 0):
        raise InputError(f"the probe's l2 penalty must be non-negative and finite, got {l2}")
    check_labelled(train_x, train_y, classes, what="probe training set")
    check_labelled(test_x, test_y, classes, what="probe test set")
    if train_x.shape[0] < 2:
        raise InputError(f"the probe needs at least 2 training examples, got {train_x.shape[0]}")
    k = classes if classes is not None else int(torch.cat([train_y, test_y]).max()) + 1
    xtr = train_x.reshape(train_x.shape[0], -1).double().cpu()
    xte = test_x.reshape(test_x.shape[0], -1).double().cpu()
    ytr, yte = train_y.long().cpu(), test_y.long().cpu()
    if xtr.shape[1] != xte.shape[1]:
        raise InputError(
            f"the probe's training features have {xtr.shape[1]} dimensions, its test features {xte.shape[1]}"
        )
    if backend == "precursor":
        low, high = xtr.min(), xtr.max()
        span = (high - low).clamp_min(1e-300)
        xtr, xte = (xtr - low) / span, (xte - low) / span
        w, b = _fit_logistic(xtr, ytr, k, l2=0.0, lr=0.5, steps=50, max_iter=1, line_search=None)
        return _result((xtr @ w + b).argmax(1), ytr, (xte @ w + b).argmax(1), yte, backend, k)
    xtr, xte = _standardise(xtr, xte)
    if backend == "lbfgs":
        w, b = _fit_logistic(
            xtr, ytr, k, l2=l2, lr=1.0, steps=1, max_iter=max_iter, line_search="strong_wolfe"
        )
    elif backend == "ridge":
        targets = F.one_hot(ytr, k).double()
        mean_x, mean_t = xtr.mean(0), targets.mean(0)
        xc, tc = xtr - mean_x, targets - mean_t
        gram = xc.T @ xc + max(l2, 1e-8) * xtr.shape[0] * torch.eye(xc.shape[1], dtype=xc.dtype)
        w = torch.linalg.solve(gram, xc.T @ tc)
        b = mean_t - mean_x @ w
    else:
        return _sklearn_probe(xtr, ytr, xte, yte, k, l2, max_iter)
    return _result((xtr @ w + b).argmax(1), ytr, (xte @ w + b).argmax(1), yte, backend, k)


def _sklearn_probe(
    xtr: torch.Tensor,
    ytr: torch.Tensor,
    xte: torch.Tensor,
    yte: torch.Tensor,
    k: int,
    l2: float,
    max_iter: int,
) -> ProbeResult:
    from sklearn.linear_model import LogisticRegression

    # sklearn minimises ½‖W‖² + C Σ ce, i.e. C N (mean ce + ‖W‖² / (2 C N)): the same objective at C = 1 / (2 λ N)
    c = 1.0 / (2 * l2 * xtr.shape[0]) if l2 > 0 else 1e12
    model = LogisticRegression(C=c, max_iter=max_iter, tol=1e-8)
    model.fit(xtr.numpy(), ytr.numpy())
    train = torch.as_tensor(model.predict(xtr.numpy()))
    test = torch.as_tensor(model.predict(xte.numpy())) if yte.numel() else yte.clone()
    return _result(train, ytr, test, yte, "sklearn", k)
