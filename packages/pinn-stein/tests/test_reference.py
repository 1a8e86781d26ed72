"""Test sets of each problem: drawn like its domain points, with exact or Cole-Hopf values, saved and cached
(the estimator and the file format are tested with the common package)."""

from __future__ import annotations

import pytest
import torch

import pinn_stein.reference as reference
from papers_common import InputError
from pinn_stein import HJBLQG, Heat, Poisson, cached_test_set, cole_hopf, make_test_set

F64 = torch.float64


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_make_test_set_for_hjb():
    pde = HJBLQG(3)
    test = make_test_set(pde, 6, seed=2, samples=2**12)
    assert len(test) == 6
    assert test.x.shape == (6, 3)
    assert test.t.shape == (6,)
    assert test.grad.shape == (6, 3)
    assert test.u.dtype == F64
    assert test.meta == {
        "pde": "hjb",
        "dim": 3,
        "mu": 1.0,
        "T": 1.0,
        "seed": 2,
        "points": 6,
        "monte_carlo_samples": 4096,
    }
    drawn = pde.test_points(6, seeded(2), torch.empty(0, dtype=F64))
    assert torch.equal(test.x, drawn.x)
    assert torch.equal(test.t, drawn.t)
    again = make_test_set(pde, 6, seed=2, samples=2**12)
    assert torch.equal(test.u, again.u)
    # an independent, larger estimate agrees to Monte Carlo accuracy
    u, grad = cole_hopf(
        test.x, test.t, pde.terminal, mu=1.0, horizon=1.0, samples=2**15, generator=seeded(99)
    )
    torch.testing.assert_close(test.u, u, rtol=0, atol=0.05)
    torch.testing.assert_close(test.grad, grad, rtol=0, atol=0.1)
    assert not torch.equal(test.u, u)


def test_make_test_set_for_exact_problems():
    heat = make_test_set(Heat(4), 20, seed=1, dtype=torch.float32)
    assert heat.u.dtype == torch.float32
    torch.testing.assert_close(heat.u, heat.x.square().sum(-1) / 8 + heat.t)
    assert heat.grad is None
    assert heat.meta == {"pde": "heat", "dim": 4, "seed": 1, "points": 20}
    poisson = make_test_set(Poisson(2), 10)
    assert poisson.t is None
    with pytest.raises(InputError, match="at least one point"):
        make_test_set(Heat(2), 0)


@pytest.mark.parametrize("pde", [HJBLQG(2), Poisson(3)], ids=["hjb", "poisson"])
def test_test_sets_round_trip_through_safetensors(pde, tmp_path):
    test = make_test_set(pde, 5, seed=3, samples=256)
    path = test.save(tmp_path / "test.safetensors")
    loaded = reference.TestSet.load(path)
    assert loaded.meta == test.meta
    for name in ("x", "t", "u", "grad"):
        mine, theirs = getattr(test, name), getattr(loaded, name)
        if mine is None:
            assert theirs is None, name
        else:
            assert torch.equal(mine, theirs), name


def test_cached_test_set_is_reused_only_with_the_same_settings(tmp_path, monkeypatch):
    made = []
    original = reference.make_test_set

    def counting(*args, **kwargs):
        made.append(kwargs)
        return original(*args, **kwargs)

    monkeypatch.setattr(reference, "make_test_set", counting)
    path = tmp_path / "heat.safetensors"
    first = cached_test_set(path, Heat(3), 8, seed=1)
    assert len(made) == 1
    assert path.exists()
    again = cached_test_set(path, Heat(3), 8, seed=1)
    assert len(made) == 1  # read back, not recomputed
    assert torch.equal(again.u, first.u)
    cached_test_set(path, Heat(3), 8, seed=1, samples=99)  # Monte Carlo size is irrelevant to exact problems
    assert len(made) == 1
    other = cached_test_set(path, Heat(3), 8, seed=2)
    assert len(made) == 2
    assert not torch.equal(other.x, first.x)
    assert reference.TestSet.load(path).meta["seed"] == 2  # the file now holds the new set
    cached_test_set(path, Heat(4), 8, seed=2)
    assert len(made) == 3
    hjb = tmp_path / "hjb.safetensors"
    cached_test_set(hjb, HJBLQG(2), 4, samples=64)
    cached_test_set(hjb, HJBLQG(2), 4, samples=64)
    assert len(made) == 4
    cached_test_set(hjb, HJBLQG(2), 4, samples=128)
    cached_test_set(hjb, HJBLQG(2, mu=0.5), 4, samples=128)
    assert len(made) == 6
