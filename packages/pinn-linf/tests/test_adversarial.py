"""The inner maximisation: sign-gradient ascent raises the residual loss step by step, moves each coordinate by
exactly η, keeps t in range, honours the optional bounds and leaves the network's parameters alone."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from papers_common import InputError
from pinn_linf import Ascent, adversarial_batch, make_problem, sign_ascent
from pinn_linf.losses import domain_residual, terminal_error

F64 = torch.float64
DIM = 3


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture
def setting(make_mlp):
    """A fixed random network and 16 + 16 starting points of HJB-LQG in d = 3, float64."""
    problem = make_problem("hjb-lqg", DIM)
    net = make_mlp(DIM + 1, 16, 2, seed=0)
    gen = seeded(1)
    domain = problem.sample(16, gen, dtype=F64)
    terminal = problem.sample(16, gen, terminal=True, dtype=F64)
    return problem, net, domain, terminal


def mean_losses(net, problem, domain, terminal) -> tuple[float, float]:
    with torch.enable_grad():
        d = float(domain_residual(net, problem, domain).detach().square().mean())
    return d, float(terminal_error(net, problem, terminal).detach().square().mean())


@pytest.mark.parametrize("name", ["hjb-lqg", "hjb-lin"])
def test_small_sign_steps_raise_the_loss_monotonically(name, make_mlp):
    problem = make_problem(name, DIM)
    net = make_mlp(DIM + 1, 16, 2, seed=0)
    gen = seeded(1)
    domain = problem.sample(16, gen, dtype=F64)
    terminal = problem.sample(16, gen, terminal=True, dtype=F64)
    eta, steps = 1e-3, 8
    curve = []
    for k in range(steps + 1):  # the run with k steps is the first k steps of a longer one
        moved = adversarial_batch(net, problem, domain, terminal, Ascent(steps=k, step_size=eta))
        curve.append(mean_losses(net, problem, *moved))
    for region in (0, 1):
        losses = [c[region] for c in curve]
        # a sign step gains eta * abs(grad)_1 to first order; the second-order term is O(eta^2) relative to it
        for before, after in itertools.pairwise(losses):
            assert after >= before - 1e-9 * abs(before), (region, losses)
        assert losses[-1] > losses[0] * (1 + 1e-5), (region, losses)


def test_the_first_step_gains_eta_times_the_l1_norm_of_the_gradient(setting):
    """L(z + η sign ∇L) − L(z) = η ‖∇L‖₁ + O(η²): the step is a sign step, not a gradient step."""
    problem, net, domain, _ = setting

    def loss(z: torch.Tensor) -> torch.Tensor:
        return domain_residual(net, problem, z).square().sum()

    leaf = domain.clone().requires_grad_(True)
    (gradient,) = torch.autograd.grad(loss(leaf), leaf)
    # keep t inside (0, T) so that the clamp does not cut the step
    inside = (domain[:, -1] > 1e-3) & (domain[:, -1] < 1 - 1e-3)
    assert bool(inside.all())
    for eta in (1e-4, 1e-5):
        moved = sign_ascent(domain, loss, Ascent(steps=1, step_size=eta), t_range=(0.0, 1.0))
        gain = float(loss(moved).detach() - loss(domain).detach())
        predicted = eta * float(gradient.abs().sum())
        assert math.isclose(gain, predicted, rel_tol=50 * eta), (eta, gain, predicted)


def test_every_coordinate_moves_by_exactly_eta_per_step(setting):
    problem, net, domain, terminal = setting
    domain = domain.clone()
    domain[:, -1] = 0.5  # far from both ends of [0, T]: no clamp is active
    eta = 0.01
    one_d, one_t = adversarial_batch(net, problem, domain, terminal, Ascent(steps=1, step_size=eta))
    torch.testing.assert_close((one_d - domain).abs(), torch.full_like(domain, eta), rtol=0, atol=1e-15)
    torch.testing.assert_close(
        (one_t - terminal)[:, :DIM].abs(), torch.full_like(terminal[:, :DIM], eta), rtol=0, atol=1e-15
    )
    steps = 5
    many_d, _ = adversarial_batch(net, problem, domain, terminal, Ascent(steps=steps, step_size=eta))
    moved = (many_d - domain).abs() / eta
    # k steps of ±η: the distance is at most kη and has the parity of k (in units of η)
    assert float(moved.max()) <= steps + 1e-9
    assert torch.allclose(torch.remainder(moved.round() - steps, 2), torch.zeros_like(moved))
    assert torch.allclose(moved, moved.round(), atol=1e-9)
    assert float(moved[:, :DIM].max()) == pytest.approx(steps)  # most points keep climbing one way


def test_t_stays_in_range_inside_and_at_T_on_the_terminal_slice(make_mlp):
    horizon = 0.5
    problem = make_problem("hjb-lin", DIM, horizon=horizon)
    net = make_mlp(DIM + 1, 16, 2, seed=3)
    gen = seeded(2)
    domain = problem.sample(64, gen, dtype=F64)
    terminal = problem.sample(16, gen, terminal=True, dtype=F64)
    moved_d, moved_t = adversarial_batch(net, problem, domain, terminal, Ascent(steps=10, step_size=0.2))
    t = moved_d[:, -1]
    assert float(t.min()) >= 0.0
    assert float(t.max()) <= horizon
    # with 10 steps of 0.2 on [0, 0.5] some points reach an end and are held there
    assert bool(((t == 0.0) | (t == horizon)).any())
    assert torch.equal(moved_t[:, -1], torch.full((16,), horizon, dtype=F64))
    assert not torch.equal(moved_t[:, :DIM], terminal[:, :DIM])  # x moved on the slice


def test_the_radius_bounds_the_distance_from_the_start(setting):
    problem, net, domain, terminal = setting
    radius = 0.03
    ascent = Ascent(steps=10, step_size=0.01, radius=radius)
    moved_d, moved_t = adversarial_batch(net, problem, domain, terminal, ascent)
    for moved, start in ((moved_d, domain), (moved_t, terminal)):
        distance = (moved[:, :DIM] - start[:, :DIM]).abs()
        assert float(distance.max()) <= radius + 1e-12
        assert float(distance.max()) == pytest.approx(radius)  # the bound is reached, so it was active
    free_d, _ = adversarial_batch(net, problem, domain, terminal, Ascent(steps=10, step_size=0.01))
    assert float((free_d - domain)[:, :DIM].abs().max()) == pytest.approx(0.1)
    # a radius that is never reached changes nothing
    loose_d, _ = adversarial_batch(
        net, problem, domain, terminal, Ascent(steps=10, step_size=0.01, radius=1.0)
    )
    assert torch.equal(loose_d, free_d)


def test_the_box_bounds_x(setting):
    problem, net, domain, terminal = setting
    box = 0.5
    moved_d, moved_t = adversarial_batch(
        net, problem, domain, terminal, Ascent(steps=20, step_size=0.1, box=box)
    )
    for moved in (moved_d, moved_t):
        assert float(moved[:, :DIM].abs().max()) <= box
    assert float(moved_d[:, :DIM].abs().max()) == box  # the bound is active


def test_no_steps_return_the_points_unchanged(setting):
    problem, net, domain, terminal = setting
    moved_d, moved_t = adversarial_batch(net, problem, domain, terminal, Ascent(steps=0))
    assert torch.equal(moved_d, domain)
    assert torch.equal(moved_t, terminal)


def test_the_network_gets_no_gradient_and_the_points_come_back_detached(setting):
    problem, net, domain, terminal = setting
    moved_d, moved_t = adversarial_batch(net, problem, domain, terminal, Ascent(steps=3, step_size=0.05))
    assert all(p.grad is None for p in net.parameters())
    assert not moved_d.requires_grad
    assert not moved_t.requires_grad
    # the inputs were not changed in place
    assert not torch.equal(moved_d, domain)


def test_the_ascent_runs_under_no_grad(setting):
    """Callers may hold torch.no_grad (e.g. an evaluation loop); the inner loop still needs gradients."""
    problem, net, domain, terminal = setting
    with torch.no_grad():
        moved_d, _ = adversarial_batch(net, problem, domain, terminal, Ascent(steps=2, step_size=0.05))
    assert not torch.equal(moved_d, domain)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"steps": -1}, "steps K must be a non-negative integer, got -1"),
        ({"steps": 1.5}, "steps K must be a non-negative integer, got 1.5"),
        ({"steps": True}, "steps K must be a non-negative integer, got True"),
        ({"step_size": 0.0}, "step size eta must be positive and finite, got 0.0"),
        ({"step_size": -0.1}, "step size eta must be positive and finite"),
        ({"step_size": float("nan")}, "step size eta must be positive and finite, got nan"),
        ({"step_size": float("inf")}, "step size eta must be positive and finite"),
        ({"radius": 0.0}, "radius must be positive and finite"),
        ({"radius": -1.0}, "radius must be positive and finite"),
        ({"radius": float("nan")}, "radius must be positive and finite"),
        ({"box": 0.0}, "box must be positive and finite"),
        ({"box": float("inf")}, "box must be positive and finite"),
    ],
)
def test_bad_ascent_settings_are_rejected(settings, message):
    with pytest.raises(InputError, match=message):
        Ascent(**settings)


def test_default_ascent_is_the_official_one():
    ascent = Ascent()
    assert (ascent.steps, ascent.step_size, ascent.radius, ascent.box) == (20, 0.05, None, None)
