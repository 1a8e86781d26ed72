"""Exact derivatives of a network u(x, t) at a batch of points: value, ∇_x u, ∂_t u and Δ_x u.

Two exact methods, chosen by name; both return ordinary differentiable tensors, so a loss built on them can be
differentiated again, in the parameters (the optimiser step) and in the points (the adversarial ascent, which
needs third derivatives of the network):

- ``forward``: the forward Laplacian of :meth:`papers_common.MLP.forward_laplacian`, values, Jacobians and
  Laplacians carried through the layers in one pass (tanh MLPs only; the fastest).
- ``autograd``: forward-over-reverse Hessian–vector products with the d basis vectors, batched over points and
  directions by ``torch.func.vmap`` (any module mapping ``(n, d + 1)`` to ``(n, 1)`` or ``(n,)``).

The official code instead takes d reverse passes with ``create_graph=True``, one per diagonal entry (the
"stacked back-propagation" loop); ``benchmarks/`` times it against these.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import torch
from torch import nn
from torch.func import jacrev, jvp, vmap

from papers_common import MLP, InputError

Method = Literal["forward", "autograd"]
METHODS: tuple[str, ...] = get_args(Method)


@dataclass
class Fields:
    """u and its derivatives at ``B`` points.

    Attributes:
        u: ``(B,)`` values; grad: ``(B, d)`` ∇_x u; dt: ``(B,)`` ∂_t u; laplacian: ``(B,)`` Δ_x u = Σ_i ∂²u/∂x_i².
    """

    u: torch.Tensor
    grad: torch.Tensor
    dt: torch.Tensor
    laplacian: torch.Tensor


def default_method(net: nn.Module) -> Method:
    """``forward`` for a :class:`papers_common.MLP`, ``autograd`` for anything else."""
    return "forward" if isinstance(net, MLP) else "autograd"


def _autograd(net: nn.Module, z: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    def value(point: torch.Tensor) -> torch.Tensor:
        out = net(point.unsqueeze(0))
        if out.numel() != 1:
            raise InputError(
                f"the network must return one value per point, got shape {tuple(out.shape)} for one"
            )
        return out.reshape(())

    gradient = jacrev(value)
    basis = torch.eye(dim, z.shape[1], dtype=z.dtype, device=z.device)  # (d, d + 1): e_i for the x_i only

    def per_point(point: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        def curvature(direction: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            grad, hessian_direction = jvp(gradient, (point,), (direction,))
            return grad, hessian_direction @ direction

        grads, diagonal = vmap(curvature)(basis)  # (d, d + 1), (d,)
        return value(point), grads[0], diagonal.sum()

    return vmap(per_point)(z)


def fields(net: nn.Module, z: torch.Tensor, dim: int, method: Method | None = None) -> Fields:
    """u, ∇_x u, ∂_t u and Δ_x u of ``net`` at ``z``, exactly.

    Args:
        net: the network, ``(n, d + 1) -> (n, 1)`` or ``(n,)``, time as the last input.
        z: ``(B, d + 1)`` points [x, t]; differentiable (pass a leaf with ``requires_grad`` to differentiate in z).
        dim: d.
        method: ``forward`` (MLP only) or ``autograd``; None picks :func:`default_method`.
    """
    method = method or default_method(net)
    if z.dim() != 2 or z.shape[1] != dim + 1:
        raise InputError(f"points must have shape (batch, {dim + 1}) = [x, t], got {tuple(z.shape)}")
    if method == "forward":
        if not isinstance(net, MLP):
            raise InputError(
                f"method 'forward' needs a papers_common.MLP, got {type(net).__name__}; use method='autograd'"
            )
        u, grad, laplacian = net.forward_laplacian(z, dim)
    elif method == "autograd":
        u, grad, laplacian = _autograd(net, z, dim)
    else:
        raise InputError(f"unknown derivative method {method!r}; choose one of {', '.join(METHODS)}")
    return Fields(u, grad[:, :dim], grad[:, dim], laplacian)


def values(net: nn.Module, z: torch.Tensor) -> torch.Tensor:
    """``(B,)`` values of ``net`` at ``z`` ``(B, d + 1)``."""
    out = net(z)
    if out.shape not in ((z.shape[0],), (z.shape[0], 1)):
        raise InputError(f"the network must map (n, {z.shape[1]}) to (n,) or (n, 1), got {tuple(out.shape)}")
    return out.reshape(z.shape[0])
