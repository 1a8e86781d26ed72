"""The physics-informed loss (paper §3): Σ_region w_region · mean(residual²) over one batch per region."""

from __future__ import annotations

import torch
from torch import nn

from pinn_stein.derivatives import Method, derivatives, model_value
from pinn_stein.pdes import PDE, Points
from pinn_stein.smoothing import Smoothing


def sample_batch(
    pde: PDE, sizes: dict[str, int], generator: torch.Generator, like: torch.Tensor
) -> dict[str, Points]:
    """Fresh random points for every region, ``sizes[region]`` each."""
    return {region: pde.sample(region, sizes[region], generator, like) for region in pde.regions}


def physics_loss(
    pde: PDE,
    g: nn.Module,
    batch: dict[str, Points],
    weights: dict[str, float],
    *,
    method: Method,
    smoothing: Smoothing,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Weighted sum of mean squared residuals and the unweighted parts.

    The domain term uses the PDE residual from ``method``'s derivatives; every other region the squared misfit
    between the method's model (smoothed f for Stein methods, raw g otherwise) and the prescribed values.

    Returns:
        ``(total, {region: mean squared residual})``, scalars differentiable in θ.
    """
    parts: dict[str, torch.Tensor] = {}
    for region, points in batch.items():
        if region == "domain":
            found = derivatives(
                g, points.x, points.t, method=method, smoothing=smoothing, generator=generator
            )
            residual = pde.residual(points, found)
        else:
            value = model_value(
                g, points.x, points.t, method=method, smoothing=smoothing, generator=generator
            )
            residual = value - pde.target(region, points)
        parts[region] = residual.square().mean()
    total = sum(weights[region] * part for region, part in parts.items())
    return total, parts
