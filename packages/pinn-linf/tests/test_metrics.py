"""The paper's error metrics (relative L1, L2 and W^{1,1} on [u, ∇u]) and the largest residual, checked against
formulas written out by hand on synthetic test sets."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from papers_common import InputError, TestSet
from pinn_linf import fields, make_problem, max_residual, relative_errors

F64 = torch.float64
DIM = 3


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


class Affine(nn.Module):
    """u(x, t) = w · [x, t] + b: ∇_x u = w[:d] at every point."""

    def __init__(self, w: torch.Tensor, b: float) -> None:
        super().__init__()
        self.w = nn.Parameter(w.clone())
        self.b = nn.Parameter(torch.tensor(b, dtype=w.dtype))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return (z @ self.w + self.b).unsqueeze(-1)


def synthetic(count: int = 11, gradients: bool = True, seed: int = 0) -> TestSet:
    gen = seeded(seed)
    x = torch.randn(count, DIM, generator=gen, dtype=F64)
    t = torch.rand(count, generator=gen, dtype=F64)
    u = torch.randn(count, generator=gen, dtype=F64)
    grad = torch.randn(count, DIM, generator=gen, dtype=F64) if gradients else None
    return TestSet(x, t, u, grad)


@pytest.fixture
def affine() -> Affine:
    return Affine(torch.tensor([0.5, -1.0, 2.0, 0.25], dtype=F64), 0.1)


def by_hand(net: Affine, test: TestSet) -> dict[str, float]:
    """The formulas of the paper's code, one point at a time."""
    w = [float(v) for v in net.w.detach()]
    b = float(net.b.detach())
    l1 = l1n = l2 = l2n = w11 = w11n = 0.0
    for i in range(len(test)):
        point = [float(v) for v in test.x[i]] + [float(test.t[i])]
        u = sum(wi * zi for wi, zi in zip(w, point, strict=True)) + b
        ref = float(test.u[i])
        l1 += abs(u - ref)
        l1n += abs(ref)
        l2 += (u - ref) ** 2
        l2n += ref**2
        ref_grad = [float(v) for v in test.grad[i]]
        w11 += abs(u - ref) + sum(abs(w[j] - ref_grad[j]) for j in range(DIM))
        w11n += abs(ref) + sum(abs(g) for g in ref_grad)
    return {"rel_l1": l1 / l1n, "rel_l2": math.sqrt(l2 / l2n), "rel_w11": w11 / w11n}


def test_relative_errors_match_the_formulas(affine):
    test = synthetic()
    found = relative_errors(affine, make_problem("hjb-lqg", DIM), test)
    expected = by_hand(affine, test)
    assert found.keys() == expected.keys()
    for key, value in expected.items():
        assert found[key] == pytest.approx(value, rel=1e-12), key


def test_the_exact_solution_has_no_error(lin_solution):
    problem = make_problem("hjb-lin", DIM)
    z = problem.sample(9, seeded(4), dtype=F64)
    u, grad = problem.exact(z)
    test = TestSet(z[:, :DIM], z[:, DIM], u, grad)
    assert relative_errors(lin_solution(DIM), problem, test) == {"rel_l1": 0.0, "rel_l2": 0.0, "rel_w11": 0.0}
    # u* + 0.1 t: only the values are off (by 0.1 t), the gradient is exact
    shifted = relative_errors(lin_solution(DIM, shift=0.1), problem, test)
    error = 0.1 * test.t
    assert shifted["rel_l1"] == pytest.approx(float(error.sum() / u.abs().sum()), rel=1e-12)
    assert shifted["rel_l2"] == pytest.approx(float(error.norm() / u.norm()), rel=1e-12)
    assert shifted["rel_w11"] == pytest.approx(
        float(error.sum() / (u.abs().sum() + DIM * len(test))), rel=1e-12
    )


def test_without_gradients_there_is_no_w11(affine):
    test = synthetic(gradients=False)
    found = relative_errors(affine, make_problem("hjb-lqg", DIM), test)
    assert set(found) == {"rel_l1", "rel_l2"}
    with_grad = relative_errors(affine, make_problem("hjb-lqg", DIM), synthetic(gradients=True))
    assert found["rel_l1"] == pytest.approx(with_grad["rel_l1"], rel=1e-14)
    assert found["rel_l2"] == pytest.approx(with_grad["rel_l2"], rel=1e-14)


