"""The physics-informed losses: the L^p norm's limits and numerical range, the weighted combination of the two
regions, and the adversarial loss's relation to the L2 loss on the same starting points."""

from __future__ import annotations

import pytest
import torch

from papers_common import InputError
from pinn_linf import Ascent, LossConfig, adversarial_batch, make_problem, physics_loss, squared_norm
from pinn_linf.losses import domain_residual, terminal_error

F64 = torch.float64
DIM = 3


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def residuals(count: int = 50, seed: int = 0, dtype: torch.dtype = F64) -> torch.Tensor:
    return torch.randn(count, generator=seeded(seed), dtype=dtype)


def test_lp_at_p_2_is_the_l2_loss():
    r = residuals()
    torch.testing.assert_close(squared_norm(r, "lp", 2.0), r.square().mean(), rtol=1e-14, atol=0)
    torch.testing.assert_close(squared_norm(r, "l2"), r.square().mean(), rtol=0, atol=0)


def test_lp_grows_with_p_towards_the_largest_squared_residual():
    r = residuals()
    largest = float(r.square().max())
    values = [float(squared_norm(r, "lp", p)) for p in (1.0, 2.0, 4.0, 16.0, 200.0, 2000.0)]
    assert values == sorted(values)  # the power-mean inequality
    assert values[0] == pytest.approx(float(r.abs().mean()) ** 2, rel=1e-12)  # p = 1: (mean abs r)^2
    # (mean abs(r/s)^p)^(2/p) s^2 with one maximum among B = 50 is at least (1/50)^(2/p) s^2
    assert largest * 50 ** (-2 / 200) <= values[4] <= largest
    assert values[4] == pytest.approx(largest, rel=0.05)
    assert values[5] == pytest.approx(largest, rel=0.005)


def test_lp_matches_its_definition_in_the_ordinary_range():
    r = residuals(dtype=F64)
    for p in (1.5, 3.0, 7.0):
        expected = r.abs().pow(p).mean().pow(2 / p)
        torch.testing.assert_close(squared_norm(r, "lp", p), expected, rtol=1e-12, atol=0)


@pytest.mark.parametrize(
    ("scale", "p"),
    [(1e-3, 50.0), (1e-15, 8.0), (1e10, 8.0), (1e15, 200.0)],
    ids=["tiny-high-p", "very-tiny", "huge", "huge-high-p"],
)
def test_lp_neither_underflows_nor_overflows_in_float32(scale, p):
    """abs(r)^p leaves float32's range (1e-3^50, 1e10^8) but the squared norm itself does not."""
    r64 = residuals(20, seed=3) * scale
    r32 = r64.float()
    naive = r32.abs().pow(p).mean().pow(2 / p)
    assert float(naive) == 0.0 or not torch.isfinite(naive)  # the direct formula does fail here
    # float64 reference by log-sum-exp: log mean abs(r)^p = logsumexp(p log abs(r)) − log n
    log_mean = torch.logsumexp(p * r64.abs().log(), 0) - torch.log(torch.tensor(20.0, dtype=F64))
    expected = float(torch.exp(2 / p * log_mean))
    found = squared_norm(r32, "lp", p)
    assert found.dtype == torch.float32
    assert bool(torch.isfinite(found))
    assert float(found) > 0
    assert float(found) == pytest.approx(expected, rel=1e-4)


def test_lp_gradient_is_finite_for_tiny_residuals():
    r = (residuals(10) * 1e-150).requires_grad_(True)
    loss = squared_norm(r, "lp", 6.0)
    loss.backward()
    assert bool(torch.isfinite(r.grad).all())
    assert float(r.grad.abs().max()) > 0


def test_lp_gradient_of_a_zero_residual_is_zero():
    r = torch.zeros(5, dtype=F64, requires_grad=True)
    squared_norm(r, "lp", 4.0).backward()
    assert torch.equal(r.grad, torch.zeros(5, dtype=F64))


