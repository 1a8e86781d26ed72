"""Stein's-identity estimators: unbiased for the smoothed field's derivatives, and variance reduction that works."""

from __future__ import annotations

import math

import pytest
import torch

from pinn_stein import Smoothing, exact_derivatives, stein_vanilla, stein_variance_reduced

F64 = torch.float64
ESTIMATORS = {"vanilla": stein_vanilla, "variance-reduced": stein_variance_reduced}


def replicated(estimator, g, x, t, smoothing, reps, seed) -> dict[str, torch.Tensor]:
    """``reps`` independent estimates at each of the ``P`` points, as ``(reps, P, ...)`` tensors."""
    points = x.shape[0]
    with torch.no_grad():
        found = estimator(
            g,
            x.repeat(reps, 1),
            None if t is None else t.repeat(reps),
            smoothing,
            torch.Generator().manual_seed(seed),
        )
    out = {
        "u": found.u.reshape(reps, points),
        "grad": found.grad.reshape(reps, points, -1),
        "laplacian": found.laplacian.reshape(reps, points),
    }
    if t is not None:
        out["dt"] = found.dt.reshape(reps, points)
    else:
        assert found.dt is None
    return out


def assert_unbiased(name: str, samples: torch.Tensor, truth: torch.Tensor, *, power: float) -> None:
    """The mean of ``samples`` (reps first) is within 5 standard errors of ``truth``, and that standard error is
    below ``power`` (so that an estimator off by a visible amount would fail)."""
    reps = samples.shape[0]
    mean = samples.mean(0)
    stderr = samples.std(0) / math.sqrt(reps)
    error = (mean - truth).abs()
    worst = float((error / (stderr + 1e-300)).max())
    assert bool((error <= 5 * stderr + 1e-12).all()), f"{name}: mean off by {worst:.1f} standard errors"
    assert float(stderr.max()) < power, f"{name}: standard error {float(stderr.max()):.3g} too large to test"


def points(timed: bool, dim: int = 3, count: int = 4, seed: int = 11):
    gen = torch.Generator().manual_seed(seed)
    x = 0.7 * torch.randn(count, dim, generator=gen, dtype=F64)
    t = torch.rand(count, generator=gen, dtype=F64) if timed else None
    return x, t


@pytest.mark.parametrize("timed", [True, False], ids=["timed", "untimed"])
@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_estimators_are_unbiased_on_a_quadratic(name, timed, quadratic):
    x, t = points(timed)
    dim = x.shape[1]
    g = quadratic(dim + int(timed), seed=3)
    smoothing = Smoothing(sigma_x=0.5, sigma_t=0.3, samples=256)
    z = x if t is None else torch.cat([x, t[:, None]], 1)
    truth = g.smoothed(z, smoothing.scales(dim, timed, x))
    found = replicated(ESTIMATORS[name], g, x, t, smoothing, reps=256, seed=5)
    assert_unbiased("u", found["u"], truth["u"], power=0.1)
    assert_unbiased("grad", found["grad"], truth["gradient"][:, :dim], power=0.1)
    lap = torch.full((x.shape[0],), g.laplacian(dim), dtype=F64)
    assert_unbiased("laplacian", found["laplacian"], lap, power=0.15)
    if timed:
        assert_unbiased("dt", found["dt"], truth["gradient"][:, dim], power=0.1)


@pytest.mark.parametrize("timed", [True, False], ids=["timed", "untimed"])
@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_estimators_are_unbiased_for_the_smoothed_sine(name, timed, sine):
    """f = E sin(w.(z + delta)) differs visibly from g at sigma = 0.5: the estimates must follow f, not g."""
    x, t = points(timed)
    dim = x.shape[1]
    w = torch.tensor([1.1, -0.8, 0.9, 1.3][: dim + int(timed)], dtype=F64)
    g = sine(w)
    smoothing = Smoothing(sigma_x=0.5, sigma_t=0.4, samples=256)
    z = x if t is None else torch.cat([x, t[:, None]], 1)
    truth = g.smoothed(z, smoothing.scales(dim, timed, x))
    raw = g(z).squeeze(-1)
    # the smoothing is strong enough that an estimator of g's derivatives instead of f's would be caught
    assert float((raw - truth["u"]).abs().max()) > 0.1
    found = replicated(ESTIMATORS[name], g, x, t, smoothing, reps=256, seed=6)
    assert_unbiased("u", found["u"], truth["u"], power=0.02)
    assert_unbiased("grad", found["grad"], truth["gradient"][:, :dim], power=0.03)
    assert_unbiased("laplacian", found["laplacian"], g.laplacian_factor(dim) * truth["u"], power=0.06)
    if timed:
        assert_unbiased("dt", found["dt"], truth["gradient"][:, dim], power=0.03)


def test_variance_reduced_estimates_of_a_linear_field_are_exact():
    """g affine: g+ + g- - 2 g0 = 0 and (g+ + g-)/2 = g0, whatever the draws; vanilla Stein is only unbiased."""
    gen = torch.Generator().manual_seed(0)
    lin = torch.nn.Linear(4, 1).to(F64)
    x, t = points(timed=True)
    smoothing = Smoothing(sigma_x=0.01, sigma_t=0.01, samples=64)
    found = stein_variance_reduced(lin, x, t, smoothing, gen)
    value = lin(torch.cat([x, t[:, None]], 1)).squeeze(-1)
    torch.testing.assert_close(found.u, value, rtol=0, atol=1e-12)
    torch.testing.assert_close(found.laplacian, torch.zeros_like(value), rtol=0, atol=1e-9)
    vanilla = stein_vanilla(lin, x, t, smoothing, gen)
    assert float(vanilla.laplacian.detach().abs().max()) > 1.0  # 1/sigma^4 noise without the control variate


