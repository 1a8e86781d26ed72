"""The DeepXDE anchor of the benchmark: the HJB-LQG PINN written the DeepXDE way, on its PyTorch backend.

The network is ``dde.nn.FNN([d + 1] + [width] * depth + [1], "tanh", ...)`` and the residual
u_t + Δu − μ abs(∇u)² comes from ``dde.grad.jacobian`` and d calls of ``dde.grad.hessian`` (one reverse pass with
``create_graph`` per diagonal entry: how a DeepXDE user writes a d-dimensional Laplacian), in a
``pde(x, y)`` function of DeepXDE's signature.

DeepXDE's ``Model`` / ``dde.data.TimePDE`` API cannot express this problem: its geometries are bounded (a box,
a sphere, a time interval) and are sampled uniformly or quasi-randomly inside, while the paper trains on
x ~ N(0, I_d) over all of R^d with t ~ U(0, T). The training loop is therefore written by hand around DeepXDE's
network and ``dde.grad``, with DeepXDE's two sampling strategies carried over to that distribution:

- resampling (``rar=None``): ``dde.callbacks.PDEPointResampler(period=1)``, fresh domain and terminal points
  every iteration;
- :class:`RAR`: residual-based adaptive refinement (Lu et al., SIAM Review 2021, §2.8; DeepXDE's
  ``Burgers_RAR.py``).
  Every ``period`` iterations the PDE residual is evaluated on ``candidates`` fresh points (``model.predict(X,
  operator=pde)`` there) and the ``added`` points of largest abs(r) join the anchors (``data.add_anchors``).
  DeepXDE trains on its whole, growing point set; to keep the batch equal to ours, the newest ``anchors`` of them
  replace that many fresh points in each domain batch. Terminal points are resampled (RAR refines the PDE
  residual only).

Optimiser and schedule are ours (Adam, the learning rate decaying linearly to 0 over the time budget; DeepXDE's
schedules count iterations), and the network starts from our initial weights (:func:`copy_weights`), so that
derivative code and point selection are what differs.

Importing this module imports DeepXDE (and raises ImportError where it is not installed).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from papers_common import MLP, progress
from pinn_linf import HJBLQG, fields

os.environ["DDE_BACKEND"] = "pytorch"  # read once, when deepxde is imported
import deepxde as dde

# DeepXDE makes CUDA the default device wherever it exists; this benchmark places every tensor itself.
torch.set_default_device(None)


@dataclass(frozen=True)
class RAR:
    """Residual-based adaptive refinement: every ``period`` iterations the ``added`` largest-residual points among
    ``candidates`` fresh ones join the anchors; the newest ``anchors`` of them enter every domain batch."""

    period: int = 25
    candidates: int = 512
    added: int = 4
    anchors: int = 16


@dataclass
class DeepXDERun:
    """What a time-budgeted DeepXDE run did: iterations, training seconds and RAR rounds."""

    iterations: int
    seconds: float
    rar_rounds: int


def build(problem: HJBLQG, width: int, depth: int) -> torch.nn.Module:
    """DeepXDE's fully connected tanh network ``(n, d + 1) -> (n, 1)`` (time last; the benchmark replaces its
    Glorot initialisation by :func:`copy_weights`)."""
    return dde.nn.FNN([problem.input_dim] + [width] * depth + [1], "tanh", "Glorot normal")


def copy_weights(source: MLP, net: torch.nn.Module) -> None:
    """Give DeepXDE's FNN the weights of a :class:`papers_common.MLP` of the same sizes (both hold a ModuleList
    of the same ``nn.Linear`` shapes), so that both start from the same initialisation."""
    net.linears.load_state_dict(source.layers.state_dict())


def laplacian(y: torch.Tensor, x: torch.Tensor, dim: int) -> torch.Tensor:
    """``(B, 1)`` Σ_{i<d} ∂²y/∂x_i² by d calls of ``dde.grad.hessian`` (outputs ``y`` ``(B, 1)``, inputs ``x``)."""
    total = dde.grad.hessian(y, x, i=0, j=0)
    for i in range(1, dim):
        total = total + dde.grad.hessian(y, x, i=i, j=i)
    return total


def pde_operator(problem: HJBLQG) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """DeepXDE's ``pde(x, y)``: ``(B, 1)`` residual u_t + Δu − μ abs(∇u)² of outputs ``y`` at inputs ``x``."""
    d = problem.dim

    def pde(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        du = dde.grad.jacobian(y, x, i=0)  # (B, d + 1): ∇_x u and u_t
        return du[:, d:] + laplacian(y, x, d) - problem.mu * du[:, :d].square().sum(-1, keepdim=True)

    return pde


def derivatives(net: torch.nn.Module, problem: HJBLQG, z: torch.Tensor) -> dict[str, torch.Tensor]:
    """``(B,)`` u, ``(B, d)`` ∇_x u, ``(B,)`` u_t and Δ_x u of ``net`` at ``z`` ``(B, d + 1)`` by ``dde.grad``."""
    d = problem.dim
    x = z.detach().clone().requires_grad_(True)
    y = net(x)
    du = dde.grad.jacobian(y, x, i=0)
    found = {"u": y[:, 0], "grad": du[:, :d], "dt": du[:, d], "laplacian": laplacian(y, x, d)[:, 0]}
    dde.grad.clear()
    return {k: v.detach() for k, v in found.items()}


def laplacian_check(problem: HJBLQG, mlp: MLP, net: torch.nn.Module, z: torch.Tensor) -> dict[str, float]:
    """DeepXDE's derivatives of ``net`` against ``pinn_linf.fields(mlp, method="forward")`` at ``z`` ``(B, d + 1)``;
    ``net`` must hold ``mlp``'s weights. Returns the largest absolute differences and the largest abs(Δu)."""
    theirs = derivatives(net, problem, z)
    ours = fields(mlp, z, problem.dim, method="forward")
    return {
        "laplacian_max_abs_diff": (theirs["laplacian"] - ours.laplacian).abs().max().item(),
        "laplacian_max_abs": ours.laplacian.abs().max().item(),
        "grad_max_abs_diff": (theirs["grad"] - ours.grad).abs().max().item(),
        "dt_max_abs_diff": (theirs["dt"] - ours.dt).abs().max().item(),
    }


def physics_loss(
    net: torch.nn.Module,
    problem: HJBLQG,
    domain: torch.Tensor,
    terminal: torch.Tensor,
    weights: tuple[float, float] = (1.0, 20.0),
) -> torch.Tensor:
    """w_d · mean(r²) at ``domain`` ``(B_d, d + 1)`` + w_T · mean((u − g)²) at ``terminal`` ``(B_t, d + 1)``.

    Call ``dde.grad.clear()`` after the backward pass (DeepXDE caches derivatives keyed by these tensors).
    """
    x = domain.detach().requires_grad_(True)
    residual = pde_operator(problem)(x, net(x))
    misfit = net(terminal).squeeze(-1) - problem.terminal(terminal[:, : problem.dim])
    return weights[0] * residual.square().mean() + weights[1] * misfit.square().mean()


def l2_step(
    net: torch.nn.Module,
    problem: HJBLQG,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    batch: tuple[int, int],
) -> Callable[[], None]:
    """One plain L2 training iteration (fresh points, loss, backward, Adam step) as a closure, for timing."""

    def step() -> None:
        domain = problem.sample(batch[0], generator)
        terminal = problem.sample(batch[1], generator, terminal=True)
        loss = physics_loss(net, problem, domain, terminal)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        dde.grad.clear()

    return step


def largest_residuals(
    net: torch.nn.Module, problem: HJBLQG, candidates: torch.Tensor, count: int
) -> torch.Tensor:
    """The ``count`` rows of ``candidates`` ``(S, d + 1)`` with the largest abs(r) (RAR's refinement step)."""
    x = candidates.detach().clone().requires_grad_(True)
    residual = pde_operator(problem)(x, net(x)).detach().abs().squeeze(-1)
    dde.grad.clear()
    return candidates[residual.topk(count).indices]


def train(
    net: torch.nn.Module,
    problem: HJBLQG,
    *,
    seconds: float,
    lr: float,
    batch: tuple[int, int],
    rar: RAR | None,
    seed: int = 0,
) -> DeepXDERun:
    """Train ``net`` for ``seconds`` of wall-clock time (the equal-time comparison), the learning rate decaying
    linearly to 0 over the budget, on fresh points every iteration, with ``rar`` refinement unless None (module
    docstring). RAR's residual evaluations count toward the budget."""
    if rar is not None and not 0 < rar.anchors < batch[0]:
        raise ValueError(f"RAR needs 0 < anchors < domain batch, got {rar.anchors} and {batch[0]}")
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    anchors = torch.empty(0, problem.input_dim)
    elapsed, step, rounds = 0.0, 0, 0
    bar = progress(total=None, desc="deepxde " + ("rar" if rar else "resample"), unit="it")
    while elapsed < seconds:
        tick = time.perf_counter()
        if rar is not None and step > 0 and step % rar.period == 0:
            found = largest_residuals(net, problem, problem.sample(rar.candidates, generator), rar.added)
            anchors = torch.cat([anchors, found])[-rar.anchors :]
            rounds += 1
        for group in optimizer.param_groups:
            group["lr"] = lr * (1.0 - elapsed / seconds)
        domain = torch.cat([anchors, problem.sample(batch[0] - anchors.shape[0], generator)])
        terminal = problem.sample(batch[1], generator, terminal=True)
        loss = physics_loss(net, problem, domain, terminal)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        dde.grad.clear()
        elapsed += time.perf_counter() - tick
        step += 1
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.3g}", refresh=False)
    bar.close()
    return DeepXDERun(step, elapsed, rounds)
