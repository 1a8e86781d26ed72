"""Training loops for the synthetic tasks and for causal language modelling.

Adam with linear warm-up then linear (polynomial, power 1) decay to zero, as in the paper's fairseq scripts.
Training sets ``torch.set_flush_denormal(True)`` (a process-wide setting): near convergence the gradients and
Adam moments become denormal floats, which slow CPU arithmetic down by an order of magnitude.

Every run can write to a :class:`papers_common.RunDir`: the resolved config first, metrics as JSON lines, checkpoints
(atomic; model, optimizer, schedule, RNG and data-generator state) from which an interrupted run resumes exactly,
and at the end the trained model in ``model/`` (``config.json`` + ``model.safetensors``, see
:meth:`TransformerModel.save_pretrained`) with what evaluating it needs in the config's ``extra``: the synthetic
task, or the byte tokenizer and the text split. :func:`load_trained` reads that folder back, on its own.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from papers_common import (
    InputError,
    RunDir,
    load_checkpoint,
    pretrained_extra,
    progress,
    resume_run,
    save_checkpoint,
)
from urpe.model import TransformerModel
from urpe.tasks import Batch, SyntheticTask
from urpe.text import TOKENIZER, TextCorpus

MODEL_DIR = "model"
"""The folder of a run directory that holds the trained model (``config.json`` + ``model.safetensors``)."""

logger = logging.getLogger(__name__)


@dataclass
class Schedule:
    """Optimisation settings shared by every task."""

    steps: int = 2000
    batch_size: int = 64
    lr: float = 1e-3
    warmup: int = 200
    weight_decay: float = 0.0
    eval_batches: int = 20
    log_every: int = 50
    checkpoint_every: int = 0  # 0: only at the end

    def __post_init__(self) -> None:
        for name, least in (
            ("steps", 0),
            ("batch_size", 1),
            ("warmup", 0),
            ("eval_batches", 1),
            ("log_every", 1),
            ("checkpoint_every", 0),
        ):
            if getattr(self, name) < least:
                raise InputError(f"{name} must be at least {least}, got {getattr(self, name)}")
        for name in ("lr", "weight_decay"):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) >= 0):
                raise InputError(f"{name} must be a finite non-negative number, got {getattr(self, name)}")

    def lr_factor(self, step: int) -> float:
        """Multiplier of ``lr`` after ``step`` updates: linear warm-up, then linear decay to 0 at ``steps``."""
        if step < self.warmup:
            return (step + 1) / self.warmup
        return max(0.0, (self.steps - step) / max(1, self.steps - self.warmup))


@dataclass
class TrainResult:
    """Final metrics of a run."""

    steps: int
    seconds: float
    metrics: dict[str, float]


def _optimizer(
    model: TransformerModel, schedule: Schedule
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    optimizer = torch.optim.Adam(
        model.parameters(), lr=schedule.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=schedule.weight_decay
    )
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, schedule.lr_factor)


def masked_cross_entropy(
    logits: torch.Tensor, targets: torch.Tensor, scored: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean token-level cross-entropy over positions where ``scored`` (all when None); logits ``(B, L, C)``."""
    loss = F.cross_entropy(logits.transpose(1, 2), targets, reduction="none")
    return loss.mean() if scored is None else loss[scored].mean()


@torch.no_grad()
def evaluate_synthetic(
    model: TransformerModel,
    task: SyntheticTask,
    *,
    batches: int,
    batch_size: int,
    seed: int,
    device: torch.device,
) -> dict[str, float]:
    """Accuracy and loss on the scored positions of ``batches`` fresh batches drawn from ``seed``."""
    was_training = model.training
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    correct = total = 0
    loss_sum = 0.0
    for _ in progress(range(batches), desc=f"evaluate {task.name}", unit="batch", leave=False):
        batch = task.sample(batch_size, generator, device)
        logits = model(batch.tokens)
        hits = (logits.argmax(-1) == batch.targets) & batch.scored
        correct += int(hits.sum())
        total += int(batch.scored.sum())
        loss_sum += float(F.cross_entropy(logits[batch.scored], batch.targets[batch.scored], reduction="sum"))
    model.train(was_training)
    return {"accuracy": correct / total, "loss": loss_sum / total}


