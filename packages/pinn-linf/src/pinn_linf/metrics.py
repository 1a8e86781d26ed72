"""Errors against a reference and the largest residual, as the paper reports them (§5, official ``train.py``).

On a test set with values u* and gradients ∇u*:

- relative L1 = Σ abs(u − u*) / Σ abs(u*);
- relative L2 = √Σ (u − u*)² / √Σ u*²;
- relative W^{1,1} = Σ (abs(u − u*) + ‖∇u − ∇u*‖₁) / Σ (abs(u*) + ‖∇u*‖₁), on the concatenation [u, ∇_x u].

On a probe set, the largest PDE residual max abs(r) and the largest terminal misfit max abs(u(x, T) − g(x)) are
the two parts of the L∞ residual; ``linf_loss`` = w_d · max r² + w_t · max e² is the quantity the adversarial
loss approximates (the training loss with the mean over moved points replaced by the maximum, same weights).
"""

from __future__ import annotations

import torch
from torch import nn

from papers_common import InputError, TestSet
from pinn_linf.derivatives import Method, values
from pinn_linf.losses import domain_residual, terminal_error
from pinn_linf.problems import HJBProblem


def _like(net: nn.Module) -> torch.Tensor:
    for parameter in net.parameters():
        return parameter
    raise InputError(f"{type(net).__name__} has no parameters to take a device and dtype from")


def test_inputs(test: TestSet, like: torch.Tensor) -> torch.Tensor:
    """The test set's points as network inputs ``(B, d + 1)`` on ``like``'s device and dtype."""
    if test.t is None:
        raise InputError("an HJB test set needs times t; this one has none")
    return torch.cat([test.x, test.t.unsqueeze(1)], dim=1).to(like)


def relative_errors(
    net: nn.Module, problem: HJBProblem, test: TestSet, *, batch: int = 1000
) -> dict[str, float]:
    """``rel_l1``, ``rel_l2`` and, when the test set has gradients, ``rel_w11`` of ``net`` on ``test``.

    Args:
        batch: points per forward pass (the official code tests in batches of 1000).
    """
    if test.x.shape[1] != problem.dim:
        raise InputError(f"the test set has dimension {test.x.shape[1]}, the problem {problem.dim}")
    like = _like(net)
    inputs = test_inputs(test, like)
    errors = {"l1": 0.0, "l1_norm": 0.0, "l2": 0.0, "l2_norm": 0.0, "w11": 0.0, "w11_norm": 0.0}
    u_star = test.u.to(torch.float64)
    g_star = None if test.grad is None else test.grad.to(torch.float64)
    for start in range(0, inputs.shape[0], batch):
        z = inputs[start : start + batch]
        ref = u_star[start : start + batch]
        if g_star is None:
            with torch.no_grad():
                u = values(net, z).double()
        else:
            leaf = z.clone().requires_grad_(True)
            with torch.enable_grad():
                u_t = values(net, leaf)
                (grad,) = torch.autograd.grad(u_t.sum(), leaf)
            u = u_t.detach().double()
            ref_grad = g_star[start : start + batch]
            grad_error = (grad[:, : problem.dim].double() - ref_grad).abs().sum(-1)
            errors["w11"] += float(((u - ref).abs() + grad_error).sum())
            errors["w11_norm"] += float((ref.abs() + ref_grad.abs().sum(-1)).sum())
        errors["l1"] += float((u - ref).abs().sum())
        errors["l1_norm"] += float(ref.abs().sum())
        errors["l2"] += float((u - ref).square().sum())
        errors["l2_norm"] += float(ref.square().sum())
    result = {
        "rel_l1": errors["l1"] / errors["l1_norm"],
        "rel_l2": (errors["l2"] / errors["l2_norm"]) ** 0.5,
    }
    if g_star is not None:
        result["rel_w11"] = errors["w11"] / errors["w11_norm"]
    return result


def max_residual(
    net: nn.Module,
    problem: HJBProblem,
    probe: torch.Tensor,
    *,
    batch: int = 1000,
    method: Method | None = None,
    weights: tuple[float, float] = (1.0, 20.0),
) -> dict[str, float]:
    """The largest residuals of ``net`` over probe points ``(P, d + 1)`` [x, t].

    The PDE residual is taken at each point, the terminal misfit u(x, T) − g(x) at each point's x.

    Args:
        weights: (w_d, w_t) of ``linf_loss``; the default is the official loss weights (1, 20).

    Returns:
        ``max_residual`` and ``mean_abs_residual`` (PDE), ``max_terminal_error`` and
        ``mean_abs_terminal_error``, and ``linf_loss`` = w_d · max_residual² + w_t · max_terminal_error².
    """
    if probe.dim() != 2 or probe.shape[0] == 0:
        raise InputError(
            f"the probe set must be a non-empty (points, d + 1) tensor, got shape {tuple(probe.shape)}"
        )
    like = _like(net)
    maxima: dict[str, list[torch.Tensor]] = {"residual": [], "terminal": []}
    totals = {"residual": 0.0, "terminal": 0.0}
    for start in range(0, probe.shape[0], batch):
        z = probe[start : start + batch].to(like)
        terminal = torch.cat([z[:, :-1], torch.full_like(z[:, -1:], problem.horizon)], dim=1)
        with torch.enable_grad():
            r = domain_residual(net, problem, z, method).detach().abs()
        with torch.no_grad():
            e = terminal_error(net, problem, terminal).abs()
        for name, part in (("residual", r), ("terminal", e)):
            maxima[name].append(part.max())
            totals[name] += float(part.double().sum())
    largest = {name: float(torch.stack(m).max()) for name, m in maxima.items()}  # torch's max propagates NaN
    domain_weight, terminal_weight = weights
    return {
        "max_residual": largest["residual"],
        "mean_abs_residual": totals["residual"] / probe.shape[0],
        "max_terminal_error": largest["terminal"],
        "mean_abs_terminal_error": totals["terminal"] / probe.shape[0],
        "linf_loss": domain_weight * largest["residual"] ** 2 + terminal_weight * largest["terminal"] ** 2,
    }
