"""Block-wise distances: per-query candidates (training) and 1-N against every entity (evaluation)."""

from __future__ import annotations

import pytest
import torch
from house_kge import distance_to_all, distance_to_candidates
from house_kge.householder import projection_chain

F64 = torch.float64


def setup(n: int, seed: int, batch: int = 4, entities: int = 9, m: int = 3, k: int = 5):
    """Random queries, entities, unit vectors and τ values covering negative, zero, 1, 2 and generic values."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, m, k, generator=generator, dtype=F64)
    table = torch.randn(entities, m, k, generator=generator, dtype=F64)
    units = torch.nn.functional.normalize(torch.randn(batch, m, n, k, generator=generator, dtype=F64), dim=-1)
    tau = torch.empty(batch, m, n, dtype=F64).uniform_(-2.0, 3.0, generator=generator)
    special = torch.tensor([-0.8, 1.0, 2.0, 0.0], dtype=F64)
    flat = tau.reshape(-1)
    flat[: min(len(flat), 4)] = special[: min(len(flat), 4)]
    return x, table, units, flat.reshape(tau.shape)


def brute_force_distance(x, table, units, tau) -> torch.Tensor:
    """Σ_b ‖x_b − (P_q e)_b‖ with P_q as an explicit matrix per query and block, looped over queries/entities."""
    batch, entities = x.shape[0], table.shape[0]
    out = torch.empty(batch, entities, dtype=x.dtype)
    matrices = projection_chain(units, tau)  # (B, m, k, k)
    for q in range(batch):
        for e in range(entities):
            projected = torch.einsum("mij,mj->mi", matrices[q], table[e])
            out[q, e] = (x[q] - projected).norm(dim=-1).sum()
    return out


@pytest.mark.parametrize("n", [0, 1, 2, 3])
@pytest.mark.parametrize("seed", [0, 1])
def test_distance_to_all_equals_distance_to_every_candidate(n: int, seed: int) -> None:
    x, table, units, tau = setup(n, seed)
    everything = torch.arange(table.shape[0]).expand(x.shape[0], -1)
    expected = distance_to_candidates(x, table, everything, units, tau)
    fast = distance_to_all(x, table, units, tau)
    assert fast.shape == (x.shape[0], table.shape[0])
    torch.testing.assert_close(fast, expected, rtol=0, atol=1e-10)


@pytest.mark.parametrize("dense", [False, True])
@pytest.mark.parametrize("n", [0, 1, 2, 3])
def test_distance_to_candidates_equals_explicit_matrices(n: int, dense: bool) -> None:
    x, table, units, tau = setup(n, seed=5)
    everything = torch.arange(table.shape[0]).expand(x.shape[0], -1)
    torch.testing.assert_close(
        distance_to_candidates(x, table, everything, units, tau, dense=dense),
        brute_force_distance(x, table, units, tau),
        rtol=0,
        atol=1e-12,
    )


@pytest.mark.parametrize("dense", [False, True])
def test_per_query_candidates_are_gathered_per_row(dense: bool) -> None:
    """Each query scores its own candidates under its own projection chain."""
    x, table, units, tau = setup(2, seed=6, batch=3)
    ids = torch.tensor([[0, 4], [8, 8], [3, 1]])
    scores = distance_to_candidates(x, table, ids, units, tau, dense=dense)
    full = brute_force_distance(x, table, units, tau)
    torch.testing.assert_close(scores, full.gather(1, ids), rtol=0, atol=1e-12)


def test_dense_and_gathered_candidates_give_the_same_gradients() -> None:
    """Inner products against every entity then gathered, or over gathered candidates: the same values and the
    same gradients for queries, entities and projection vectors (repeated candidates included)."""
    x, table, units, tau = setup(2, seed=8, batch=4)
    ids = torch.tensor([[0, 4, 4], [8, 8, 1], [3, 1, 2], [5, 5, 5]])
    found = []
    for dense in (False, True):
        leaves = [t.clone().requires_grad_(True) for t in (x, table, units)]
        distance_to_candidates(*leaves[:2], ids, leaves[2], tau, dense=dense).square().sum().backward()
        found.append([leaf.grad for leaf in leaves])
    for gathered, dense in zip(*found, strict=True):
        torch.testing.assert_close(dense, gathered, rtol=0, atol=1e-11)


def test_zero_distance_has_a_finite_gradient() -> None:
    """x equal to a projected entity: the distance is (close to) 0 and the clamp keeps gradients finite."""
    _, table, units, tau = setup(2, seed=7, batch=1)
    target = torch.einsum("mij,mj->mi", projection_chain(units[0], tau[0]), table[2]).unsqueeze(0)
    x = target.clone().requires_grad_(True)
    distances = distance_to_all(x, table, units, tau)
    assert distances[0, 2].item() < 1e-5
    distances.sum().backward()
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize("n", [0, 1, 2])
def test_queries_sharing_a_chain_are_scored_as_one_group_across_tiles(n: int, monkeypatch) -> None:
    """Repeated chains (one relation, several queries) and tiles far smaller than the problem give the same
    distances as the brute-force loop, in the original query order."""
    import house_kge.scoring as scoring

    x, table, units, tau = setup(n, seed=8, batch=7, entities=23)
    pattern = torch.tensor([2, 0, 2, 1, 0, 2, 1])  # three chains, interleaved
    units, tau = units[pattern], tau[pattern]
    expected = brute_force_distance(x, table, units, tau)
    monkeypatch.setattr(scoring, "TILE", 5)  # a handful of entities per tile
    torch.testing.assert_close(distance_to_all(x, table, units, tau), expected, rtol=0, atol=1e-10)


@pytest.mark.parametrize("n", [0, 2])
def test_gradients_match_finite_differences(n: int) -> None:
    """Both expanded forms differentiate like the distances they stand for (queries, entities, chain)."""
    x, table, units, tau = setup(n, seed=9, batch=3, entities=5, m=2, k=3)
    ids = torch.tensor([[0, 4, 2], [1, 1, 3], [4, 0, 2]])
    inputs = tuple(t.clone().requires_grad_(True) for t in (x, table, units, tau))
    assert torch.autograd.gradcheck(lambda a, b, c, d: distance_to_candidates(a, b, ids, c, d), inputs)
    assert torch.autograd.gradcheck(distance_to_all, inputs)
