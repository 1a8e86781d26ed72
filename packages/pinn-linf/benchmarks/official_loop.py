"""The official anchor: the training iteration of LithiumDA/L_inf-PINN, imported from a checkout at run time.

Nothing of the official code is copied here. :func:`load` puts the checkout on ``sys.path`` and imports its
``src/hjb/train.py`` (``pgd``, the sign-gradient inner loop), ``src/hjb/equation.py`` (``HJBEquation``, whose
``domain_loss`` takes ∂_t u, Δu and ∇u by three separate calls of the wrapper), ``src/hjb/derivative_wrapper.py``
(``PinnWrapper``, with a Python loop of d ``torch.autograd.grad(create_graph=True)`` calls for the Laplacian),
``src/model.py`` (``MLP``) and ``src/utils/__init__.py`` (``build_lr``, the linear learning-rate decay).

``src/hjb/train.py`` imports ``src.utils.glob``, which imports ``torch.utils.tensorboard`` (TensorBoard is not
installed here) and holds the hydra config and logger; none of that is used by one iteration, so a stub module
with the two names train.py takes from it (``setup_logging``, ``config``) is placed in ``sys.modules`` before
the import. The loop body of :meth:`OfficialRun.step` is that of ``train()`` in ``src/hjb/train.py``
(zero_grad, ``pgd`` on both point sets, ``domain_loss`` + weight · ``boundary_loss``, backward, Adam step,
scheduler step); its per-iteration logging and the DDP / CUDA setup are left out. Points come from the caller
(x ~ N(0, I_d), t ~ U(0, T) or t = T, as the official ``HJBDataset``), so that both sides can see the same ones.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from papers_common import MLP, InputError

FILES = (
    "src/hjb/train.py",
    "src/hjb/equation.py",
    "src/hjb/derivative_wrapper.py",
    "src/model.py",
    "src/utils/__init__.py",
)


@dataclass(frozen=True)
class OfficialCode:
    """The official functions and classes this benchmark uses, and the commit they came from."""

    pgd: Any
    equation: type
    wrapper: type
    mlp: type
    build_lr: Any
    commit: str


def commit_of(checkout: Path) -> str:
    """``git rev-parse HEAD`` of the checkout, or ``unknown`` where it is not a git work tree."""
    done = subprocess.run(
        ["git", "-C", str(checkout), "rev-parse", "HEAD"], capture_output=True, text=True, check=False
    )
    return done.stdout.strip() if done.returncode == 0 else "unknown (not a git work tree)"


def checkout_root(checkout: str | Path) -> Path:
    """The resolved root of a LithiumDA/L_inf-PINN checkout; :class:`InputError` when it lacks the files used."""
    root = Path(checkout).resolve()
    missing = [name for name in FILES if not (root / name).is_file()]
    if missing:
        raise InputError(f"--official-dir {root}: not a LithiumDA/L_inf-PINN checkout, missing {missing}")
    return root


def load(checkout: str | Path) -> OfficialCode:
    """Import the official code from ``checkout`` (the repository's root, holding ``src/hjb/train.py``)."""
    root = checkout_root(checkout)
    glob = types.ModuleType("src.utils.glob")
    glob.setup_logging = lambda: logging.getLogger("official")  # type: ignore[attr-defined]
    glob.config = None  # type: ignore[attr-defined]
    sys.modules["src.utils.glob"] = glob
    sys.path.insert(0, str(root))
    from src.hjb.derivative_wrapper import PinnWrapper
    from src.hjb.equation import HJBEquation
    from src.hjb.train import pgd
    from src.model import MLP as OfficialMLP
    from src.utils import build_lr

    where = Path(sys.modules["src.hjb.train"].__file__ or "").resolve()
    if root not in where.parents:
        raise InputError(f"imported the official train.py from {where}, not from --official-dir {root}")
    return OfficialCode(pgd, HJBEquation, PinnWrapper, OfficialMLP, build_lr, commit_of(root))


def official_network(code: OfficialCode, ours: MLP) -> nn.Module:
    """The official ``MLP`` with the sizes and weights of ``ours`` (its ``depth`` counts the output layer:
    ``[d + 1] + [width] * (depth - 1) + [1]``)."""
    config = ours.config
    net = code.mlp([config.in_dim] + [config.width] * config.depth + [1])
    linears = [module for module in net.nn if isinstance(module, nn.Linear)]
    for theirs, mine in zip(linears, ours.layers, strict=True):
        theirs.load_state_dict(mine.state_dict())
    return net


class OfficialRun:
    """The official training state for d-dimensional HJB-LQG: wrapper, equation, Adam and linear decay.

    Args:
        net: the official ``MLP`` (see :func:`official_network`).
        iterations: the decay's length (the official ``cfg.train.iteration``).
        steps, step_size: K and η of ``pgd``; ``steps = 0`` is the official PINN (``*_is_adv = 0``).
        weights: the loss weights of the domain and the terminal slice (official: 1 and 20).
    """

    def __init__(
        self,
        code: OfficialCode,
        net: nn.Module,
        *,
        dim: int,
        horizon: float,
        mu: float,
        lr: float,
        iterations: int,
        steps: int,
        step_size: float,
        weights: tuple[float, float] = (1.0, 20.0),
    ) -> None:
        self.code, self.net = code, net
        self.wrapper = code.wrapper(net, dim)
        self.equation = code.equation(dim, horizon, mu)
        schedule = types.SimpleNamespace(
            lr=lr, scheduler=types.SimpleNamespace(name="linear", warm_up_steps=0)
        )
        self.optimizer, self.scheduler = code.build_lr(net, schedule, iterations)
        self.horizon, self.steps, self.step_size, self.weights = horizon, steps, step_size, weights

    def step(self, domain: torch.Tensor, terminal: torch.Tensor) -> float:
        """One official iteration on fresh ``domain`` ``(B_d, d + 1)`` and ``terminal`` ``(B_t, d + 1)`` points;
        returns the loss."""
        f, hjb, T = self.wrapper, self.equation, self.horizon
        f.train()
        self.optimizer.zero_grad()
        if self.steps:
            domain = self.code.pgd(
                domain,
                f,
                hjb.domain_loss,
                step_cnt=self.steps,
                step_size=self.step_size,
                t_lower_bound=0,
                t_upper_bound=T,
            )
            terminal = self.code.pgd(
                terminal,
                f,
                hjb.boundary_loss,
                step_cnt=self.steps,
                step_size=self.step_size,
                t_lower_bound=T,
                t_upper_bound=T,
            )
        loss = self.weights[0] * hjb.domain_loss(domain, f) + self.weights[1] * hjb.boundary_loss(terminal, f)
        loss.backward()
        self.optimizer.step()
        self.scheduler.step()
        return float(loss.detach())

    def laplacian(self, z: torch.Tensor) -> torch.Tensor:
        """``(B,)`` Δ_x u by the official d-loop (``PinnWrapper.dx2``), detached."""
        return self.wrapper.dx2(z.clone()).sum(1).detach()
