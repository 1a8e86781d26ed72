"""Exact derivatives: the forward Laplacian and the vmapped Hessian-vector products agree with each other and with
the official stacked back-propagation loop; losses built on them differentiate correctly in the points (the
adversarial ascent) and in the parameters (the optimiser step)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from papers_common import InputError
from pinn_linf import METHODS, HJBLin, fields, make_problem
from pinn_linf.derivatives import default_method, values

F64 = torch.float64


def points(dim: int, count: int = 6, seed: int = 2) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(count, dim, generator=gen, dtype=F64)
    t = torch.rand(count, 1, generator=gen, dtype=F64)
    return torch.cat([x, t], dim=1)


def stacked_backprop(net: nn.Module, z: torch.Tensor, dim: int) -> dict[str, torch.Tensor]:
    """The official code's loop: one reverse pass for ∇u, then one per diagonal entry ∂²u/∂x_i²."""
    z = z.detach().requires_grad_(True)
    u = net(z).reshape(-1)
    (gradient,) = torch.autograd.grad(u.sum(), z, create_graph=True)
    laplacian = torch.zeros_like(u)
    for i in range(dim):
        (second,) = torch.autograd.grad(gradient[:, i].sum(), z, retain_graph=True)
        laplacian = laplacian + second[:, i]
    return {
        "u": u.detach(),
        "grad": gradient[:, :dim].detach(),
        "dt": gradient[:, dim].detach(),
        "laplacian": laplacian.detach(),
    }


def close(a: torch.Tensor, b: torch.Tensor, tol: float = 1e-11) -> None:
    torch.testing.assert_close(a.detach(), b.detach(), rtol=tol, atol=tol)


@pytest.mark.parametrize("dim", [1, 4])
def test_methods_agree_with_stacked_backprop(dim, make_mlp):
    net = make_mlp(dim + 1, 16, 3, seed=1)
    z = points(dim)
    truth = stacked_backprop(net, z, dim)
    assert float(truth["laplacian"].abs().min()) > 1e-5  # nothing here is trivially zero
    assert float(truth["dt"].abs().min()) > 1e-5
    for method in METHODS:
        found = fields(net, z, dim, method=method)
        assert found.u.shape == (6,)
        assert found.grad.shape == (6, dim)
        assert found.dt.shape == (6,)
        assert found.laplacian.shape == (6,)
        close(found.u, truth["u"])
        close(found.grad, truth["grad"])
        close(found.dt, truth["dt"])
        close(found.laplacian, truth["laplacian"])


def test_the_laplacian_leaves_out_time(quadratic):
    """For a abs(x)² + b t the Laplacian is 2ad: the time direction (whose second derivative is 0 here but
    not for an MLP) is not summed; a network where ∂²u/∂t² ≠ 0 shows it."""

    class TimeCurved(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.tensor(1.0, dtype=F64))

        def forward(self, z: torch.Tensor) -> torch.Tensor:
            return self.w * (z[:, 0].square() + 5 * z[:, -1].square())

    z = points(2)
    found = fields(TimeCurved(), z, 2, method="autograd")
    close(found.laplacian, torch.full((6,), 2.0, dtype=F64))
    close(found.dt, 10 * z[:, -1])
    found = fields(quadratic(3, 0.4, 0.2), points(3), 3, method="autograd")
    close(found.laplacian, torch.full((6,), 2 * 0.4 * 3, dtype=F64))


def test_default_method_picks_forward_for_an_mlp_only(make_mlp, lin_solution):
    assert default_method(make_mlp(3)) == "forward"
    assert default_method(lin_solution(2)) == "autograd"
    z = points(2)
    close(fields(lin_solution(2), z, 2).laplacian, torch.zeros(6, dtype=F64))


