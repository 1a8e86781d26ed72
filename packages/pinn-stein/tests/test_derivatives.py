"""The method-string entry point: every method's shapes, dispatch to the right estimator, the model each method
trains, and the errors for bad input."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from papers_common import InputError
from pinn_stein import (
    METHODS,
    SMOOTHED_METHODS,
    Smoothing,
    derivatives,
    exact_derivatives,
    model_value,
    smoothed_value,
    stein_vanilla,
    stein_variance_reduced,
)
from pinn_stein.smoothing import gaussian_noise

F64 = torch.float64


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def points(timed: bool, dim: int = 3, count: int = 4, seed: int = 1):
    gen = seeded(seed)
    x = torch.randn(count, dim, generator=gen, dtype=F64)
    t = torch.rand(count, generator=gen, dtype=F64) if timed else None
    return x, t


def test_method_table():
    assert set(METHODS) == {
        "stein-vr",
        "stein",
        "smoothed-autograd",
        "pinn",
        "pinn-hvp",
        "pinn-forward",
        "pinn-hutchinson",
    }
    assert {"stein-vr", "stein", "smoothed-autograd"} == SMOOTHED_METHODS


@pytest.mark.parametrize("timed", [True, False], ids=["timed", "untimed"])
@pytest.mark.parametrize("method", METHODS)
def test_every_method_returns_the_same_shapes(method, timed, make_mlp):
    x, t = points(timed)
    g = make_mlp(3 + int(timed))
    found = derivatives(g, x, t, method=method, smoothing=Smoothing(0.05, 0.05, 16), generator=seeded())
    assert found.u.shape == (4,)
    assert found.grad.shape == (4, 3)
    assert found.laplacian.shape == (4,)
    assert found.u.dtype == F64
    if timed:
        assert found.dt.shape == (4,)
    else:
        assert found.dt is None
    for value in (found.u, found.grad, found.laplacian):
        assert bool(torch.isfinite(value).all())


def test_methods_dispatch_to_their_estimators(make_mlp):
    """Same generator seed: each method is exactly the function the module table names."""
    x, t = points(timed=True)
    g = make_mlp(4)
    smoothing = Smoothing(0.1, 0.2, 8)
    expected = {
        "stein-vr": stein_variance_reduced(g, x, t, smoothing, seeded(3)),
        "stein": stein_vanilla(g, x, t, smoothing, seeded(3)),
        "smoothed-autograd": exact_derivatives(
            g, x, t, how="loop", noise=gaussian_noise(8, x, t, smoothing, seeded(3))
        ),
        "pinn": exact_derivatives(g, x, t, how="loop"),
        "pinn-hvp": exact_derivatives(g, x, t, how="hvp"),
        "pinn-forward": exact_derivatives(g, x, t, how="forward"),
        "pinn-hutchinson": exact_derivatives(g, x, t, how="hutchinson", probes=5, generator=seeded(3)),
    }
    for method, want in expected.items():
        found = derivatives(g, x, t, method=method, smoothing=smoothing, generator=seeded(3), probes=5)
        for name in ("u", "grad", "laplacian", "dt"):
            torch.testing.assert_close(getattr(found, name), getattr(want, name), rtol=0, atol=0, msg=method)
    # the exact methods differentiate the raw network, the smoothed ones do not
    raw = expected["pinn"]
    torch.testing.assert_close(expected["pinn-forward"].laplacian, raw.laplacian, rtol=1e-10, atol=1e-12)
    assert not torch.equal(expected["smoothed-autograd"].laplacian, raw.laplacian)


def test_default_smoothing_is_the_papers(make_mlp):
    x, t = points(timed=True, count=2)
    g = make_mlp(4)
    default = derivatives(g, x, t, method="stein-vr", generator=seeded(4))
    paper = derivatives(
        g, x, t, method="stein-vr", smoothing=Smoothing(0.01, 0.01, 2048), generator=seeded(4)
    )
    torch.testing.assert_close(default.laplacian, paper.laplacian, rtol=0, atol=0)
    assert Smoothing() == Smoothing(0.01, 0.01, 2048)


def test_smoothed_autograd_is_unbiased_for_the_smoothed_sine(sine):
    """Autograd through the Monte Carlo mean estimates the smoothed field's derivatives, like Stein does."""
    x, t = points(timed=True, count=3)
    g = sine(torch.tensor([1.2, -0.7, 0.9, 1.1], dtype=F64))
    smoothing = Smoothing(sigma_x=0.5, sigma_t=0.4, samples=32)
    reps = 200
    found = derivatives(
        g,
        x.repeat(reps, 1),
        t.repeat(reps),
        method="smoothed-autograd",
        smoothing=smoothing,
        generator=seeded(2),
    )
    truth = g.smoothed(torch.cat([x, t[:, None]], 1), smoothing.scales(3, True, x))
    for name, samples, want in (
        ("u", found.u, truth["u"]),
        ("dt", found.dt, truth["gradient"][:, 3]),
        ("laplacian", found.laplacian, g.laplacian_factor(3) * truth["u"]),
    ):
        samples = samples.detach().reshape(reps, 3)
        stderr = samples.std(0) / math.sqrt(reps)
        assert bool(((samples.mean(0) - want).abs() < 5 * stderr).all()), name
        assert float(stderr.max()) < 0.03, name
    # without smoothing the sine's Laplacian is visibly different
    raw = derivatives(g, x, t, method="pinn")
    assert float((raw.laplacian.detach() - g.laplacian_factor(3) * truth["u"]).abs().min()) > 0.1


