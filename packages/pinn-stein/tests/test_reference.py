"""Reference solutions: the Cole-Hopf Monte Carlo estimate converges to a closed form, and test sets are made,
saved, cached and loaded (including the official X / Y / grad_x files)."""

from __future__ import annotations

import math

import pytest
import torch

import pinn_stein.reference as reference
from papers_common import InputError
from pinn_stein import HJBLQG, Heat, Poisson, cached_test_set, cole_hopf, make_test_set

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
    pde = HJBLQG(3)
    x = torch.randn(5, 3, generator=seeded(1), dtype=F64)
    t = torch.full((5,), pde.horizon, dtype=F64)
    u, grad = cole_hopf(x, t, pde.terminal, mu=pde.mu, horizon=pde.horizon, samples=64, generator=seeded(0))
    torch.testing.assert_close(u, pde.terminal(x), rtol=0, atol=1e-12)
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


def test_make_test_set_for_hjb():
    pde = HJBLQG(3)
    test = make_test_set(pde, 6, seed=2, samples=2**12)
    assert len(test) == 6
    assert test.x.shape == (6, 3)
    assert test.t.shape == (6,)
    assert test.grad.shape == (6, 3)
    assert test.u.dtype == F64
    assert test.meta == {
        "pde": "hjb",
        "dim": 3,
        "mu": 1.0,
        "T": 1.0,
        "seed": 2,
        "points": 6,
        "monte_carlo_samples": 4096,
    }
    drawn = pde.test_points(6, seeded(2), torch.empty(0, dtype=F64))
    assert torch.equal(test.x, drawn.x)
    assert torch.equal(test.t, drawn.t)
    again = make_test_set(pde, 6, seed=2, samples=2**12)
    assert torch.equal(test.u, again.u)
    # an independent, larger estimate agrees to Monte Carlo accuracy
    u, grad = cole_hopf(
        test.x, test.t, pde.terminal, mu=1.0, horizon=1.0, samples=2**15, generator=seeded(99)
    )
    torch.testing.assert_close(test.u, u, rtol=0, atol=0.05)
    torch.testing.assert_close(test.grad, grad, rtol=0, atol=0.1)
    assert not torch.equal(test.u, u)


def test_make_test_set_for_exact_problems():
    heat = make_test_set(Heat(4), 20, seed=1, dtype=torch.float32)
    assert heat.u.dtype == torch.float32
    torch.testing.assert_close(heat.u, heat.x.square().sum(-1) / 8 + heat.t)
    assert heat.grad is None
    assert heat.meta == {"pde": "heat", "dim": 4, "seed": 1, "points": 20}
    poisson = make_test_set(Poisson(2), 10)
    assert poisson.t is None
    with pytest.raises(InputError, match="at least one point"):
        make_test_set(Heat(2), 0)


@pytest.mark.parametrize("pde", [HJBLQG(2), Poisson(3)], ids=["hjb", "poisson"])
def test_test_sets_round_trip_through_safetensors(pde, tmp_path):
    test = make_test_set(pde, 5, seed=3, samples=256)
    path = test.save(tmp_path / "test.safetensors")
    loaded = reference.TestSet.load(path)
    assert loaded.meta == test.meta
    for name in ("x", "t", "u", "grad"):
        mine, theirs = getattr(test, name), getattr(loaded, name)
        if mine is None:
            assert theirs is None, name
        else:
            assert torch.equal(mine, theirs), name


def test_cached_test_set_is_reused_only_with_the_same_settings(tmp_path, monkeypatch):
    made = []
    original = reference.make_test_set

    def counting(*args, **kwargs):
        made.append(kwargs)
        return original(*args, **kwargs)

    monkeypatch.setattr(reference, "make_test_set", counting)
    path = tmp_path / "heat.safetensors"
    first = cached_test_set(path, Heat(3), 8, seed=1)
    assert len(made) == 1
    assert path.exists()
    again = cached_test_set(path, Heat(3), 8, seed=1)
    assert len(made) == 1  # read back, not recomputed
    assert torch.equal(again.u, first.u)
    cached_test_set(path, Heat(3), 8, seed=1, samples=99)  # Monte Carlo size is irrelevant to exact problems
    assert len(made) == 1
    other = cached_test_set(path, Heat(3), 8, seed=2)
    assert len(made) == 2
    assert not torch.equal(other.x, first.x)
    assert reference.TestSet.load(path).meta["seed"] == 2  # the file now holds the new set
    cached_test_set(path, Heat(4), 8, seed=2)
    assert len(made) == 3
    hjb = tmp_path / "hjb.safetensors"
    cached_test_set(hjb, HJBLQG(2), 4, samples=64)
    cached_test_set(hjb, HJBLQG(2), 4, samples=64)
    assert len(made) == 4
    cached_test_set(hjb, HJBLQG(2), 4, samples=128)
    cached_test_set(hjb, HJBLQG(2, mu=0.5), 4, samples=128)
    assert len(made) == 6


def test_official_test_files_load(tmp_path):
    """The paper's HJB test pickles: X = [x, t] of shape (B, d + 1), Y of shape (B, 1), grad_x (B, d)."""
    gen = seeded(0)
    inputs = torch.randn(7, 4, generator=gen)
    values = torch.randn(7, 1, generator=gen)
    grads = torch.randn(7, 3, generator=gen)
    path = tmp_path / "hjb_test.pt"
    torch.save({"X": inputs, "Y": values, "grad_x": grads}, path)
    test = reference.TestSet.load(path)
    assert test.x.dtype == F64
    torch.testing.assert_close(test.x, inputs[:, :3].double())
    torch.testing.assert_close(test.t, inputs[:, 3].double())
    torch.testing.assert_close(test.u, values[:, 0].double())
    torch.testing.assert_close(test.grad, grads.double())
    torch.save({"X": inputs, "Y": values}, path)
    assert reference.TestSet.load(path).grad is None


def test_bad_test_files_raise_input_errors(tmp_path):
    path = tmp_path / "bad.pt"
    torch.save({"inputs": torch.zeros(3, 2), "values": torch.zeros(3)}, path)
    with pytest.raises(InputError, match=r"needs tensors x and u \(or X and Y\); missing \['u', 'x'\]"):
        reference.TestSet.load(path)
    torch.save({"x": torch.zeros(3, 2), "u": torch.zeros(4)}, path)
    with pytest.raises(InputError, match=r"u must have shape \(3,\)"):
        reference.TestSet.load(path)
    torch.save({"x": torch.zeros(3, 2), "u": torch.zeros(3), "grad": torch.zeros(3, 5)}, path)
    with pytest.raises(InputError, match="grad must have x's shape"):
        reference.TestSet.load(path)
    with pytest.raises(InputError, match="no such weights file"):
        reference.TestSet.load(tmp_path / "missing.safetensors")


def test_test_set_moves_between_dtypes():
    test = make_test_set(Heat(2), 4)
    single = test.to("cpu", torch.float32)
    assert single.x.dtype == torch.float32
    assert single.u.dtype == torch.float32
    assert single.meta == test.meta
    assert single.meta is not test.meta
    torch.testing.assert_close(single.u.double(), test.u, rtol=1e-6, atol=1e-7)
