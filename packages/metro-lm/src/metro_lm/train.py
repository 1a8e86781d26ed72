"""The pretraining loop: AdamW with warm-up and linear decay, accumulation, clipping, checkpoints, torchrun.

One optimizer step consumes a *global batch* of sequences. Under ``torchrun`` each of the W processes takes its
contiguous share (``batch_size / W`` sequences) and DistributedDataParallel averages the gradients; each share is
split into ``grad_accumulation`` micro-batches whose gradients are summed. The masking and sampling draws of a
sequence depend only on (seed, step, its index in the global batch) (:mod:`metro_lm.randomness`), and dropout is
reseeded from (seed, step, the micro-batch's index in the global batch) before every micro-batch, so:

- a run resumed from a checkpoint continues exactly the loss curve of an uninterrupted run (bit for bit on a CPU);
- W processes give the same step as one process with ``grad_accumulation = W`` times theirs (up to float summation
  order), dropout included.

Checkpoints (every ``save_every`` steps and at the end) hold the model, optimizer, scheduler and the data position;
resuming is automatic when the run directory holds one.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch

from metro_lm.evaluation import pretraining_metrics
from metro_lm.randomness import sequence_keys, splitmix64
from papers_common import (
    DistributedContext,
    InputError,
    RunDir,
    join_process_group,
    progress,
    save_checkpoint,
)

if TYPE_CHECKING:
    from metro_lm.data import PackedDataset
    from metro_lm.modeling import MetroForPreTraining

LOGGER = logging.getLogger(__name__)
LOSS_NAMES = ("loss", "mlm_loss", "rtd_loss", "clm_loss", "scl_loss")


@dataclass
class TrainConfig:
    """Optimisation settings of a pretraining run (METRO-T0 / ELECTRA defaults where they exist).

    Attributes:
        steps: optimizer steps.
        batch_size: sequences per optimizer step, over all processes and micro-batches.
        grad_accumulation: micro-batches per process per step.
        lr: peak learning rate, reached after ``warmup_steps`` and decayed linearly to 0 at ``steps``.
        warmup_steps: linear warm-up from 0.
        weight_decay: AdamW decay on weight matrices and embeddings (not on biases and LayerNorms).
        adam_betas, adam_eps: AdamW (0.9, 0.98), 1e-6.
        clip_norm: global gradient-norm clip (0: off).
        precision: ``"bf16"`` autocast, ``"fp32"``, or ``"auto"`` (bf16 on a CUDA device that supports it).
        seed: seeds initialisation, data order, masking, sampling and dropout.
        log_every: steps between metrics.jsonl records.
        eval_every: steps between held-out evaluations (0: only at the end).
        eval_sequences: held-out sequences per evaluation.
        save_every: steps between checkpoints (0: only at the end).
        keep_checkpoints: newest checkpoints kept.
        stop_on_nonfinite: end the run at the first non-finite loss (recorded as diverged).
    """

    steps: int = 1000
    batch_size: int = 32
    grad_accumulation: int = 1
    lr: float = 5e-4
    warmup_steps: int = 100
    weight_decay: float = 0.01
    adam_betas: tuple[float, float] = (0.9, 0.98)
    adam_eps: float = 1e-6
    clip_norm: float = 1.0
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    seed: int = 0
    log_every: int = 10
    eval_every: int = 0
    eval_sequences: int = 256
    save_every: int = 0
    keep_checkpoints: int = 2
    stop_on_nonfinite: bool = True

    def check(self, world_size: int = 1) -> None:
        """Raise :class:`InputError` naming the first setting that cannot work."""
        for name in ("steps", "batch_size", "grad_accumulation", "log_every"):
            if getattr(self, name) < 1:
                raise InputError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise InputError(f"lr must be positive and finite, got {self.lr}")
        share = self.batch_size // world_size if self.batch_size % world_size == 0 else None
        if share is None or share % self.grad_accumulation:
            raise InputError(
                f"batch_size {self.batch_size} must split evenly over {world_size} process(es) × "
                f"{self.grad_accumulation} micro-batch(es)"
            )


@dataclass
class PretrainResult:
    """What a run did: the step it reached, whether it diverged, the last evaluation and its speed."""

    steps: int
    diverged_at: int | None
    final_eval: dict[str, float]
    tokens_per_second: float
    history: list[dict[str, Any]]


def learning_rate_factor(step: int, *, warmup: int, total: int) -> float:
    """Linear warm-up to 1 over ``warmup`` steps, then linear decay to 0 at ``total``."""
    if step < warmup:
        return (step + 1) / warmup
    return max(0.0, (total - step) / max(1, total - warmup))


def make_optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices and embeddings only (biases, LayerNorms and the position bias excluded)."""
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        plain = (
            parameter.ndim < 2 or "LayerNorm" in name or "_norm" in name or "relative_attention_bias" in name
        )
        (no_decay if plain else decay).append(parameter)
    groups = [
        {"params": decay, "weight_decay": config.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=config.lr, betas=config.adam_betas, eps=config.adam_eps)


def _autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager[Any]:
    if precision == "auto":
        precision = "bf16" if device.type == "cuda" and torch.cuda.is_bf16_supported() else "fp32"
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _step_seed(seed: int, micro_batch: int, step: int) -> int:
    """The dropout seed of one micro-batch (its index counted over all processes) at one step."""
    value = splitmix64(splitmix64(torch.tensor(seed) ^ micro_batch) ^ step)
    return int(value) & ((1 << 63) - 1)


def pretrain(
    model: MetroForPreTraining,
    train: PackedDataset,
    config: TrainConfig,
    out: str | os.PathLike[str],
    *,
    valid: PackedDataset | None = None,
    run_config: dict[str, Any] | None = None,
    device: torch.device | str = "cpu",
) -> PretrainResult:
    """Pretrain ``model`` on ``train`` into the run directory ``out``, resuming from its newest checkpoint.

    Args:
        model: a freshly initialised (or loaded) :class:`~metro_lm.MetroForPreTraining`.
        train: packed training sequences.
        config: optimisation settings.
        out: run directory: ``config.json``, ``metrics.jsonl``, ``checkpoints/``, ``model/`` at the end.
        valid: held-out sequences, evaluated every ``eval_every`` steps and at the end.
        run_config: the run's whole resolved configuration, written to ``config.json`` and compared on resume.
        device: where to train (under torchrun on CUDA, each process takes its ``LOCAL_RANK`` device).

    Returns:
        A :class:`PretrainResult`; the main process's ``history`` is the run's whole metrics log.
    """
    from metro_lm.data import SequenceStream

    dist = join_process_group(device)
    config.check(dist.world_size)
    run = RunDir(out)
    resolved = {"train": asdict(config), **(run_config or {}), "world_size": dist.world_size}
    model.to(dist.device)
    optimizer = make_optimizer(model, config)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: learning_rate_factor(s, warmup=config.warmup_steps, total=config.steps)
    )
    stream = SequenceStream(train, global_batch_size=config.batch_size, seed=config.seed, rank=dist.rank,
                            world_size=dist.world_size)  # fmt: skip
    start = _resume(run, resolved, model, optimizer, scheduler, stream, dist)
    wrapped: torch.nn.Module = model
    if dist.world_size > 1:
        from torch.nn.parallel import DistributedDataParallel

        wrapped = DistributedDataParallel(
            model, device_ids=[dist.device] if dist.device.type == "cuda" else None
        )
    share = config.batch_size // dist.world_size
    micro = share // config.grad_accumulation
    pad_id = model.config.pad_token_id
    history: list[dict[str, Any]] = []
    diverged_at = None
    tokens_done, started = 0, time.perf_counter()
    bar = progress(total=config.steps, initial=start, desc="pretrain", unit="step", disable=not dist.is_main)
    model.train()
    for step in range(start, config.steps):
        batch = stream.next_batch().to(dist.device)
        rows = torch.arange(dist.rank * share, (dist.rank + 1) * share)
        keys = sequence_keys(config.seed, step, rows).to(dist.device)
        sums = torch.zeros(len(LOSS_NAMES) + 1, device=dist.device)
        for k in range(config.grad_accumulation):
            part = slice(k * micro, (k + 1) * micro)
            ids = batch[part]
            torch.manual_seed(_step_seed(config.seed, dist.rank * config.grad_accumulation + k, step))
            sync = k == config.grad_accumulation - 1 or dist.world_size == 1
            with (
                contextlib.nullcontext() if sync else wrapped.no_sync(),
                _autocast(dist.device, config.precision),
            ):  # type: ignore[operator]
                output = wrapped(ids, (ids != pad_id).long(), sequence_keys=keys[part])
            (output.loss / config.grad_accumulation).backward()
            for i, name in enumerate(LOSS_NAMES):
                value = getattr(output, name)
                if value is not None:
                    sums[i] += value.detach().float() / config.grad_accumulation
            sums[-1] += float((ids != pad_id).sum())
        grad_norm = (
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip_norm)
            if config.clip_norm > 0 else torch.zeros(())
        )  # fmt: skip
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        means = dist.mean(sums)
        tokens_done += round(float(means[-1]) * dist.world_size)
        finite = bool(torch.isfinite(means[0]))
        done = step + 1
        bar.update(1)
        if dist.is_main and (done % config.log_every == 0 or done == config.steps or not finite):
            elapsed = time.perf_counter() - started
            values = {name: float(means[i]) for i, name in enumerate(LOSS_NAMES)
                      if getattr(output, name) is not None}  # fmt: skip
            record = run.log(done, **values, lr=scheduler.get_last_lr()[0], grad_norm=float(grad_norm),
                             tokens_per_second=tokens_done / elapsed)  # fmt: skip
            history.append(record)
            bar.set_postfix(loss=values["loss"], tok_s=round(tokens_done / elapsed))
        if not finite and config.stop_on_nonfinite:
            diverged_at = done
            LOGGER.warning("pretraining diverged at step %d (loss %s); stopping", done, float(means[0]))
            break
        if valid is not None and config.eval_every and done % config.eval_every == 0 and done < config.steps:
            _evaluate(run, model, valid, config, dist, done, history)
        if config.save_every and done % config.save_every == 0 and done < config.steps:
            _save(run, done, model, optimizer, scheduler, stream, resolved, config, dist)
    bar.close()
    elapsed = time.perf_counter() - started
    reached = diverged_at if diverged_at is not None else config.steps
    final_eval: dict[str, float] = {}
    if diverged_at is None:
        if reached > start:
            _save(run, reached, model, optimizer, scheduler, stream, resolved, config, dist)
        if valid is not None:
            final_eval = _evaluate(run, model, valid, config, dist, reached, history)
    if dist.is_main:
        model.save_pretrained(run.path("model"))
        run.write_json("summary.json", {"steps": reached, "diverged_at": diverged_at, "final_eval": final_eval,
                                        "tokens_per_second": tokens_done / max(elapsed, 1e-9)})  # fmt: skip
        history = run.metrics()
    dist.barrier()
    return PretrainResult(reached, diverged_at, final_eval, tokens_done / max(elapsed, 1e-9), history)


