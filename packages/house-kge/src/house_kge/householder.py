"""Householder reflections and projections, and their composition into per-block matrices (paper §3).

Ref_u(x) = x − 2 (uᵀx) u for a unit vector u is orthogonal, symmetric and an involution; a product of an even
number of reflections is a rotation (det +1), and every rotation of R^k is a product of at most k reflections.
The Householder projection Proj_{u,τ}(x) = x − τ (uᵀx) u generalises it: τ = 2 is a reflection, τ = 1 the
orthogonal projection onto u's complement, and other τ rescale the component along u.

All functions act on the last axis (size k) and broadcast over any leading axes (batch, blocks, ...).
"""

from __future__ import annotations

import torch


def householder_reflect(x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Ref_u(x) = x − 2 (uᵀx) u for unit vectors ``u``; ``x`` and ``u`` broadcast, shape ``(..., k)``."""
    return householder_project(x, u, torch.tensor(2.0, dtype=x.dtype, device=x.device))


def householder_project(x: torch.Tensor, u: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
    """Proj_{u,τ}(x) = x − τ (uᵀx) u; ``x``, ``u``: ``(..., k)``, ``tau``: ``(...)`` broadcastable."""
    return x - (tau.unsqueeze(-1) * (x * u).sum(-1, keepdim=True)) * u


def projection_matrices(units: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
    """The matrices ``I − τ_i u_i u_iᵀ``, shape ``(..., n, k, k)``, for ``units`` ``(..., n, k)``, ``tau`` ``(..., n)``."""
    k = units.shape[-1]
    eye = torch.eye(k, dtype=units.dtype, device=units.device)
    return eye - tau[..., None, None] * units.unsqueeze(-1) * units.unsqueeze(-2)


def chain_product(matrices: torch.Tensor) -> torch.Tensor:
    """M_{n−1} ⋯ M_1 M_0 for ``matrices`` ``(..., n, k, k)``: the map that applies M_0 first.

    Pairwise products in ⌈log₂ n⌉ batched matmuls; an empty chain (n = 0) is the identity.
    """
    *lead, n, k, _ = matrices.shape
    if n == 0:
        return torch.eye(k, dtype=matrices.dtype, device=matrices.device).expand(*lead, k, k)
    while matrices.shape[-3] > 1:
        if matrices.shape[-3] % 2:  # pad with the identity so that the factors pair up
            eye = torch.eye(k, dtype=matrices.dtype, device=matrices.device).expand(*lead, 1, k, k)
            matrices = torch.cat([matrices, eye], dim=-3)
        first, second = matrices[..., 0::2, :, :], matrices[..., 1::2, :, :]
        matrices = second @ first  # applies the earlier factor first
    return matrices[..., 0, :, :]


def reflection_chain(units: torch.Tensor) -> torch.Tensor:
    """``(..., k, k)`` matrix of Ref_{u_{n−1}} ∘ ⋯ ∘ Ref_{u_0} (u_0 applied first) for ``units`` ``(..., n, k)``."""
    tau = torch.full(units.shape[:-1], 2.0, dtype=units.dtype, device=units.device)
    return chain_product(projection_matrices(units, tau))


def projection_chain(units: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
    """``(..., k, k)`` matrix of Proj_{u_{n−1},τ_{n−1}} ∘ ⋯ ∘ Proj_{u_0,τ_0} (u_0 applied first)."""
    return chain_product(projection_matrices(units, tau))