@pytest.mark.parametrize("gradients", [True, False])
def test_batching_does_not_change_the_errors(gradients, make_mlp):
    net = make_mlp(DIM + 1, 8, 2, seed=2)
    test = synthetic(17, gradients=gradients, seed=3)
    problem = make_problem("hjb-lqg", DIM)
    whole = relative_errors(net, problem, test, batch=1000)
    for batch in (1, 3, 16):
        chunked = relative_errors(net, problem, test, batch=batch)
        assert chunked.keys() == whole.keys()
        for key in whole:
            assert chunked[key] == pytest.approx(whole[key], rel=1e-12), (batch, key)


def test_a_float32_network_is_evaluated_against_float64_references(affine):
    test = synthetic()
    net32 = Affine(affine.w.detach().float(), float(affine.b.detach()))
    found = relative_errors(net32, make_problem("hjb-lqg", DIM), test)
    expected = by_hand(affine, test)
    for key, value in expected.items():
        assert found[key] == pytest.approx(value, rel=1e-5), key


def test_relative_errors_reject_mismatched_test_sets(affine):
    with pytest.raises(InputError, match="the test set has dimension 3, the problem 4"):
        relative_errors(affine, make_problem("hjb-lqg", 4), synthetic())
    no_time = synthetic()
    no_time.t = None
    with pytest.raises(InputError, match="needs times t"):
        relative_errors(affine, make_problem("hjb-lqg", DIM), no_time)
    with pytest.raises(InputError, match="Identity has no parameters"):
        relative_errors(nn.Identity(), make_problem("hjb-lqg", DIM), synthetic())


def test_max_residual_is_the_largest_absolute_residual(make_mlp):
    problem = make_problem("hjb-lqg", DIM)
    net = make_mlp(DIM + 1, 8, 2, seed=6)
    probe = problem.sample(23, seeded(7), dtype=F64)
    direct = problem.residual(fields(net, probe, DIM)).detach().abs()
    at_t = torch.cat([probe[:, :DIM], torch.full_like(probe[:, DIM:], problem.horizon)], dim=1)
    misfit = (net(at_t).squeeze(1) - torch.log((1 + probe[:, :DIM].square().sum(1)) / 2)).detach().abs()
    found = max_residual(net, problem, probe, weights=(2.0, 5.0))
    assert set(found) == {"max_residual", "mean_abs_residual", "max_terminal_error", "mean_abs_terminal_error",
                          "linf_loss"}  # fmt: skip
    assert found["max_residual"] == pytest.approx(float(direct.max()), rel=1e-12)
    assert found["mean_abs_residual"] == pytest.approx(float(direct.mean()), rel=1e-12)
    assert found["max_residual"] > found["mean_abs_residual"] > 0
    assert found["max_terminal_error"] == pytest.approx(float(misfit.max()), rel=1e-12)
    assert found["mean_abs_terminal_error"] == pytest.approx(float(misfit.mean()), rel=1e-12)
    assert found["linf_loss"] == pytest.approx(
        2 * direct.max().item() ** 2 + 5 * misfit.max().item() ** 2, rel=1e-12
    )
    # default weights: the official loss weights 1 and 20
    default = max_residual(net, problem, probe)["linf_loss"]
    assert default == pytest.approx(direct.max().item() ** 2 + 20 * misfit.max().item() ** 2, rel=1e-12)
    chunked = max_residual(net, problem, probe, batch=4, weights=(2.0, 5.0))
    for key, value in found.items():
        assert chunked[key] == pytest.approx(value, rel=1e-12), key
    # float32 probe points are moved to the network's dtype
    assert max_residual(net, problem, probe.float())["max_residual"] == pytest.approx(
        found["max_residual"], rel=1e-5
    )


def test_max_residual_of_the_exact_solution_is_zero(lin_solution):
    problem = make_problem("hjb-lin", DIM)
    found = max_residual(lin_solution(DIM), problem, problem.sample(10, seeded(8), dtype=F64))
    assert found["max_residual"] < 1e-13
    assert found["mean_abs_residual"] < 1e-13
    assert found["max_terminal_error"] < 1e-13
    assert found["linf_loss"] < 1e-24


class NaNAfter(nn.Module):
    """u* of HJB-Lin on points with x_0 < 2, NaN (value and derivatives) elsewhere: a partly broken network."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor(1.0, dtype=F64))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        u = self.w * z[:, :DIM].sum(1) + 1 - z[:, DIM]
        return u + 0 * torch.sqrt(2 - z[:, 0])  # sqrt of a negative number: NaN, and so are its derivatives


def test_max_residual_reports_nan_residuals():
    problem = make_problem("hjb-lin", DIM)
    probe = torch.tensor([[0.0, 0.0, 0.0, 0.5], [3.0, 0.0, 0.0, 0.5]], dtype=F64)
    found = max_residual(NaNAfter(), problem, probe)
    assert math.isnan(found["mean_abs_residual"])
    assert math.isnan(found["max_residual"])