def central_differences(function, z: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    grad = torch.zeros_like(z)
    for index in range(z.numel()):
        step = torch.zeros_like(z).reshape(-1)
        step[index] = eps
        step = step.reshape(z.shape)
        grad.reshape(-1)[index] = (function(z + step) - function(z - step)) / (2 * eps)
    return grad


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("name", ["hjb-lqg", "hjb-lin"])
def test_point_gradients_of_a_residual_loss_match_finite_differences(method, name, make_mlp):
    """The ascent differentiates sum(r²) in the points, which needs third derivatives of the network."""
    dim = 3
    problem = make_problem(name, dim)
    net = make_mlp(dim + 1, 8, 2, seed=4)
    z = points(dim, count=3, seed=5)

    def loss(points_: torch.Tensor) -> torch.Tensor:
        return problem.residual(fields(net, points_, dim, method=method)).square().sum()

    leaf = z.clone().requires_grad_(True)
    (analytic,) = torch.autograd.grad(loss(leaf), leaf)
    with torch.no_grad():
        numeric = central_differences(lambda p: float(loss(p)), z)
    assert float(analytic.abs().min()) > 1e-6
    torch.testing.assert_close(analytic, numeric, rtol=1e-6, atol=1e-8)
    assert all(p.grad is None for p in net.parameters())


@pytest.mark.parametrize("method", METHODS)
def test_parameter_gradients_of_a_residual_loss_match_finite_differences(method, make_mlp):
    dim = 2
    problem = HJBLin(dim)
    net = make_mlp(dim + 1, 4, 1, seed=6)
    z = points(dim, count=4, seed=7)
    weight = net.layers[0].weight

    def loss() -> torch.Tensor:
        return problem.residual(fields(net, z, dim, method=method)).square().mean()

    (analytic,) = torch.autograd.grad(loss(), weight)
    numeric = torch.zeros_like(weight)
    eps = 1e-6
    with torch.no_grad():
        for index in range(weight.numel()):
            original = weight.reshape(-1)[index].item()
            weight.reshape(-1)[index] = original + eps
            up = float(loss())
            weight.reshape(-1)[index] = original - eps
            down = float(loss())
            weight.reshape(-1)[index] = original
            numeric.reshape(-1)[index] = (up - down) / (2 * eps)
    torch.testing.assert_close(analytic, numeric, rtol=1e-5, atol=1e-8)


def test_forward_needs_an_mlp(lin_solution):
    with pytest.raises(InputError, match=r"method .forward. needs a papers_common\.MLP, got LinSolution"):
        fields(lin_solution(2), points(2), 2, method="forward")


@pytest.mark.parametrize(
    "shape",
    [(5, 3), (5, 5), (5,), (2, 5, 4)],
    ids=["too-few-columns", "too-many-columns", "one-dimensional", "three-dimensional"],
)
@pytest.mark.parametrize("method", METHODS)
def test_wrong_point_shapes_are_rejected(shape, method, make_mlp):
    with pytest.raises(InputError, match=r"points must have shape \(batch, 4\) = \[x, t\]"):
        fields(make_mlp(4), torch.zeros(shape, dtype=F64), 3, method=method)


def test_an_unknown_method_is_rejected(make_mlp):
    with pytest.raises(InputError, match="unknown derivative method 'loop'; choose one of forward, autograd"):
        fields(make_mlp(3), points(2), 2, method="loop")


def test_values_accepts_flat_and_column_outputs_only(lin_solution, quadratic):
    z = points(2)
    assert values(lin_solution(2), z).shape == (6,)  # (n,)
    assert values(quadratic(2, 1.0, 0.0), z).shape == (6,)  # (n, 1)
    with pytest.raises(InputError, match=r"must map \(n, 3\) to \(n,\) or \(n, 1\), got \(6, 2\)"):
        values(nn.Linear(3, 2).double(), z)


def test_autograd_rejects_a_network_with_several_outputs():
    with pytest.raises(InputError, match="one value per point"):
        fields(nn.Linear(3, 2).double(), points(2), 2, method="autograd")
