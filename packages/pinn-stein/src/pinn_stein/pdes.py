"""Benchmark PDEs of the paper (§5) with exact solutions or Monte Carlo references.

Every problem names its regions: the first, ``domain``, carries the PDE residual r(x, t) = 0; the others carry a
value constraint u = h (boundary, initial or terminal data). The physics-informed loss is
Σ_region w_region · mean(squared residual) over fresh random points each iteration.

| problem | PDE | domain | exact solution |
|---|---|---|---|
| Poisson | Δu + sin(Σx_i) = 0, u = sin(Σx_i)/d on ∂ | [0, 1]^d | sin(Σx_i)/d |
| Heat | u_t − Δu = 0 | unit ball × [0, 1] | abs(x)²/(2d) + t |
| HJB-LQG | u_t + Δu − μ abs(∇u)² = 0, u(x, T) = log((1 + abs(x)²)/2) | R^d × [0, T] | Cole–Hopf, Monte Carlo |
| HJB-Lin | u_t + Δu − (1/d) Σ abs(∂_i u)^c = −2, u(x, T) = Σx_i | R^d × [0, T] | Σx_i + T − t |
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from papers_common import InputError
from pinn_stein.fields import Derivatives


@dataclass
class Points:
    """``B`` collocation points: ``x`` ``(B, d)`` and ``t`` ``(B,)`` or None."""

    x: torch.Tensor
    t: torch.Tensor | None

    def __len__(self) -> int:
        return self.x.shape[0]


def _uniform(n: int, generator: torch.Generator, like: torch.Tensor, *shape: int) -> torch.Tensor:
    return torch.rand(n, *shape, generator=generator, device=like.device, dtype=like.dtype)


def _normal(n: int, generator: torch.Generator, like: torch.Tensor, *shape: int) -> torch.Tensor:
    return torch.randn(n, *shape, generator=generator, device=like.device, dtype=like.dtype)


def _sphere(n: int, dim: int, generator: torch.Generator, like: torch.Tensor) -> torch.Tensor:
    """``(n, dim)`` uniform points on the unit sphere: normalised Gaussians."""
    x = _normal(n, generator, like, dim)
    return x / x.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def _ball(n: int, dim: int, generator: torch.Generator, like: torch.Tensor) -> torch.Tensor:
    """``(n, dim)`` uniform points in the unit ball: sphere × U^{1/d}."""
    return _sphere(n, dim, generator, like) * _uniform(n, generator, like, 1).pow(1 / dim)


class PDE(ABC):
    """A PDE problem in ``dim`` spatial dimensions (time-dependent when :attr:`timed`)."""

    name: ClassVar[str]
    timed: ClassVar[bool]
    regions: ClassVar[tuple[str, ...]]
    default_batch: ClassVar[dict[str, int]]
    default_weights: ClassVar[dict[str, float]]
    horizon: float = 1.0

    def __init__(self, dim: int) -> None:
        if not isinstance(dim, int) or dim < 1:
            raise InputError(f"{self.name}: the dimension must be a positive integer, got {dim!r}")
        self.dim = dim

    @property
    def input_dim(self) -> int:
        """Inputs of the network: d, plus one for time."""
        return self.dim + int(self.timed)

    def describe(self) -> dict[str, Any]:
        """JSON-able parameters that identify the problem."""
        return {"pde": self.name, "dim": self.dim}

    @abstractmethod
    def sample(self, region: str, n: int, generator: torch.Generator, like: torch.Tensor) -> Points:
        """``n`` random points of ``region`` with ``like``'s dtype and device."""

    @abstractmethod
    def residual(self, points: Points, derivatives: Derivatives) -> torch.Tensor:
        """``(B,)`` PDE residual at domain points; zero for the exact solution."""

    @abstractmethod
    def target(self, region: str, points: Points) -> torch.Tensor:
        """``(B,)`` prescribed values on a constraint region (every region but ``domain``)."""

    def exact(self, points: Points) -> torch.Tensor:
        """``(B,)`` the exact solution; problems without a closed form use a reference set instead."""
        raise InputError(
            f"{self.name} has no closed-form solution: build a reference with `pinn-stein reference`"
        )

    def test_points(self, n: int, generator: torch.Generator, like: torch.Tensor) -> Points:
        """``n`` evaluation points (by default drawn like the domain points)."""
        return self.sample("domain", n, generator, like)

    def check_region(self, region: str) -> None:
        if region not in self.regions:
            raise InputError(f"{self.name} has regions {', '.join(self.regions)}; got {region!r}")


