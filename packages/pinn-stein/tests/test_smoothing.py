"""Gaussian smoothing: validated settings, noise with the requested scales, and an unbiased smoothed value."""

from __future__ import annotations

import math

import pytest
import torch

from papers_common import InputError
from pinn_stein import Smoothing, smoothed_value
from pinn_stein.smoothing import first_layer_split, gaussian_noise, shifted_values

F64 = torch.float64


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"sigma_x": 0}, "sigma_x"),
        ({"sigma_x": -0.1}, "sigma_x"),
        ({"sigma_x": float("nan")}, "sigma_x"),
        ({"sigma_x": float("inf")}, "sigma_x"),
        ({"sigma_x": "0.1"}, "sigma_x"),
        ({"sigma_t": 0.0}, "sigma_t"),
        ({"sigma_t": float("nan")}, "sigma_t"),
        ({"samples": 0}, "samples"),
        ({"samples": -4}, "samples"),
        ({"samples": 2.0}, "samples"),
    ],
)
def test_bad_smoothing_settings_are_rejected(kwargs, field):
    with pytest.raises(InputError, match=f"Smoothing.{field} must be a positive"):
        Smoothing(**kwargs)


def test_antithetic_pairs_need_an_even_sample_count():
    assert Smoothing(samples=6).pairs() == 3
    for odd in (1, 3, 2047):
        with pytest.raises(InputError, match="even number of samples"):
            Smoothing(samples=odd).pairs()


def test_scales_put_sigma_t_last():
    like = torch.empty(0, dtype=F64)
    smoothing = Smoothing(sigma_x=0.2, sigma_t=0.5)
    torch.testing.assert_close(smoothing.scales(3, True, like), torch.tensor([0.2, 0.2, 0.2, 0.5], dtype=F64))
    torch.testing.assert_close(smoothing.scales(2, False, like), torch.tensor([0.2, 0.2], dtype=F64))


def test_noise_has_the_requested_scales():
    x = torch.zeros(5, 3, dtype=F64)
    t = torch.zeros(5, dtype=F64)
    noise = gaussian_noise(4000, x, t, Smoothing(0.2, 0.5), torch.Generator().manual_seed(0))
    assert noise.shape == (4000, 5, 4)
    assert noise.dtype == F64
    flat = noise.reshape(-1, 4)
    # 20,000 draws per column: the relative standard error of a standard deviation is 1/sqrt(40,000) = 0.5%
    torch.testing.assert_close(flat.std(0), torch.tensor([0.2, 0.2, 0.2, 0.5], dtype=F64), rtol=0.03, atol=0)
    assert float(flat.mean(0).abs().max()) < 0.02
    # independent columns and points
    correlation = torch.corrcoef(flat.T)
    assert float((correlation - torch.eye(4, dtype=F64)).abs().max()) < 0.05
    assert gaussian_noise(7, x, None, Smoothing(), None).shape == (7, 5, 3)


def test_same_generator_seed_same_noise():
    x = torch.zeros(2, 3, dtype=F64)
    a = gaussian_noise(4, x, None, Smoothing(), torch.Generator().manual_seed(1))
    b = gaussian_noise(4, x, None, Smoothing(), torch.Generator().manual_seed(1))
    c = gaussian_noise(4, x, None, Smoothing(), torch.Generator().manual_seed(2))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


@pytest.mark.parametrize("antithetic", [True, False], ids=["antithetic", "independent"])
def test_smoothed_value_is_unbiased_for_the_sine(antithetic, sine):
    """E sin(w.(z + delta)) = sin(w.z) exp(-sum_j s_j^2 w_j^2 / 2), visibly below the raw value at these sigmas."""
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(4, 2, generator=gen, dtype=F64)
    t = torch.rand(4, generator=gen, dtype=F64)
    g = sine(torch.tensor([1.5, -1.0, 2.0], dtype=F64))
    smoothing = Smoothing(sigma_x=0.4, sigma_t=0.6, samples=64)
    reps = 300
    values = smoothed_value(
        g,
        x.repeat(reps, 1),
        t.repeat(reps),
        smoothing,
        antithetic=antithetic,
        generator=torch.Generator().manual_seed(4),
    ).reshape(reps, 4)
    z = torch.cat([x, t[:, None]], 1)
    truth = g.smoothed(z, smoothing.scales(2, True, x))["u"]
    stderr = values.std(0) / math.sqrt(reps)
    assert bool(((values.mean(0) - truth).abs() < 5 * stderr).all())
    assert float(stderr.max()) < 0.01
    assert float((g(z).squeeze(-1) - truth).abs().max()) > 0.2


def test_smoothed_value_of_a_quadratic_adds_half_the_trace(quadratic):
    """E g(z + delta) = g(z) + tr(A diag(s^2)) / 2 for a quadratic."""
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(3, 3, generator=gen, dtype=F64)
    g = quadratic(3, seed=2)
    smoothing = Smoothing(sigma_x=0.5, samples=128)
    reps = 400
    values = smoothed_value(g, x.repeat(reps, 1), None, smoothing, generator=torch.Generator().manual_seed(6))
    values = values.reshape(reps, 3)
    truth = g.smoothed(x, smoothing.scales(3, False, x))["u"]
    stderr = values.std(0) / math.sqrt(reps)
    assert bool(((values.mean(0) - truth).abs() < 5 * stderr).all())
    assert float(stderr.max()) < 0.02
    assert abs(0.5 * 0.25 * g.laplacian(3)) > 10 * float(stderr.max())  # the trace term is detectable


