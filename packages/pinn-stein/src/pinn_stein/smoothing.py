"""Gaussian smoothing f(x, t) = E_δ g(x + δ_x, t + δ_t), δ_x ~ N(0, σ_x² I_d), δ_t ~ N(0, σ_t²) (paper §3).

f is never available in closed form: it is estimated by a Monte Carlo mean over noisy copies of each point, in
training (boundary and initial losses) and at test time. With antithetic pairs (x ± δ) the mean is exact for the
odd part of g around x, which lowers its variance at no extra cost.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from papers_common import InputError
from pinn_stein.fields import check_points, network_input, scalar_output


@dataclass(frozen=True)
class Smoothing:
    """Noise scales and Monte Carlo size of the smoothed model.

    Attributes:
        sigma_x: σ_x, the spatial noise scale (paper: 0.01).
        sigma_t: σ_t, the time noise scale (paper: 0.01); unused by time-independent problems.
        samples: N, noisy copies per point (paper: 2048). Antithetic estimators use N/2 pairs, so N must be even.
    """

    sigma_x: float = 0.01
    sigma_t: float = 0.01
    samples: int = 2048

    def __post_init__(self) -> None:
        for name in ("sigma_x", "sigma_t"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise InputError(f"Smoothing.{name} must be a positive finite number, got {value!r}")
        if not isinstance(self.samples, int) or self.samples < 1:
            raise InputError(f"Smoothing.samples must be a positive integer, got {self.samples!r}")

    def pairs(self) -> int:
        """N/2, the number of antithetic pairs; an odd N is an error."""
        if self.samples < 2 or self.samples % 2:
            raise InputError(
                f"antithetic estimators need an even number of samples (N/2 pairs), got samples={self.samples}"
            )
        return self.samples // 2

    def scales(self, dim: int, timed: bool, like: torch.Tensor) -> torch.Tensor:
        """``(dim,)`` or ``(dim + 1,)`` per-input noise scales ``[σ_x, ..., σ_x, σ_t]``."""
        scales = like.new_full((dim + int(timed),), self.sigma_x)
        if timed:
            scales[-1] = self.sigma_t
        return scales


def gaussian_noise(
    count: int,
    x: torch.Tensor,
    t: torch.Tensor | None,
    smoothing: Smoothing,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """``(count, B, D)`` draws of δ = (δ_x, δ_t) for the ``B`` points, D = d (+ 1 with time)."""
    batch, dim = x.shape
    columns = dim + int(t is not None)
    noise = torch.randn(count, batch, columns, generator=generator, device=x.device, dtype=x.dtype)
    return noise * smoothing.scales(dim, t is not None, x)


def smoothed_value(
    g: nn.Module | torch.nn.Module,
    x: torch.Tensor,
    t: torch.Tensor | None,
    smoothing: Smoothing,
    *,
    antithetic: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Monte Carlo estimate ``(B,)`` of f(x, t) from N evaluations of g per point.

    Args:
        g: network ``(n, D) -> (n, 1)`` or ``(n,)``.
        x: ``(B, d)`` points; t: ``(B,)`` times or None.
        antithetic: N/2 pairs g(z ± δ) (N even) instead of N independent draws.
    """
    check_points(x, t)
    z = network_input(x, t)
    if antithetic:
        half = gaussian_noise(smoothing.pairs(), x, t, smoothing, generator)
        noise = torch.cat([half, -half])
    else:
        noise = gaussian_noise(smoothing.samples, x, t, smoothing, generator)
    rows = noise.shape[0] * noise.shape[1]
    values = scalar_output(g((z + noise).reshape(rows, -1)), rows)
    return values.reshape(noise.shape[:2]).mean(0)