class Poisson(PDE):
    """Δu + sin(Σ_i x_i) = 0 on [0, 1]^d, u = sin(Σx_i)/d on the boundary (paper: d = 2)."""

    name = "poisson"
    timed = False
    regions = ("domain", "boundary")
    default_batch: ClassVar[dict[str, int]] = {"domain": 100, "boundary": 100}
    default_weights: ClassVar[dict[str, float]] = {"domain": 1.0, "boundary": 300.0}

    def sample(self, region: str, n: int, generator: torch.Generator, like: torch.Tensor) -> Points:
        self.check_region(region)
        x = _uniform(n, generator, like, self.dim)
        if region == "boundary":  # one random coordinate pinned to 0 or 1
            face = torch.randint(0, self.dim, (n,), generator=generator, device=like.device)
            side = torch.randint(0, 2, (n,), generator=generator, device=like.device).to(like.dtype)
            x = x.scatter(1, face.unsqueeze(1), side.unsqueeze(1))
        return Points(x, None)

    def residual(self, points: Points, derivatives: Derivatives) -> torch.Tensor:
        return derivatives.laplacian + torch.sin(points.x.sum(-1))

    def target(self, region: str, points: Points) -> torch.Tensor:
        self.check_region(region)
        return self.exact(points)

    def exact(self, points: Points) -> torch.Tensor:
        return torch.sin(points.x.sum(-1)) / self.dim


class Heat(PDE):
    """u_t = Δu on the unit ball × [0, 1]; u = abs(x)²/(2d) + t on the sphere and at t = 0 (paper: d = 100)."""

    name = "heat"
    timed = True
    regions = ("domain", "initial", "boundary")
    default_batch: ClassVar[dict[str, int]] = {"domain": 50, "initial": 50, "boundary": 50}
    default_weights: ClassVar[dict[str, float]] = {"domain": 1.0, "initial": 1000.0, "boundary": 1000.0}

    def sample(self, region: str, n: int, generator: torch.Generator, like: torch.Tensor) -> Points:
        self.check_region(region)
        if region == "boundary":
            x = _sphere(n, self.dim, generator, like)
        else:
            x = _ball(n, self.dim, generator, like)
        t = like.new_zeros(n) if region == "initial" else _uniform(n, generator, like) * self.horizon
        return Points(x, t)

    def residual(self, points: Points, derivatives: Derivatives) -> torch.Tensor:
        return derivatives.dt - derivatives.laplacian

    def target(self, region: str, points: Points) -> torch.Tensor:
        self.check_region(region)
        return self.exact(points)

    def exact(self, points: Points) -> torch.Tensor:
        return points.x.square().sum(-1) / (2 * self.dim) + points.t


class HJB(PDE):
    """Shared sampling of the HJB problems: x ~ N(0, I_d), t ~ U(0, T) inside, t = T on the terminal slice."""

    timed = True
    regions = ("domain", "terminal")
    default_batch: ClassVar[dict[str, int]] = {"domain": 50, "terminal": 50}

    def sample(self, region: str, n: int, generator: torch.Generator, like: torch.Tensor) -> Points:
        self.check_region(region)
        x = _normal(n, generator, like, self.dim)
        if region == "terminal":
            return Points(x, like.new_full((n,), self.horizon))
        return Points(x, _uniform(n, generator, like) * self.horizon)

    def target(self, region: str, points: Points) -> torch.Tensor:
        self.check_region(region)
        return self.terminal(points.x)

    @abstractmethod
    def terminal(self, x: torch.Tensor) -> torch.Tensor:
        """``(B,)`` terminal data u(x, T)."""


