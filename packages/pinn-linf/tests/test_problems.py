"""The HJB problems: residuals vanish on known solutions and take hand-computed values elsewhere; terminal data,
sampling and validation behave as documented."""

from __future__ import annotations

import math

import pytest
import torch

from papers_common import InputError
from pinn_linf import HJBLQG, PROBLEMS, Fields, HJBLin, fields, make_problem, problem_from_description

F64 = torch.float64


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("c", [1.25, 1.5, 2.0])
@pytest.mark.parametrize("horizon", [1.0, 2.5])
def test_hjb_lin_residual_vanishes_on_its_exact_solution(c, horizon, lin_solution):
    dim = 4
    problem = HJBLin(dim, horizon=horizon, c=c)
    z = problem.sample(12, seeded(1), dtype=F64)
    found = fields(lin_solution(dim, horizon), z, dim, method="autograd")
    torch.testing.assert_close(found.dt, torch.full((12,), -1.0, dtype=F64), rtol=0, atol=1e-14)
    torch.testing.assert_close(found.grad, torch.ones(12, dim, dtype=F64), rtol=0, atol=1e-14)
    torch.testing.assert_close(found.laplacian, torch.zeros(12, dtype=F64), rtol=0, atol=1e-14)
    residual = problem.residual(found).detach()
    assert residual.shape == (12,)
    assert float(residual.abs().max()) < 1e-13


def test_hjb_lin_residual_of_a_perturbed_solution(lin_solution):
    """u* + s t + b x_0²: u_t = s − 1, ∂_0 u = 1 + 2b x_0, Δu = 2b, so r = s + 2b − (abs(1 + 2b x_0)^c − 1)/d."""
    dim, c, s, b = 3, 1.5, 0.1, 0.05
    problem = HJBLin(dim, c=c)
    z = problem.sample(20, seeded(2), dtype=F64)
    residual = problem.residual(
        fields(lin_solution(dim, shift=s, bump=b), z, dim, method="autograd")
    ).detach()
    x0 = z[:, 0]
    expected = s + 2 * b - ((1 + 2 * b * x0).abs().pow(c) - 1) / dim
    torch.testing.assert_close(residual, expected, rtol=1e-12, atol=1e-13)
    assert float(residual.abs().min()) > 1e-3


def test_hjb_lqg_residual_of_a_quadratic(quadratic):
    """u = a abs(x)² + b t: r = b + 2ad − 4μa² abs(x)², through the derivatives and from hand-made fields."""
    dim, a, b, mu = 3, 0.3, -0.7, 0.5
    problem = HJBLQG(dim, mu=mu)
    z = problem.sample(15, seeded(3), dtype=F64)
    x = z[:, :dim]
    expected = b + 2 * a * dim - 4 * mu * a**2 * x.square().sum(1)
    found = problem.residual(fields(quadratic(dim, a, b), z, dim, method="autograd"))
    torch.testing.assert_close(found.detach(), expected, rtol=1e-12, atol=1e-13)
    by_hand = Fields(
        u=torch.zeros(15, dtype=F64),
        grad=2 * a * x,
        dt=torch.full((15,), b, dtype=F64),
        laplacian=torch.full((15,), 2 * a * dim, dtype=F64),
    )
    torch.testing.assert_close(problem.residual(by_hand), expected, rtol=1e-14, atol=1e-14)


def test_hjb_lqg_residual_vanishes_where_the_equation_holds():
    """u_t + Δu − μ abs(∇u)² = 0 for hand-made fields that satisfy it, and μ enters linearly."""
    grad = torch.tensor([[1.0, 2.0], [0.5, -1.0]], dtype=F64)
    fields_ = Fields(
        torch.zeros(2, dtype=F64),
        grad,
        torch.tensor([3.0, 1.0], dtype=F64),
        torch.tensor([2.0, 0.25], dtype=F64),
    )
    torch.testing.assert_close(HJBLQG(2, mu=1.0).residual(fields_), torch.tensor([0.0, 0.0], dtype=F64))
    torch.testing.assert_close(HJBLQG(2, mu=2.0).residual(fields_), torch.tensor([-5.0, -1.25], dtype=F64))


def test_terminal_data():
    x = torch.tensor([[0.0, 0.0, 0.0], [1.0, -2.0, 0.5]], dtype=F64)
    torch.testing.assert_close(
        HJBLQG(3).terminal(x), torch.tensor([math.log(0.5), math.log((1 + 5.25) / 2)], dtype=F64)
    )
    torch.testing.assert_close(HJBLin(3).terminal(x), torch.tensor([0.0, -0.5], dtype=F64))
    # any leading shape, as the Monte Carlo reference needs
    assert HJBLQG(3).terminal(torch.zeros(4, 5, 3)).shape == (4, 5)