def _evaluate(
    run: RunDir, model: MetroForPreTraining, valid: PackedDataset, config: TrainConfig, dist: DistributedContext,
    step: int, history: list[dict[str, Any]],
) -> dict[str, float]:  # fmt: skip
    metrics: dict[str, float] = {}
    if dist.is_main:
        metrics = pretraining_metrics(model, valid, max_sequences=config.eval_sequences, device=dist.device)
        history.append(run.log(step, **{f"valid_{k}": v for k, v in metrics.items()}))
    dist.barrier()
    return metrics


def _save(
    run: RunDir, step: int, model: MetroForPreTraining, optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler, stream: Any, resolved: dict[str, Any], config: TrainConfig,
    dist: DistributedContext,
) -> None:  # fmt: skip
    if dist.is_main:
        save_checkpoint(run.checkpoints, step, model, optimizer=optimizer, config=resolved, rng=False,
                        extra={"scheduler": scheduler.state_dict(), "stream": stream.state_dict()},
                        keep=config.keep_checkpoints)  # fmt: skip
    dist.barrier()


def _resume(
    run: RunDir, resolved: dict[str, Any], model: MetroForPreTraining, optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler, stream: Any, dist: DistributedContext,
) -> int:  # fmt: skip
    """Restore the newest checkpoint of ``run`` (every process reads it); returns the step to continue from."""
    from papers_common import resume_run

    compared = [key for key in resolved if key != "train"]
    if dist.is_main:
        checkpoint = resume_run(run, resolved, compared, model, optimizer, map_location=dist.device)
    dist.barrier()
    if not dist.is_main:
        from papers_common import latest_checkpoint, load_checkpoint

        found = latest_checkpoint(run.checkpoints)
        checkpoint = None if found is None else load_checkpoint(found, map_location=dist.device)
        if checkpoint is not None:
            checkpoint.restore(model, optimizer, rng=False)
    if checkpoint is None:
        return 0
    scheduler.load_state_dict(checkpoint.extra["scheduler"])
    stream.load_state_dict(checkpoint.extra["stream"])
    LOGGER.info("resuming %s from step %d", run.root, checkpoint.step)
    return checkpoint.step


def iterate_losses(history: list[dict[str, Any]], name: str = "loss") -> Iterator[tuple[int, float]]:
    """``(step, value)`` of one logged quantity, skipping records without it (non-finite values are None)."""
    for record in history:
        if name in record:
            value = record[name]
            yield int(record["step"]), math.nan if value is None else float(value)


def mean_of_last(history: list[dict[str, Any]], name: str, count: int) -> float:
    """The mean of the last ``count`` logged values of ``name`` (NaN if none)."""
    values = [v for _, v in iterate_losses(history, name)][-count:]
    return float(np.mean(values)) if values else math.nan
