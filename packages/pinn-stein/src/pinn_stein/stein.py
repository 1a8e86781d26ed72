"""Stein's-identity estimators of the smoothed model's derivatives: forward passes only (paper §3).

For f(z) = E g(z + δ), δ ~ N(0, diag(s²)) with s = (σ_x, ..., σ_x, σ_t), Stein's identity gives

    ∂_j f(z)  = E[g(z + δ) δ_j] / s_j²,                        (first order)
    ∂_jj f(z) = E[g(z + δ) (δ_j² − s_j²)] / s_j⁴.               (second order)

The vanilla estimators average these over independent draws; their variance grows like 1/σ² and 1/σ⁴. The
variance-reduced estimators (the paper's improved ones) use antithetic pairs z ± δ and the un-noised output
g(z) as a control variate, which is allowed because E[δ_j] = 0 and E[δ_j² − s_j²] = 0:

    ∂_j f  ≈ mean[(g₊ − g₋) δ_j] / (2 s_j²),
    ∂_jj f ≈ mean[(g₊ + g₋ − 2 g₀)(δ_j² − s_j²)] / (2 s_j⁴).

For a smooth g, g₊ − g₋ = O(σ) and g₊ + g₋ − 2g₀ = O(σ²), so both estimators stay O(1) as σ → 0.

The shifted evaluations go through :func:`pinn_stein.smoothing.shifted_values`, which computes a linear first
layer once per point and once per draw (W z + b and W δ) instead of once per network row.
"""

from __future__ import annotations

import torch
from torch import nn

from pinn_stein.fields import Derivatives, check_points, network_input
from pinn_stein.smoothing import Smoothing, gaussian_noise, shifted_values


def _split(first: torch.Tensor, dim: int, timed: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(B, D)`` first-order estimates -> spatial gradient ``(B, d)`` and ∂_t ``(B,)`` (or None)."""
    return first[:, :dim], (first[:, dim] if timed else None)


def stein_vanilla(
    g: nn.Module,
    x: torch.Tensor,
    t: torch.Tensor | None,
    smoothing: Smoothing,
    generator: torch.Generator | None = None,
) -> Derivatives:
    """Vanilla Stein estimates of f, ∇_x f, ∂_t f and Δ_x f from independent draws.

    The value, the first-order and the second-order estimates each use their own N draws per point (3N forward
    evaluations per point, stacked into one batched call of g), as the paper's ``SteinsWrapper``.

    Args:
        g: network ``(n, D) -> (n, 1)`` or ``(n,)``.
        x: ``(B, d)`` points; t: ``(B,)`` times or None.
        smoothing: σ_x, σ_t and N.
        generator: source of the noise.
    """
    check_points(x, t)
    batch, dim = x.shape
    timed = t is not None
    n = smoothing.samples
    scales = smoothing.scales(dim, timed, x)
    noise = gaussian_noise(3 * n, x, t, smoothing, generator)
    values = shifted_values(g, network_input(x, t), noise, antithetic=False).reshape(3, n, batch)
    noise = noise.reshape(3, n, batch, -1)
    u = values[0].mean(0)
    first = torch.einsum("nb,nbj->bj", values[1], noise[1]) / (n * scales.square())
    spatial = noise[2, ..., :dim]
    weight = spatial.square().sum(-1) - dim * smoothing.sigma_x**2  # Σ_i (δ_i² − σ²), (N, B)
    laplacian = (values[2] * weight).mean(0) / smoothing.sigma_x**4
    grad, dt = _split(first, dim, timed)
    return Derivatives(u, grad, laplacian, dt)


def stein_variance_reduced(
    g: nn.Module,
    x: torch.Tensor,
    t: torch.Tensor | None,
    smoothing: Smoothing,
    generator: torch.Generator | None = None,
) -> Derivatives:
    """Antithetic + control-variate Stein estimates of f, ∇_x f, ∂_t f and Δ_x f from one shared batch.

    N/2 pairs g(z ± δ) and the un-noised g(z): N + 1 network rows per point (N/2 + 1 through a linear first
    layer, :func:`pinn_stein.smoothing.shifted_values`), then one ordinary backward pass through θ when trained;
    no second-order graph. The value is the antithetic mean (g₊ + g₋)/2.

    Args:
        g: network ``(n, D) -> (n, 1)`` or ``(n,)``.
        x: ``(B, d)`` points; t: ``(B,)`` times or None.
        smoothing: σ_x, σ_t and N (even).
        generator: source of the noise.
    """
    check_points(x, t)
    pairs = smoothing.pairs()
    dim = x.shape[1]
    timed = t is not None
    z = network_input(x, t)
    delta = gaussian_noise(pairs, x, t, smoothing, generator)  # (M, B, D)
    values = shifted_values(g, z, delta, antithetic=True, centre=True)  # (2M + 1, B)
    plus, minus, centre = values[:pairs], values[pairs:-1], values[-1]
    scales = smoothing.scales(dim, timed, x)
    first = torch.einsum("mb,mbj->bj", plus - minus, delta) / (2 * pairs * scales.square())
    weight = delta[..., :dim].square().sum(-1) - dim * smoothing.sigma_x**2  # Σ_i (δ_i² − σ²), (M, B)
    laplacian = ((plus + minus - 2 * centre) * weight).mean(0) / (2 * smoothing.sigma_x**4)
    grad, dt = _split(first, dim, timed)
    return Derivatives((plus + minus).mean(0) / 2, grad, laplacian, dt)
