"""Test sets with reference values and gradients: closed forms for HJB-Lin, float64 Monte Carlo for HJB-LQG.

The HJB-LQG reference is the Cole–Hopf expectation estimated by :func:`papers_common.cole_hopf` with S draws
per point (default 2^16, standard error ~1e-3 of u at d = 100), its gradient from differentiating the estimator.
The paper's own test files (``hjb_{100,250}_grad.pkl`` in the official repository's ``src/data/``) are read by
:meth:`papers_common.TestSet.load`; the sets made here draw their points like the training points
(x ~ N(0, I_d), t ~ U(0, T)) from a seed, and each file records its problem, seed, size and S, so a set is
regenerated bit for bit and reused from a cache only when every setting matches.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError

from papers_common import InputError, TestSet, cole_hopf
from pinn_linf.problems import HJBLQG, HJBProblem

CACHE_ENV = "PINN_LINF_CACHE"


def reference_meta(problem: HJBProblem, points: int, seed: int, samples: int) -> dict[str, Any]:
    """What identifies a test set: the problem, the number of points, the seed and (HJB-LQG) the MC size."""
    meta: dict[str, Any] = {**problem.describe(), "points": points, "seed": seed}
    if isinstance(problem, HJBLQG):
        meta["monte_carlo_samples"] = samples
    return meta


def make_test_set(problem: HJBProblem, points: int = 1000, *, seed: int = 0, samples: int = 2**16) -> TestSet:
    """``points`` test points with float64 reference values u* and gradients ∇u* (see the module docstring)."""
    if points < 1:
        raise InputError(f"a test set needs at least one point, got {points}")
    if samples < 1:
        raise InputError(f"the Monte Carlo reference needs at least one sample, got {samples}")
    generator = torch.Generator().manual_seed(seed)
    z = problem.sample(points, generator, dtype=torch.float64)
    x, t = z[:, : problem.dim], z[:, problem.dim]
    exact = problem.exact(z)
    if exact is None:
        if not isinstance(problem, HJBLQG):
            raise InputError(f"{problem.name} has no closed form and no Monte Carlo reference")
        u, grad = cole_hopf(
            x,
            t,
            problem.terminal,
            mu=problem.mu,
            horizon=problem.horizon,
            samples=samples,
            generator=generator,
            desc=f"{problem.name} d={problem.dim} reference",
        )
    else:
        u, grad = exact
    return TestSet(x, t, u, grad, reference_meta(problem, points, seed, samples))


def cache_dir() -> Path:
    """``$PINN_LINF_CACHE``, else ``$XDG_CACHE_HOME/pinn-linf``, else ``~/.cache/pinn-linf``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "pinn-linf"


def cached_test_set(
    problem: HJBProblem,
    points: int = 1000,
    *,
    seed: int = 0,
    samples: int = 2**16,
    directory: str | os.PathLike[str] | None = None,
) -> TestSet:
    """:func:`make_test_set` through a cache file named by a hash of its settings (in :func:`cache_dir`)."""
    meta = reference_meta(problem, points, seed, samples)
    key = hashlib.sha256(json.dumps(meta, sort_keys=True).encode()).hexdigest()[:16]
    path = Path(directory) if directory is not None else cache_dir()
    file = path / f"{problem.name}-d{problem.dim}-{key}.safetensors"
    if file.is_file():
        try:
            test = TestSet.load(file)
        except (InputError, OSError, SafetensorError):  # unreadable or foreign: made again below
            test = None
        if test is not None and test.meta == meta:
            return test
    test = make_test_set(problem, points, seed=seed, samples=samples)
    test.save(file)
    return test
