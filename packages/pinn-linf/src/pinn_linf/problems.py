"""The HJB problems of the paper (§5) on R^d × [0, T], with the collocation distributions of its code.

Both are terminal-value problems: the residual r = u_t + Δu − H(∇u) − f must vanish inside, u(x, T) = g(x) on
the terminal slice. Points are stored as network inputs z = [x, t] of shape ``(B, d + 1)``, time last.

| problem | equation | terminal data | solution |
|---|---|---|---|
| HJB-LQG | u_t + Δu − μ abs(∇u)² = 0 | log((1 + abs(x)²)/2) | Cole–Hopf, Monte Carlo (:func:`papers_common.cole_hopf`) |
| HJB-Lin | u_t + Δu − (1/d) Σ_i abs(∂_i u)^c = −2 | Σ_i x_i | Σ_i x_i + T − t |

Training points follow the official code: x ~ N(0, I_d) and t ~ U(0, T) inside, t = T on the terminal slice.
"""

from __future__ import annotations

import math
import numbers
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar

import torch

from papers_common import InputError
from pinn_linf.derivatives import Fields


@dataclass(frozen=True)
class HJBProblem(ABC):
    """A terminal-value HJB problem in ``dim`` spatial dimensions on [0, ``horizon``]."""

    name: ClassVar[str]
    dim: int
    horizon: float = 1.0

    def __post_init__(self) -> None:
        if isinstance(self.dim, bool) or not isinstance(self.dim, numbers.Integral) or self.dim < 1:
            raise InputError(f"{self.name}: the dimension must be a positive integer, got {self.dim!r}")
        if not (math.isfinite(self.horizon) and self.horizon > 0):
            raise InputError(f"{self.name}: the horizon T must be positive and finite, got {self.horizon}")

    @property
    def input_dim(self) -> int:
        """d + 1: the network sees [x, t]."""
        return self.dim + 1

    @abstractmethod
    def residual(self, fields: Fields) -> torch.Tensor:
        """``(B,)`` PDE residual r at the points where ``fields`` were taken (zero for the solution)."""

    @abstractmethod
    def terminal(self, x: torch.Tensor) -> torch.Tensor:
        """``(..., d) -> (...)`` terminal data g(x) = u(x, T); differentiable."""

    def exact(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """``(B,)`` u and ``(B, d)`` ∇_x u at ``z`` ``(B, d + 1)`` in closed form, or None when there is none."""
        return None

    def sample(
        self,
        count: int,
        generator: torch.Generator,
        *,
        terminal: bool = False,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
    ) -> torch.Tensor:
        """``(count, d + 1)`` points: x ~ N(0, I_d) with t ~ U(0, T), or t = T on the terminal slice."""
        x = torch.randn(count, self.dim, generator=generator, dtype=dtype, device=device)
        if terminal:
            t = torch.full((count, 1), self.horizon, dtype=dtype, device=device)
        else:
            t = self.horizon * torch.rand(count, 1, generator=generator, dtype=dtype, device=device)
        return torch.cat([x, t], dim=1)

    def describe(self) -> dict[str, Any]:
        """JSON-able parameters that identify the problem (inverse: :func:`problem_from_description`)."""
        return {"pde": self.name, **asdict(self)}


@dataclass(frozen=True)
class HJBLQG(HJBProblem):
    """u_t + Δu − μ abs(∇u)² = 0, u(x, T) = log((1 + abs(x)²)/2): the linear-quadratic-Gaussian control problem
    dX = 2√μ m ds + √2 dW with cost E[∫ abs(m)² ds + g(X_T)] (the official code's equation; paper: d = 100, 250)."""

    name: ClassVar[str] = "hjb-lqg"
    mu: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if not (math.isfinite(self.mu) and self.mu > 0):
            raise InputError(f"hjb-lqg: mu must be positive and finite, got {self.mu}")

    def residual(self, fields: Fields) -> torch.Tensor:
        return fields.dt + fields.laplacian - self.mu * fields.grad.square().sum(-1)

    def terminal(self, x: torch.Tensor) -> torch.Tensor:
        return torch.log((1 + x.square().sum(-1)) / 2)


@dataclass(frozen=True)
class HJBLin(HJBProblem):
    """u_t + Δu − (1/d) Σ_i abs(∂_i u)^c = −2, u(x, T) = Σ_i x_i, solved by u = Σ_i x_i + T − t for c in (1, 2]
    (the paper's family of HJB equations whose stability depends on c and d, §4)."""

    name: ClassVar[str] = "hjb-lin"
    c: float = 1.25

    def __post_init__(self) -> None:
        super().__post_init__()
        if not (math.isfinite(self.c) and 1 < self.c <= 2):
            raise InputError(f"hjb-lin: the exponent c must lie in (1, 2], got {self.c}")

    def residual(self, fields: Fields) -> torch.Tensor:
        hamiltonian = fields.grad.abs().pow(self.c).sum(-1) / self.dim
        return fields.dt + fields.laplacian - hamiltonian + 2

    def terminal(self, x: torch.Tensor) -> torch.Tensor:
        return x.sum(-1)

    def exact(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x, t = z[:, : self.dim], z[:, self.dim]
        return x.sum(-1) + self.horizon - t, torch.ones_like(x)


PROBLEMS: dict[str, type[HJBProblem]] = {cls.name: cls for cls in (HJBLQG, HJBLin)}


def make_problem(name: str, dim: int, /, **parameters: float) -> HJBProblem:
    """Build ``hjb-lqg`` (parameters ``mu``, ``horizon``) or ``hjb-lin`` (``c``, ``horizon``) by name."""
    if name not in PROBLEMS:
        raise InputError(f"unknown problem {name!r}; choose one of {', '.join(PROBLEMS)}")
    cls = PROBLEMS[name]
    allowed = {f.name for f in fields(cls) if f.name != "dim"}
    unknown = sorted(set(parameters) - allowed)
    if unknown:
        raise InputError(f"{name} takes {', '.join(sorted(allowed))}; unknown parameter(s) {unknown}")
    return cls(dim, **parameters)


def problem_from_description(description: dict[str, Any]) -> HJBProblem:
    """Rebuild the problem that :meth:`HJBProblem.describe` recorded (in a run config or a saved model)."""
    fields = dict(description)
    name = fields.pop("pde", None)
    if "dim" not in fields:
        raise InputError(f"a problem description needs 'pde' and 'dim', got {sorted(description)}")
    return make_problem(str(name), int(fields.pop("dim")), **fields)
