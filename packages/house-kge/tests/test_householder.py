"""Householder reflections and projections, and their composition into per-block matrices."""

from __future__ import annotations

import pytest
import torch
from house_kge import householder_project, householder_reflect, projection_chain, reflection_chain
from house_kge.householder import chain_product, projection_matrices

F64 = torch.float64


def unit_vectors(*shape: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.nn.functional.normalize(torch.randn(*shape, generator=generator, dtype=F64), dim=-1)


def explicit_reflection(u: torch.Tensor) -> torch.Tensor:
    """I − 2uuᵀ for one unit vector, written out."""
    return torch.eye(u.shape[-1], dtype=u.dtype) - 2 * torch.outer(u, u)


@pytest.mark.parametrize("k", [2, 3, 5, 8])
def test_single_reflection_is_an_orthogonal_symmetric_involution_with_det_minus_one(k: int) -> None:
    u = unit_vectors(k, seed=k)
    matrix = reflection_chain(u[None])
    eye = torch.eye(k, dtype=F64)
    assert matrix.shape == (k, k)
    torch.testing.assert_close(matrix, explicit_reflection(u), rtol=0, atol=1e-14)
    torch.testing.assert_close(matrix.T @ matrix, eye, rtol=0, atol=1e-13)
    torch.testing.assert_close(matrix, matrix.T, rtol=0, atol=1e-14)
    torch.testing.assert_close(matrix @ matrix, eye, rtol=0, atol=1e-13)
    assert torch.linalg.det(matrix).item() == pytest.approx(-1.0, abs=1e-12)
    # the reflection flips u and fixes its orthogonal complement
    torch.testing.assert_close(matrix @ u, -u, rtol=0, atol=1e-14)
    v = unit_vectors(k, seed=100 + k)
    v = v - (v @ u) * u
    torch.testing.assert_close(matrix @ v, v, rtol=0, atol=1e-14)


def test_householder_reflect_is_its_own_inverse_and_matches_the_matrix() -> None:
    u = unit_vectors(4, 3, 6, seed=1)  # (batch, blocks, k)
    x = torch.randn(4, 3, 6, generator=torch.Generator().manual_seed(2), dtype=F64)
    reflected = householder_reflect(x, u)
    torch.testing.assert_close(householder_reflect(reflected, u), x, rtol=0, atol=1e-13)
    expected = torch.einsum("bmij,bmj->bmi", reflection_chain(u.unsqueeze(-2)), x)
    torch.testing.assert_close(reflected, expected, rtol=0, atol=1e-13)
    # a reflection preserves lengths and flips the sign of the component along u
    torch.testing.assert_close(reflected.norm(dim=-1), x.norm(dim=-1), rtol=0, atol=1e-13)
    torch.testing.assert_close((reflected * u).sum(-1), -(x * u).sum(-1), rtol=0, atol=1e-13)


@pytest.mark.parametrize("k", [2, 4, 5])
def test_two_reflections_make_a_rotation(k: int) -> None:
    units = unit_vectors(2, k, seed=3)
    matrix = reflection_chain(units)
    torch.testing.assert_close(matrix.T @ matrix, torch.eye(k, dtype=F64), rtol=0, atol=1e-13)
    assert torch.linalg.det(matrix).item() == pytest.approx(1.0, abs=1e-12)
    # and it is not the identity (two generic reflections rotate)
    assert (matrix - torch.eye(k, dtype=F64)).abs().max().item() > 1e-3


@pytest.mark.parametrize("count", range(8))
def test_chain_of_reflections_has_determinant_minus_one_to_the_count(count: int) -> None:
    k = 6
    units = unit_vectors(5, count, k, seed=count)  # a batch of 5 independent chains
    matrices = reflection_chain(units)
    assert matrices.shape == (5, k, k)
    torch.testing.assert_close(
        matrices.transpose(-1, -2) @ matrices, torch.eye(k, dtype=F64).expand(5, k, k), rtol=0, atol=1e-12
    )
    torch.testing.assert_close(
        torch.linalg.det(matrices), torch.full((5,), (-1.0) ** count, dtype=F64), rtol=0, atol=1e-11
    )


def test_projection_with_tau_two_is_the_reflection() -> None:
    u = unit_vectors(7, 5, seed=4)
    x = torch.randn(7, 5, generator=torch.Generator().manual_seed(5), dtype=F64)
    tau = torch.full((7,), 2.0, dtype=F64)
    torch.testing.assert_close(householder_project(x, u, tau), householder_reflect(x, u), rtol=0, atol=1e-14)
    torch.testing.assert_close(
        projection_chain(u.unsqueeze(-2), tau.unsqueeze(-1)),
        reflection_chain(u.unsqueeze(-2)),
        rtol=0,
        atol=0,
    )


def test_projection_with_tau_one_is_the_orthogonal_projection_onto_the_complement_of_u() -> None:
    k = 5
    u = unit_vectors(k, seed=6)
    matrix = projection_chain(u[None], torch.ones(1, dtype=F64))
    torch.testing.assert_close(matrix @ matrix, matrix, rtol=0, atol=1e-14)  # idempotent: P² = P
    torch.testing.assert_close(matrix, matrix.T, rtol=0, atol=1e-14)  # orthogonal projection
    torch.testing.assert_close(matrix @ u, torch.zeros(k, dtype=F64), rtol=0, atol=1e-14)  # kills u
    assert torch.linalg.matrix_rank(matrix).item() == k - 1
    x = torch.randn(3, k, generator=torch.Generator().manual_seed(7), dtype=F64)
    projected = householder_project(x, u, torch.ones(3, dtype=F64))
    torch.testing.assert_close((projected * u).sum(-1), torch.zeros(3, dtype=F64), rtol=0, atol=1e-14)
    torch.testing.assert_close(projected, x @ matrix.T, rtol=0, atol=1e-14)


@pytest.mark.parametrize("tau", [-0.7, 0.0, 0.3, 1.0, 2.0, 3.5])
def test_projection_scales_the_component_along_u_by_one_minus_tau(tau: float) -> None:
    k = 4
    u = unit_vectors(k, seed=8)
    matrix = projection_chain(u[None], torch.tensor([tau], dtype=F64))
    torch.testing.assert_close(matrix @ u, (1 - tau) * u, rtol=0, atol=1e-14)
    v = unit_vectors(k, seed=9)
    v = v - (v @ u) * u
    torch.testing.assert_close(matrix @ v, v, rtol=0, atol=1e-14)
    assert torch.linalg.det(matrix).item() == pytest.approx(1 - tau, abs=1e-12)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 6, 7])