def test_exact_solution_of_hjb_lin_and_none_for_hjb_lqg():
    problem = HJBLin(2, horizon=2.0)
    z = torch.tensor([[1.0, 2.0, 0.5], [-1.0, 0.0, 2.0]], dtype=F64)
    u, grad = problem.exact(z)
    torch.testing.assert_close(u, torch.tensor([4.5, -1.0], dtype=F64))
    torch.testing.assert_close(grad, torch.ones(2, 2, dtype=F64))
    # at t = T the exact solution meets the terminal data
    torch.testing.assert_close(u[1], problem.terminal(z[1:, :2])[0])
    assert HJBLQG(2).exact(z) is None


@pytest.mark.parametrize("name", list(PROBLEMS))
def test_sampling_shapes_ranges_and_determinism(name):
    problem = make_problem(name, 4, horizon=0.5)
    inside = problem.sample(500, seeded(5))
    assert inside.shape == (500, 5)
    assert inside.dtype == torch.float32
    t = inside[:, -1]
    assert float(t.min()) >= 0.0
    assert float(t.max()) <= 0.5
    assert float(t.max()) > 0.45  # spread over [0, T], not stuck at one end
    assert float(t.min()) < 0.05
    x = inside[:, :4]
    assert abs(float(x.mean())) < 0.1  # standard normal x
    assert abs(float(x.std()) - 1) < 0.1

    terminal = problem.sample(7, seeded(5), terminal=True, dtype=F64)
    assert terminal.shape == (7, 5)
    assert terminal.dtype == F64
    assert torch.equal(terminal[:, -1], torch.full((7,), 0.5, dtype=F64))

    assert torch.equal(problem.sample(9, seeded(6)), problem.sample(9, seeded(6)))
    assert not torch.equal(problem.sample(9, seeded(6)), problem.sample(9, seeded(7)))


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: HJBLin(3, c=1.0), r"exponent c must lie in \(1, 2\], got 1.0"),
        (lambda: HJBLin(3, c=2.5), r"exponent c must lie in \(1, 2\], got 2.5"),
        (lambda: HJBLin(3, c=float("nan")), r"exponent c must lie in \(1, 2\], got nan"),
        (lambda: HJBLQG(3, mu=0.0), "mu must be positive and finite, got 0.0"),
        (lambda: HJBLQG(3, mu=-1.0), "mu must be positive and finite"),
        (lambda: HJBLQG(3, mu=float("inf")), "mu must be positive and finite"),
        (lambda: HJBLQG(3, horizon=0.0), "horizon T must be positive and finite, got 0.0"),
        (lambda: HJBLin(3, horizon=-1.0), "horizon T must be positive and finite"),
        (lambda: HJBLin(3, horizon=float("nan")), "horizon T must be positive and finite"),
        (lambda: HJBLQG(0), "dimension must be a positive integer, got 0"),
        (lambda: HJBLin(-2), "dimension must be a positive integer"),
        (lambda: HJBLin(2.0), "dimension must be a positive integer, got 2.0"),
        (lambda: HJBLQG(True), "dimension must be a positive integer, got True"),
        (lambda: make_problem("hjb-heat", 3), "unknown problem 'hjb-heat'; choose one of hjb-lqg, hjb-lin"),
        (lambda: make_problem("hjb-lin", 3, mu=1.0), r"unknown parameter\(s\) \['mu'\]"),
        (lambda: make_problem("hjb-lqg", 3, c=1.5), r"unknown parameter\(s\) \['c'\]"),
        (lambda: problem_from_description({"pde": "hjb-lin"}), "needs 'pde' and 'dim'"),
    ],
)
def test_invalid_problems_are_rejected(build, message):
    with pytest.raises(InputError, match=message):
        build()


def test_the_error_names_the_problem():
    with pytest.raises(InputError, match=r"^hjb-lqg: "):
        HJBLQG(0)
    with pytest.raises(InputError, match=r"^hjb-lin: "):
        HJBLin(3, c=3.0)


def test_accepted_edges():
    assert HJBLin(1, c=2.0).c == 2.0  # c = 2 is inside (1, 2]
    assert HJBLin(1, c=1.0001).input_dim == 2
    assert make_problem("hjb-lqg", 7, mu=0.1, horizon=3.0) == HJBLQG(7, horizon=3.0, mu=0.1)


@pytest.mark.parametrize(
    "problem", [HJBLQG(5), HJBLQG(3, horizon=2.0, mu=0.25), HJBLin(4), HJBLin(2, horizon=0.5, c=1.75)]
)
def test_description_round_trips(problem):
    description = problem.describe()
    assert description["pde"] == problem.name
    assert description["dim"] == problem.dim
    rebuilt = problem_from_description(description)
    assert rebuilt == problem
    assert type(rebuilt) is type(problem)
    assert description == rebuilt.describe()  # and the description itself is not consumed


def test_only_real_parameters_are_advertised_and_a_name_key_is_an_input_error():
    with pytest.raises(InputError, match=r"hjb-lin takes c, horizon; unknown"):
        make_problem("hjb-lin", 3, mu=1.0)
    with pytest.raises(InputError):
        problem_from_description({"pde": "hjb-lin", "dim": 3, "name": "hjb-lin"})
