"""The inner maximisation of L∞ training (paper §5, Algorithm 1): move collocation points toward the largest
residual by projected sign-gradient ascent, as adversarial examples are found (PGD).

Starting from fresh points z⁰, each of K steps sets zᵏ⁺¹ = clip(zᵏ + η · sign(∇_z L(zᵏ))), where L is the
squared residual (per region: the PDE residual inside, u − g on the terminal slice) and clip keeps t in its
range. The sign makes the step independent of how L is averaged: each point moves by exactly η in every
coordinate. The official code does not bound x, so after K steps a point lies within Kη of its start in every
coordinate; ``radius`` bounds that distance and ``box`` bounds x itself, for users who need either.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from papers_common import InputError


@dataclass(frozen=True)
class Ascent:
    """Settings of the inner loop (defaults: the official code's ``grad_step_cnt`` 20, ``grad_step_size`` 0.05).

    Attributes:
        steps: K, sign-gradient steps per outer iteration (0: the plain L2 PINN).
        step_size: η, the move per coordinate per step.
        radius: optional bound on abs(x − x⁰) per coordinate (the L∞ ball of the starting point).
        box: optional bound on abs(x) per coordinate, applied after ``radius`` (it wins where they conflict).
    """

    steps: int = 20
    step_size: float = 0.05
    radius: float | None = None
    box: float | None = None

    def __post_init__(self) -> None:
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 0:
            raise InputError(f"adversarial steps K must be a non-negative integer, got {self.steps!r}")
        if not (math.isfinite(self.step_size) and self.step_size > 0):
            raise InputError(
                f"the adversarial step size eta must be positive and finite, got {self.step_size}"
            )
        for name in ("radius", "box"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise InputError(
                    f"the adversarial {name} must be positive and finite (or unset), got {value}"
                )


def sign_ascent(
    z: torch.Tensor,
    loss: Callable[[torch.Tensor], torch.Tensor],
    ascent: Ascent,
    *,
    t_range: tuple[float, float],
) -> torch.Tensor:
    """K projected sign-gradient ascent steps on the points ``z``; returns the moved points, detached.

    Args:
        z: ``(B, d + 1)`` starting points [x, t].
        loss: maps points ``(B, d + 1)`` to a scalar whose gradient in each point depends on that point only
            (a sum or mean of per-point squared residuals).
        ascent: K, η and the optional bounds.
        t_range: (low, high) that t is clamped to after each step: (0, T) inside, (T, T) on the terminal slice.

    One backward pass per step serves the whole batch. The network's parameters receive no gradient.
    """
    start = z.detach()
    low, high = t_range
    point = start
    for _ in range(ascent.steps):
        leaf = point.clone().requires_grad_(True)
        with torch.enable_grad():
            (gradient,) = torch.autograd.grad(loss(leaf), leaf)
        point = point + ascent.step_size * gradient.sign()
        x, t = point[:, :-1], point[:, -1:].clamp(low, high)
        if ascent.radius is not None:
            x = torch.maximum(torch.minimum(x, start[:, :-1] + ascent.radius), start[:, :-1] - ascent.radius)
        if ascent.box is not None:
            x = x.clamp(-ascent.box, ascent.box)
        point = torch.cat([x, t], dim=1)
    return point
