"""The Cole-Hopf Monte Carlo reference converges to a closed form at the rate it should, and test-set files
round-trip (including the L-infinity PINN paper's X / Y / grad_x pickles)."""

from __future__ import annotations

import math

import pytest
import torch

from papers_common import InputError, TestSet, cole_hopf

F64 = torch.float64
DIM, MU, HORIZON, A = 2, 0.8, 1.0, 0.5


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def quadratic_terminal(z: torch.Tensor, a: float = A) -> torch.Tensor:
    return a * z.square().sum(-1)


def closed_form(x: torch.Tensor, t: torch.Tensor, a: float = A) -> tuple[torch.Tensor, torch.Tensor]:
    """u = d/(2 mu) log k + a|x|^2 / k and grad u = 2 a x / k, k = 1 + 2 mu a s^2, s^2 = 2 (T - t)."""
    k = 1 + 2 * MU * a * 2 * (HORIZON - t)
    return DIM / (2 * MU) * torch.log(k) + a * x.square().sum(-1) / k, 2 * a * x / k[:, None]


def evaluation_points(count: int = 16):
    gen = seeded(0)
    x = torch.randn(count, DIM, generator=gen, dtype=F64)
    t = HORIZON * torch.rand(count, generator=gen, dtype=F64)
    return x, t


