"""Benchmark PDEs: residuals vanish on exact solutions (and only there), samplers cover the right regions."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from papers_common import InputError
from pinn_stein import HJBLQG, PROBLEMS, Heat, HJBLin, Poisson, derivatives, make_pde

F64 = torch.float64
LIKE = torch.empty(0, dtype=F64)


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def residual_of(pde, g: nn.Module, n: int = 64, seed: int = 0) -> torch.Tensor:
    """The PDE residual of network ``g`` at ``n`` domain points, from exact (stacked-loop) autograd derivatives."""
    points = pde.sample("domain", n, seeded(seed), LIKE)
    found = derivatives(g, points.x, points.t, method="pinn")
    return pde.residual(points, found).detach()


PROBLEMS_WITH_SOLUTIONS = [
    Poisson(2),
    Poisson(5),
    Heat(3),
    Heat(10),
    HJBLin(4),
    HJBLin(3, exponent=2.0, horizon=0.6),
]


@pytest.mark.parametrize("pde", PROBLEMS_WITH_SOLUTIONS, ids=lambda p: f"{p.name}-{p.dim}")
def test_exact_solutions_have_zero_residual(pde, exact_network):
    residual = residual_of(pde, exact_network(pde))
    assert residual.shape == (64,)
    assert float(residual.abs().max()) < 1e-10


@pytest.mark.parametrize("pde", PROBLEMS_WITH_SOLUTIONS, ids=lambda p: f"{p.name}-{p.dim}")
def test_wrong_solutions_have_nonzero_residual(pde, exact_network):
    if not isinstance(pde, Heat):  # the heat equation is linear and homogeneous: 1.1 u solves it too
        scaled = residual_of(pde, exact_network(pde, scale=1.1))
        assert float(scaled.abs().mean()) > 1e-2
    if pde.timed:  # u + 0.5 t
        shifted = residual_of(pde, exact_network(pde, shift=0.5))
        assert float(shifted.abs().mean()) > 0.1


class QuadraticColeHopf(nn.Module):
    """The closed-form HJB solution for terminal data a|x|^2: u = d/(2 mu) log k + a|x|^2 / k, k = 1 + 4 mu a (T - t)."""

    def __init__(self, dim: int, mu: float, horizon: float, a: float) -> None:
        super().__init__()
        self.dim, self.mu, self.horizon, self.a = dim, mu, horizon, a

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x, t = z[:, :-1], z[:, -1]
        k = 1 + 4 * self.mu * self.a * (self.horizon - t)
        return self.dim / (2 * self.mu) * torch.log(k) + self.a * x.square().sum(-1) / k


def test_hjb_residual_vanishes_on_a_closed_form_solution():
    """u_t + Delta u - mu |grad u|^2 = 0 holds for the Cole-Hopf solution with quadratic terminal data, with the
    problem's own mu (not 1) and horizon."""
    pde = HJBLQG(3, mu=0.7, horizon=0.8)
    good = residual_of(pde, QuadraticColeHopf(3, mu=0.7, horizon=0.8, a=0.4))
    assert float(good.abs().max()) < 1e-10
    wrong_mu = residual_of(pde, QuadraticColeHopf(3, mu=1.0, horizon=0.8, a=0.4))
    assert float(wrong_mu.abs().mean()) > 1e-2


def test_hjb_lin_exact_solution_meets_its_terminal_data():
    pde = HJBLin(5, horizon=0.6)
    terminal = pde.sample("terminal", 50, seeded(1), LIKE)
    torch.testing.assert_close(pde.exact(terminal), pde.target("terminal", terminal), rtol=0, atol=1e-12)
    torch.testing.assert_close(pde.target("terminal", terminal), terminal.x.sum(-1), rtol=0, atol=0)


def test_targets_are_the_exact_solution_on_constraint_regions():
    heat = Heat(4)
    initial = heat.sample("initial", 30, seeded(0), LIKE)
    torch.testing.assert_close(heat.target("initial", initial), initial.x.square().sum(-1) / 8)
    boundary = heat.sample("boundary", 30, seeded(0), LIKE)
    torch.testing.assert_close(heat.target("boundary", boundary), 1 / 8 + boundary.t)
    poisson = Poisson(3)
    edge = poisson.sample("boundary", 30, seeded(0), LIKE)
    torch.testing.assert_close(poisson.target("boundary", edge), torch.sin(edge.x.sum(-1)) / 3)
    hjb = HJBLQG(3)
    end = hjb.sample("terminal", 30, seeded(0), LIKE)
    torch.testing.assert_close(hjb.target("terminal", end), torch.log((1 + end.x.square().sum(-1)) / 2))


