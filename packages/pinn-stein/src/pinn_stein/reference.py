"""Test sets: exact solutions where they exist, float64 Monte Carlo (Cole–Hopf) references for HJB-LQG.

The estimator (:func:`papers_common.cole_hopf`) and the file format (:class:`papers_common.TestSet`) come from
the common package; this module draws the points of each problem and records how a set was made.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from papers_common import InputError, TestSet, cole_hopf
from pinn_stein.pdes import HJBLQG, PDE


def _meta(pde: PDE, points: int, seed: int, samples: int) -> dict[str, Any]:
    meta: dict[str, Any] = {**pde.describe(), "seed": seed, "points": points}
    if isinstance(pde, HJBLQG):
        meta["monte_carlo_samples"] = samples
    return meta


def make_test_set(
    pde: PDE, points: int, *, seed: int = 0, samples: int = 2**14, dtype: torch.dtype = torch.float64
) -> TestSet:
    """Evaluation points drawn like the domain points, with exact values, or Cole–Hopf ones for HJB-LQG.

    Args:
        pde: the problem; points: how many; seed: of the points and of the Monte Carlo draws.
        samples: S, Monte Carlo draws per point (HJB-LQG only).
        dtype: of the stored points and values.
    """
    if points < 1:
        raise InputError(f"a test set needs at least one point, got {points}")
    generator = torch.Generator().manual_seed(seed)
    drawn = pde.test_points(points, generator, torch.empty(0, dtype=dtype))
    meta = _meta(pde, points, seed, samples)
    if isinstance(pde, HJBLQG):
        u, grad = cole_hopf(
            drawn.x,
            drawn.t,
            pde.terminal,
            mu=pde.mu,
            horizon=pde.horizon,
            samples=samples,
            generator=generator,
        )
        return TestSet(drawn.x, drawn.t, u.to(dtype), grad.to(dtype), meta)
    return TestSet(drawn.x, drawn.t, pde.exact(drawn), None, meta)


def cached_test_set(
    path: str | os.PathLike[str], pde: PDE, points: int, *, seed: int = 0, samples: int = 2**14
) -> TestSet:
    """:func:`make_test_set` through a file: ``path`` is reused when it was made with the same settings."""
    file = Path(path)
    if file.exists():
        test = TestSet.load(file)
        if test.meta == _meta(pde, points, seed, samples):
            return test
    test = make_test_set(pde, points, seed=seed, samples=samples)
    test.save(file)
    return test