def test_chain_product_applies_the_first_factor_first(n: int) -> None:
    k = 3
    generator = torch.Generator().manual_seed(n)
    matrices = torch.randn(2, n, k, k, generator=generator, dtype=F64)  # generic, non-commuting factors
    expected = torch.eye(k, dtype=F64).expand(2, k, k)
    for i in range(n):
        expected = matrices[:, i] @ expected
    torch.testing.assert_close(chain_product(matrices), expected, rtol=1e-12, atol=1e-12)
    if n > 1:  # the reverse order is different, so the test would see a swapped product
        reverse = torch.eye(k, dtype=F64).expand(2, k, k)
        for i in range(n):
            reverse = reverse @ matrices[:, i]
        assert (chain_product(matrices) - reverse).abs().max().item() > 1e-3


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
def test_projection_chain_equals_sequential_projections(n: int) -> None:
    """Odd n (3, 5) exercise the identity padding of the pairwise product."""
    batch, m, k = 4, 3, 5
    units = unit_vectors(batch, m, n, k, seed=10 + n)
    generator = torch.Generator().manual_seed(20 + n)
    tau = torch.empty(batch, m, n, dtype=F64).uniform_(-1.5, 2.5, generator=generator)
    x = torch.randn(batch, m, k, generator=generator, dtype=F64)
    sequential = x
    for i in range(n):
        sequential = householder_project(sequential, units[:, :, i], tau[:, :, i])
    matrix = projection_chain(units, tau)
    assert matrix.shape == (batch, m, k, k)
    torch.testing.assert_close(torch.einsum("bmij,bmj->bmi", matrix, x), sequential, rtol=0, atol=1e-12)
    # the same with explicit I − τuuᵀ factors multiplied left to right in application order
    explicit = torch.eye(k, dtype=F64).expand(batch, m, k, k)
    for i in range(n):
        u = units[:, :, i]
        factor = torch.eye(k, dtype=F64) - tau[:, :, i, None, None] * u[..., :, None] * u[..., None, :]
        explicit = factor @ explicit
    torch.testing.assert_close(matrix, explicit, rtol=0, atol=1e-12)


def test_projection_matrices_are_the_rank_one_updates() -> None:
    units = unit_vectors(2, 3, 4, seed=30)
    tau = torch.tensor([[0.5, -1.0, 2.0], [1.0, 0.0, 3.0]], dtype=F64)
    matrices = projection_matrices(units, tau)
    assert matrices.shape == (2, 3, 4, 4)
    for b in range(2):
        for i in range(3):
            u = units[b, i]
            expected = torch.eye(4, dtype=F64) - tau[b, i] * torch.outer(u, u)
            torch.testing.assert_close(matrices[b, i], expected, rtol=0, atol=1e-15)


def test_empty_chain_is_the_identity() -> None:
    k = 4
    units = torch.empty(3, 2, 0, k, dtype=F64)
    tau = torch.empty(3, 2, 0, dtype=F64)
    eye = torch.eye(k, dtype=F64).expand(3, 2, k, k)
    torch.testing.assert_close(projection_chain(units, tau), eye, rtol=0, atol=0)
    torch.testing.assert_close(reflection_chain(units), eye, rtol=0, atol=0)
    assert chain_product(torch.empty(0, k, k, dtype=F64)).shape == (k, k)


def test_reflection_chain_matches_sequential_reflections_in_storage_order() -> None:
    """u_0 is applied first: the matrix equals Ref_{u_{n−1}} ⋯ Ref_{u_0}."""
    units = unit_vectors(3, 6, seed=40)  # n = 3
    expected = explicit_reflection(units[2]) @ explicit_reflection(units[1]) @ explicit_reflection(units[0])
    torch.testing.assert_close(reflection_chain(units), expected, rtol=0, atol=1e-13)
    wrong_order = (
        explicit_reflection(units[0]) @ explicit_reflection(units[1]) @ explicit_reflection(units[2])
    )
    assert (reflection_chain(units) - wrong_order).abs().max().item() > 1e-3
