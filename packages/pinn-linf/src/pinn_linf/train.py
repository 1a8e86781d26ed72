"""Training: fresh collocation points each iteration, the chosen loss, Adam with the learning rate decaying
linearly to zero (the official schedule), evaluation on a fixed test set, metrics JSONL, checkpoints and resume.

In the equal wall-clock mode (``time_budget`` seconds) the decay follows the training time instead of the
iteration count and training stops when the budget is spent, so that methods whose iterations cost different
amounts are compared at the same cost. Time spent evaluating is not counted.

A non-finite loss or gradient stops training with :class:`TrainingDiverged` naming the term that blew up; no
update has used it, and the parameters at that moment (the last good ones) are checkpointed first.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from papers_common import MLP, InputError, RunDir, TestSet, progress, resume_run, save_checkpoint
from pinn_linf.derivatives import METHODS, Method, default_method
from pinn_linf.losses import LossConfig, physics_loss
from pinn_linf.metrics import max_residual, relative_errors
from pinn_linf.problems import HJBProblem
from pinn_linf.solution import MODEL_DIR, save_solution

LOG = logging.getLogger(__name__)


class TrainingDiverged(RuntimeError):
    """The loss or its gradient became NaN or infinite; the message names the term and the checkpoint kept."""


@dataclass
class TrainConfig:
    """Optimisation settings (defaults: the official HJB-100 run, ``scripts/100-HJB-ours.sh``).

    Attributes:
        iterations: Adam steps (with ``time_budget``: the most steps).
        lr: initial learning rate, decaying linearly to 0.
        domain_batch, terminal_batch: fresh points per iteration inside and on the terminal slice.
        loss: which loss and its settings.
        method: derivative method (None: ``forward`` for an MLP, else ``autograd``).
        time_budget: seconds of training for the equal wall-clock mode (None: count iterations).
        eval_every: evaluate every this many iterations (0: at the end only).
        log_every: write the loss to metrics.jsonl every this many iterations.
        checkpoint_every: checkpoint every this many iterations (0: at the end only).
    """

    iterations: int = 5000
    lr: float = 7e-4
    domain_batch: int = 100
    terminal_batch: int = 100
    loss: LossConfig = field(default_factory=LossConfig)
    method: Method | None = None
    time_budget: float | None = None
    eval_every: int = 100
    log_every: int = 50
    checkpoint_every: int = 500

    def __post_init__(self) -> None:
        if not isinstance(self.loss, LossConfig):  # e.g. a dict read back from a config file
            raise InputError("TrainConfig.loss must be a LossConfig")
        for name, least in (
            ("iterations", 1),
            ("domain_batch", 1),
            ("terminal_batch", 1),
            ("eval_every", 0),
            ("log_every", 1),
            ("checkpoint_every", 0),
        ):
            if getattr(self, name) < least:
                raise InputError(f"{name} must be at least {least}, got {getattr(self, name)}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise InputError(f"lr must be positive and finite, got {self.lr}")
        if self.time_budget is not None and not (math.isfinite(self.time_budget) and self.time_budget > 0):
            raise InputError(f"time_budget must be positive and finite seconds, got {self.time_budget}")
        if self.method is not None and self.method not in METHODS:
            raise InputError(f"unknown derivative method {self.method!r}; choose one of {', '.join(METHODS)}")


@dataclass
class TrainResult:
    """What a run did: iterations, training seconds (evaluation excluded), final metrics and the curve.

    ``history`` holds one record per evaluation: ``iteration``, ``seconds`` and the metrics.
    """

    iterations: int
    seconds: float
    metrics: dict[str, float]
    history: list[dict[str, float]] = field(default_factory=list)
    model: Path | None = None

    @property
    def seconds_per_iteration(self) -> float:
        return self.seconds / max(1, self.iterations)


def _parameter(net: nn.Module) -> torch.Tensor:
    for parameter in net.parameters():
        return parameter
    raise InputError(f"the network {type(net).__name__} has no parameters to train")


def evaluate(
    net: nn.Module,
    problem: HJBProblem,
    test: TestSet | None,
    probe: torch.Tensor | None,
    method: Method | None = None,
    weights: tuple[float, float] = (1.0, 20.0),
) -> dict[str, float]:
    """Relative L1 / L2 / W^{1,1} errors on ``test`` and the largest residuals over ``probe`` (either may be None).

    ``weights`` (domain, terminal) weigh the two maxima in ``linf_loss`` (see :func:`~pinn_linf.max_residual`).
    """
    metrics: dict[str, float] = {}
    if test is not None:
        metrics.update(relative_errors(net, problem, test))
    if probe is not None:
        metrics.update(max_residual(net, problem, probe, method=method, weights=weights))
    return metrics


def _diverged(terms: dict[str, torch.Tensor], net: nn.Module) -> str | None:
    """Which term is non-finite ("domain", "terminal") or, when the loss is finite, that the gradient is not."""
    bad = [name for name, value in terms.items() if not bool(torch.isfinite(value))]
    if bad:
        return "the " + " and ".join(bad) + " loss"
    for name, parameter in net.named_parameters():
        if parameter.grad is not None and not bool(torch.isfinite(parameter.grad).all()):
            return f"the gradient of {name}"
    return None


def train(
    net: nn.Module,
    problem: HJBProblem,
    config: TrainConfig,
    *,
    test: TestSet | None = None,
    probe: torch.Tensor | None = None,
    seed: int = 0,
    run: RunDir | None = None,
    extra_config: dict[str, Any] | None = None,
    desc: str | None = None,
) -> TrainResult:
    """Train ``net`` on ``problem`` with ``config``; evaluate on ``test`` and ``probe`` every ``eval_every``.

    Args:
        net: maps ``(n, d + 1)`` points [x, t] to ``(n, 1)``; trained in place on its own device and dtype.
        test: reference values for the errors (None: none).
        probe: ``(P, d + 1)`` points where the maximum residual is measured (None: not measured).
        seed: of the collocation points.
        run: output directory (config.json, metrics.jsonl, checkpoints/, model/); a run there is resumed.
        extra_config: more JSON-able settings recorded in config.json.
        desc: label of the progress bar / log records.
    """
    like = _parameter(net)
    method = config.method or default_method(net)
    optimizer = torch.optim.Adam(net.parameters(), lr=config.lr)
    generator = torch.Generator(device=like.device).manual_seed(seed)
    recorded = {
        "problem": problem.describe(),
        "network": asdict(net.config) if isinstance(net, MLP) else type(net).__name__,
        "train": {**asdict(config), "method": method},
        "seed": seed,
        **(extra_config or {}),
    }
    step, seconds = 0, 0.0
    history: list[dict[str, float]] = []
    weights = (config.loss.domain_weight, config.loss.terminal_weight)
    if run is not None:
        checkpoint = resume_run(
            run, recorded, ("problem", "network", "train", "seed"), net, optimizer, map_location=like.device
        )
        if checkpoint is not None:
            step, seconds = checkpoint.step, float(checkpoint.extra["seconds"])
            generator.set_state(checkpoint.extra["generator"].cpu())
            history = [r for r in checkpoint.extra.get("history", [])]
            LOG.info("resuming %s at iteration %d", run.root, step)

    def save(done: int) -> None:
        if run is not None:
            extra = {"generator": generator.get_state(), "seconds": seconds, "history": history}
            save_checkpoint(
                run.checkpoints, done, net, optimizer=optimizer, config=recorded, extra=extra, keep=2
            )

    def measure(done: int) -> dict[str, float]:
        metrics = evaluate(net, problem, test, probe, method, weights)
        history.append({"iteration": done, "seconds": seconds, **metrics})
        if run is not None:
            run.log(done, seconds=seconds, **{f"test_{k}": v for k, v in metrics.items()})
        return metrics

    def fraction(done: int) -> float:
        if config.time_budget is not None:
            return min(1.0, seconds / config.time_budget)
        return done / config.iterations

    bar = progress(  # with a time budget the iteration count is not known in advance
        total=None if config.time_budget is not None else config.iterations,
        initial=step,
        desc=desc or f"{problem.name} {config.loss.kind}",
        unit="it",
    )
    net.train()
    while step < config.iterations and fraction(step) < 1.0:
        tick = time.perf_counter()
        for group in optimizer.param_groups:
            group["lr"] = config.lr * (1.0 - fraction(step))
        domain = problem.sample(config.domain_batch, generator, dtype=like.dtype, device=like.device)
        terminal = problem.sample(
            config.terminal_batch, generator, terminal=True, dtype=like.dtype, device=like.device
        )
        terms = physics_loss(net, problem, domain, terminal, config.loss, method)
        optimizer.zero_grad(set_to_none=True)
        problem_term = _diverged({"domain": terms.domain, "terminal": terms.terminal}, net)
        if problem_term is None:
            terms.total.backward()
            problem_term = _diverged({}, net)
        if problem_term is not None:
            bar.close()
            save(step)
            kept = f"; the parameters before it are saved in {run.checkpoints}" if run is not None else ""
            raise TrainingDiverged(
                f"{problem_term} became non-finite at iteration {step + 1} (domain "
                f"{terms.domain.item():.3g}, terminal {terms.terminal.item():.3g}){kept}. Lower --lr or the "
                "adversarial step size, or use a smaller network."
            )
        optimizer.step()
        if like.device.type == "cuda":
            torch.cuda.synchronize(like.device)
        seconds += time.perf_counter() - tick
        step += 1
        bar.update(1)
        bar.set_postfix(loss=f"{terms.total.item():.3g}", refresh=False)
        finished = step >= config.iterations or fraction(step) >= 1.0
        if run is not None and (step % config.log_every == 0 or finished):
            run.log(
                step,
                loss=terms.total.item(),
                domain=terms.domain.item(),
                terminal=terms.terminal.item(),
                lr=optimizer.param_groups[0]["lr"],
                seconds=seconds,
            )
        if config.eval_every and step % config.eval_every == 0 and not finished:
            measure(step)
        if not finished and config.checkpoint_every and step % config.checkpoint_every == 0:
            save(step)
    bar.close()
    if history and history[-1]["iteration"] == step:
        metrics = {k: v for k, v in history[-1].items() if k not in ("iteration", "seconds")}
    else:
        metrics = measure(step)
    save(step)
    model = None
    if run is not None:
        run.write_json("final_metrics.json", {"iterations": step, "seconds": seconds, **metrics})
        if isinstance(net, MLP):
            model = save_solution(net, problem, run.path(MODEL_DIR))
    return TrainResult(step, seconds, metrics, history, model)
