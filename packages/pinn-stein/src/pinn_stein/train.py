"""Training: Adam with linear learning-rate decay to zero (the paper's schedule), fresh collocation points each
iteration, relative L1/L2 errors on a fixed test set, metrics JSONL, atomic checkpoints and exact resume. A run
directory ends with the trained network saved as ``model/`` (see :mod:`pinn_stein.trained`).

A non-finite loss stops training with :class:`~pinn_stein.errors.TrainingDiverged`; the parameters at that
moment are the last good ones (no update has used the bad loss) and are checkpointed first.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from papers_common import (
    MLP,
    InputError,
    RunDir,
    progress,
    resume_run,
    save_checkpoint,
)
from pinn_stein.derivatives import SMOOTHED_METHODS, Method, check_method, model_value
from pinn_stein.errors import TrainingDiverged
from pinn_stein.fields import network_input, scalar_output
from pinn_stein.loss import physics_loss, sample_batch
from pinn_stein.pdes import PDE
from pinn_stein.reference import TestSet
from pinn_stein.smoothing import Smoothing
from pinn_stein.trained import MODEL_DIR, save_trained

LOG = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """Optimisation and estimator settings (defaults: the paper's Heat-100 configuration).

    Attributes:
        method: derivative method (:data:`pinn_stein.derivatives.METHODS`).
        iterations: Adam steps; the learning rate decays linearly from ``lr`` to 0 over them.
        batch: points per region per iteration (None: the problem's defaults).
        weights: loss weight per region (None: the problem's defaults).
        sigma_x, sigma_t, samples: Gaussian smoothing (Stein and smoothed-autograd methods).
        eval_samples: N for the Monte Carlo smoothed model at test time.
        eval_every: evaluate every this many iterations (0: at the end only).
        checkpoint_every: checkpoint every this many iterations (0: at the end only).
    """

    method: Method = "stein-vr"
    iterations: int = 1000
    lr: float = 1e-3
    batch: dict[str, int] | None = None
    weights: dict[str, float] | None = None
    sigma_x: float = 0.01
    sigma_t: float = 0.01
    samples: int = 2048
    eval_samples: int = 2048
    eval_every: int = 0
    log_every: int = 50
    checkpoint_every: int = 0
    probes: int = 16

    def __post_init__(self) -> None:
        check_method(self.method)
        for name, least in (("iterations", 0), ("eval_every", 0), ("log_every", 1), ("checkpoint_every", 0)):
            if getattr(self, name) < least:
                raise InputError(f"{name} must be at least {least}, got {getattr(self, name)}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise InputError(f"lr must be positive and finite, got {self.lr}")
        self.smoothing()  # validates σ and N
        evaluation = Smoothing(self.sigma_x, self.sigma_t, self.eval_samples)
        if self.method == "stein-vr":
            evaluation.pairs()

    def smoothing(self) -> Smoothing:
        smoothing = Smoothing(self.sigma_x, self.sigma_t, self.samples)
        if self.method == "stein-vr":
            smoothing.pairs()
        return smoothing

    def resolved(self, pde: PDE) -> tuple[dict[str, int], dict[str, float]]:
        """Batch sizes and weights per region, defaults filled in; unknown or missing regions are errors."""
        batch = {**pde.default_batch, **(self.batch or {})}
        weights = {**pde.default_weights, **(self.weights or {})}
        for name, given in (("batch", batch), ("weights", weights)):
            unknown = set(given) - set(pde.regions)
            if unknown:
                raise InputError(
                    f"{name}: {pde.name} has regions {', '.join(pde.regions)}; unknown {sorted(unknown)}"
                )
        for region, size in batch.items():
            if size < 1:
                raise InputError(f"batch.{region} must be at least 1, got {size}")
        for region, weight in weights.items():
            if not (math.isfinite(weight) and weight >= 0):
                raise InputError(f"weights.{region} must be non-negative and finite, got {weight}")
        return batch, weights


@dataclass
class TrainResult:
    """Final metrics and timing of a run; ``model`` is the saved model folder (a run directory and an MLP only)."""

    iterations: int
    seconds: float
    seconds_per_iteration: float
    metrics: dict[str, float]
    history: list[dict[str, float]] = field(default_factory=list)
    model: Path | None = None


def _first_parameter(g: torch.nn.Module) -> torch.Tensor:
    """Any parameter of ``g`` (it sets the device and dtype of the points); a network without one is an error."""
    for parameter in g.parameters():
        return parameter
    raise InputError(f"the network {type(g).__name__} has no parameters to train or to take a device from")


@torch.no_grad()
def evaluate(
    g: MLP | torch.nn.Module,
    test: TestSet,
    *,
    method: Method,
    smoothing: Smoothing,
    generator: torch.Generator | None = None,
    rows: int = 2**18,
) -> dict[str, float]:
    """Relative L1 and L2 errors ``‖u − u*‖_p / ‖u*‖_p`` of the method's model on ``test``.

    Smoothed methods are evaluated as the Monte Carlo smoothed model f (``rel_l1``, ``rel_l2``) and as the raw
    network g (``raw_rel_l1``, ``raw_rel_l2``); f and g differ by O(σ²). ``rows`` network inputs (points times
    noisy copies) are evaluated at a time.
    """
    parameter = _first_parameter(g)
    test = test.to(parameter.device, parameter.dtype)
    chunk = max(1, rows // (smoothing.samples + 1))
    smoothed = method in SMOOTHED_METHODS
    predictions, raw = [], []
    starts = range(0, len(test), chunk)
    for start in progress(starts, desc="evaluate", unit="chunk", leave=False, disable=len(starts) < 2):
        x = test.x[start : start + chunk]
        t = None if test.t is None else test.t[start : start + chunk]
        raw.append(scalar_output(g(network_input(x, t)), x.shape[0]))
        if smoothed:
            predictions.append(model_value(g, x, t, method=method, smoothing=smoothing, generator=generator))
    errors = {}
    named = {"": torch.cat(predictions), "raw_": torch.cat(raw)} if smoothed else {"": torch.cat(raw)}
    for prefix, prediction in named.items():
        diff = prediction - test.u
        errors[f"{prefix}rel_l1"] = float(diff.abs().sum() / test.u.abs().sum())
        errors[f"{prefix}rel_l2"] = float(diff.norm() / test.u.norm())
    return errors


def train(
    pde: PDE,
    g: MLP | torch.nn.Module,
    config: TrainConfig,
    *,
    test: TestSet | None = None,
    seed: int = 0,
    device: torch.device | str = "cpu",
    run: RunDir | None = None,
    extra_config: dict[str, Any] | None = None,
) -> TrainResult:
    """Minimise the physics-informed loss of ``pde`` for ``g`` with ``config.method`` derivatives.

    Progress (iterations, latest loss) goes to :func:`papers_common.progress`: a bar on a terminal, a log record
    every 30 s otherwise.

    Args:
        pde: the problem.
        g: the network ``(n, pde.input_dim) -> (n, 1)``.
        config: settings.
        test: evaluation set (None: no evaluation).
        seed: of the collocation points and the smoothing noise.
        device: where to train.
        run: output directory (config.json, metrics.jsonl, checkpoints/, and model/ at the end when ``g`` is an
            :class:`MLP`); a run found there is resumed.
        extra_config: more JSON-able settings to record in config.json.
    """
    device = torch.device(device)
    g.to(device)
    batch_sizes, weights = config.resolved(pde)
    smoothing = config.smoothing()
    eval_smoothing = Smoothing(config.sigma_x, config.sigma_t, config.eval_samples)
    like = _first_parameter(g).new_empty(0)
    optimizer = torch.optim.Adam(g.parameters(), lr=config.lr)
    total = max(1, config.iterations)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1 - step / total)
    generator = torch.Generator(device=device).manual_seed(seed)
    recorded = {
        "pde": pde.describe(),
        "network": asdict(g.config) if isinstance(g, MLP) else type(g).__name__,
        "train": {**asdict(config), "batch": batch_sizes, "weights": weights},
        "seed": seed,
        "device": str(device),
        **(extra_config or {}),
    }
    start = 0
    training_seconds = 0.0
    history: list[dict[str, float]] = []
    if run is not None:
        checkpoint = resume_run(run, recorded, ("pde", "network", "train"), g, optimizer, map_location=device)
        if checkpoint is not None:
            scheduler.load_state_dict(checkpoint.extra["scheduler"])
            generator.set_state(checkpoint.extra["generator"].cpu())
            start = checkpoint.step
            training_seconds = checkpoint.extra["training_seconds"]
            history = [
                {
                    "iteration": r["step"],
                    **{k.removeprefix("test_"): v for k, v in r.items() if k.startswith("test_")},
                }
                for r in run.metrics()
                if "test_rel_l2" in r
            ]

    def save(step: int) -> None:
        if run is not None:
            extra = {
                "scheduler": scheduler.state_dict(),
                "generator": generator.get_state(),
                "training_seconds": training_seconds,
            }
            save_checkpoint(
                run.checkpoints, step, g, optimizer=optimizer, config=recorded, extra=extra, keep=2
            )

    def measure(step: int) -> dict[str, float]:
        metrics = evaluate(g, test, method=config.method, smoothing=eval_smoothing, generator=generator)
        history.append({"iteration": step, **metrics})
        if run is not None:
            run.log(step, **{f"test_{k}": v for k, v in metrics.items()})
        return metrics

    g.train()
    began = time.perf_counter()
    bar = progress(
        range(start, config.iterations),
        desc=f"train {pde.name}-{pde.dim} {config.method}",
        total=config.iterations,
        initial=start,
        unit="step",
    )
    if run is not None and start:
        LOG.info("resuming %s from step %d of %d", run.root, start, config.iterations)
    for step in bar:
        tick = time.perf_counter()
        batch = sample_batch(pde, batch_sizes, generator, like)
        loss, parts = physics_loss(
            pde, g, batch, weights, method=config.method, smoothing=smoothing, generator=generator
        )
        if not torch.isfinite(loss):
            bar.close()
            save(step)
            where = f"; the last good parameters are saved in {run.checkpoints}" if run is not None else ""
            detail = ", ".join(f"{k}={v.detach().item():.3g}" for k, v in parts.items())
            raise TrainingDiverged(
                f"the loss became non-finite at iteration {step + 1} ({detail}){where}. "
                "Lower --lr, or raise --samples (Stein estimates) or lower the loss weights."
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        training_seconds += time.perf_counter() - tick
        done = step + 1
        loss_value = loss.detach().item()
        bar.set_postfix(loss=f"{loss_value:.3g}", refresh=False)
        if run is not None and (done % config.log_every == 0 or done == config.iterations):
            run.log(
                done,
                loss=loss_value,
                lr=scheduler.get_last_lr()[0],
                **{k: v.detach().item() for k, v in parts.items()},
            )
        if (
            test is not None
            and config.eval_every
            and done % config.eval_every == 0
            and done != config.iterations
        ):
            measure(done)
        if done == config.iterations or (config.checkpoint_every and done % config.checkpoint_every == 0):
            save(done)
    bar.close()
    metrics: dict[str, float] = {}
    if history and history[-1]["iteration"] == config.iterations:  # a finished run, started again
        metrics = {k: v for k, v in history[-1].items() if k != "iteration"}
    elif test is not None:
        LOG.info("testing on %d points", len(test))
        metrics = measure(config.iterations)
        if run is not None:
            run.write_json("final_metrics.json", metrics)
    model = None
    if run is not None and isinstance(g, MLP):
        model = save_trained(
            g, run.path(MODEL_DIR), pde=pde, method=config.method, smoothing=eval_smoothing, test=test
        )
    return TrainResult(
        config.iterations,
        time.perf_counter() - began,
        training_seconds / max(1, config.iterations),
        metrics,
        history,
        model,
    )
