"""Adversarial noises from gradient attacks, batched: one backward pass per batch and step (paper §2).

For a classifier f and cross-entropy ℓ, the noise of an example (x, y) is built from g = ∇_x ℓ(f(x), y):

- ``fgsm``: δ = ε · sign(g), the one-step L∞ attack (Goodfellow et al.);
- ``grad``: δ = g, the raw input gradient;
- ``grad_l2``: δ = ε · g / ‖g‖₂, the one-step L2 attack (δ = 0 where g = 0);
- ``pgd``: K steps x ← Π_{‖x − x₀‖∞ ≤ ε}(x + α · sign(∇_x ℓ)), α = ε/4 by default, optionally from a uniform
  random start in the ball; δ = x_K − x₀.

The label y that builds the noise is an argument: the true labels, or any others (the paper's control with
random labels). Each example's gradient is its own (the loss is summed over the batch, not averaged), the
network's parameters get no gradient and its train/eval mode is restored afterwards. ``clip`` keeps x + δ in a
box (e.g. (0, 1) for images), as attack libraries do.
"""

from __future__ import annotations

import math
from typing import Literal, get_args

import torch
from torch import nn
from torch.nn import functional as F

from papers_common import InputError

Method = Literal["fgsm", "grad", "grad_l2", "pgd"]
METHODS: tuple[str, ...] = get_args(Method)


def check_labelled(
    x: torch.Tensor, y: torch.Tensor, classes: int | None = None, *, what: str = "inputs"
) -> None:
    """Raise :class:`InputError` unless ``x`` ``(N, ...)`` is finite and ``y`` ``(N,)`` holds labels in [0, classes)."""
    if x.dim() < 2:
        raise InputError(f"{what}: expected a batch (N, features...), got shape {tuple(x.shape)}")
    if y.dim() != 1 or y.shape[0] != x.shape[0]:
        raise InputError(f"{what}: {x.shape[0]} examples but labels of shape {tuple(y.shape)}")
    if y.dtype.is_floating_point or y.dtype == torch.bool:
        raise InputError(f"{what}: labels must be integers, got {y.dtype}")
    if not bool(torch.isfinite(x).all()):
        bad = int((~torch.isfinite(x)).reshape(x.shape[0], -1).any(1).nonzero()[0])
        raise InputError(f"{what}: example {bad} has a non-finite value")
    if y.numel() and (int(y.min()) < 0 or (classes is not None and int(y.max()) >= classes)):
        found = int(y.min()) if int(y.min()) < 0 else int(y.max())
        limit = f"[0, {classes})" if classes is not None else ">= 0"
        raise InputError(f"{what}: label {found} is outside {limit}")


def _classes(model: nn.Module, x: torch.Tensor) -> int:
    config = getattr(model, "config", None)
    if config is not None and hasattr(config, "classes"):
        return int(config.classes)
    with torch.no_grad():
        return int(model(x[:1]).shape[1])


def input_gradient(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """g = ∇_x ℓ(f(x), y) per example, ``x.shape``: the gradient of the summed cross-entropy."""
    leaf = x.detach().requires_grad_(True)  # shares x's storage; x itself is not changed
    with torch.enable_grad():
        loss = F.cross_entropy(model(leaf), y, reduction="sum")
        (gradient,) = torch.autograd.grad(loss, leaf)
    return gradient


def _pgd(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, steps: int, step_size: float,
    random_start: bool, clip: tuple[float, float] | None, generator: torch.Generator | None,
) -> torch.Tensor:  # fmt: skip
    adv = x
    if random_start:
        start = torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        adv = x + eps * (2 * start - 1)
    for _ in range(steps):
        if clip is not None:
            adv = adv.clamp(*clip)
        adv = adv + step_size * input_gradient(model, adv, y).sign()
        adv = torch.minimum(torch.maximum(adv, x - eps), x + eps)
    if clip is not None:
        adv = adv.clamp(*clip)
    return adv - x


def generate_noise(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    method: Method = "fgsm",
    *,
    eps: float = 8 / 255,
    steps: int = 10,
    step_size: float | None = None,
    random_start: bool = False,
    clip: tuple[float, float] | None = None,
    batch_size: int = 1024,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """The adversarial noise δ ``x.shape`` of each example (see the module docstring).

    Args:
        model: any classifier mapping ``(B, ...)`` to logits ``(B, K)``; it is put in eval mode while the noise
            is made (dropout off, batch-norm statistics frozen) and given back in its own mode.
        x: ``(N, ...)`` inputs; y: ``(N,)`` labels in [0, K) that the noise is built with.
        method: ``fgsm``, ``grad``, ``grad_l2`` or ``pgd``.
        eps: ε (unused by ``grad``); steps, step_size, random_start: PGD's K, α (default ε/4) and start.
        clip: a (low, high) box for x + δ (None: none).
        batch_size: examples per backward pass.
        generator: for PGD's random start.
    """
    if method not in METHODS:
        raise InputError(f"unknown noise method {method!r}; choose one of {', '.join(METHODS)}")
    if not (math.isfinite(eps) and eps > 0):
        raise InputError(f"eps must be positive and finite, got {eps}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise InputError(f"PGD steps must be a positive integer, got {steps!r}")
    alpha = eps / 4 if step_size is None else step_size
    if not (math.isfinite(alpha) and alpha > 0):
        raise InputError(f"the PGD step size must be positive and finite, got {alpha}")
    if batch_size < 1:
        raise InputError(f"batch_size must be at least 1, got {batch_size}")
    if x.shape[0] == 0:
        return x.detach().clone()
    check_labelled(x, y, _classes(model, x))
    was_training = model.training
    model.eval()
    try:
        parts = []
        for start in range(0, x.shape[0], batch_size):
            xb, yb = x[start : start + batch_size].detach(), y[start : start + batch_size]
            if method == "pgd":
                parts.append(_pgd(model, xb, yb, eps, steps, alpha, random_start, clip, generator))
                continue
            g = input_gradient(model, xb, yb)
            if method == "fgsm":
                delta = eps * g.sign()
            elif method == "grad_l2":
                norm = g.reshape(g.shape[0], -1).norm(dim=1).reshape(-1, *[1] * (g.dim() - 1))
                delta = eps * g / norm.clamp_min(torch.finfo(g.dtype).tiny)
            else:
                delta = g
            if clip is not None:
                delta = (xb + delta).clamp(*clip) - xb
            parts.append(delta)
        return torch.cat(parts)
    finally:
        model.train(was_training)
