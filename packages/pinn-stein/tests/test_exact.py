"""Exact autograd derivatives: stacked back-propagation, Hessian-vector products and the forward Laplacian agree
with each other and with a brute-force Hessian, with and without fixed smoothing draws; Hutchinson is unbiased."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from papers_common import InputError
from pinn_stein import MLP, MLPConfig, exact_derivatives
from pinn_stein.fields import network_input

F64 = torch.float64
EXACT = ("loop", "hvp", "forward")


def points(timed: bool, dim: int = 3, count: int = 5, seed: int = 2):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(count, dim, generator=gen, dtype=F64)
    t = torch.rand(count, generator=gen, dtype=F64) if timed else None
    return x, t


def brute_force(g: nn.Module, x: torch.Tensor, t: torch.Tensor | None) -> dict[str, torch.Tensor]:
    """Value, gradient, spatial Laplacian and dt from the full float64 Hessian of each point, one at a time."""
    dim = x.shape[1]
    z = network_input(x, t).detach()
    rows = {"u": [], "grad": [], "laplacian": [], "dt": []}
    for zi in z:

        def scalar(v: torch.Tensor) -> torch.Tensor:
            return g(v.unsqueeze(0)).reshape(())

        gradient = torch.autograd.functional.jacobian(scalar, zi)
        hessian = torch.autograd.functional.hessian(scalar, zi)
        rows["u"].append(scalar(zi))
        rows["grad"].append(gradient[:dim])
        rows["laplacian"].append(hessian.diagonal()[:dim].sum())
        rows["dt"].append(gradient[dim] if t is not None else zi.new_zeros(()))
    return {k: torch.stack(v).detach() for k, v in rows.items()}


def close(a: torch.Tensor, b: torch.Tensor, tol: float = 1e-10) -> None:
    torch.testing.assert_close(a.detach(), b.detach(), rtol=tol, atol=tol)


@pytest.mark.parametrize("timed", [True, False], ids=["timed", "untimed"])
def test_exact_methods_agree_with_a_brute_force_hessian(timed, make_mlp):
    x, t = points(timed)
    g = make_mlp(x.shape[1] + int(timed), 16, 3, seed=1)
    truth = brute_force(g, x, t)
    assert float(truth["laplacian"].abs().min()) > 1e-4  # nothing here is trivially zero
    for how in EXACT:
        found = exact_derivatives(g, x, t, how=how)
        close(found.u, truth["u"])
        close(found.grad, truth["grad"])
        close(found.laplacian, truth["laplacian"])
        if timed:
            close(found.dt, truth["dt"])
        else:
            assert found.dt is None


def test_loop_and_hvp_agree_on_any_module():
    """A module that is not an MLP (other activations, a (n,) output): loop and hvp agree; forward refuses it."""
    torch.manual_seed(3)
    body = nn.Sequential(nn.Linear(4, 12), nn.Softplus(), nn.Linear(12, 12), nn.SiLU(), nn.Linear(12, 1)).to(
        F64
    )

    class Flat(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = body

        def forward(self, z: torch.Tensor) -> torch.Tensor:
            return self.body(z).squeeze(-1) + torch.sin(z[:, 0] * z[:, 1])

    for g in (body, Flat()):
        x, t = points(timed=True)
        truth = brute_force(g, x, t)
        for how in ("loop", "hvp"):
            found = exact_derivatives(g, x, t, how=how)
            close(found.u, truth["u"])
            close(found.grad, truth["grad"])
            close(found.laplacian, truth["laplacian"])
            close(found.dt, truth["dt"])
        with pytest.raises(InputError, match=r"forward Laplacian needs a pinn_stein\.MLP"):
            exact_derivatives(g, x, t, how="forward")


@pytest.mark.parametrize("timed", [True, False], ids=["timed", "untimed"])
def test_smoothed_autograd_with_fixed_draws_is_the_mean_of_shifted_derivatives(timed, make_mlp):
    """With fixed draws delta_k, the Monte Carlo smoothed model is mean_k g(z + delta_k): its derivatives are the
    means of g's derivatives at the shifted points, by every exact method."""
    x, t = points(timed, count=3)
    dim = x.shape[1]
    g = make_mlp(dim + int(timed), 16, 2, seed=5)
    draws = 8
    noise = 0.3 * torch.randn(
        draws, 3, dim + int(timed), generator=torch.Generator().manual_seed(1), dtype=F64
    )
    shifted = (network_input(x, t) + noise).reshape(-1, dim + int(timed))
    xs = shifted[:, :dim]
    ts = shifted[:, dim] if timed else None
    each = brute_force(g, xs, ts)
    truth = {k: v.reshape(draws, 3, *v.shape[1:]).mean(0) for k, v in each.items()}
    for how in EXACT:
        found = exact_derivatives(g, x, t, how=how, noise=noise)
        close(found.u, truth["u"])
        close(found.grad, truth["grad"])
        close(found.laplacian, truth["laplacian"])
        if timed:
            close(found.dt, truth["dt"])
    # the draws matter: the smoothed model is not the raw one
    raw = exact_derivatives(g, x, t, how="loop")
    assert float((raw.laplacian.detach() - truth["laplacian"]).abs().max()) > 1e-3


