"""Classifiers in the paper's setting: the two-layer network of the theorems, deeper MLPs and a small CNN.

The two-layer network (paper §3) is f(x) = (1/√m) A σ(W x) with rows w_r ~ N(0, I_d / d), output weights
a_kr ~ Unif{±1}, m hidden units and no biases. In the NTK parameterisation the weights are stored as standard
normal (±1 at the output) and each layer divides by √(fan-in) in its forward pass, so the same scaling holds at
any width and a gradient step moves the function by O(1) however wide the network is; deeper MLPs stack such
layers. The standard parameterisation is torch's ``nn.Linear`` (Kaiming-uniform weights, biases), what most
users train. The CNN is a small convolutional network for inputs with a spatial shape (1-D signals or images).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

import torch
from torch import nn

from papers_common import InputError, Pretrained, read_json

Activation = Literal["relu", "tanh", "gelu"]
Parameterization = Literal["ntk", "standard"]
ACTIVATIONS: tuple[str, ...] = get_args(Activation)
PARAMETERIZATIONS: tuple[str, ...] = get_args(Parameterization)


def _activation(name: str) -> nn.Module:
    return {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU}[name]()


@dataclass(frozen=True)
class MLPConfig:
    """A fully connected classifier ``in_dim → width → … → classes``.

    Attributes:
        in_dim: input features d (inputs of another shape are flattened).
        classes: K, outputs (logits).
        width: m, units per hidden layer.
        depth: weight layers; 2 is the paper's two-layer network.
        activation: σ.
        parameterization: ``ntk`` (the theorems': N(0, 1) weights scaled by 1/√fan-in, ±1 output weights, no
            biases) or ``standard`` (``nn.Linear`` with its default initialisation and biases).
    """

    in_dim: int
    classes: int
    width: int = 1024
    depth: int = 2
    activation: Activation = "relu"
    parameterization: Parameterization = "ntk"

    def __post_init__(self) -> None:
        for name, least in (("in_dim", 1), ("classes", 2), ("width", 1), ("depth", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise InputError(f"{name} must be an integer >= {least}, got {value!r}")
        if self.activation not in ACTIVATIONS:
            raise InputError(
                f"unknown activation {self.activation!r}; choose one of {', '.join(ACTIVATIONS)}"
            )
        if self.parameterization not in PARAMETERIZATIONS:
            raise InputError(
                f"unknown parameterization {self.parameterization!r}; choose one of {', '.join(PARAMETERIZATIONS)}"
            )


class NTKLinear(nn.Module):
    """y = x Wᵀ / √fan_in with W stored unscaled: N(0, 1), or Unif{±1} for ``rademacher`` (no bias)."""

    def __init__(self, fan_in: int, fan_out: int, *, rademacher: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(fan_out, fan_in))
        self.rademacher = rademacher
        self.reset_parameters()

    def reset_parameters(self) -> None:
        with torch.no_grad():
            if self.rademacher:
                self.weight.copy_(torch.randint(0, 2, self.weight.shape).to(self.weight) * 2 - 1)
            else:
                self.weight.normal_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.weight.t() / math.sqrt(self.weight.shape[1])


class MLPClassifier(Pretrained, nn.Module):
    """Logits ``(B, classes)`` of inputs ``(B, *shape)`` with prod(shape) = ``in_dim``."""

    config_class = MLPConfig

    def __init__(self, config: MLPConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        sizes = [c.in_dim] + [c.width] * (c.depth - 1) + [c.classes]
        layers: list[nn.Module] = []
        for i, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
            last = i == len(sizes) - 2
            if c.parameterization == "ntk":
                layers.append(NTKLinear(fan_in, fan_out, rademacher=last and c.depth > 1))
            else:
                layers.append(nn.Linear(fan_in, fan_out))
            if not last:
                layers.append(_activation(c.activation))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(x.shape[0], -1)
        if flat.shape[1] != self.config.in_dim:
            raise InputError(f"the network takes {self.config.in_dim} input features, got {flat.shape[1]}")
        return self.layers(flat)


@dataclass(frozen=True)
class CNNConfig:
    """A small CNN: ``len(channels)`` blocks of 3-wide convolution + activation (+ 2× max-pool after the
    first), global average pooling and a linear layer, with torch's default initialisation.

    Attributes:
        in_shape: (C, L) for 1-D signals or (C, H, W) for images.
        classes: K.
        channels: output channels of each convolution block.
        activation: σ after each convolution.
    """

    in_shape: tuple[int, ...]
    classes: int
    channels: tuple[int, ...] = field(default=(32, 64))
    activation: Activation = "relu"

    def __post_init__(self) -> None:
        object.__setattr__(self, "in_shape", tuple(int(s) for s in self.in_shape))
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))
        if len(self.in_shape) not in (2, 3) or min(self.in_shape) < 1:
            raise InputError(f"a CNN needs inputs of shape (C, L) or (C, H, W), got {self.in_shape}")
        if self.classes < 2 or not self.channels or min(self.channels) < 1:
            raise InputError(f"a CNN needs >= 2 classes and >= 1 block, got {self.classes}, {self.channels}")
        if self.activation not in ACTIVATIONS:
            raise InputError(
                f"unknown activation {self.activation!r}; choose one of {', '.join(ACTIVATIONS)}"
            )


class CNNClassifier(Pretrained, nn.Module):
    """Logits ``(B, classes)`` of inputs ``(B, *in_shape)`` (a flat ``(B, prod(in_shape))`` is reshaped)."""

    config_class = CNNConfig

    def __init__(self, config: CNNConfig) -> None:
        super().__init__()
        self.config = config
        two_d = len(config.in_shape) == 3
        conv, pool = (nn.Conv2d, nn.MaxPool2d) if two_d else (nn.Conv1d, nn.MaxPool1d)
        blocks: list[nn.Module] = []
        channels = config.in_shape[0]
        for i, out in enumerate(config.channels):
            blocks += [conv(channels, out, 3, padding=1), _activation(config.activation)]
            if i == 0:
                blocks.append(pool(2))
            channels = out
        self.features = nn.Sequential(*blocks)
        self.head = nn.Linear(channels, config.classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(x.shape[0], *self.config.in_shape)
        h = self.features(x)
        return self.head(h.flatten(2).mean(-1))


Classifier = MLPClassifier | CNNClassifier


def make_classifier(
    kind: str, in_shape: tuple[int, ...], classes: int, *, width: int | None = None, depth: int | None = None,
    activation: Activation = "relu", parameterization: Parameterization = "ntk",
) -> Classifier:  # fmt: skip
    """``two-layer`` (the theorems' network), ``mlp`` (``depth`` weight layers) or ``cnn``, for inputs of
    per-example shape ``in_shape`` and ``classes`` labels.

    ``width`` defaults to 1,024 and ``depth`` to 2. The ``cnn`` takes only ``activation`` (its channels are fixed,
    its initialisation is torch's) and ``two-layer`` has depth 2: a setting the chosen model would not use is
    refused rather than ignored.
    """
    in_dim = math.prod(in_shape)
    if kind == "two-layer":
        if depth not in (None, 2):
            raise InputError(
                f"the two-layer network has depth 2, got depth={depth}; use kind='mlp' for others"
            )
        return MLPClassifier(
            MLPConfig(in_dim, classes, 1024 if width is None else width, 2, activation, parameterization)
        )
    if kind == "mlp":
        return MLPClassifier(
            MLPConfig(
                in_dim,
                classes,
                1024 if width is None else width,
                2 if depth is None else depth,
                activation,
                parameterization,
            )
        )
    if kind == "cnn":
        if width is not None or depth is not None:
            raise InputError(
                "the cnn has fixed channels (32, 64); width and depth apply to two-layer and mlp"
            )
        shape = in_shape if len(in_shape) in (2, 3) else (1, in_dim)
        return CNNClassifier(CNNConfig(shape, classes, activation=activation))
    raise InputError(f"unknown model {kind!r}; choose one of two-layer, mlp, cnn")


def load_classifier(path: str | Path, *, map_location: str | torch.device = "cpu") -> Classifier:
    """A classifier saved with ``save_pretrained`` (either kind, told apart by config.json's architecture)."""
    folder = Path(path)
    config = read_json(folder / "config.json" if folder.is_dir() else folder, "model config")
    kind = (config.get("architectures") or [""])[0]
    cls = {"MLPClassifier": MLPClassifier, "CNNClassifier": CNNClassifier}.get(kind)
    if cls is None:
        raise InputError(f"{folder}: config.json names architecture {kind!r}, not an advsep classifier")
    return cls.from_pretrained(folder, map_location=map_location)