@torch.no_grad()
def evaluate_lm(
    model: TransformerModel, corpus: TextCorpus, *, batches: int, batch_size: int, device: torch.device
) -> dict[str, float]:
    """Validation loss (nats per byte) and perplexity on fixed windows of the held-out text."""
    was_training = model.training
    model.eval()
    loss_sum = 0.0
    count = 0
    length = model.config.max_len
    windows = progress(
        corpus.validation_batches(batches, batch_size, length, device),
        total=corpus.validation_batch_count(batches, batch_size, length),
        desc="evaluate lm",
        unit="batch",
        leave=False,
    )
    for tokens, targets in windows:
        logits = model(tokens)
        loss_sum += float(F.cross_entropy(logits.transpose(1, 2), targets, reduction="sum"))
        count += targets.numel()
    model.train(was_training)
    loss = loss_sum / count
    return {"loss": loss, "perplexity": math.exp(loss)}


def _fit(
    model: TransformerModel,
    schedule: Schedule,
    draw: Callable[[torch.Generator], tuple[torch.Tensor, torch.Tensor]],
    evaluate: Callable[[], dict[str, float]],
    *,
    seed: int,
    run: RunDir | None,
    config: dict[str, Any],
    saved: dict[str, Any],
    desc: str,
) -> TrainResult:
    # Once the loss is tiny, gradients and Adam moments turn denormal and CPU arithmetic slows down tenfold.
    torch.set_flush_denormal(True)
    optimizer, scheduler = _optimizer(model, schedule)
    generator = torch.Generator().manual_seed(seed)
    start_step = 0
    if run is not None:
        checkpoint = resume_run(run, config, ("model",), model, optimizer)
        if checkpoint is not None:
            scheduler.load_state_dict(checkpoint.extra["scheduler"])
            generator.set_state(checkpoint.extra["generator"])
            start_step = checkpoint.step
    started = time.perf_counter()
    model.train()
    bar = progress(
        range(start_step, schedule.steps), desc=desc, total=schedule.steps, initial=start_step, unit="step"
    )
    for step in bar:
        tokens, targets = draw(generator)
        loss = masked_cross_entropy(model(tokens), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        done = step + 1
        bar.set_postfix(loss=loss.item(), refresh=False)
        if run is not None and (done % schedule.log_every == 0 or done == schedule.steps):
            run.log(done, loss=loss.item(), lr=scheduler.get_last_lr()[0])
        if run is not None and (
            done == schedule.steps or (schedule.checkpoint_every and done % schedule.checkpoint_every == 0)
        ):
            extra = {"scheduler": scheduler.state_dict(), "generator": generator.get_state()}
            save_checkpoint(
                run.checkpoints, done, model, optimizer=optimizer, config=config, extra=extra, keep=2
            )
    metrics = evaluate()
    if run is not None:
        # a finished run that is started again has logged its evaluation already
        if start_step < schedule.steps:
            run.log(schedule.steps, **{f"eval_{k}": v for k, v in metrics.items()})
            run.write_json("final_metrics.json", metrics)
        extra = {**saved, "seed": seed, "steps": schedule.steps, "metrics": metrics}
        logger.info(
            "%s: saved the trained model in %s", desc, model.save_pretrained(run.path(MODEL_DIR), extra=extra)
        )
    return TrainResult(schedule.steps, time.perf_counter() - started, metrics)


def train_synthetic(
    model: TransformerModel,
    task: SyntheticTask,
    schedule: Schedule,
    *,
    seed: int = 0,
    device: torch.device | str = "cpu",
    run: RunDir | None = None,
    extra_config: dict[str, Any] | None = None,
) -> TrainResult:
    """Train on on-the-fly batches of ``task``; evaluate accuracy on held-out batches (a different seed)."""
    device = torch.device(device)
    model.to(device)

    def draw(generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        batch: Batch = task.sample(schedule.batch_size, generator, device)
        return batch.tokens, batch.targets  # filler positions are trained too; only scoring skips them

    def evaluate() -> dict[str, float]:
        return evaluate_synthetic(
            model,
            task,
            batches=schedule.eval_batches,
            batch_size=schedule.batch_size,
            seed=seed + 10_000,
            device=device,
        )

    config = {
        "task": asdict(task),
        "model": asdict(model.config),
        "schedule": asdict(schedule),
        "seed": seed,
        **(extra_config or {}),
    }
    return _fit(
        model,
        schedule,
        draw,
        evaluate,
        seed=seed,
        run=run,
        config=config,
        saved={"kind": "synthetic", "task": asdict(task)},
        desc=f"train {task.name}/{model.config.position}",
    )


def train_lm(
    model: TransformerModel,
    corpus: TextCorpus,
    schedule: Schedule,
    *,
    seed: int = 0,
    device: torch.device | str = "cpu",
    run: RunDir | None = None,
    extra_config: dict[str, Any] | None = None,
) -> TrainResult:
    """Train a causal byte-level language model on random windows of ``corpus``; report validation perplexity."""
    if not model.config.causal:
        raise ValueError("language modelling needs a causal model (TransformerConfig(causal=True))")
    device = torch.device(device)
    model.to(device)

    def draw(generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        return corpus.sample(schedule.batch_size, model.config.max_len, generator, device)

    def evaluate() -> dict[str, float]:
        return evaluate_lm(
            model, corpus, batches=schedule.eval_batches, batch_size=schedule.batch_size, device=device
        )

    config = {
        "corpus": corpus.describe(),
        "model": asdict(model.config),
        "schedule": asdict(schedule),
        "seed": seed,
        **(extra_config or {}),
    }
    described = corpus.describe()
    saved = {
        "kind": "language-model",
        "tokenizer": dict(TOKENIZER),
        "text": corpus.settings(),
        # sizes only: the folder's path on the training machine means nothing where the model is used
        "trained_on": {k: v for k, v in described.items() if k != "root"},
    }
    return _fit(
        model,
        schedule,
        draw,
        evaluate,
        seed=seed,
        run=run,
        config=config,
        saved=saved,
        desc=f"train lm/{model.config.position}",
    )


@dataclass
class TrainedModel:
    """A trained model and what evaluating it needs, as :func:`load_trained` reads them."""

    model: TransformerModel
    task: SyntheticTask | None  # the synthetic task; None for a language model
    source: Path  # the saved-model folder or checkpoint that was read
    text: dict[str, Any] = field(default_factory=dict)  # TextCorpus keyword arguments of a language model

    def corpus(self, root: str | os.PathLike[str]) -> TextCorpus:
        """The text under ``root`` split as in training (same file pattern, held-out fraction, skipped files)."""
        try:
            return TextCorpus(root, **self.text)
        except TypeError as err:
            raise InputError(f"{self.source}: its text settings do not fit TextCorpus ({err})") from None


def load_trained(path: str | os.PathLike[str], *, map_location: str | torch.device = "cpu") -> TrainedModel:
    """Load a trained model with its task (synthetic) or its text settings (language model).

    ``path`` is a saved-model folder (a run's ``model/``, or any copy of it: it needs nothing else), a run directory
    written by training (its ``model/``, or its ``checkpoints/`` when the run has not finished), or a training
    checkpoint (a ``step-*.json`` / ``.safetensors`` file or their directory).

    Raises:
        InputError: nothing loadable is at ``path``, or a non-causal model comes without its task.
    """
    source = Path(path)
    if (source / MODEL_DIR / "config.json").is_file():
        source = source / MODEL_DIR
    elif (source / "checkpoints").is_dir():
        source = source / "checkpoints"
    model = TransformerModel.from_pretrained(source, map_location=map_location)
    folder = source if source.is_dir() else source.parent
    if (folder / "config.json").is_file() and (folder / "model.safetensors").is_file():
        settings = pretrained_extra(folder)  # the save_pretrained layout
    else:
        settings = load_checkpoint(source).config  # a training checkpoint records the run's config
    task = settings.get("task")
    if task is not None:
        try:
            return TrainedModel(model, SyntheticTask(**task), source)
        except TypeError as err:
            raise InputError(f"{source}: its task settings do not fit SyntheticTask ({err})") from None
    if not model.config.causal:
        raise InputError(
            f"{source}: holds an encoder without its synthetic task (the 'task' entry of config.json's extra)"
        )
    return TrainedModel(model, None, source, dict(settings.get("text") or {}))