@pytest.mark.parametrize("timed", [True, False], ids=["timed", "untimed"])
def test_parameter_gradients_agree_across_exact_methods(timed, make_mlp):
    x, t = points(timed)
    g = make_mlp(x.shape[1] + int(timed), 16, 2, seed=7)
    grads = {}
    for how in EXACT:
        g.zero_grad(set_to_none=True)
        found = exact_derivatives(g, x, t, how=how)
        residual = found.laplacian + found.u + found.grad.sum(-1) + (0 if found.dt is None else found.dt)
        residual.square().mean().backward()
        grads[how] = {name: p.grad.clone() for name, p in g.named_parameters()}
    for name, reference in grads["loop"].items():
        assert bool(torch.isfinite(reference).all()), name
        assert float(reference.abs().max()) > 0, name
        for how in ("hvp", "forward"):
            torch.testing.assert_close(grads[how][name], reference, rtol=1e-8, atol=1e-10)


class LaplacianOf(nn.Module):
    """``(x, t) -> Laplacian`` of the wrapped network by one exact method, so that functional_call can swap weights."""

    def __init__(self, g: nn.Module, how: str) -> None:
        super().__init__()
        self.g = g
        self.how = how

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if self.how == "forward-direct":
            return self.g.forward_laplacian(network_input(x, t), x.shape[1])[2]
        return exact_derivatives(self.g, x, t, how=self.how).laplacian


@pytest.mark.parametrize("how", ["forward-direct", "forward", "loop", "hvp"])
def test_laplacian_parameter_derivative_matches_finite_differences(how, make_mlp):
    """torch.autograd.gradcheck (float64 finite differences) of the Laplacian w.r.t. a hidden weight matrix."""
    g = make_mlp(3, 4, 2, seed=2)
    x, t = points(timed=True, dim=2, count=3)
    wrapped = LaplacianOf(g, how)
    weight = g.layers[1].weight.detach().clone().requires_grad_(True)

    def laplacian_of(w: torch.Tensor) -> torch.Tensor:
        return torch.func.functional_call(wrapped, {"g.layers.1.weight": w}, (x, t))

    assert torch.autograd.gradcheck(laplacian_of, (weight,), eps=1e-6, atol=1e-7)


def test_hutchinson_is_unbiased_and_exact_elsewhere(make_mlp):
    """Rademacher probes: u, grad and dt are exact; the Laplacian averages to the exact one."""
    x, t = points(timed=True, dim=4, count=3)
    g = make_mlp(5, 16, 2, seed=9)
    exact = exact_derivatives(g, x, t, how="loop")
    reps = 400
    found = exact_derivatives(
        g,
        x.repeat(reps, 1),
        t.repeat(reps),
        how="hutchinson",
        probes=4,
        generator=torch.Generator().manual_seed(0),
    )
    close(found.u, exact.u.repeat(reps))
    close(found.grad, exact.grad.repeat(reps, 1))
    close(found.dt, exact.dt.repeat(reps))
    samples = found.laplacian.detach().reshape(reps, 3)
    stderr = samples.std(0) / math.sqrt(reps)
    error = (samples.mean(0) - exact.laplacian.detach()).abs()
    assert bool((error < 5 * stderr).all()), (error / stderr).tolist()
    assert float(stderr.max()) < 0.1 * float(exact.laplacian.detach().abs().max())
    assert float(samples.std(0).min()) > 1e-6  # it is an estimate, not the exact trace


def test_hutchinson_in_one_dimension_is_exact(make_mlp):
    """With d = 1 every Rademacher probe gives v^2 H = H: the trace estimate has no variance."""
    x, t = points(timed=True, dim=1)
    g = make_mlp(2, 16, 2, seed=1)
    found = exact_derivatives(g, x, t, how="hutchinson", probes=3, generator=torch.Generator().manual_seed(0))
    close(found.laplacian, exact_derivatives(g, x, t, how="loop").laplacian)


def test_exact_derivatives_reject_bad_arguments(make_mlp):
    x, t = points(timed=True)
    g = make_mlp(4)
    with pytest.raises(InputError, match="noise must have shape"):
        exact_derivatives(g, x, t, noise=torch.zeros(2, 5, 3, dtype=F64))
    with pytest.raises(InputError, match="at least one probe"):
        exact_derivatives(g, x, t, how="hutchinson", probes=0)
    with pytest.raises(InputError, match="unknown exact method"):
        exact_derivatives(g, x, t, how="newton")


@pytest.mark.parametrize("how", ["loop", "hvp", "forward"])
def test_an_affine_network_has_zero_laplacian_not_an_error(how):
    torch.manual_seed(0)
    g = MLP(MLPConfig(4, 8, 1)).double()
    g.layers[0].weight.data.zero_()  # the output no longer depends on the inputs at all
    x = torch.randn(5, 3, dtype=torch.float64)
    t = torch.rand(5, dtype=torch.float64)
    found = exact_derivatives(g, x, t, how=how)
    assert torch.equal(found.laplacian, torch.zeros(5, dtype=torch.float64))
    assert torch.equal(found.grad, torch.zeros(5, 3, dtype=torch.float64))
    if how != "forward":  # the forward Laplacian is MLP-only
        linear = nn.Linear(4, 1).double()
        assert torch.equal(
            exact_derivatives(linear, x, t, how=how).laplacian, torch.zeros(5, dtype=torch.float64)
        )


@pytest.mark.parametrize("how", ["loop", "hvp", "forward", "hutchinson"])
def test_no_warning_reaches_the_caller(how: str) -> None:
    import warnings

    g = MLP(MLPConfig(in_dim=4, width=8, depth=2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        exact_derivatives(g, torch.randn(5, 3), torch.rand(5), how=how)
