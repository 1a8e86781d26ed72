"""The solution network g_θ: a tanh multilayer perceptron, as in the paper's code, rebuilt from its JSON config.

Besides the ordinary forward pass, :meth:`MLP.forward_laplacian` propagates values, input Jacobians and
Laplacians through the layers together (the "forward Laplacian" of Li et al., 2023): the exact Laplacian of g in
one forward pass whose cost grows like d·width² per point, with no second-order backward graph. It is the fastest
exact method this package offers and the fair exact baseline against which Stein estimators are timed.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch
from torch import nn

from papers_common import InputError, Pretrained


@dataclass(frozen=True)
class MLPConfig:
    """Layer sizes of ``[in_dim] + [width] * depth + [1]`` with tanh between linear layers.

    ``in_dim`` is d for time-independent problems and d + 1 (time last) otherwise. The paper's Heat-100 network
    is ``MLPConfig(101, 256, 3)`` and its HJB-250 network ``MLPConfig(251, 768, 3)``.
    """

    in_dim: int
    width: int = 256
    depth: int = 3

    def __post_init__(self) -> None:
        for name in ("in_dim", "width", "depth"):
            if getattr(self, name) < 1:
                raise InputError(f"MLPConfig.{name} must be at least 1, got {getattr(self, name)}")


class MLP(nn.Module, Pretrained):
    """tanh MLP ``(n, in_dim) -> (n, 1)``, PyTorch's default (uniform fan-in) initialisation, as the paper's code.

    ``save_pretrained`` / ``from_pretrained`` (from :class:`papers_common.Pretrained`) store the config under
    ``"network"``, as training checkpoints do.
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

        Args:
            z: ``(n, in_dim)`` inputs.
            laplace_dims: k, the number of leading (spatial) inputs the Laplacian sums over.

        Returns:
            ``(n,)`` values, ``(n, in_dim)`` gradients, ``(n,)`` Laplacians; all differentiable in θ.
        """
        n, inputs = z.shape
        value = z
        jac = torch.eye(inputs, dtype=z.dtype, device=z.device).expand(
            n, inputs, inputs
        )  # (n, units, inputs)
        lap = z.new_zeros(n, inputs)
        for index, layer in enumerate(self.layers):
            value = layer(value)
            jac = torch.matmul(layer.weight, jac)
            lap = lap @ layer.weight.T
            if index < len(self.layers) - 1:
                value = torch.tanh(value)
                slope = 1 - value.square()
                curvature = -2 * value * slope
                lap = slope * lap + curvature * jac[..., :laplace_dims].square().sum(-1)
                jac = slope.unsqueeze(-1) * jac
        return value.squeeze(-1), jac.squeeze(1), lap.squeeze(-1)