def test_variance_reduced_estimates_of_a_quadratic_do_not_depend_on_sigma(quadratic):
    """For a quadratic, g+ - g- = 2 (Az + b).delta and g+ + g- - 2 g0 = delta^T A delta: with delta = sigma * eps the
    estimators' sigma powers cancel exactly, so the same draws give the same estimate at any sigma."""
    x, t = points(timed=True)
    g = quadratic(4, seed=1)
    small = stein_variance_reduced(g, x, t, Smoothing(0.01, 0.01, 32), torch.Generator().manual_seed(3))
    large = stein_variance_reduced(g, x, t, Smoothing(0.3, 0.3, 32), torch.Generator().manual_seed(3))
    torch.testing.assert_close(small.laplacian, large.laplacian, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(small.grad, large.grad, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(small.dt, large.dt, rtol=1e-9, atol=1e-9)
    # while the vanilla estimator's spread grows like 1/sigma^2
    vanilla = stein_vanilla(g, x, t, Smoothing(0.01, 0.01, 32), torch.Generator().manual_seed(3))
    assert float((vanilla.laplacian - g.laplacian(3)).abs().min()) > 100 * float(
        (small.laplacian - g.laplacian(3)).abs().max()
    )


def spread(g, x, t, estimator, smoothing, reps, seed) -> dict[str, torch.Tensor]:
    """Per-point empirical variance over ``reps`` independent estimates, averaged over the points."""
    found = replicated(estimator, g, x, t, smoothing, reps, seed)
    return {k: v.var(0).mean() for k, v in found.items()}


def test_antithetic_control_variate_cuts_the_variance(make_mlp):
    """At sigma = 0.01 the vanilla second-order estimator's variance is ~1/sigma^4 larger: at least 100x here."""
    g = make_mlp(5, 32, 2, seed=4)
    x, t = points(timed=True, dim=4, count=8)
    smoothing = Smoothing(sigma_x=0.01, sigma_t=0.01, samples=64)
    vanilla = spread(g, x, t, stein_vanilla, smoothing, reps=32, seed=1)
    reduced = spread(g, x, t, stein_variance_reduced, smoothing, reps=32, seed=2)
    assert float(vanilla["laplacian"]) > 100 * float(reduced["laplacian"])
    assert float(vanilla["grad"]) > 100 * float(reduced["grad"])
    assert float(vanilla["dt"]) > 100 * float(reduced["dt"])


def test_variance_reduced_estimates_match_autograd_of_the_network_at_small_sigma(make_mlp):
    """sigma = 0.01: the smoothed field is g + O(sigma^2), far below the Monte Carlo error, so the estimates average
    to the exact autograd derivatives of the raw network."""
    g = make_mlp(5, 32, 2, seed=4)
    x, t = points(timed=True, dim=4, count=8)
    exact = exact_derivatives(g, x, t, how="loop")
    found = replicated(stein_variance_reduced, g, x, t, Smoothing(0.01, 0.01, 256), reps=64, seed=9)
    torch.testing.assert_close(found["u"].mean(0), exact.u.detach(), rtol=0, atol=1e-4)
    grad_scale = float(exact.grad.detach().abs().max())
    assert_unbiased("grad", found["grad"], exact.grad.detach(), power=0.05 * grad_scale)
    assert_unbiased("dt", found["dt"], exact.dt.detach(), power=0.05 * grad_scale)
    lap_scale = float(exact.laplacian.detach().abs().max())
    assert_unbiased("laplacian", found["laplacian"], exact.laplacian.detach(), power=0.1 * lap_scale)


@pytest.mark.parametrize("estimator", list(ESTIMATORS.values()), ids=list(ESTIMATORS))
def test_estimators_are_differentiable_in_the_parameters(estimator, make_mlp):
    """Training needs one ordinary backward pass through theta: gradients exist, are finite and nonzero."""
    g = make_mlp(4, 16, 2, seed=0)
    x, t = points(timed=True)
    found = estimator(g, x, t, Smoothing(0.1, 0.1, 16), torch.Generator().manual_seed(0))
    (found.dt - found.laplacian + found.u + found.grad.sum(-1)).square().mean().backward()
    for name, parameter in g.named_parameters():
        assert parameter.grad is not None, name
        assert bool(torch.isfinite(parameter.grad).all()), name
        assert float(parameter.grad.abs().max()) > 0, name


@pytest.mark.parametrize("timed", [True, False], ids=["timed", "untimed"])
@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_first_layer_evaluation_equals_the_stacked_one(name, timed, make_mlp, opaque):
    """An MLP's estimates via (W z + b) ± W δ equal those of one batched call on the stacked noisy inputs (the
    same network behind an opaque module, same draws) to float64 precision, and so do their θ-gradients."""
    g = make_mlp(4 + int(timed), 8, 3, seed=2)
    x, t = points(timed, dim=4, count=6)
    smoothing = Smoothing(0.1, 0.1, 32)
    found = {}
    for label, network in (("split", g), ("stacked", opaque(g))):
        estimate = ESTIMATORS[name](network, x, t, smoothing, torch.Generator().manual_seed(7))
        fields = [estimate.u, estimate.grad.flatten(), estimate.laplacian] + ([estimate.dt] if timed else [])
        values = torch.cat(fields)
        theta = torch.autograd.grad(values.square().sum(), list(g.parameters()))
        found[label] = (values, theta)
    torch.testing.assert_close(found["split"][0], found["stacked"][0], rtol=1e-10, atol=1e-10)
    for ours, reference in zip(found["split"][1], found["stacked"][1], strict=True):
        torch.testing.assert_close(ours, reference, rtol=1e-10, atol=1e-10)