def estimate(x, t, samples: int, seed: int, **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
    return cole_hopf(
        x, t, quadratic_terminal, mu=MU, horizon=HORIZON, samples=samples, generator=seeded(seed), **kwargs
    )


def rms(values: torch.Tensor) -> float:
    return float(values.square().mean().sqrt())


def test_cole_hopf_error_falls_like_one_over_root_s():
    x, t = evaluation_points()
    u, grad = closed_form(x, t)
    errors = {}
    for samples in (64, 1024):
        runs = [estimate(x, t, samples, seed) for seed in range(8)]
        errors[samples] = (
            sum(rms(v - u) for v, _ in runs) / len(runs),
            sum(rms(g - grad) for _, g in runs) / len(runs),
        )
    value_ratio = errors[64][0] / errors[1024][0]
    grad_ratio = errors[64][1] / errors[1024][1]
    assert 2.5 < value_ratio < 6.5, value_ratio  # sqrt(16) = 4
    assert 2.5 < grad_ratio < 6.5, grad_ratio


def test_cole_hopf_value_is_within_its_standard_error_of_the_closed_form():
    """With Y = exp(-mu g(x + s W)), u = -log(E Y) / mu has delta-method standard error sd(Y) / (mu E Y sqrt(S)),
    and E Y, E Y^2 are closed forms (E Y^2 is E Y for the terminal data 2a)."""
    x, t = evaluation_points()
    samples = 2**16
    u, _ = closed_form(x, t)
    first = torch.exp(-MU * u)
    second = torch.exp(-MU * closed_form(x, t, a=2 * A)[0])
    stderr = torch.sqrt(second - first.square()) / (MU * first * math.sqrt(samples))
    found, _ = estimate(x, t, samples, seed=3)
    z = (found - u) / stderr
    assert float(z.abs().max()) < 4.5, z.tolist()
    assert float(z.square().mean()) < 3.0  # the errors are as small as S draws make them, not just bounded


def test_cole_hopf_gradient_is_within_its_standard_error_of_the_closed_form():
    """The gradient's standard error comes from 32 independent estimates (enough for a near-normal t statistic)."""
    x, t = evaluation_points(8)
    _, grad = closed_form(x, t)
    runs = torch.stack([estimate(x, t, 1024, seed)[1] for seed in range(10, 42)])  # (seeds, B, d)
    stderr = runs.std(0) / math.sqrt(runs.shape[0])
    error = (runs.mean(0) - grad).abs()
    assert bool((error < 5 * stderr).all()), (error / stderr).max()
    assert float(stderr.max()) < 0.01


def test_cole_hopf_at_the_horizon_is_the_terminal_data():
    """s = 0 at t = T: every draw gives g(x), and the log-mean-exp returns g(x) and grad g(x)."""

    def terminal(z: torch.Tensor) -> torch.Tensor:
        return torch.log((1 + z.square().sum(-1)) / 2)

    x = torch.randn(5, 3, generator=seeded(1), dtype=F64)
    t = torch.full((5,), 1.0, dtype=F64)
    u, grad = cole_hopf(x, t, terminal, mu=1.0, horizon=1.0, samples=64, generator=seeded(0))
    torch.testing.assert_close(u, terminal(x), rtol=0, atol=1e-12)
    torch.testing.assert_close(grad, 2 * x / (1 + x.square().sum(-1, keepdim=True)), rtol=0, atol=1e-12)


@pytest.mark.parametrize(("samples", "budget"), [(10, 8), (4, 16), (6, 10**6)])
def test_cole_hopf_chunks_combine_exactly(samples, budget):
    """Splitting points and draws into chunks (to bound memory) must give the estimator on all draws together."""
    x, t = evaluation_points(3)
    found_u, found_grad = estimate(x, t, samples, seed=4, budget=budget)
    sample_chunk = max(1, min(samples, budget // DIM))
    point_chunk = max(1, budget // (sample_chunk * DIM))
    gen = seeded(4)
    draws = []
    for start in range(0, 3, point_chunk):
        rows = min(point_chunk, 3 - start)
        parts = [
            torch.randn(rows, min(sample_chunk, samples - done), DIM, generator=gen, dtype=F64)
            for done in range(0, samples, sample_chunk)
        ]
        draws.append(torch.cat(parts, 1))
    draws = torch.cat(draws)  # (3, S, d), the draws the estimator used, point by point
    leaf = x.clone().requires_grad_(True)
    scale = (2 * (HORIZON - t)).sqrt()[:, None, None]
    u = (
        -(torch.logsumexp(-MU * quadratic_terminal(leaf[:, None] + scale * draws), 1) - math.log(samples))
        / MU
    )
    (grad,) = torch.autograd.grad(u.sum(), leaf)
    torch.testing.assert_close(found_u, u.detach(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(found_grad, grad, rtol=1e-12, atol=1e-12)


def test_cole_hopf_needs_samples():
    x, t = evaluation_points(2)
    with pytest.raises(InputError, match="at least one sample"):
        estimate(x, t, 0, seed=0)


def test_official_test_files_load(tmp_path):
    """The paper's HJB test pickles: X = [x, t] of shape (B, d + 1), Y of shape (B, 1), grad_x (B, d)."""
    gen = seeded(0)
    inputs = torch.randn(7, 4, generator=gen)
    values = torch.randn(7, 1, generator=gen)
    grads = torch.randn(7, 3, generator=gen)
    path = tmp_path / "hjb_test.pt"
    torch.save({"X": inputs, "Y": values, "grad_x": grads}, path)
    test = TestSet.load(path)
    assert test.x.dtype == F64
    torch.testing.assert_close(test.x, inputs[:, :3].double())
    torch.testing.assert_close(test.t, inputs[:, 3].double())
    torch.testing.assert_close(test.u, values[:, 0].double())
    torch.testing.assert_close(test.grad, grads.double())
    torch.save({"X": inputs, "Y": values}, path)
    assert TestSet.load(path).grad is None


def test_bad_test_files_raise_input_errors(tmp_path):
    path = tmp_path / "bad.pt"
    torch.save({"inputs": torch.zeros(3, 2), "values": torch.zeros(3)}, path)
    with pytest.raises(InputError, match=r"needs tensors x and u \(or X and Y\); missing \['u', 'x'\]"):
        TestSet.load(path)
    torch.save({"x": torch.zeros(3, 2), "u": torch.zeros(4)}, path)
    with pytest.raises(InputError, match=r"u must have shape \(3,\)"):
        TestSet.load(path)
    torch.save({"x": torch.zeros(3, 2), "u": torch.zeros(3), "grad": torch.zeros(3, 5)}, path)
    with pytest.raises(InputError, match="grad must have x's shape"):
        TestSet.load(path)
    with pytest.raises(InputError, match="no such weights file"):
        TestSet.load(tmp_path / "missing.safetensors")


@pytest.mark.parametrize("timed", [True, False])
def test_test_sets_round_trip_through_safetensors(timed, tmp_path):
    gen = seeded(3)
    x = torch.randn(5, 2, generator=gen, dtype=F64)
    test = TestSet(
        x,
        torch.rand(5, generator=gen, dtype=F64) if timed else None,
        torch.randn(5, generator=gen, dtype=F64),
        torch.randn(5, 2, generator=gen, dtype=F64) if timed else None,
        {"pde": "toy", "seed": 3},
    )
    loaded = TestSet.load(test.save(tmp_path / "test.safetensors"))
    assert loaded.meta == test.meta
    for name in ("x", "t", "u", "grad"):
        mine, theirs = getattr(test, name), getattr(loaded, name)
        if mine is None:
            assert theirs is None, name
        else:
            assert torch.equal(mine, theirs), name


def test_test_set_moves_between_dtypes():
    x = torch.randn(4, 2, generator=seeded(0), dtype=F64)
    test = TestSet(x, None, x.sum(-1), None, {"pde": "toy"})
    single = test.to("cpu", torch.float32)
    assert single.x.dtype == torch.float32
    assert single.u.dtype == torch.float32
    assert single.meta == test.meta
    assert single.meta is not test.meta
    torch.testing.assert_close(single.u.double(), test.u, rtol=1e-6, atol=1e-7)