def test_antithetic_mean_is_exact_for_an_affine_network():
    """Pairs z +- delta cancel the odd part: an affine network's smoothed value is its value, for any draws."""
    lin = torch.nn.Linear(3, 1).to(F64)
    x = torch.randn(6, 2, generator=torch.Generator().manual_seed(0), dtype=F64)
    t = torch.rand(6, generator=torch.Generator().manual_seed(1), dtype=F64)
    with torch.no_grad():
        exact = lin(torch.cat([x, t[:, None]], 1)).squeeze(-1)
        smoothing = Smoothing(sigma_x=0.5, sigma_t=0.5, samples=4)
        paired = smoothed_value(lin, x, t, smoothing, generator=torch.Generator().manual_seed(2))
        independent = smoothed_value(
            lin, x, t, smoothing, antithetic=False, generator=torch.Generator().manual_seed(2)
        )
    torch.testing.assert_close(paired, exact, rtol=0, atol=1e-12)
    assert float((independent - exact).abs().max()) > 1e-3


def test_smoothed_value_checks_its_inputs(make_mlp):
    g = make_mlp(3)
    x = torch.zeros(4, 2, dtype=F64)
    t = torch.zeros(4, dtype=F64)
    with pytest.raises(InputError, match="even number of samples"):
        smoothed_value(g, x, t, Smoothing(samples=5))
    assert smoothed_value(g, x, t, Smoothing(samples=5), antithetic=False).shape == (4,)
    with pytest.raises(InputError, match=r"t must be a \(batch,\) tensor"):
        smoothed_value(g, x, t[:2], Smoothing(samples=4))


def sequential(seed: int = 0) -> torch.nn.Sequential:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1)).to(F64)


def test_first_layer_split_recovers_the_network(make_mlp, opaque):
    """g = rest(first(z)) exactly for the MLP and a Linear-first Sequential; anything else is not split."""
    z = torch.randn(5, 4, generator=torch.Generator().manual_seed(0), dtype=F64)
    for g in (make_mlp(4, 8, 3), sequential()):
        found = first_layer_split(g)
        assert found is not None
        first, rest = found
        assert isinstance(first, torch.nn.Linear)
        assert torch.equal(rest(first(z)), g(z))
    assert first_layer_split(opaque(make_mlp(4))) is None
    assert first_layer_split(torch.nn.Sequential(torch.nn.Tanh(), torch.nn.Linear(4, 1))) is None
    assert first_layer_split(torch.nn.Sequential()) is None
    hooked = make_mlp(4)
    hooked.register_forward_hook(lambda module, inputs, output: output)
    assert first_layer_split(hooked) is None
    hooked_first = make_mlp(4)
    hooked_first.layers[0].register_forward_pre_hook(lambda module, inputs: None)
    assert first_layer_split(hooked_first) is None


@pytest.mark.parametrize(
    ("antithetic", "centre"), [(True, True), (True, False), (False, False), (False, True)]
)
@pytest.mark.parametrize("network", ["mlp", "sequential"])
def test_shifted_values_through_the_first_layer_equal_the_stacked_evaluation(
    network, antithetic, centre, make_mlp, opaque
):
    """(W z + b) ± W δ equals W (z ± δ) + b up to float64 rounding, values and θ-gradients alike; the stacked
    evaluation of an opaque network is the single batched call on [z + δ, z − δ, z]."""
    g = make_mlp(4, 8, 3, seed=1) if network == "mlp" else sequential(1)
    gen = torch.Generator().manual_seed(2)
    z = torch.randn(6, 4, generator=gen, dtype=F64)
    delta = 0.1 * torch.randn(5, 6, 4, generator=gen, dtype=F64)
    split = shifted_values(g, z, delta, antithetic=antithetic, centre=centre)
    stacked = shifted_values(opaque(g), z, delta, antithetic=antithetic, centre=centre)
    inputs = [z + delta, z - delta] if antithetic else [z + delta]
    direct = g(torch.cat([*inputs, z.unsqueeze(0)] if centre else inputs).reshape(-1, 4)).reshape(-1, 6)
    assert split.shape == (5 * (1 + antithetic) + centre, 6)
    assert torch.equal(stacked, direct)
    torch.testing.assert_close(split, stacked, rtol=1e-13, atol=1e-14)
    weights = torch.randn(split.shape, generator=gen, dtype=F64)
    gradients = [torch.autograd.grad((weights * v).sum(), list(g.parameters())) for v in (split, stacked)]
    for ours, reference in zip(*gradients, strict=True):
        torch.testing.assert_close(ours, reference, rtol=1e-12, atol=1e-13)


def test_a_narrow_first_layer_is_evaluated_on_the_stacked_inputs(make_mlp):
    """Inputs under a quarter of the first layer's width: splitting would cost more than it saves, so g is called
    once on [z + δ, z − δ, z], bit for bit."""
    g = make_mlp(3, 16, 2)
    gen = torch.Generator().manual_seed(3)
    z = torch.randn(4, 3, generator=gen, dtype=F64)
    delta = torch.randn(5, 4, 3, generator=gen, dtype=F64)
    found = shifted_values(g, z, delta, antithetic=True, centre=True)
    assert torch.equal(
        found, g(torch.cat([z + delta, z - delta, z.unsqueeze(0)]).reshape(-1, 3)).reshape(11, 4)
    )
