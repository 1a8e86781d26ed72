"""Physics-informed losses: L2 (the standard PINN), L^p, and L∞ through adversarial points (paper §5).

With residual r inside and terminal error e = u − g on the slice t = T, each loss is
``domain_weight · N(r) + terminal_weight · N(e)`` with N per ``kind``:

- ``l2``: mean(r²), the squared L2 norm over the batch (the usual PINN loss);
- ``lp``: (mean abs(r)^p)^(2/p), the squared L^p norm: equal to ``l2`` at p = 2 and tending to max r² as
  p → ∞ (Theorem 4.3 asks for p growing linearly with d); squared so that its scale matches ``l2``;
- ``adversarial``: mean(r²) at points first moved by :func:`~pinn_linf.adversarial.sign_ascent` toward the
  largest residual, each region separately: the official code's approximation of the L∞ loss.

Defaults are the official configuration: weights 1 (domain) and 20 (terminal), K = 20, η = 0.05.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal, get_args

import torch
from torch import nn

from papers_common import InputError
from pinn_linf.adversarial import Ascent, sign_ascent
from pinn_linf.derivatives import Method, fields, values
from pinn_linf.problems import HJBProblem

Kind = Literal["l2", "lp", "adversarial"]
KINDS: tuple[str, ...] = get_args(Kind)


@dataclass(frozen=True)
class LossConfig:
    """Which loss, its parameters and the weights of the two regions."""

    kind: Kind = "adversarial"
    p: float = 4.0
    ascent: Ascent = field(default_factory=Ascent)
    domain_weight: float = 1.0
    terminal_weight: float = 20.0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InputError(f"unknown loss {self.kind!r}; choose one of {', '.join(KINDS)}")
        if not (math.isfinite(self.p) and self.p >= 1):
            raise InputError(f"the L^p loss needs a finite p >= 1, got p={self.p}")
        for name in ("domain_weight", "terminal_weight"):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) >= 0):
                raise InputError(f"{name} must be non-negative and finite, got {getattr(self, name)}")


@dataclass
class LossTerms:
    """The scalar terms of one evaluation: ``total`` = weighted ``domain`` + ``terminal``."""

    domain: torch.Tensor
    terminal: torch.Tensor
    total: torch.Tensor


def squared_norm(residual: torch.Tensor, kind: Kind, p: float = 4.0) -> torch.Tensor:
    """N(r) of the module docstring for a ``(B,)`` residual: mean(r²) or (mean abs(r)^p)^(2/p)."""
    if kind == "lp":
        scale = residual.detach().abs().max().clamp_min(torch.finfo(residual.dtype).tiny)
        # factor out the largest value so that abs(r)^p neither overflows nor underflows at large p
        power_mean = (residual / scale).abs().pow(p).mean().clamp_min(torch.finfo(residual.dtype).tiny)
        return scale.square() * power_mean.pow(2 / p)  # the clamp keeps the gradient finite at r = 0
    return residual.square().mean()


def domain_residual(
    net: nn.Module, problem: HJBProblem, z: torch.Tensor, method: Method | None = None
) -> torch.Tensor:
    """``(B,)`` PDE residual of ``net`` at ``z`` ``(B, d + 1)``."""
    return problem.residual(fields(net, z, problem.dim, method))


def terminal_error(net: nn.Module, problem: HJBProblem, z: torch.Tensor) -> torch.Tensor:
    """``(B,)`` u(x, T) − g(x) at terminal points ``z``."""
    return values(net, z) - problem.terminal(z[:, : problem.dim])


def adversarial_batch(
    net: nn.Module,
    problem: HJBProblem,
    domain: torch.Tensor,
    terminal: torch.Tensor,
    ascent: Ascent,
    method: Method | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Both point sets moved toward their largest residual (K sign steps each; t clamped to [0, T] or to T)."""
    T = problem.horizon
    domain = sign_ascent(
        domain, lambda z: domain_residual(net, problem, z, method).square().sum(), ascent, t_range=(0.0, T)
    )
    terminal = sign_ascent(
        terminal, lambda z: terminal_error(net, problem, z).square().sum(), ascent, t_range=(T, T)
    )
    return domain, terminal


def physics_loss(
    net: nn.Module,
    problem: HJBProblem,
    domain: torch.Tensor,
    terminal: torch.Tensor,
    config: LossConfig,
    method: Method | None = None,
) -> LossTerms:
    """The loss of ``config`` on fresh points ``domain`` ``(B_d, d + 1)`` and ``terminal`` ``(B_t, d + 1)``.

    For ``adversarial`` the points are first moved by :func:`adversarial_batch`; the returned terms are then the
    L2 terms at the moved points (what the optimiser step minimises).
    """
    if config.kind == "adversarial" and config.ascent.steps > 0:
        domain, terminal = adversarial_batch(net, problem, domain, terminal, config.ascent, method)
    norm_kind: Kind = "lp" if config.kind == "lp" else "l2"
    dloss = squared_norm(domain_residual(net, problem, domain, method), norm_kind, config.p)
    tloss = squared_norm(terminal_error(net, problem, terminal), norm_kind, config.p)
    return LossTerms(dloss, tloss, config.domain_weight * dloss + config.terminal_weight * tloss)
