"""Test sets: the closed form for HJB-Lin, a float64 Monte Carlo Cole–Hopf estimate for HJB-LQG that agrees with an
independent one to Monte Carlo accuracy, and a cache that is reused only when every setting matches."""

from __future__ import annotations

import math

import pytest
import torch
from safetensors.torch import save_file

from papers_common import InputError, TestSet, cole_hopf
from pinn_linf import cached_test_set, make_problem, make_test_set
from pinn_linf import reference as reference_module

F64 = torch.float64


def test_hjb_lin_uses_the_closed_form():
    problem = make_problem("hjb-lin", 4, horizon=2.0, c=1.5)
    test = make_test_set(problem, 30, seed=2)
    assert len(test) == 30
    assert test.x.dtype == F64
    torch.testing.assert_close(test.u, test.x.sum(1) + 2.0 - test.t, rtol=0, atol=1e-15)
    assert torch.equal(test.grad, torch.ones(30, 4, dtype=F64))
    assert float(test.t.min()) >= 0
    assert float(test.t.max()) <= 2.0
    assert test.meta == {"pde": "hjb-lin", "dim": 4, "horizon": 2.0, "c": 1.5, "points": 30, "seed": 2}


def standard_errors(problem, test: TestSet, samples: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-point standard errors of the Cole–Hopf estimates of u and ∇u with ``samples`` draws (delta method)."""
    gen = torch.Generator().manual_seed(seed)
    draws = torch.randn(len(test), samples, problem.dim, generator=gen, dtype=F64)
    y = test.x.unsqueeze(1) + (2 * (problem.horizon - test.t)).sqrt()[:, None, None] * draws
    weight = torch.exp(-problem.mu * problem.terminal(y))  # (B, S)
    mean = weight.mean(1)
    se_u = weight.std(1) / mean / problem.mu / math.sqrt(samples)
    grad_g = 2 * y / (1 + y.square().sum(-1, keepdim=True))  # ∇g(y)
    grad_u = (weight.unsqueeze(-1) * grad_g).sum(1) / weight.sum(1, keepdim=True)
    se_grad = (weight.unsqueeze(-1) * (grad_g - grad_u.unsqueeze(1))).std(1) / mean.unsqueeze(-1)
    return se_u, se_grad / math.sqrt(samples)


def test_hjb_lqg_reference_agrees_with_an_independent_estimate():
    problem = make_problem("hjb-lqg", 2)
    samples, more = 2**14, 2**18
    test = make_test_set(problem, 6, seed=3, samples=samples)
    assert test.meta["monte_carlo_samples"] == samples
    assert test.u.dtype == F64
    assert test.grad.shape == (6, 2)
    u, grad = cole_hopf(
        test.x,
        test.t,
        problem.terminal,
        mu=1.0,
        horizon=1.0,
        samples=more,
        generator=torch.Generator().manual_seed(99),
        desc=None,
    )
    se_u, se_grad = standard_errors(problem, test, 2**12, seed=5)
    se_u, se_grad = se_u * math.sqrt(2**12 / samples), se_grad * math.sqrt(2**12 / samples)
    # both estimates carry errors; the independent one has 16x the draws, so its error is 4x smaller
    tolerance = 5 * math.sqrt(1 + samples / more)
    assert bool(((test.u - u).abs() <= tolerance * se_u).all()), (test.u - u).abs() / se_u
    assert bool(((test.grad - grad).abs() <= tolerance * se_grad).all()), (test.grad - grad).abs() / se_grad
    # the band is narrow against what is being checked: on average u lies much farther from g(x) (its value at T)
    gap = (test.u - problem.terminal(test.x)).abs()
    assert float((tolerance * se_u).mean()) < 0.2 * float(gap.mean()), (tolerance * se_u, gap)


def test_hjb_lqg_reference_is_deterministic_for_a_seed():
    problem = make_problem("hjb-lqg", 2)
    a = make_test_set(problem, 5, seed=1, samples=512)
    b = make_test_set(problem, 5, seed=1, samples=512)
    c = make_test_set(problem, 5, seed=2, samples=512)
    for name in ("x", "t", "u", "grad"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    assert not torch.equal(a.x, c.x)
    # the draws come from the seed too: other S, other estimate at the same points
    d = make_test_set(problem, 5, seed=1, samples=1024)
    assert torch.equal(a.x, d.x)
    assert not torch.equal(a.u, d.u)


@pytest.mark.parametrize(
    ("points", "samples", "message"), [(0, 10, "at least one point"), (5, 0, "at least one sample")]
)
def test_bad_test_set_sizes_are_rejected(points, samples, message):
    with pytest.raises(InputError, match=message):
        make_test_set(make_problem("hjb-lqg", 2), points, samples=samples)


@pytest.fixture
def counted(monkeypatch):
    """Count the test sets actually computed by cached_test_set."""
    calls = []
    original = reference_module.make_test_set

    def counting(*args, **kwargs):
        calls.append((args, kwargs))
        return original(*args, **kwargs)

    monkeypatch.setattr(reference_module, "make_test_set", counting)
    return calls


def test_the_cache_is_reused_only_when_every_setting_matches(tmp_path, counted):
    problem = make_problem("hjb-lqg", 2)
    first = cached_test_set(problem, 4, seed=0, samples=64, directory=tmp_path)
    assert len(counted) == 1
    files = list(tmp_path.iterdir())
    assert len(files) == 1
    assert files[0].name.startswith("hjb-lqg-d2-")
    assert files[0].suffix == ".safetensors"
    again = cached_test_set(problem, 4, seed=0, samples=64, directory=tmp_path)
    assert len(counted) == 1
    for name in ("x", "t", "u", "grad"):
        assert torch.equal(getattr(again, name), getattr(first, name)), name
    assert again.meta == first.meta
    # each setting is part of the key
    cached_test_set(problem, 4, seed=1, samples=64, directory=tmp_path)
    cached_test_set(problem, 4, seed=0, samples=128, directory=tmp_path)
    cached_test_set(problem, 5, seed=0, samples=64, directory=tmp_path)
    cached_test_set(make_problem("hjb-lqg", 2, mu=0.5), 4, seed=0, samples=64, directory=tmp_path)
    assert len(counted) == 5
    assert len(list(tmp_path.iterdir())) == 5
    # the Monte Carlo size does not identify a closed-form set
    cached_test_set(make_problem("hjb-lin", 2), 4, samples=64, directory=tmp_path)
    cached_test_set(make_problem("hjb-lin", 2), 4, samples=128, directory=tmp_path)
    assert len(counted) == 6


def test_the_cache_defaults_to_the_environment_folder(tmp_path, monkeypatch, counted):
    folder = tmp_path / "elsewhere"
    monkeypatch.setenv("PINN_LINF_CACHE", str(folder))
    assert reference_module.cache_dir() == folder
    cached_test_set(make_problem("hjb-lin", 3), 4)
    assert [p.name.split("-")[:3] for p in folder.iterdir()] == [["hjb", "lin", "d3"]]
    cached_test_set(make_problem("hjb-lin", 3), 4)
    assert len(counted) == 1


def test_the_cache_is_rewritten_when_its_settings_do_not_match(tmp_path, counted):
    problem = make_problem("hjb-lqg", 2)
    good = cached_test_set(problem, 4, samples=64, directory=tmp_path)
    (file,) = tmp_path.iterdir()
    TestSet(good.x, good.t, good.u + 1, good.grad, {**good.meta, "seed": 7}).save(file)
    again = cached_test_set(problem, 4, samples=64, directory=tmp_path)
    assert len(counted) == 2
    assert torch.equal(again.u, good.u)
    assert TestSet.load(file).meta == good.meta  # the file was replaced


def test_the_cache_is_rewritten_when_a_tensor_is_missing(tmp_path, counted):
    problem = make_problem("hjb-lin", 2)
    good = cached_test_set(problem, 4, directory=tmp_path)
    (file,) = tmp_path.iterdir()
    save_file({"x": good.x.contiguous()}, file)
    again = cached_test_set(problem, 4, directory=tmp_path)
    assert len(counted) == 2
    assert torch.equal(again.u, good.u)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_a_corrupt_cache_file_is_recomputed(damage, tmp_path, counted):
    problem = make_problem("hjb-lin", 2)
    good = cached_test_set(problem, 4, directory=tmp_path)
    (file,) = tmp_path.iterdir()
    data = file.read_bytes()
    file.write_bytes(
        {"garbage": b"not a safetensors file", "truncated": data[: len(data) // 2], "empty": b""}[damage]
    )
    again = cached_test_set(problem, 4, directory=tmp_path)
    assert len(counted) == 2
    assert torch.equal(again.u, good.u)
