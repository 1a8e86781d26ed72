"""HJB-LQG references by the Cole–Hopf transform in float64 Monte Carlo, and the test-set files that hold them.

For u_t + Δu − μ abs(∇u)² = 0 with u(·, T) = g, the substitution w = exp(−μu) turns the equation into the
backward heat equation w_t + Δw = 0, so

    u(x, t) = −(1/μ) log E_W exp(−μ g(x + √(2(T − t)) W)),   W ~ N(0, I_d).

:func:`cole_hopf` estimates this with S draws per point in float64, as a log-mean-exp, and its gradient ∇_x u
by differentiating the estimator with the draws held fixed. The standard error falls like 1/√S. Both PINN
packages evaluate on this problem (the L∞-PINN paper's HJB, the Stein paper's HJB-LQG); a :class:`TestSet` file
written by one is read by the other, and the L∞-PINN paper's own pickles (``X`` = [x, t], ``Y``, ``grad_x``) load
too.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from papers_common.atomic import write_bytes
from papers_common.checkpoint import load_state_dict
from papers_common.errors import InputError
from papers_common.monitoring import progress


def cole_hopf(
    x: torch.Tensor,
    t: torch.Tensor,
    terminal: Callable[[torch.Tensor], torch.Tensor],
    *,
    mu: float,
    horizon: float,
    samples: int,
    generator: torch.Generator | None = None,
    budget: int = 2**23,
    desc: str | None = "cole-hopf reference",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Monte Carlo Cole–Hopf solution and its gradient, in float64.

    Args:
        x: ``(B, d)`` points; t: ``(B,)`` times in [0, T].
        terminal: g, mapping ``(..., d)`` to ``(...)``; differentiable.
        mu: μ > 0; horizon: T.
        samples: S, Brownian draws per point (independent across points).
        generator: source of the draws (a CPU generator).
        budget: largest number of float64 elements (points × draws × d) held at once.
        desc: the label of the progress bar / log records (points done), None for no progress.

    Returns:
        ``(B,)`` u and ``(B, d)`` ∇_x u, float64 on x's device.
    """
    if samples < 1:
        raise InputError(f"the Monte Carlo reference needs at least one sample, got {samples}")
    x = x.detach().to(torch.float64)
    t = t.detach().to(torch.float64)
    batch, dim = x.shape
    scale = (2 * (horizon - t)).clamp_min(0).sqrt()  # (B,)
    sample_chunk = max(1, min(samples, budget // dim))
    point_chunk = max(1, budget // (sample_chunk * dim))
    values, grads = [], []
    bar = progress(total=batch, desc=desc, unit="point", disable=desc is None)
    for start in range(0, batch, point_chunk):
        xs = x[start : start + point_chunk]
        ss = scale[start : start + point_chunk, None, None]
        partial_lse, partial_grad = [], []
        for done in range(0, samples, sample_chunk):
            count = min(sample_chunk, samples - done)
            draws = torch.randn(xs.shape[0], count, dim, generator=generator, dtype=torch.float64)
            leaf = xs.clone().requires_grad_(True)
            with torch.enable_grad():
                lse = torch.logsumexp(-mu * terminal(leaf.unsqueeze(1) + ss * draws.to(x.device)), dim=1)
                (gradient,) = torch.autograd.grad(lse.sum(), leaf)
            partial_lse.append(lse.detach())
            partial_grad.append(gradient)
        lse = torch.stack(partial_lse)  # (chunks, P)
        weights = torch.softmax(lse, dim=0).unsqueeze(-1)
        total = torch.logsumexp(lse, dim=0)
        values.append(-(total - math.log(samples)) / mu)
        grads.append(-(weights * torch.stack(partial_grad)).sum(0) / mu)
        bar.update(xs.shape[0])
    bar.close()
    return torch.cat(values), torch.cat(grads)


@dataclass
class TestSet:
    """Evaluation points with reference values (and gradients when known).

    Attributes:
        x: ``(B, d)``; t: ``(B,)`` or None; u: ``(B,)``; grad: ``(B, d)`` or None.
        meta: how the set was made (problem, seed, Monte Carlo samples), stored with it.
    """

    __test__ = False  # not a pytest test class, despite its name

    x: torch.Tensor
    t: torch.Tensor | None
    u: torch.Tensor
    grad: torch.Tensor | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return self.x.shape[0]

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> TestSet:
        def move(v: torch.Tensor | None) -> torch.Tensor | None:
            return None if v is None else v.to(device=device, dtype=dtype or v.dtype)

        return type(self)(move(self.x), move(self.t), move(self.u), move(self.grad), dict(self.meta))

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write a ``.safetensors`` file atomically (tensors plus the JSON ``meta``)."""
        from safetensors.torch import save

        tensors = {"x": self.x, "u": self.u}
        if self.t is not None:
            tensors["t"] = self.t
        if self.grad is not None:
            tensors["grad"] = self.grad
        data = save(
            {k: v.detach().cpu().contiguous() for k, v in tensors.items()}, {"meta": json.dumps(self.meta)}
        )
        return write_bytes(path, data)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> TestSet:
        """Read :meth:`save` output, or the paper's pickles with ``X`` = [x, t], ``Y`` and ``grad_x``."""
        file = Path(path)
        tensors = load_state_dict(file)
        if {"X", "Y"} <= tensors.keys():  # the official HJB test files
            inputs = tensors["X"].to(torch.float64)
            return cls(
                inputs[:, :-1],
                inputs[:, -1],
                tensors["Y"].reshape(-1).to(torch.float64),
                tensors["grad_x"].to(torch.float64) if "grad_x" in tensors else None,
                {"source": str(file)},
            )
        missing = {"x", "u"} - tensors.keys()
        if missing:
            raise InputError(
                f"{file}: a test set needs tensors x and u (or X and Y); missing {sorted(missing)}"
            )
        meta: dict[str, Any] = {}
        if file.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(file, "pt") as handle:
                meta = json.loads((handle.metadata() or {}).get("meta", "{}"))
        test = cls(tensors["x"], tensors.get("t"), tensors["u"], tensors.get("grad"), meta)
        test.check(str(file))
        return test

    def check(self, source: str) -> None:
        """Raise :class:`InputError` naming ``source`` when shapes disagree."""
        batch = self.x.shape[0]
        if self.x.dim() != 2:
            raise InputError(f"{source}: x must be (points, dim), got {tuple(self.x.shape)}")
        for name in ("t", "u"):
            value = getattr(self, name)
            if value is not None and value.shape != (batch,):
                raise InputError(f"{source}: {name} must have shape ({batch},), got {tuple(value.shape)}")
        if self.grad is not None and self.grad.shape != self.x.shape:
            raise InputError(
                f"{source}: grad must have x's shape {tuple(self.x.shape)}, got {tuple(self.grad.shape)}"
            )
