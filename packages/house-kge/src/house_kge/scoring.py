"""Block-wise distances Σ_b ‖x_b − (P c)_b‖ between transformed queries and (projected) candidates.

Every model here scores a query entity q against a candidate entity c under relation r as
γ − Σ_b ‖(A_r q + c_r)_b − (P_r c)_b‖: the relation's linear map A_r and offset c_r act on the query side and a
chain of Householder projections P_r (possibly empty) on the candidate side. Queries are transformed once; the
candidate side is either a few entities per query (training) or every entity (1-N scoring for evaluation).

Both paths avoid elementwise passes over ``(B, N, m, k)`` tensors where they can: with a non-empty chain,
training expands ‖x − Pc‖² into inner products computed by one batched matmul over the gathered candidates (or,
on a graph with few entities for the candidates per query, against every entity, then gathered); 1-N
scoring prepares the entity side once per distinct chain (one per relation) and gets every squared block
distance from one matmul of augmented vectors, tiled so that each tile stays in cache. In float32 the expanded
form loses about ``1e-7 · (‖x‖² + ‖Pe‖²)`` absolute precision in each squared block distance, which matters
only for candidates within ~1e-3 of the query; use float64 weights where that matters.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

SQUARE_FLOOR = 1e-12
"""Squared distances are clamped here before the square root: its gradient stays finite, and is zero where
rounding made a square negative."""

TILE = 2**21
"""Elements of one ``(m, queries, entities)`` tile of 1-N scoring (8 MiB in float32: it fits a typical L3)."""


def projected_candidates(candidates: torch.Tensor, units: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
    """Apply a projection chain to candidates: P c = Proj_{u_{n−1}} ∘ ⋯ ∘ Proj_{u_0}(c).

    Args:
        candidates: ``(..., m, k)``.
        units: ``(..., m, n, k)`` unit vectors, applied first to last; tau: ``(..., m, n)``; both broadcast
            against ``candidates``' leading axes.

    Returns:
        ``(..., m, k)``.
    """
    for i in range(units.shape[-2]):  # a chain of n ≤ a few projections, each a rank-one update
        u = units[..., i, :]
        candidates = candidates - tau[..., i, None] * (candidates * u).sum(-1, keepdim=True) * u
    return candidates


def _chain_coefficients(s: torch.Tensor, gram: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
    """a with P c = c − Σ_i a_i u_i: a_i = τ_i (s_i − Σ_{j<i} a_j u_iᵀu_j), for s_i = u_iᵀc.

    ``s`` ``(..., n)``, ``gram`` ``(..., n, n)`` and ``tau`` ``(..., n)`` broadcast; returns ``(..., n)``.
    """
    coefficients: list[torch.Tensor] = []
    for i in range(s.shape[-1]):
        inner = s[..., i]
        for j, a in enumerate(coefficients):
            inner = inner - a * gram[..., i, j]
        coefficients.append(tau[..., i] * inner)
    return torch.stack(coefficients, dim=-1) if coefficients else s


DENSE_RATIO = 2
"""Training's inner products are taken against every entity, then gathered, when the graph has at most this many
entities per candidate of a query: the same matmul work without gathering a ``(B, N, m, k)`` copy of the
candidates (and without scattering its gradient back)."""


def distance_to_candidates(
    x: torch.Tensor,
    entities: torch.Tensor,
    candidates: torch.Tensor,
    units: torch.Tensor,
    tau: torch.Tensor,
    *,
    dense: bool | None = None,
) -> torch.Tensor:
    """Σ_b ‖x_b − (P_q c)_b‖ for each query q and its own candidates (training and candidate scoring).

    With s_i = u_iᵀc and a from :func:`_chain_coefficients`, ‖x − Pc‖² = ‖x‖² + ‖c‖² − 2 xᵀc + 2 Σ a_i xᵀu_i
    − 2 Σ a_i s_i + Σ_ij a_i a_j u_iᵀu_j: the inner products xᵀc and s come from one batched matmul, ‖c‖² from a
    table of block norms, and the rest acts on ``(B, N, m)`` tensors. An empty chain uses ‖x − c‖ directly.

    Args:
        x: ``(B, m, k)`` transformed queries.
        entities: ``(E, m, k)`` entity table; candidates: ``(B, N)`` ids into it.
        units: ``(B, m, n, k)``; tau: ``(B, m, n)``.
        dense: take the inner products against all E entities and gather the candidates' (``True``), or gather
            the candidates first (``False``); ``None``: dense when E ≤ :data:`DENSE_RATIO` · N. Same values.

    Returns:
        ``(B, N)``.
    """
    m, k = entities.shape[1:]
    if units.shape[2] == 0:
        gathered = F.embedding(candidates, entities.flatten(1)).unflatten(-1, (m, k))  # (B, N, m, k)
        return (x.unsqueeze(1) - gathered).norm(dim=-1).sum(-1)
    queries = torch.cat([x.unsqueeze(2), units], 2)  # (B, m, 1 + n, k)
    if dense if dense is not None else entities.shape[0] <= DENSE_RATIO * candidates.shape[1]:
        every = torch.einsum("bmjk,emk->bmje", queries, entities)  # (B, m, 1 + n, E)
        index = candidates[:, None, None, :].expand(-1, m, queries.shape[2], -1)
        dots = every.gather(3, index).permute(0, 3, 1, 2)  # (B, N, m, 1 + n)
    else:
        gathered = F.embedding(candidates, entities.flatten(1)).unflatten(-1, (m, k))  # (B, N, m, k)
        dots = torch.einsum("bnmk,bmjk->bnmj", gathered, queries)  # (B, N, m, 1 + n)
    xc, s = dots[..., 0], dots[..., 1:]
    cc = F.embedding(candidates, entities.square().sum(-1))  # (B, N, m)
    xx = x.square().sum(-1).unsqueeze(1)  # (B, 1, m)
    xu = torch.einsum("bmk,bmik->bmi", x, units).unsqueeze(1)  # (B, 1, m, n)
    gram = torch.einsum("bmik,bmjk->bmij", units, units).unsqueeze(1)  # (B, 1, m, n, n)
    a = _chain_coefficients(s, gram, tau.unsqueeze(1))  # (B, N, m, n)
    squared = xx + cc - 2 * xc + 2 * (a * xu).sum(-1) - 2 * (a * s).sum(-1)
    squared = squared + torch.einsum("bnmi,bnmij,bnmj->bnm", a, gram, a)
    return squared.clamp_min(SQUARE_FLOOR).sqrt().sum(-1)


def _root_sum(left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    """Σ_b √(left_b · right_b) for augmented vectors ``left`` ``(m, Q, K)`` and ``right`` ``(m, E, K)``: ``(Q, E)``.

    Queries × entities are tiled so that each tile's ``(m, q, e)`` products, their square roots and the sum over
    blocks stay in cache.
    """
    m, q_total, _ = left.shape
    e_total = right.shape[1]
    q_tile = min(q_total, 16)
    e_tile = max(1, TILE // (m * q_tile))
    rows = []
    for q0 in range(0, q_total, q_tile):
        lhs = left[:, q0 : q0 + q_tile]
        tiles = [
            torch.bmm(lhs, right[:, e0 : e0 + e_tile].transpose(1, 2)).clamp_min(SQUARE_FLOOR).sqrt().sum(0)
            for e0 in range(0, e_total, e_tile)
        ]
        rows.append(torch.cat(tiles, 1))
    return torch.cat(rows, 0)


def _chain_groups(units: torch.Tensor, tau: torch.Tensor) -> tuple[torch.Tensor, list[int]]:
    """Queries ordered so that equal projection chains are adjacent: ``(order, group sizes)``."""
    if units.shape[2] == 0:
        return torch.arange(units.shape[0], device=units.device), [units.shape[0]]
    _, group = torch.unique(torch.cat([units.flatten(1), tau.flatten(1)], 1), dim=0, return_inverse=True)
    return torch.argsort(group, stable=True), torch.bincount(group).tolist()


def distance_to_all(
    x: torch.Tensor, entities: torch.Tensor, units: torch.Tensor, tau: torch.Tensor
) -> torch.Tensor:
    """Σ_b ‖x_b − (P_q e)_b‖ for every query q and every entity e (1-N scoring), without forming P_q e.

    Queries with the same projection chain (in a model: the same relation) form one group. For a group, with
    s_i = u_iᵀe and a from :func:`_chain_coefficients` (P e = e − Σ a_i u_i), every block's squared distance
    ‖x‖² + ‖Pe‖² − 2 xᵀe + 2 Σ a_i xᵀu_i is one entry of the matmul of the augmented vectors
    [−2x, 2xᵀu_1..n, ‖x‖², 1] and [e, a_1..n, 1, ‖Pe‖²], where ‖Pe‖² = ‖e‖² − 2 Σ a_i s_i + Σ_ij a_i a_j u_iᵀu_j.
    The entity side costs O(E·m·k·n) once per group, the queries O(Q·E·m·(k + n)) in cache-sized tiles.

    Args:
        x: ``(B, m, k)`` transformed queries.
        entities: ``(E, m, k)`` candidates (all entities).
        units: ``(B, m, n, k)``; tau: ``(B, m, n)``.

    Returns:
        ``(B, E)``.
    """
    blocks = entities.transpose(0, 1)  # (m, E, k)
    squares = entities.square().sum(-1).T.unsqueeze(-1)  # (m, E, 1)
    ones_e = blocks.new_ones(*blocks.shape[:2], 1)
    order, sizes = _chain_groups(units, tau)
    pieces = []
    for rows in torch.split(order, sizes):
        u, t = units[rows[0]], tau[rows[0]]  # the group's chain: (m, n, k), (m, n)
        gram = u @ u.transpose(1, 2)  # (m, n, n)
        s = blocks @ u.transpose(1, 2)  # (m, E, n)
        a = _chain_coefficients(s, gram.unsqueeze(1), t.unsqueeze(1))
        projected_squares = squares - 2 * (a * s).sum(-1, keepdim=True)
        projected_squares = projected_squares + torch.einsum("mei,mij,mej->me", a, gram, a).unsqueeze(-1)
        right = torch.cat([blocks, a, ones_e, projected_squares], -1)  # (m, E, k + n + 2)
        queries = x[rows].transpose(0, 1)  # (m, Q, k)
        left = torch.cat(
            [-2 * queries, 2 * queries @ u.transpose(1, 2), queries.square().sum(-1, keepdim=True),
             torch.ones_like(queries[..., :1])], -1,
        )  # fmt: skip
        pieces.append(_root_sum(left, right))
    return torch.cat(pieces, 0)[torch.argsort(order)]
