"""Block-wise distance scores f = γ − Σ_b ‖x_b − (P c)_b‖ between transformed queries and (projected) candidates.

Every model here scores a query entity q against a candidate entity c under relation r as
γ − Σ_b ‖(A_r q + c_r)_b − (P_r c)_b‖: the relation's linear map A_r and offset c_r act on the query side and a
chain of Householder projections P_r (possibly empty) on the candidate side. Queries are transformed once; the
candidate side is either a few negatives per query or every entity (1-N scoring for evaluation).
"""

from __future__ import annotations

import torch


def projected_candidates(candidates: torch.Tensor, units: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
    """Apply each query's projection chain to its own candidates.

    Args:
        candidates: ``(B, N, m, k)``.
        units: ``(B, m, n, k)`` unit vectors, applied first to last; tau: ``(B, m, n)``.

    Returns:
        ``(B, N, m, k)``.
    """
    for i in range(units.shape[2]):  # a chain of n ≤ a few projections, each a rank-one update
        u = units[:, None, :, i]  # (B, 1, m, k)
        coefficient = tau[:, None, :, i, None] * (candidates * u).sum(-1, keepdim=True)
        candidates = candidates - coefficient * u
    return candidates


def distance_to_candidates(
    x: torch.Tensor, candidates: torch.Tensor, units: torch.Tensor, tau: torch.Tensor
) -> torch.Tensor:
    """Σ_b ‖x_b − (P c)_b‖ for per-query candidates (training); ``x`` ``(B, m, k)``, ``candidates`` ``(B, N, m, k)``.

    Returns ``(B, N)``.
    """
    projected = projected_candidates(candidates, units, tau)
    return (x.unsqueeze(1) - projected).norm(dim=-1).sum(-1)


def distance_to_all(
    x: torch.Tensor, entities: torch.Tensor, units: torch.Tensor, tau: torch.Tensor
) -> torch.Tensor:
    """Σ_b ‖x_b − (P_q e)_b‖ for every query q and every entity e (1-N scoring), without forming P_q e.

    With s_i = u_iᵀe, the chain y_i = y_{i−1} − τ_i (u_iᵀ y_{i−1}) u_i gives P e = e − Σ_i a_i u_i where
    a_i = τ_i (s_i − Σ_{j<i} a_j u_iᵀu_j); then ‖x − Pe‖² = ‖x‖² − 2 xᵀe + 2 Σ a_i xᵀu_i + ‖Pe‖² with
    ‖Pe‖² = ‖e‖² − 2 Σ a_i s_i + Σ_ij a_i a_j u_iᵀu_j. The work is O(B·E·m·k·(n+1)) instead of O(B·E·m·k²).

    Args:
        x: ``(B, m, k)`` transformed queries.
        entities: ``(E, m, k)`` candidates (all entities).
        units: ``(B, m, n, k)``; tau: ``(B, m, n)``.

    Returns:
        ``(B, E)``.
    """
    xe = torch.einsum("bmk,emk->bem", x, entities)
    squared = x.square().sum(-1).unsqueeze(1) + entities.square().sum(-1).unsqueeze(0) - 2 * xe
    n = units.shape[2]
    if n:
        s = torch.einsum("bmik,emk->bemi", units, entities)  # (B, E, m, n)
        gram = torch.einsum("bmik,bmjk->bmij", units, units)  # (B, m, n, n)
        xu = torch.einsum("bmk,bmik->bmi", x, units)  # (B, m, n)
        coefficients: list[torch.Tensor] = []
        for i in range(n):
            inner = s[..., i]
            for j, a in enumerate(coefficients):
                inner = inner - a * gram[:, None, :, i, j]
            coefficients.append(tau[:, None, :, i] * inner)
        a = torch.stack(coefficients, dim=-1)  # (B, E, m, n)
        squared = squared + 2 * (a * xu.unsqueeze(1)).sum(-1) - 2 * (a * s).sum(-1)
        squared = squared + torch.einsum("bemi,bmij,bemj->bem", a, gram, a)
    # the clamp keeps sqrt's gradient finite and is flat (zero gradient) where rounding made the square negative
    return squared.clamp_min(1e-12).sqrt().sum(-1)
