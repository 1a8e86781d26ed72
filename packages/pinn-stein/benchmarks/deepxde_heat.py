"""The DeepXDE anchor of the benchmark: the Heat PINN loss written the DeepXDE way, on its PyTorch backend.

The network is ``dde.nn.FNN([d + 1] + [width] * depth + [1], "tanh", "Glorot normal")`` and the residual
u_t − Σ_i ∂²u/∂x_i² comes from ``dde.grad.jacobian`` and d calls of ``dde.grad.hessian`` (one reverse pass with
``create_graph`` per diagonal entry, as a DeepXDE user writes a d-dimensional Laplacian). Points, loss weights
and optimiser are those of the benchmark's pinn_stein steps, so only the derivative code differs.

Importing this module imports DeepXDE (and raises ImportError where it is not installed).
"""

from __future__ import annotations

import os
from collections.abc import Callable

import torch

from pinn_stein import MLP, Heat, MLPConfig, Points, exact_derivatives, sample_batch

os.environ["DDE_BACKEND"] = "pytorch"  # read once, when deepxde is imported
import deepxde as dde

# DeepXDE makes CUDA the default device wherever it exists; this benchmark places every tensor itself.
torch.set_default_device(None)

VERSION: str = dde.__version__


def build(pde: Heat, width: int, depth: int, device: torch.device) -> torch.nn.Module:
    """DeepXDE's fully connected tanh network for the problem's ``d + 1`` inputs (time last)."""
    return dde.nn.FNN([pde.input_dim] + [width] * depth + [1], "tanh", "Glorot normal").to(device)


def heat_terms(net: torch.nn.Module, pde: Heat, points: Points) -> tuple[torch.Tensor, torch.Tensor]:
    """``(B,)`` ∂_t u and Δ_x u at domain points by ``dde.grad``; call ``dde.grad.clear()`` after each use."""
    assert points.t is not None
    inputs = torch.cat([points.x, points.t.unsqueeze(-1)], dim=-1).requires_grad_(True)
    u = net(inputs)
    dt = dde.grad.jacobian(u, inputs, i=0, j=pde.dim)
    laplacian = torch.zeros_like(u)
    for i in range(pde.dim):
        laplacian = laplacian + dde.grad.hessian(u, inputs, i=i, j=i)
    return dt.squeeze(-1), laplacian.squeeze(-1)


def physics_loss(net: torch.nn.Module, pde: Heat, batch: dict[str, Points]) -> torch.Tensor:
    """Σ_region w_region · mean(residual²): the heat residual inside, the misfit on the initial slice and sphere."""
    total = torch.zeros((), device=batch["domain"].x.device)
    for region, points in batch.items():
        if region == "domain":
            dt, laplacian = heat_terms(net, pde, points)
            residual = dt - laplacian
        else:
            assert points.t is not None
            inputs = torch.cat([points.x, points.t.unsqueeze(-1)], dim=-1)
            residual = net(inputs).squeeze(-1) - pde.target(region, points)
        total = total + pde.default_weights[region] * residual.square().mean()
    return total


def laplacian_check(
    pde: Heat, width: int, depth: int, device: torch.device, seed: int = 0
) -> dict[str, float]:
    """DeepXDE's ∂_t u and Δ_x u against ``exact_derivatives(how="loop")`` of a :class:`MLP` with the same weights.

    Returns the largest absolute differences over 50 domain points and the largest absolute Laplacian (the scale).
    """
    torch.manual_seed(seed)
    net = build(pde, width, depth, device)
    mlp = MLP(MLPConfig(pde.input_dim, width, depth)).to(device)
    mlp.layers.load_state_dict(net.linears.state_dict())  # both are ModuleLists of the same nn.Linear shapes
    generator = torch.Generator(device=device).manual_seed(seed)
    points = pde.sample("domain", pde.default_batch["domain"], generator, torch.empty(0, device=device))
    dt, laplacian = heat_terms(net, pde, points)
    dde.grad.clear()
    ours = exact_derivatives(mlp, points.x, points.t, how="loop")
    assert ours.dt is not None
    return {
        "laplacian_max_abs_diff": (laplacian - ours.laplacian).abs().max().item(),
        "laplacian_max_abs": ours.laplacian.abs().max().item(),
        "dt_max_abs_diff": (dt - ours.dt).abs().max().item(),
    }


def training_step(
    pde: Heat, *, width: int, depth: int, device: torch.device, seed: int = 0
) -> Callable[[], None]:
    """One DeepXDE training iteration per call (fresh points, loss, backward, Adam step), as the benchmark's
    pinn_stein steps: same batch, weights, optimiser and seeding, so only the derivative code differs."""
    torch.manual_seed(seed)
    net = build(pde, width, depth, device)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)
    generator = torch.Generator(device=device).manual_seed(seed)
    like = torch.empty(0, device=device)

    def step() -> None:
        batch = sample_batch(pde, pde.default_batch, generator, like)
        loss = physics_loss(net, pde, batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        dde.grad.clear()  # DeepXDE caches Jacobians and Hessians keyed by the tensors of this iteration

    return step