def test_physics_loss_weights_the_two_regions(lin_solution):
    """u* + s t has residual s inside and error s T on the terminal slice: every term is known."""
    horizon, s = 2.0, 0.3
    problem = make_problem("hjb-lin", DIM, horizon=horizon)
    net = lin_solution(DIM, horizon, shift=s)
    gen = seeded(1)
    domain = problem.sample(10, gen, dtype=F64)
    terminal = problem.sample(12, gen, terminal=True, dtype=F64)
    config = LossConfig(kind="l2", domain_weight=2.0, terminal_weight=5.0)
    terms = physics_loss(net, problem, domain, terminal, config)
    expected_domain, expected_terminal = s**2, (s * horizon) ** 2
    torch.testing.assert_close(terms.domain, torch.tensor(expected_domain, dtype=F64), rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(
        terms.terminal, torch.tensor(expected_terminal, dtype=F64), rtol=1e-12, atol=1e-14
    )
    torch.testing.assert_close(
        terms.total, torch.tensor(2 * expected_domain + 5 * expected_terminal, dtype=F64), rtol=1e-12, atol=0
    )
    terms.total.backward()
    # d total / d s = 2·2s + 5·2s T²
    assert float(net.shift.grad) == pytest.approx(4 * s + 10 * s * horizon**2, rel=1e-10)


def test_the_exact_solution_has_zero_loss(lin_solution):
    problem = make_problem("hjb-lin", DIM)
    gen = seeded(2)
    domain, terminal = problem.sample(8, gen, dtype=F64), problem.sample(8, gen, terminal=True, dtype=F64)
    for kind in ("l2", "lp", "adversarial"):
        config = LossConfig(kind=kind, ascent=Ascent(steps=2, step_size=0.05))
        terms = physics_loss(lin_solution(DIM), problem, domain, terminal, config)
        assert terms.total.item() < 1e-24, kind


def test_default_weights_are_the_official_ones():
    config = LossConfig()
    assert (config.kind, config.domain_weight, config.terminal_weight) == ("adversarial", 1.0, 20.0)
    assert config.ascent == Ascent(steps=20, step_size=0.05)


@pytest.fixture
def setting(make_mlp):
    problem = make_problem("hjb-lqg", DIM)
    net = make_mlp(DIM + 1, 16, 2, seed=5)
    gen = seeded(3)
    return problem, net, problem.sample(16, gen, dtype=F64), problem.sample(16, gen, terminal=True, dtype=F64)


def test_lp_loss_is_the_lp_norm_of_each_region(setting):
    problem, net, domain, terminal = setting
    config = LossConfig(kind="lp", p=6.0, domain_weight=1.5, terminal_weight=3.0)
    terms = physics_loss(net, problem, domain, terminal, config)
    r = domain_residual(net, problem, domain).detach()
    e = terminal_error(net, problem, terminal).detach()
    torch.testing.assert_close(terms.domain.detach(), r.abs().pow(6).mean().pow(1 / 3), rtol=1e-12, atol=0)
    torch.testing.assert_close(terms.terminal.detach(), e.abs().pow(6).mean().pow(1 / 3), rtol=1e-12, atol=0)
    torch.testing.assert_close(terms.total, 1.5 * terms.domain + 3.0 * terms.terminal)
    assert terms.domain.item() > float(r.square().mean())  # p > 2 weighs the large residuals more


def test_adversarial_with_no_steps_is_the_l2_loss(setting):
    problem, net, domain, terminal = setting
    l2 = physics_loss(net, problem, domain, terminal, LossConfig(kind="l2"))
    adversarial = physics_loss(
        net, problem, domain, terminal, LossConfig(kind="adversarial", ascent=Ascent(0))
    )
    for name in ("domain", "terminal", "total"):
        assert torch.equal(getattr(adversarial, name), getattr(l2, name)), name


def test_adversarial_loss_is_the_l2_loss_at_the_moved_points_and_at_least_the_l2_loss(setting):
    problem, net, domain, terminal = setting
    ascent = Ascent(steps=5, step_size=0.01)
    l2 = physics_loss(net, problem, domain, terminal, LossConfig(kind="l2"))
    adversarial = physics_loss(net, problem, domain, terminal, LossConfig(kind="adversarial", ascent=ascent))
    assert adversarial.domain.item() > l2.domain.item()
    assert adversarial.terminal.item() > l2.terminal.item()
    assert adversarial.total.item() > l2.total.item()
    moved = adversarial_batch(net, problem, domain, terminal, ascent)
    at_moved = physics_loss(net, problem, *moved, LossConfig(kind="l2"))
    torch.testing.assert_close(adversarial.total, at_moved.total, rtol=1e-14, atol=0)
    # the starting points were not moved in place
    assert torch.equal(domain, setting[2])


@pytest.mark.parametrize("kind", ["l2", "lp", "adversarial"])
def test_parameter_gradients_of_the_total_loss_are_finite(kind, setting):
    problem, net, domain, terminal = setting
    config = LossConfig(kind=kind, p=8.0, ascent=Ascent(steps=2, step_size=0.05))
    physics_loss(net, problem, domain, terminal, config).total.backward()
    grads = [p.grad for p in net.parameters()]
    assert all(g is not None and bool(torch.isfinite(g).all()) for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"kind": "linf"}, "unknown loss 'linf'; choose one of l2, lp, adversarial"),
        ({"p": 0.5}, "finite p >= 1, got p=0.5"),
        ({"p": float("inf")}, "finite p >= 1, got p=inf"),
        ({"p": float("nan")}, "finite p >= 1"),
        ({"domain_weight": -1.0}, "domain_weight must be non-negative and finite, got -1.0"),
        ({"terminal_weight": float("nan")}, "terminal_weight must be non-negative and finite"),
        ({"terminal_weight": float("inf")}, "terminal_weight must be non-negative and finite"),
    ],
)
def test_bad_loss_settings_are_rejected(settings, message):
    with pytest.raises(InputError, match=message):
        LossConfig(**settings)


def test_zero_weights_are_allowed(setting):
    problem, net, domain, terminal = setting
    terms = physics_loss(net, problem, domain, terminal, LossConfig(kind="l2", terminal_weight=0.0))
    assert torch.equal(terms.total, terms.domain)
