"""Fixtures shared by the pinn-stein tests: scalar fields whose Gaussian smoothing has closed-form derivatives."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn

from pinn_stein import MLP, PDE, MLPConfig, Points

# Every tensor in these tests is tiny: extra intra-op threads only add synchronisation, which dominates (by orders
# of magnitude) when other processes occupy the cores.
torch.set_num_threads(1)

F64 = torch.float64


class Quadratic(nn.Module):
    """g(z) = z^T A z / 2 + b^T z + c with A symmetric; returns ``(n,)``.

    Its smoothing by N(0, diag(s^2)) is g + tr(A diag(s^2)) / 2, so every derivative of the smoothed field equals the
    derivative of g: gradient A z + b, spatial Laplacian sum_{i<d} A_ii.
    """

    def __init__(self, a: torch.Tensor, b: torch.Tensor, c: float) -> None:
        super().__init__()
        self.register_buffer("a", (a + a.T) / 2)
        self.register_buffer("b", b)
        self.c = c

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return 0.5 * torch.einsum("ni,ij,nj->n", z, self.a, z) + z @ self.b + self.c

    def smoothed(self, z: torch.Tensor, scales: torch.Tensor) -> dict[str, torch.Tensor]:
        """Closed-form value and full input gradient of the smoothed field (see :meth:`laplacian` for the rest)."""
        value = self(z) + 0.5 * (self.a.diagonal() * scales.square()).sum()
        return {"u": value, "gradient": z @ self.a + self.b}

    def laplacian(self, dim: int) -> float:
        return float(self.a.diagonal()[:dim].sum())


class SineWave(nn.Module):
    """g(z) = sin(w^T z); returns ``(n, 1)``.

    Smoothed: f = sin(w^T z) e with e = exp(-sum_j s_j^2 w_j^2 / 2), so grad f = w cos(w^T z) e and
    Laplacian_x f = -|w_x|^2 f.
    """

    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("w", w)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sin(z @ self.w).unsqueeze(-1)

    def smoothed(self, z: torch.Tensor, scales: torch.Tensor) -> dict[str, torch.Tensor]:
        damping = torch.exp(-0.5 * (scales.square() * self.w.square()).sum())
        phase = z @ self.w
        return {
            "u": torch.sin(phase) * damping,
            "gradient": torch.cos(phase).unsqueeze(-1) * self.w * damping,
        }

    def laplacian_factor(self, dim: int) -> float:
        """Laplacian_x f = -|w_x|^2 f."""
        return -float(self.w[:dim].square().sum())


class ExactSolution(nn.Module):
    """The network ``[x, t] -> pde.exact(Points(x, t))`` (times ``scale``, plus ``shift * t``), differentiable."""

    def __init__(self, pde: PDE, scale: float = 1.0, shift: float = 0.0) -> None:
        super().__init__()
        self.pde = pde
        self.scale = scale
        self.shift = shift

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if self.pde.timed:
            x, t = z[:, :-1], z[:, -1]
            return self.scale * self.pde.exact(Points(x, t)) + self.shift * t
        return self.scale * self.pde.exact(Points(z, None))


class Opaque(nn.Module):
    """A network behind a plain ``forward``: the estimators cannot split off its first layer and evaluate it on
    the stacked shifted inputs in one call, as they would any unknown module."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.inner(z)


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture
def make_mlp() -> Callable[..., MLP]:
    """``make_mlp(in_dim, width, depth, seed=0, dtype=float64)``: a reproducibly initialised tanh MLP."""

    def make(in_dim: int, width: int = 16, depth: int = 2, *, seed: int = 0, dtype: torch.dtype = F64) -> MLP:
        torch.manual_seed(seed)
        return MLP(MLPConfig(in_dim, width, depth)).to(dtype)

    return make


@pytest.fixture
def quadratic() -> Callable[[int, int], Quadratic]:
    """``quadratic(inputs, seed)``: a float64 quadratic with a random symmetric A and random b, c."""

    def make(inputs: int, seed: int = 0) -> Quadratic:
        gen = seeded(seed)
        a = torch.randn(inputs, inputs, generator=gen, dtype=F64)
        b = torch.randn(inputs, generator=gen, dtype=F64)
        return Quadratic(a, b, 0.3)

    return make


@pytest.fixture
def sine() -> Callable[[torch.Tensor], SineWave]:
    return SineWave


@pytest.fixture
def exact_network() -> Callable[..., ExactSolution]:
    return ExactSolution


@pytest.fixture
def opaque() -> Callable[[nn.Module], Opaque]:
    """``opaque(g)``: the same network, its structure hidden from :func:`pinn_stein.smoothing.first_layer_split`."""
    return Opaque