def test_model_value_is_the_model_each_method_trains(make_mlp):
    x, t = points(timed=True)
    g = make_mlp(4)
    smoothing = Smoothing(0.1, 0.1, 16)
    z = torch.cat([x, t[:, None]], 1)
    for method in METHODS:
        found = model_value(g, x, t, method=method, smoothing=smoothing, generator=seeded(5))
        if method in SMOOTHED_METHODS:
            antithetic = method == "stein-vr"
            want = smoothed_value(g, x, t, smoothing, antithetic=antithetic, generator=seeded(5))
        else:
            want = g(z).squeeze(-1)
        torch.testing.assert_close(found, want, rtol=0, atol=0, msg=method)
    with pytest.raises(InputError, match="unknown derivative method"):
        model_value(g, x, t, method="stein-fast")


def test_bad_inputs_raise_input_errors(make_mlp):
    x, t = points(timed=True)
    g = make_mlp(4)
    with pytest.raises(InputError, match="even"):
        derivatives(g, x, t, method="stein-vr", smoothing=Smoothing(samples=3))
    with pytest.raises(InputError, match="unknown derivative method 'stein-fast'"):
        derivatives(g, x, t, method="stein-fast")
    with pytest.raises(InputError, match=r"x must be a \(batch, dim\) tensor"):
        derivatives(g, x[0], t, method="pinn")
    with pytest.raises(InputError, match=r"x must be a \(batch, dim\) tensor"):
        derivatives(g, x[:, :0], t, method="pinn")
    with pytest.raises(InputError, match="floating-point"):
        derivatives(g, x.long(), t, method="pinn")
    with pytest.raises(InputError, match=r"t must be a \(batch,\) tensor"):
        derivatives(g, x, t[:3], method="stein-vr", smoothing=Smoothing(samples=4))
    with pytest.raises(InputError, match=r"t must be a \(batch,\) tensor"):
        derivatives(g, x, t[:, None], method="pinn")
    with pytest.raises(InputError, match=r"forward Laplacian needs a pinn_stein\.MLP"):
        derivatives(nn.Sequential(nn.Linear(4, 1)).to(F64), x, t, method="pinn-forward")


@pytest.mark.parametrize("method", ["stein-vr", "stein", "pinn"])
def test_a_network_with_several_outputs_is_rejected(method):
    x, t = points(timed=True)
    g = nn.Linear(4, 2).to(F64)
    with pytest.raises(InputError, match=r"must map \(n, in_dim\) inputs to \(n,\) or \(n, 1\) outputs"):
        derivatives(g, x, t, method=method, smoothing=Smoothing(samples=4))
