"""One separability experiment and sweeps over its settings (paper §4–5).

An experiment builds a classifier from a seed, optionally trains it, makes the noise of every training and test
example with the chosen labels (the true ones, or a seeded shuffle of them for the control), fits a linear probe
on the training noises and scores it on the test noises, against the labels that built the noise and against
the true ones. The same probe on the clean inputs is the baseline.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal, get_args

import torch
from torch import nn

from advsep.data import Dataset
from advsep.models import Activation, Parameterization, make_classifier
from advsep.noise import Method, generate_noise
from advsep.probe import Backend, accuracy_of, linear_probe
from advsep.train import train_classifier
from papers_common import InputError, progress

Labels = Literal["true", "shuffled"]
Axis = Literal["width", "epochs", "lr", "depth", "steps"]
AXES: tuple[str, ...] = get_args(Axis)


@dataclass(frozen=True)
class Setup:
    """Everything one experiment needs besides the data (defaults: the theorem's network at initialisation).

    Only what the model uses is kept: the ``cnn`` has fixed channels (32, 64) and torch's standard
    initialisation, so its ``width`` and ``depth`` are None and its parameterization ``standard``; ``two-layer``
    refuses a depth other than 2.
    """

    model: str = "two-layer"
    width: int | None = 1024
    depth: int | None = 2
    activation: Activation = "relu"
    parameterization: Parameterization = "ntk"
    epochs: int = 0
    lr: float = 0.1
    batch_size: int = 128
    method: Method = "fgsm"
    eps: float = 0.1
    steps: int = 10
    labels: Labels = "true"
    probe: Backend = "lbfgs"
    seed: int = 0

    def __post_init__(self) -> None:
        if self.labels not in get_args(Labels):
            raise InputError(f"labels must be 'true' or 'shuffled', got {self.labels!r}")
        if self.model == "cnn":
            object.__setattr__(self, "width", None)
            object.__setattr__(self, "depth", None)
            object.__setattr__(self, "parameterization", "standard")
        elif self.model == "two-layer" and self.depth != 2:
            raise InputError(f"the two-layer network has depth 2, got depth={self.depth}; use model='mlp'")


def shuffled_labels(y: torch.Tensor, seed: int) -> torch.Tensor:
    """A seeded permutation of ``y`` ``(N,)``: the same label counts, no relation to the inputs."""
    return y[torch.randperm(y.shape[0], generator=torch.Generator().manual_seed(seed))]


def clean_probe(data: Dataset, backend: Backend = "lbfgs") -> float:
    """Test accuracy of the linear probe on the clean inputs: the baseline the noises are compared with."""
    return linear_probe(data.x_train, data.y_train, data.x_test, data.y_test, backend=backend,
                        classes=data.classes).test_accuracy  # fmt: skip


@dataclass
class Outcome:
    """One experiment: its measured numbers, the network the noises came from and the noises with their labels.

    ``noise_train`` ``(N, ...)`` and ``noise_test`` ``(M, ...)`` were built with ``labels_train`` / ``labels_test``
    (the true labels, or their shuffle).
    """

    metrics: dict[str, Any]
    model: nn.Module
    noise_train: torch.Tensor
    noise_test: torch.Tensor
    labels_train: torch.Tensor
    labels_test: torch.Tensor


def experiment(data: Dataset, setup: Setup) -> Outcome:
    """Train (if ``setup.epochs``), make the noises, probe them.

    ``metrics`` holds the setup and ``noise_train_accuracy`` / ``noise_test_accuracy`` (the probe scored against
    the labels that built the noise), ``noise_test_accuracy_true_labels`` (the same probe's test predictions
    against the true labels; equal to the former for ``labels="true"``), ``distance`` (relative, from the initial
    weights), ``model_train_accuracy`` / ``model_test_accuracy`` and ``majority_class_accuracy`` (the training
    accuracy of always predicting the most common class).
    """
    torch.manual_seed(setup.seed)
    sizes = {"width": setup.width, "depth": setup.depth} if setup.model != "cnn" else {}
    model = make_classifier(setup.model, data.shape, data.classes, activation=setup.activation,
                            parameterization=setup.parameterization, **sizes)  # fmt: skip
    trained = train_classifier(model, data, epochs=setup.epochs, lr=setup.lr, batch_size=setup.batch_size,
                               seed=setup.seed, desc=f"train {setup.model}")  # fmt: skip
    y_train, y_test = data.y_train, data.y_test
    if setup.labels == "shuffled":
        y_train, y_test = shuffled_labels(y_train, setup.seed + 1), shuffled_labels(y_test, setup.seed + 2)
    kwargs = {"eps": setup.eps, "steps": setup.steps}
    noise_train = generate_noise(model, data.x_train, y_train, setup.method, **kwargs)
    noise_test = generate_noise(model, data.x_test, y_test, setup.method, **kwargs)
    probe = linear_probe(noise_train, y_train, noise_test, y_test, backend=setup.probe, classes=data.classes)
    metrics = {
        **asdict(setup),
        "noise_train_accuracy": probe.train_accuracy,
        "noise_test_accuracy": probe.test_accuracy,
        "noise_test_accuracy_true_labels": accuracy_of(probe.test_predictions, data.y_test),
        "distance": trained.distance,
        "model_train_accuracy": trained.train_accuracy,
        "model_test_accuracy": trained.test_accuracy,
        "majority_class_accuracy": trained.majority_accuracy,
    }
    return Outcome(metrics, model, noise_train, noise_test, y_train, y_test)


def run_experiment(data: Dataset, setup: Setup) -> dict[str, Any]:
    """The measured numbers of :func:`experiment`."""
    return experiment(data, setup).metrics


def sweep(data: Dataset, base: Setup, axis: Axis, values: list[Any]) -> list[dict[str, Any]]:
    """:func:`run_experiment` for each value of ``axis`` (``steps`` sweeps PGD's step count), in order."""
    if axis not in AXES:
        raise InputError(f"unknown sweep axis {axis!r}; choose one of {', '.join(AXES)}")
    if not values:
        raise InputError(f"the {axis} sweep needs at least one value")
    if base.model == "cnn" and axis in ("width", "depth"):
        raise InputError(f"the cnn has fixed channels (32, 64); sweep {axis} with the two-layer or mlp model")
    rows = []
    bar = progress(total=len(values), desc=f"sweep {axis}", unit="run")
    for value in values:
        rows.append({"axis": axis, "value": value, **run_experiment(data, sweep_setup(base, axis, value))})
        bar.update(1)
    bar.close()
    return rows


def sweep_setup(base: Setup, axis: Axis, value: Any) -> Setup:
    """The setup of one point of a sweep: ``base`` with ``axis`` set to ``value`` (a depth sweep of the two-layer
    network uses ``mlp``, a ``steps`` sweep uses PGD)."""
    changes: dict[str, Any] = {axis: value}
    if axis == "depth" and base.model == "two-layer":
        changes["model"] = "mlp"
    if axis == "steps":
        changes["method"] = "pgd"
    if axis == "lr" and not math.isfinite(float(value)):
        raise InputError(f"learning rates must be finite, got {value}")
    return replace(base, **changes)
