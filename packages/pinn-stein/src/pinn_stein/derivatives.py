"""One entry point for every derivative method, chosen by a string; all return the same :class:`Derivatives`.

| method | model | derivatives | cost per point |
|---|---|---|---|
| ``stein-vr`` | smoothed f | antithetic + control-variate Stein (paper's method) | N + 1 forwards (first layer: N/2 + 1) |
| ``stein`` | smoothed f | vanilla Stein, independent draws | 3N forwards |
| ``smoothed-autograd`` | smoothed f | autograd through the MC mean, d-loop Hessian (paper's ablation) | N forwards, d + 1 backwards |
| ``pinn`` | raw g | autograd, d-loop Hessian diagonal ("stacked back-propagation") | 1 forward, d + 1 backwards |
| ``pinn-hvp`` | raw g | forward-over-reverse Hessian-vector products (``torch.func``) | d batched HVPs |
| ``pinn-forward`` | raw g | forward Laplacian through the MLP | one pass of width d |
| ``pinn-hutchinson`` | raw g | Hutchinson trace estimate, K Rademacher probes | K batched HVPs |
"""

from __future__ import annotations

from typing import Literal, get_args

import torch
from torch import nn

from papers_common import InputError
from pinn_stein.exact import exact_derivatives
from pinn_stein.fields import Derivatives, check_points, network_input, scalar_output
from pinn_stein.smoothing import Smoothing, gaussian_noise, smoothed_value
from pinn_stein.stein import stein_vanilla, stein_variance_reduced

Method = Literal[
    "stein-vr", "stein", "smoothed-autograd", "pinn", "pinn-hvp", "pinn-forward", "pinn-hutchinson"
]
METHODS: tuple[str, ...] = get_args(Method)
SMOOTHED_METHODS = frozenset({"stein-vr", "stein", "smoothed-autograd"})


def check_method(method: str) -> None:
    """Raise :class:`InputError` naming the choices unless ``method`` is one of :data:`METHODS`."""
    if method not in METHODS:
        raise InputError(f"unknown derivative method {method!r}; choose one of {', '.join(METHODS)}")


def derivatives(
    g: nn.Module,
    x: torch.Tensor,
    t: torch.Tensor | None = None,
    *,
    method: Method = "stein-vr",
    smoothing: Smoothing | None = None,
    generator: torch.Generator | None = None,
    probes: int = 16,
) -> Derivatives:
    """u, ∇_x u, ∂_t u and Δ_x u at ``B`` points by ``method`` (see the module table).

    Args:
        g: network ``(n, D) -> (n, 1)`` or ``(n,)`` with D = d (+ 1 when ``t`` is given, time last).
        x: ``(B, d)`` points; t: ``(B,)`` times or None.
        method: one of :data:`METHODS`.
        smoothing: σ_x, σ_t, N for the smoothed methods (default :class:`Smoothing()`: 0.01, 0.01, 2048).
        generator: source of the Gaussian noise / Hutchinson probes.
        probes: K for ``pinn-hutchinson``.
    """
    check_method(method)
    smoothing = smoothing or Smoothing()
    if method == "stein-vr":
        return stein_variance_reduced(g, x, t, smoothing, generator)
    if method == "stein":
        return stein_vanilla(g, x, t, smoothing, generator)
    if method == "smoothed-autograd":
        check_points(x, t)
        noise = gaussian_noise(smoothing.samples, x, t, smoothing, generator)
        return exact_derivatives(g, x, t, how="loop", noise=noise)
    how = {"pinn": "loop", "pinn-hvp": "hvp", "pinn-forward": "forward", "pinn-hutchinson": "hutchinson"}[
        method
    ]
    return exact_derivatives(g, x, t, how=how, probes=probes, generator=generator)


def model_value(
    g: nn.Module,
    x: torch.Tensor,
    t: torch.Tensor | None,
    *,
    method: Method,
    smoothing: Smoothing | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``(B,)`` values of the model a method trains: the smoothed f (MC, antithetic when N is even) or raw g."""
    check_method(method)
    if method in SMOOTHED_METHODS:
        smoothing = smoothing or Smoothing()
        antithetic = method == "stein-vr"
        return smoothed_value(g, x, t, smoothing, antithetic=antithetic, generator=generator)
    check_points(x, t)
    return scalar_output(g(network_input(x, t)), x.shape[0])
