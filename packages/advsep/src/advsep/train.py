"""Moving a network away from its initialisation: plain SGD on the cross-entropy for some epochs (paper §5).

The paper's degradation statement is about how far the network has moved; :class:`TrainReport` records the
relative distance ‖θ − θ₀‖ / ‖θ₀‖ next to the accuracies. A network that trains for some epochs and stays no
better than always predicting the most common class is logged as a warning: its noises are those of a network
that learned nothing (often features on very different scales, or a learning rate too small or too large).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from advsep.data import Dataset
from papers_common import InputError, progress

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainReport:
    """What training did: epochs, learning rate, relative distance from the initial weights, accuracies, and
    ``majority_accuracy``, the training accuracy of always predicting the most common training label."""

    epochs: int
    lr: float
    distance: float
    train_accuracy: float
    test_accuracy: float
    majority_accuracy: float

    @property
    def at_majority(self) -> bool:
        """Trained, yet no better than the majority class (within 0.01)."""
        return self.epochs > 0 and self.train_accuracy <= self.majority_accuracy + 0.01


def _flat(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, batch_size: int = 2048) -> float:
    """Fraction of ``x`` ``(N, ...)`` that ``model`` labels as ``y`` ``(N,)`` (eval mode, restored after)."""
    was_training = model.training
    model.eval()
    with torch.no_grad():
        right = sum(int((model(x[i : i + batch_size]).argmax(1) == y[i : i + batch_size]).sum())
                    for i in range(0, x.shape[0], batch_size))  # fmt: skip
    model.train(was_training)
    return right / max(1, x.shape[0])


def train_classifier(
    model: nn.Module,
    data: Dataset,
    *,
    epochs: int,
    lr: float,
    batch_size: int = 128,
    momentum: float = 0.0,
    seed: int = 0,
    desc: str = "train",
) -> TrainReport:
    """SGD on the training split for ``epochs`` passes of shuffled mini-batches; the model is changed in place.

    ``epochs = 0`` leaves the network at initialisation (and still reports its accuracies).
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        raise InputError(f"epochs must be a non-negative integer, got {epochs!r}")
    if not (math.isfinite(lr) and lr > 0):
        raise InputError(f"the learning rate must be positive and finite, got {lr}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"the batch size must be an integer >= 1, got {batch_size!r}")
    if not 0 <= momentum < 1:
        raise InputError(f"the momentum must be in [0, 1), got {momentum}")
    start = _flat(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    generator = torch.Generator().manual_seed(seed)
    n = data.x_train.shape[0]
    model.train()
    bar = progress(total=epochs * math.ceil(n / batch_size), desc=desc, unit="batch", disable=epochs == 0)
    for _ in range(epochs):
        order = torch.randperm(n, generator=generator)
        for i in range(0, n, batch_size):
            index = order[i : i + batch_size]
            loss = F.cross_entropy(model(data.x_train[index]), data.y_train[index])
            if not bool(torch.isfinite(loss)):
                bar.close()
                raise InputError(
                    f"training diverged (loss {loss.item()}) at lr={lr}; use a smaller learning rate"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            bar.update(1)
    bar.close()
    moved = float((_flat(model) - start).norm() / start.norm().clamp_min(1e-30))
    report = TrainReport(epochs, lr, moved, accuracy(model, data.x_train, data.y_train),
                         accuracy(model, data.x_test, data.y_test), data.majority_share())  # fmt: skip
    if report.at_majority:
        LOG.warning(
            "%s: after %d epochs at lr %g the network's training accuracy is %.3f, no better than always predicting "
            "the most common class (%.3f): it has learned nothing, so its noises are those of an untrained "
            "network; check the features' scale (the user's data is standardised unless --no-standardize) and "
            "the learning rate", data.name, epochs, lr, report.train_accuracy, report.majority_accuracy,
        )  # fmt: skip
    return report
