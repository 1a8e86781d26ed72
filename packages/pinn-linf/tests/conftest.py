"""Fixtures shared by the pinn-linf tests: seeded generators, small float64 MLPs and networks whose derivatives
are known in closed form (the HJB-Lin solution, a quadratic)."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
import torch
from torch import nn

from papers_common import MLP, MLPConfig

os.environ.setdefault("HF_HUB_OFFLINE", "1")

# Every tensor in these tests is tiny: extra intra-op threads only add synchronisation, which dominates when other
# processes occupy the cores.
torch.set_num_threads(1)

F64 = torch.float64


@pytest.fixture(autouse=True)
def reference_cache(tmp_path_factory, monkeypatch):
    """Point the test-set cache at a temporary folder so that no test writes to the home directory."""
    folder = tmp_path_factory.mktemp("pinn-linf-cache")
    monkeypatch.setenv("PINN_LINF_CACHE", str(folder))
    return folder


def mlp(in_dim: int, width: int = 16, depth: int = 2, *, seed: int = 0, dtype: torch.dtype = F64) -> MLP:
    """A reproducibly initialised tanh MLP."""
    torch.manual_seed(seed)
    return MLP(MLPConfig(in_dim, width, depth)).to(dtype)


@pytest.fixture
def make_mlp() -> Callable[..., MLP]:
    """``make_mlp(in_dim, width=16, depth=2, seed=0, dtype=float64)``."""
    return mlp


class LinSolution(nn.Module):
    """u(x, t) = Σ_i x_i + T − t (the HJB-Lin solution) plus ``shift · t`` and ``bump · x_0²``; returns ``(n,)``.

    ``shift`` is a parameter, so that the module has a dtype and losses built on it can be differentiated in it.
    With shift s and bump b: u_t = s − 1, ∇u = 1 + 2b x_0 e_0, Δu = 2b.
    """

    def __init__(self, dim: int, horizon: float = 1.0, shift: float = 0.0, bump: float = 0.0) -> None:
        super().__init__()
        self.dim = dim
        self.horizon = horizon
        self.bump = bump
        self.shift = nn.Parameter(torch.tensor(shift, dtype=F64))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x, t = z[:, : self.dim], z[:, self.dim]
        return x.sum(1) + self.horizon - t + self.shift * t + self.bump * x[:, 0].square()


class Quadratic(nn.Module):
    """u(x, t) = a abs(x)² + b t + c; returns ``(n, 1)``. u_t = b, ∇u = 2a x, Δu = 2a d."""

    def __init__(self, dim: int, a: float, b: float, c: float = 0.0) -> None:
        super().__init__()
        self.dim = dim
        self.a = nn.Parameter(torch.tensor(a, dtype=F64))
        self.b = b
        self.c = c

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x, t = z[:, : self.dim], z[:, self.dim]
        return (self.a * x.square().sum(1) + self.b * t + self.c).unsqueeze(-1)


@pytest.fixture
def lin_solution() -> type[LinSolution]:
    return LinSolution


@pytest.fixture
def quadratic() -> type[Quadratic]:
    return Quadratic