class HJBLQG(HJB):
    """u_t + Δu − μ abs(∇u)² = 0, u(x, T) = log((1 + abs(x)²)/2) (paper: d = 250, μ = 1, T = 1).

    The exact solution is the Cole–Hopf expectation u = −(1/μ) log E exp(−μ g(x + √(2(T − t)) W)), which
    :func:`pinn_stein.reference.cole_hopf` estimates in float64.
    """

    name = "hjb"
    default_weights: ClassVar[dict[str, float]] = {"domain": 1.0, "terminal": 500.0}

    def __init__(self, dim: int, mu: float = 1.0, horizon: float = 1.0) -> None:
        super().__init__(dim)
        if not (math.isfinite(mu) and mu > 0 and math.isfinite(horizon) and horizon > 0):
            raise InputError(f"hjb: mu and T must be positive and finite, got mu={mu}, T={horizon}")
        self.mu = mu
        self.horizon = horizon

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "mu": self.mu, "T": self.horizon}

    def residual(self, points: Points, derivatives: Derivatives) -> torch.Tensor:
        return derivatives.dt + derivatives.laplacian - self.mu * derivatives.grad.square().sum(-1)

    def terminal(self, x: torch.Tensor) -> torch.Tensor:
        return torch.log((1 + x.square().sum(-1)) / 2)


class HJBLin(HJB):
    """u_t + Δu − (1/d) Σ_i abs(∂_i u)^c = −2, u(x, T) = Σx_i; exact u = Σx_i + T − t (c in (1, 2])."""

    name = "hjb-lin"
    default_weights: ClassVar[dict[str, float]] = {"domain": 1.0, "terminal": 20.0}

    def __init__(self, dim: int, exponent: float = 1.25, horizon: float = 1.0) -> None:
        super().__init__(dim)
        if not (1 < exponent <= 2):
            raise InputError(f"hjb-lin: the exponent c must lie in (1, 2], got {exponent}")
        if not (math.isfinite(horizon) and horizon > 0):
            raise InputError(f"hjb-lin: T must be positive and finite, got {horizon}")
        self.exponent = exponent
        self.horizon = horizon

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "c": self.exponent, "T": self.horizon}

    def residual(self, points: Points, derivatives: Derivatives) -> torch.Tensor:
        hamiltonian = derivatives.grad.abs().pow(self.exponent).sum(-1) / self.dim
        return derivatives.dt + derivatives.laplacian - hamiltonian + 2

    def terminal(self, x: torch.Tensor) -> torch.Tensor:
        return x.sum(-1)

    def exact(self, points: Points) -> torch.Tensor:
        return points.x.sum(-1) + self.horizon - points.t


PROBLEMS: dict[str, type[PDE]] = {cls.name: cls for cls in (Poisson, Heat, HJBLQG, HJBLin)}


def make_pde(name: str, dim: int, **options: float) -> PDE:
    """Build a problem by name (``poisson``, ``heat``, ``hjb``, ``hjb-lin``)."""
    if name not in PROBLEMS:
        raise InputError(f"unknown PDE {name!r}; choose one of {', '.join(PROBLEMS)}")
    return PROBLEMS[name](dim, **options)


_OPTION_NAMES = {"mu": "mu", "T": "horizon", "c": "exponent"}  # PDE.describe() keys -> constructor arguments


def pde_from_description(description: dict[str, Any]) -> PDE:
    """Inverse of :meth:`PDE.describe`: rebuild the problem recorded in a run config or a saved model."""
    options = {k: v for k, v in description.items() if k not in ("pde", "dim")}
    unknown = sorted(set(options) - set(_OPTION_NAMES))
    if "pde" not in description or "dim" not in description or unknown:
        raise InputError(
            f"not a PDE description (pde, dim and options {sorted(_OPTION_NAMES)}): {description}"
        )
    return make_pde(
        description["pde"], description["dim"], **{_OPTION_NAMES[k]: float(v) for k, v in options.items()}
    )