def test_poisson_samplers():
    pde = Poisson(3)
    inside = pde.sample("domain", 3000, seeded(0), LIKE)
    assert inside.t is None
    assert inside.x.shape == (3000, 3)
    assert bool(((inside.x >= 0) & (inside.x <= 1)).all())
    edge = pde.sample("boundary", 3000, seeded(1), LIKE).x
    assert bool(((edge >= 0) & (edge <= 1)).all())
    on_face = (edge == 0) | (edge == 1)
    assert bool((on_face.sum(1) == 1).all())  # exactly one pinned coordinate per point
    # every face (coordinate i at 0 or at 1) is used, about equally: 500 of 3000 expected on each
    for side in (0.0, 1.0):
        counts = (edge == side).sum(0)
        assert bool((counts > 400).all()), counts.tolist()


def test_heat_samplers():
    dim = 5
    pde = Heat(dim)
    n = 8000
    inside = pde.sample("domain", n, seeded(0), LIKE)
    radius = inside.x.norm(dim=-1)
    assert bool((radius <= 1).all())
    assert bool(((inside.t >= 0) & (inside.t <= 1)).all())
    # uniform in the ball: |x|^d is uniform on [0, 1] (mean 1/2, standard error sqrt(1/12 / n) = 0.0032)
    assert abs(float(radius.pow(dim).mean()) - 0.5) < 0.015
    assert float(inside.x.mean(0).abs().max()) < 0.03  # no preferred direction
    sphere = pde.sample("boundary", n, seeded(1), LIKE)
    torch.testing.assert_close(sphere.x.norm(dim=-1), torch.ones(n, dtype=F64), rtol=0, atol=1e-12)
    assert float(sphere.t.std()) > 0.25  # t ~ U(0, 1), standard deviation 0.29
    initial = pde.sample("initial", n, seeded(2), LIKE)
    assert bool((initial.t == 0).all())
    assert bool((initial.x.norm(dim=-1) <= 1).all())
    assert abs(float(initial.x.norm(dim=-1).pow(dim).mean()) - 0.5) < 0.015


def test_hjb_samplers_use_the_horizon():
    pde = HJBLQG(3, horizon=0.7)
    end = pde.sample("terminal", 500, seeded(0), LIKE)
    assert bool((end.t == 0.7).all())
    inside = pde.sample("domain", 4000, seeded(1), LIKE)
    assert bool(((inside.t >= 0) & (inside.t <= 0.7)).all())
    assert float(inside.t.max()) > 0.6
    torch.testing.assert_close(inside.x.std(0), torch.ones(3, dtype=F64), rtol=0.05, atol=0)  # x ~ N(0, I)
    lin = HJBLin(2, horizon=1.5)
    assert bool((lin.sample("terminal", 10, seeded(0), LIKE).t == 1.5).all())


def test_samples_follow_the_reference_tensor_and_the_generator():
    pde = Heat(3)
    single = pde.sample("domain", 10, seeded(3), torch.empty(0))
    assert single.x.dtype == torch.float32
    assert single.t.dtype == torch.float32
    again = pde.sample("domain", 10, seeded(3), torch.empty(0))
    assert torch.equal(single.x, again.x)
    other = pde.sample("domain", 10, seeded(4), torch.empty(0))
    assert not torch.equal(single.x, other.x)
    assert len(pde.test_points(7, seeded(0), LIKE)) == 7


def test_problem_registry_and_descriptions():
    assert set(PROBLEMS) == {"poisson", "heat", "hjb", "hjb-lin"}
    hjb = make_pde("hjb", 6, mu=0.5, horizon=2.0)
    assert isinstance(hjb, HJBLQG)
    assert hjb.describe() == {"pde": "hjb", "dim": 6, "mu": 0.5, "T": 2.0}
    assert hjb.input_dim == 7
    assert make_pde("poisson", 2).input_dim == 2
    assert make_pde("hjb-lin", 3, exponent=1.5).describe() == {"pde": "hjb-lin", "dim": 3, "c": 1.5, "T": 1.0}


@pytest.mark.parametrize("cls", [Poisson, Heat, HJBLQG, HJBLin])
@pytest.mark.parametrize("dim", [0, -1, 2.0])
def test_bad_dimensions_are_rejected(cls, dim):
    with pytest.raises(InputError, match="the dimension must be a positive integer"):
        cls(dim)


def test_bad_problem_parameters_are_rejected():
    for exponent in (3.0, 1.0, 0.5):
        with pytest.raises(InputError, match=r"exponent c must lie in \(1, 2\]"):
            HJBLin(3, exponent=exponent)
    with pytest.raises(InputError, match="T must be positive"):
        HJBLin(3, horizon=0.0)
    for mu, horizon in ((0.0, 1.0), (float("nan"), 1.0), (1.0, -1.0), (1.0, math.inf)):
        with pytest.raises(InputError, match="mu and T must be positive"):
            HJBLQG(3, mu=mu, horizon=horizon)
    with pytest.raises(InputError, match="unknown PDE 'wave'"):
        make_pde("wave", 3)
    with pytest.raises(InputError, match="heat has regions domain, initial, boundary; got 'terminal'"):
        Heat(2).sample("terminal", 3, seeded(), LIKE)
    with pytest.raises(InputError, match="no closed-form solution"):
        HJBLQG(2).exact(HJBLQG(2).sample("domain", 3, seeded(), LIKE))
