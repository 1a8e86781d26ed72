"""Exact (and Hutchinson) derivatives by automatic differentiation, of the raw network or of the smoothed one.

Four ways to get the Laplacian Δ_x of a scalar network, all returning :class:`~pinn_stein.fields.Derivatives`:

- ``loop``: the "stacked back-propagation" of standard PINNs and of the paper's code: one reverse pass for ∇u,
  then d more reverse passes with ``create_graph=True``, one per diagonal entry ∂²u/∂x_i².
- ``hvp``: forward-over-reverse Hessian-vector products against the d basis vectors, batched with
  ``torch.func.vmap`` (works for any module).
- ``forward``: the forward Laplacian of :meth:`papers_common.MLP.forward_laplacian` (MLP only, fastest).
- ``hutchinson``: the unbiased estimate mean_k v_kᵀ H v_k with K Rademacher probes (randomised, not exact).

Given ``noise`` of shape ``(N, B, D)``, the function differentiated is the Monte Carlo smoothed model
f(z) = mean_k g(z + δ_k) with those fixed draws: the paper's "Backprop" ablation.
"""

from __future__ import annotations

import warnings
from typing import Literal

import torch
from torch import nn
from torch.func import grad_and_value, jvp, vmap

from papers_common import MLP, InputError
from pinn_stein.fields import Derivatives, check_points, network_input, scalar_output

ExactMethod = Literal["loop", "hvp", "forward", "hutchinson"]


def _leaf(z: torch.Tensor) -> torch.Tensor:
    return z if z.requires_grad else z.detach().requires_grad_(True)


def _smoothed(g: nn.Module, z: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
    """``(B,)`` values of g at z, or their mean over the fixed draws ``noise`` ``(N, B, D)``."""
    if noise is None:
        return scalar_output(g(z), z.shape[0])
    rows = noise.shape[0] * noise.shape[1]
    values = scalar_output(g((z + noise).reshape(rows, -1)), rows)
    return values.reshape(noise.shape[:2]).mean(0)


def _loop(
    g: nn.Module, z: torch.Tensor, dim: int, noise: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    z = _leaf(z)
    u = _smoothed(g, z, noise)
    # an input the network ignores, or enters linearly, has a zero (not a missing) derivative
    (grad,) = torch.autograd.grad(u.sum(), z, create_graph=True, allow_unused=True, materialize_grads=True)
    laplacian = torch.zeros_like(u)
    if not grad.requires_grad:  # the gradient is a constant: the function is affine in z
        return u, grad, laplacian
    for i in range(dim):  # the stacked back-propagation itself: one reverse pass per diagonal entry
        (row,) = torch.autograd.grad(
            grad[:, i].sum(), z, create_graph=True, allow_unused=True, materialize_grads=True
        )
        laplacian = laplacian + row[:, i]
    return u, grad, laplacian


def _point_function(g: nn.Module):
    def value(zi: torch.Tensor, di: torch.Tensor | None) -> torch.Tensor:
        return g(zi.unsqueeze(0) if di is None else zi + di).mean()

    return grad_and_value(value)


def _hvp(
    g: nn.Module, z: torch.Tensor, dim: int, noise: torch.Tensor | None, probes: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per point: Hessian-vector products with the basis vectors (probes None) or with the given probes."""
    gradient_and_value = _point_function(g)
    basis = torch.eye(dim, z.shape[1], dtype=z.dtype, device=z.device)  # (d, D): e_i, i < d

    def per_point(zi: torch.Tensor, di: torch.Tensor | None, vi: torch.Tensor | None):
        def directional(v: torch.Tensor):
            (grad, value), (hv, _) = jvp(lambda y: gradient_and_value(y, di), (zi,), (v,))
            return grad, value, hv @ v

        directions = basis if vi is None else vi
        grad, value, quadratic = vmap(directional)(directions)
        curvature = quadratic.sum() if vi is None else quadratic.mean()
        return value[0], grad[0], curvature

    in_dims = (0, None if noise is None else 1, None if probes is None else 0)
    with warnings.catch_warnings():
        # jvp under vmap makes torch script its own forward-mode decompositions, which warns that torch.jit.script
        # is deprecated: torch's internals, nothing a caller can act on.
        warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*deprecated", category=FutureWarning)
        return vmap(per_point, in_dims=in_dims)(z, noise, probes)


def exact_derivatives(
    g: nn.Module,
    x: torch.Tensor,
    t: torch.Tensor | None = None,
    *,
    how: ExactMethod = "loop",
    noise: torch.Tensor | None = None,
    probes: int = 16,
    generator: torch.Generator | None = None,
) -> Derivatives:
    """u, ∇_x u, ∂_t u and Δ_x u of g (or of its smoothed version) by automatic differentiation.

    Args:
        g: network ``(n, D) -> (n, 1)`` or ``(n,)``; ``how="forward"`` needs a :class:`MLP`.
        x: ``(B, d)`` points; t: ``(B,)`` times or None (then D = d, else D = d + 1 with time last).
        how: ``loop`` | ``hvp`` | ``forward`` | ``hutchinson`` (see the module docstring).
        noise: optional ``(N, B, D)`` fixed draws: differentiate the smoothed model mean_k g(z + δ_k).
        probes: K, Rademacher probes per point for ``hutchinson``.
        generator: source of the probes.

    Returns:
        Derivatives whose tensors keep their graph to θ (``create_graph`` semantics), ready for a loss.
    """
    check_points(x, t)
    batch, dim = x.shape
    z = network_input(x, t)
    if noise is not None and (noise.dim() != 3 or noise.shape[1:] != z.shape):
        raise InputError(f"noise must have shape (N, {batch}, {z.shape[1]}), got {tuple(noise.shape)}")
    if how == "loop":
        u, grad, laplacian = _loop(g, z, dim, noise)
    elif how == "hvp":
        u, grad, laplacian = _hvp(g, z, dim, noise, None)
    elif how == "hutchinson":
        if probes < 1:
            raise InputError(f"hutchinson needs at least one probe, got probes={probes}")
        signs = torch.randint(0, 2, (batch, probes, dim), generator=generator, device=z.device)
        vectors = torch.zeros(batch, probes, z.shape[1], dtype=z.dtype, device=z.device)
        vectors[..., :dim] = 2 * signs.to(z.dtype) - 1
        u, grad, laplacian = _hvp(g, z, dim, noise, vectors)
    elif how == "forward":
        if not isinstance(g, MLP):
            raise InputError(
                f"the forward Laplacian needs a pinn_stein.MLP (papers_common.MLP), got {type(g).__name__}; use how='hvp' for any module"
            )
        inputs = z if noise is None else (z + noise).reshape(-1, z.shape[1])
        u, grad, laplacian = g.forward_laplacian(inputs, dim)
        if noise is not None:
            u, grad, laplacian = (
                v.reshape(noise.shape[0], batch, *v.shape[1:]).mean(0) for v in (u, grad, laplacian)
            )
    else:
        raise InputError(f"unknown exact method {how!r}; choose loop, hvp, forward or hutchinson")
    return Derivatives(u, grad[:, :dim], laplacian, grad[:, dim] if t is not None else None)
