"""The tanh multilayer perceptron of physics-informed networks, with its exact forward Laplacian.

The PINN packages (pinn-stein, pinn-linf) train the same network as their papers' code: ``[in_dim] + [width] *
depth + [1]`` linear layers with tanh between them, PyTorch's default initialisation, time as the last input.
Besides the ordinary forward pass, :meth:`MLP.forward_laplacian` propagates values, input Jacobians and
Laplacians through the layers together (the "forward Laplacian" of Li et al., 2023): the exact Laplacian in one
forward pass whose cost grows like d·width² per point, with no second-order backward graph. Everything it
returns is an ordinary differentiable tensor, so losses built from it can be differentiated again, in the
parameters or in the inputs.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch
from torch import nn

from papers_common.errors import InputError
from papers_common.pretrained import Pretrained


@dataclass(frozen=True)
class MLPConfig:
    """Layer sizes of ``[in_dim] + [width] * depth + [1]`` with tanh between linear layers.

    ``in_dim`` is d for time-independent problems and d + 1 (time last) otherwise. pinn-stein's Heat-100 network
    is ``MLPConfig(101, 256, 3)``, pinn-stein's HJB-250 network ``MLPConfig(251, 768, 3)`` and the L∞-PINN
    paper's HJB-100 network ``MLPConfig(101, 4096, 3)``.
    """

    in_dim: int
    width: int = 256
    depth: int = 3

    def __post_init__(self) -> None:
        for name in ("in_dim", "width", "depth"):
            if getattr(self, name) < 1:
                raise InputError(f"MLPConfig.{name} must be at least 1, got {getattr(self, name)}")


class MLP(nn.Module, Pretrained):
    """tanh MLP ``(n, in_dim) -> (n, 1)``, PyTorch's default (uniform fan-in) initialisation, as the papers' code.

    ``save_pretrained`` / ``from_pretrained`` (from :class:`papers_common.Pretrained`) store the config under
    ``"network"``, as the PINN packages' training checkpoints do.
    """

    config_class = MLPConfig
    config_key = "network"

    def __init__(self, config: MLPConfig) -> None:
        super().__init__()
        self.config = config
        sizes = [config.in_dim] + [config.width] * config.depth + [1]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(sizes))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """``(n, in_dim) -> (n, 1)``."""
        for layer in self.layers[:-1]:
            z = torch.tanh(layer(z))
        return self.layers[-1](z)

    def forward_laplacian(
        self, z: torch.Tensor, laplace_dims: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Value, input gradient and Laplacian over the first ``laplace_dims`` inputs, exactly, in one pass.

        Each hidden quantity h carries (h, J = ∂h/∂z, L = Σ_{i<k} ∂²h/∂z_i²). A linear layer maps them by W;
        tanh maps them by a = tanh(h): J ← a'·J, L ← a'·L + a''·Σ_{i<k} J_i² with a' = 1 − a², a'' = −2a·a'.
        J is kept as ``(n, in_dim, units)`` so that each layer is one matrix product over n·in_dim rows.

        Args:
            z: ``(n, in_dim)`` inputs.
            laplace_dims: k, the number of leading (spatial) inputs the Laplacian sums over.

        Returns:
            ``(n,)`` values, ``(n, in_dim)`` gradients, ``(n,)`` Laplacians; all differentiable in θ and in z.
        """
        value, jac, lap = z, None, None  # jac: (n or 1, in_dim, units), lap: (n, units) after the first layer
        for index, layer in enumerate(self.layers):
            value = layer(value)
            if jac is None:  # the first layer's Jacobian is its weight, the same at every point
                jac = layer.weight.T.unsqueeze(0)
            else:  # one matrix product over all (point, input) rows
                jac = jac @ layer.weight.T
                lap = lap @ layer.weight.T
            if index < len(self.layers) - 1:
                value = torch.tanh(value)
                slope = 1 - value.square()
                curvature = -2 * value * slope * jac[:, :laplace_dims].square().sum(1)
                lap = curvature if lap is None else slope * lap + curvature
                jac = slope.unsqueeze(1) * jac
        jac = jac.expand(value.shape[0], -1, -1)
        return value.squeeze(-1), jac.squeeze(-1), lap.squeeze(-1)
