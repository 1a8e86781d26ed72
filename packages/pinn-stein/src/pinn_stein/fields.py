"""The values and derivatives of a scalar field at a batch of points, as every derivative method returns them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from papers_common import InputError


@dataclass
class Derivatives:
    """u and its derivatives at ``B`` points ``(x, t)`` with ``x`` in R^d.

    Attributes:
        u: ``(B,)`` values.
        grad: ``(B, d)`` spatial gradient ∇_x u.
        laplacian: ``(B,)`` spatial Laplacian Δ_x u = Σ_i ∂²u/∂x_i².
        dt: ``(B,)`` time derivative ∂_t u, or None for time-independent problems.
    """

    u: torch.Tensor
    grad: torch.Tensor
    laplacian: torch.Tensor
    dt: torch.Tensor | None


def check_points(x: torch.Tensor, t: torch.Tensor | None) -> None:
    """Raise :class:`InputError` unless ``x`` is ``(B, d)`` and ``t`` is None or ``(B,)`` on the same device."""
    if x.dim() != 2 or x.shape[1] < 1:
        raise InputError(f"x must be a (batch, dim) tensor, got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise InputError(f"x must be a floating-point tensor, got {x.dtype}")
    if t is not None and (t.shape != (x.shape[0],) or t.device != x.device):
        raise InputError(
            f"t must be a (batch,) tensor on x's device, got shape {tuple(t.shape)} on {t.device} "
            f"for x of shape {tuple(x.shape)} on {x.device}"
        )


def network_input(x: torch.Tensor, t: torch.Tensor | None) -> torch.Tensor:
    """The network's input ``(..., d + 1)`` = ``[x, t]`` (time last, as in the paper's code), or ``x`` alone."""
    return x if t is None else torch.cat([x, t.unsqueeze(-1).to(x.dtype)], dim=-1)


def scalar_output(values: torch.Tensor, rows: int) -> torch.Tensor:
    """Flatten a network output of shape ``(rows,)`` or ``(rows, 1)`` to ``(rows,)``; anything else is an error."""
    if values.shape not in ((rows,), (rows, 1)):
        raise InputError(
            f"the network must map (n, in_dim) inputs to (n,) or (n, 1) outputs; got {tuple(values.shape)} for n={rows}"
        )
    return values.reshape(rows)


def network_values(g: Callable[[torch.Tensor], torch.Tensor], inputs: torch.Tensor) -> torch.Tensor:
    """g on ``(..., D)`` inputs in one batched call, returned with the leading shape ``(...)``."""
    rows = inputs.shape[:-1].numel()
    return scalar_output(g(inputs.reshape(rows, inputs.shape[-1])), rows).reshape(inputs.shape[:-1])
