"""The training loop shared by the 2D Graphormer and Graphormer-3D (spec §3.2 loss, §3.3 loss, §4 optimisation).

The recipe is the official fairseq one (spec §4): AdamW (fairseq's ``adam`` decouples weight decay), gradient
clipping at a global norm of 5, and the ``polynomial_decay`` schedule (:func:`learning_rate`). What is learnt and
how it is scored lives in an :class:`Objective`, so one loop serves ``GraphBatch -> (B, C)`` regression and
classification as well as the 3D model, whose criterion is its own ``loss`` method (:class:`ModelLossObjective`).

:func:`fit` runs in one process, or under ``torchrun`` as distributed data parallel: every rank trains on its shard
of each epoch (:class:`~torch.utils.data.DistributedSampler`), DistributedDataParallel averages the gradients,
validation metrics are averaged across ranks, and only rank 0 writes logs, checkpoints and progress.

The best weights go to the run's ``best/`` folder in the layout of :meth:`papers_common.Pretrained.save_pretrained`
(``config.json`` + ``model.safetensors``), with what predicting needs (``best_extra``) in the config's ``extra``, so
that folder alone is a usable model.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
import torch.distributed as dist
import torch.nn.functional as F
from safetensors.torch import load_model, save_model
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler, Subset

from papers_common import (
    Checkpoint,
    DistributedContext,
    InputError,
    Pretrained,
    RunDir,
    atomic_path,
    distributed_context,
    latest_checkpoint,
    load_checkpoint,
    progress,
    resume_run,
    save_checkpoint,
    to_jsonable,
    write_json,
)

BEST_DIR = "best"
"""Sub-directory of the run that holds the best weights: a ``save_pretrained`` folder (``config.json`` +
``model.safetensors``; graphormer2 0.1.0 wrote a training checkpoint there, which resuming still reads)."""
CONFIG_FILE, WEIGHTS_FILE = "config.json", "model.safetensors"


@dataclass
class TrainConfig:
    """Optimisation settings; defaults follow the official ``graphormer_base`` recipe (spec §4) where it has one.

    Attributes:
        epochs: passes over the training set; ignored when ``max_steps`` is set.
        max_steps: total optimizer updates (fairseq's ``--max-update`` and ``--total-num-update``); None: ``epochs``.
        batch_size: graphs (or atomic systems) per update and per process; eval_batch_size: per validation batch
            (None: ``batch_size``).
        lr: peak learning rate reached at the end of the warm-up; end_lr: the rate at the last step
            (``--end-learning-rate`` 1e-9); power: exponent of the polynomial decay (1: linear).
        warmup_steps: linear warm-up length (``--warmup-updates``).
        weight_decay, betas, eps: AdamW settings (decoupled decay on every parameter, as fairseq's Adam).
        clip_norm: maximal global gradient norm (``--clip-norm``); 0 disables clipping.
        eval_every: validate every this many steps; 0: at the end of each epoch. The last step is always validated.
        patience: stop after this many validations in a row without a lower ``objective.metric``; 0: never stop.
        seed: seeds the data order, the data-loader workers and, at every step, the dropout stream.
        num_workers: data-loader worker processes.
        log_every: append the mean training loss to ``metrics.jsonl`` every this many steps.
        checkpoint_every: also checkpoint every this many steps (there is always one at each validation and at
            the end); 0: only those.
        keep_checkpoints: how many of the newest checkpoints to keep.
        find_unused_parameters: passed to DistributedDataParallel, for models whose loss leaves some parameters
            without a gradient (Graphormer-3D trained on energy only).
    """

    epochs: int = 1
    max_steps: int | None = None
    batch_size: int = 32
    eval_batch_size: int | None = None
    lr: float = 2e-4
    warmup_steps: int = 0
    end_lr: float = 1e-9
    power: float = 1.0
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    clip_norm: float = 5.0
    eval_every: int = 0
    patience: int = 0
    seed: int = 0
    num_workers: int = 0
    log_every: int = 50
    checkpoint_every: int = 0
    keep_checkpoints: int = 2
    find_unused_parameters: bool = False

    def __post_init__(self) -> None:
        for name, least in (("epochs", 1), ("batch_size", 1), ("warmup_steps", 0), ("eval_every", 0),
                            ("patience", 0), ("seed", 0), ("num_workers", 0), ("log_every", 1),
                            ("checkpoint_every", 0), ("keep_checkpoints", 1)):  # fmt: skip
            if getattr(self, name) < least:
                raise InputError(f"{name} must be at least {least}, got {getattr(self, name)}")
        for name in ("max_steps", "eval_batch_size"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise InputError(f"{name} must be at least 1 (or None), got {getattr(self, name)}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise InputError(f"lr must be positive and finite, got {self.lr}")
        if not (0 <= self.end_lr <= self.lr):
            raise InputError(f"end_lr must lie in [0, lr = {self.lr}], got {self.end_lr}")
        if not self.power > 0:
            raise InputError(f"power must be positive, got {self.power}")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise InputError(f"betas must be two numbers in [0, 1), got {self.betas}")
        self.betas = (float(self.betas[0]), float(self.betas[1]))
        for name in ("weight_decay", "eps", "clip_norm"):
            if not getattr(self, name) >= 0:
                raise InputError(f"{name} must be non-negative, got {getattr(self, name)}")


def learning_rate(config: TrainConfig, step: int, total_steps: int) -> float:
    """fairseq's ``polynomial_decay`` rate for the update made after ``step`` updates (0-based).

    With peak η, end rate η_end, warm-up W, total T and power p:

        η(s) = η · s / W                                      for s ≤ W (W > 0; the first update has rate 0),
        η(s) = (η − η_end) · (1 − (s − W) / (T − W))^p + η_end  for W < s < T,
        η(s) = η_end                                           for s ≥ T.

    fairseq calls ``step_update(num_updates)`` before the first update and after each one, so update ``s`` is
    taken at η(s) exactly as written.
    """
    warmup = config.warmup_steps
    if warmup > 0 and step <= warmup:
        return config.lr * step / warmup
    if step >= total_steps:
        return config.end_lr
    remaining = 1 - (step - warmup) / (total_steps - warmup)
    return (config.lr - config.end_lr) * remaining**config.power + config.end_lr


# ----------------------------------------------------------------------------------------------- distributed


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside a DistributedDataParallel wrapper (the model itself otherwise)."""
    return model.module if isinstance(model, DistributedDataParallel) else model


def _gather_rows(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate ``tensor`` ``(n_r, ...)`` of every rank along dim 0 (rank order); itself outside torchrun."""
    if not (dist.is_initialized() and dist.get_world_size() > 1):
        return tensor
    count = torch.tensor([tensor.shape[0]], device=tensor.device)
    counts = [torch.zeros_like(count) for _ in range(dist.get_world_size())]
    dist.all_gather(counts, count)
    longest = int(max(c.item() for c in counts))
    padded = tensor.new_zeros((longest, *tensor.shape[1:]))
    padded[: tensor.shape[0]] = tensor
    pieces = [torch.empty_like(padded) for _ in counts]
    dist.all_gather(pieces, padded)
    return torch.cat([piece[: int(c.item())] for piece, c in zip(pieces, counts, strict=True)])


# ------------------------------------------------------------------------------------------------ objectives


class Objective(Protocol):
    """What :func:`fit` optimises and how it validates.

    ``loss`` receives the model as trained (possibly wrapped in DistributedDataParallel: call it, do not reach
    into it) and a batch already on the device; it returns the scalar loss to minimise and named float parts to
    log. ``evaluate`` receives the bare model in eval mode, under ``torch.no_grad``, and an iterable of batches on
    the device; it returns metrics, including ``metric``, the key that early stopping and the best checkpoint
    minimise. Under torchrun each rank evaluates its shard and :func:`fit` averages the metrics weighted by shard
    size; objectives may instead compute exact global metrics themselves (the built-in ones gather predictions).
    """

    metric: str

    def loss(
        self, model: nn.Module, batch: Any, step: int, total_steps: int
    ) -> tuple[torch.Tensor, dict[str, float]]: ...

    def evaluate(self, model: nn.Module, loader: Iterable[Any]) -> dict[str, float]: ...


def observed_l1(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean |prediction − target| over the entries whose target is not NaN (spec §3.2, PCQM4M L1 loss).

    Args:
        prediction: float ``(B, C)``.
        target: float ``(B, C)``, NaN where a label is missing.

    Returns:
        A 0-dim tensor; 0 when no target is observed. Missing entries get an exactly zero gradient.
    """
    observed = ~torch.isnan(target)
    errors = (prediction[observed] - target[observed]).abs()
    return errors.sum() / observed.sum().clamp(min=1)


def observed_bce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean binary cross-entropy with logits over the non-NaN targets (the official ``binary_logloss``).

    Args:
        logits: float ``(B, C)``.
        target: float ``(B, C)`` in {0, 1}, NaN where a label is missing.

    Returns:
        A 0-dim tensor; 0 when no target is observed.
    """
    observed = ~torch.isnan(target)
    losses = F.binary_cross_entropy_with_logits(logits[observed], target[observed], reduction="sum")
    return losses / observed.sum().clamp(min=1)


def roc_auc(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """ROC-AUC of every task (column) by the rank-sum (Mann–Whitney) formula, ties counted one half.

    AUC_c = (Σ_{i positive} r_ic − P_c (P_c + 1) / 2) / (P_c N_c), with r_ic the 1-based rank of score i among the
    observed scores of task c (tied scores share their mean rank), P_c and N_c the numbers of positive and
    negative labels.

    Args:
        scores: float ``(n, C)`` (logits or probabilities).
        labels: float ``(n, C)``: 1 positive, 0 negative, NaN missing.

    Returns:
        float64 ``(C,)``; NaN for a task without both classes.
    """
    observed = ~torch.isnan(labels)
    # Missing entries sort last (+inf) and so never change the ranks of observed ones; real infinities are clamped.
    keys = torch.where(observed, scores.double().nan_to_num(), torch.inf)
    ordered, order = keys.sort(dim=0)
    n = keys.shape[0]
    position = torch.arange(n, device=keys.device, dtype=torch.float64).unsqueeze(1).expand_as(keys)
    changes = ordered[1:] != ordered[:-1]
    edge = torch.ones_like(changes[:1])
    starts = torch.cat([edge, changes])  # first element of a run of equal scores
    ends = torch.cat([changes, edge])  # last element of a run
    first = torch.where(starts, position, 0.0).cummax(dim=0).values
    last = torch.where(ends, position, float(n)).flip(0).cummin(dim=0).values.flip(0)
    ranks = torch.empty_like(keys).scatter_(0, order, (first + last) / 2 + 1)
    positive = observed & (labels == 1)
    n_pos = positive.sum(0).double()
    n_neg = (observed & (labels == 0)).sum(0).double()
    rank_sum = torch.where(positive, ranks, 0.0).sum(0)
    auc = (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    return torch.where((n_pos > 0) & (n_neg > 0), auc, torch.nan)


def _check_shapes(prediction: torch.Tensor, target: torch.Tensor) -> None:
    if prediction.shape != target.shape:
        raise InputError(
            f"batch.y has shape {tuple(target.shape)} but the model predicts {tuple(prediction.shape)}; "
            "the number of targets must match the model's output width"
        )


def _predictions(model: nn.Module, loader: Iterable[Any]) -> tuple[torch.Tensor, torch.Tensor]:
    """``model(batch)`` and ``batch.y`` of every batch, concatenated over batches and ranks: ``(n, C)`` each."""
    predictions, targets = [], []
    for batch in loader:
        prediction = model(batch)
        _check_shapes(prediction, batch.y)
        predictions.append(prediction.double())
        targets.append(batch.y.double())
    return _gather_rows(torch.cat(predictions)), _gather_rows(torch.cat(targets))


@dataclass
class RegressionObjective:
    """L1 loss over the observed targets of ``model(batch) -> (B, C)`` against ``batch.y`` (spec §3.2).

    With ``target_mean``/``target_std`` (one value per target; :meth:`standardising` fits them) the model learns
    standardised targets (y − μ)/σ and :meth:`predict` maps its outputs back. The official code regresses raw
    targets, which suits PCQM4M's gaps of a few eV; a target like TPSA (0–300 Å²) would otherwise need the output
    bias to travel ~80 units at Adam's ~lr per step.

    Validation metric ``mae``: mean absolute error over every observed target of the validation set, in target units.
    """

    metric: str = "mae"
    target_mean: tuple[float, ...] | None = None
    target_std: tuple[float, ...] | None = None

    @classmethod
    def standardising(cls, targets: torch.Tensor) -> RegressionObjective:
        """Mean and standard deviation of each column of the training targets ``(n, C)`` (NaN = missing)."""
        mean = targets.double().nanmean(0)
        centred = (targets.double() - mean).square()
        observed = (~torch.isnan(targets)).sum(0).clamp(min=2)
        std = (centred.nansum(0) / (observed - 1)).sqrt()
        std = torch.where(std > 0, std, torch.ones_like(std))
        return cls(target_mean=tuple(mean.nan_to_num(0.0).tolist()), target_std=tuple(std.tolist()))

    def _scale(self, reference: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.target_mean is None or self.target_std is None:
            return reference.new_zeros(()), reference.new_ones(())
        return reference.new_tensor(self.target_mean), reference.new_tensor(self.target_std)

    def predict(self, output: torch.Tensor) -> torch.Tensor:
        """Model outputs ``(B, C)`` in target units."""
        mean, std = self._scale(output)
        return output * std + mean

    def loss(
        self, model: nn.Module, batch: Any, step: int, total_steps: int
    ) -> tuple[torch.Tensor, dict[str, float]]:
        prediction = model(batch)
        _check_shapes(prediction, batch.y)
        mean, std = self._scale(prediction)
        return observed_l1(prediction, (batch.y - mean) / std), {}

    def evaluate(self, model: nn.Module, loader: Iterable[Any]) -> dict[str, float]:
        prediction, target = _predictions(model, loader)
        return {"mae": observed_l1(self.predict(prediction), target).item()}


@dataclass
class ClassificationObjective:
    """Binary cross-entropy with logits over the observed labels of ``model(batch) -> (B, C)`` (spec §3.2, molhiv).

    Validation metrics: ``auc`` (ROC-AUC averaged over the tasks that have both classes, as OGB's evaluator),
    ``one_minus_auc`` (the minimised ``metric``) and ``bce``.
    """

    metric: str = "one_minus_auc"

    def loss(
        self, model: nn.Module, batch: Any, step: int, total_steps: int
    ) -> tuple[torch.Tensor, dict[str, float]]:
        logits = model(batch)
        _check_shapes(logits, batch.y)
        return observed_bce(logits, batch.y), {}

    def evaluate(self, model: nn.Module, loader: Iterable[Any]) -> dict[str, float]:
        logits, labels = _predictions(model, loader)
        per_task = roc_auc(logits, labels)
        scored = per_task[~torch.isnan(per_task)]
        if scored.numel() == 0:
            raise InputError(
                "validation set: no task has both positive and negative labels, so ROC-AUC is undefined"
            )
        auc = scored.mean().item()
        return {"auc": auc, "one_minus_auc": 1.0 - auc, "bce": observed_bce(logits, labels).item()}


def atoms_inputs(batch: Any) -> tuple[torch.Tensor, ...]:
    """The forward arguments of Graphormer-3D from an ``AtomsBatch``: ``(atoms, tags, pos, real_mask)``."""
    return batch.atoms, batch.tags, batch.pos, batch.real_mask


def _whole_batch(batch: Any) -> tuple[Any]:
    return (batch,)


def _leading_size(outputs: Any) -> int:
    """The batch size of a model's outputs: dim 0 of the first tensor found."""
    if isinstance(outputs, torch.Tensor):
        return outputs.shape[0]
    return _leading_size(outputs[0])


@dataclass
class ModelLossObjective:
    """For models that own their criterion, such as Graphormer-3D (spec §3.3)::

        outputs = model(*inputs(batch));  loss, parts = model.loss(batch, outputs, step, total_steps)

    Validation averages the loss and every part over the validation examples, at the (step, total_steps) of the
    latest training step. Losses with a step-dependent weight (the 3D model's λ_node) change meaning along
    training, so choose a step-independent part as ``metric`` for early stopping (e.g. the energy term).

    Attributes:
        inputs: maps a batch to the model's positional arguments (:func:`atoms_inputs` for ``AtomsBatch``;
            the default passes the batch itself).
        metric: the minimised validation key: ``"loss"`` or the name of one of the parts.
        loss_options: keyword arguments of ``model.loss`` (e.g. ``{"node_loss": False}`` for Graphormer-3D's
            energy-only ablation).
    """

    inputs: Callable[[Any], Sequence[Any]] = _whole_batch
    metric: str = "loss"
    loss_options: dict[str, Any] = field(default_factory=dict)
    latest_step: tuple[int, int] = field(default=(0, 1), init=False, repr=False)

    def loss(
        self, model: nn.Module, batch: Any, step: int, total_steps: int
    ) -> tuple[torch.Tensor, dict[str, float]]:
        self.latest_step = (step, total_steps)
        outputs = model(*self.inputs(batch))
        loss, parts = unwrap(model).loss(batch, outputs, step, total_steps, **self.loss_options)
        return loss, {name: float(torch.as_tensor(value).detach()) for name, value in parts.items()}

    def evaluate(self, model: nn.Module, loader: Iterable[Any]) -> dict[str, float]:
        sums: dict[str, float] = {}
        examples = 0
        for batch in loader:
            outputs = model(*self.inputs(batch))
            loss, parts = model.loss(batch, outputs, *self.latest_step, **self.loss_options)
            size = _leading_size(outputs)
            for name, value in {"loss": loss, **parts}.items():
                sums[name] = sums.get(name, 0.0) + float(torch.as_tensor(value)) * size
            examples += size
        return {name: total / max(examples, 1) for name, total in sums.items()}


def _counted(batches: Iterable[Any], bar: Any) -> Iterator[Any]:
    """The batches of ``batches``, counting each one on the progress reporter ``bar`` once it has been used."""
    for batch in batches:
        yield batch
        bar.update(1)


def evaluate(
    model: nn.Module,
    objective: Objective,
    batches: Iterable[Any],
    *,
    desc: str = "evaluate",
    total: int | None = None,
    disable: bool = False,
) -> dict[str, float]:
    """``objective.evaluate`` of ``model`` in eval mode, without gradients, over ``batches`` (already on the device).

    Progress goes through :func:`papers_common.progress` (``total`` batches, labelled ``desc``): a bar on a terminal,
    and in a log a record every 30 s and one at the end that carries ``objective.metric``. The model's training
    mode is restored afterwards.
    """
    training = model.training
    model.eval()
    try:
        with (
            progress(total=total, desc=desc, unit="batch", leave=False, disable=disable) as bar,
            torch.no_grad(),
        ):
            metrics = objective.evaluate(model, _counted(batches, bar))
            if objective.metric in metrics:
                bar.set_postfix({objective.metric: metrics[objective.metric]}, refresh=False)
    finally:
        model.train(training)
    return metrics


# ---------------------------------------------------------------------------------------------------- fitting


@dataclass
class FitResult:
    """What :func:`fit` reports.

    Attributes:
        best_metric: the lowest validation ``objective.metric`` (inf before any validation); best_step: its step.
        steps: updates made in total (over resumed sessions too); seconds: training wall time, summed likewise.
        history: one record per validation: ``{"step": s, **metrics}``.
        stopped_early: whether early stopping ended the run.
        best_state: the best weights (CPU copies; the model itself keeps the last weights).
    """

    best_metric: float
    best_step: int
    steps: int
    seconds: float
    history: list[dict[str, float]]
    stopped_early: bool = False
    best_state: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)


def _to_device(batch: Any, device: torch.device) -> Any:
    """Move a batch (anything with ``.to``, or a tuple/list/dict of such) to ``device``."""
    if hasattr(batch, "to"):
        return batch.to(device)
    if isinstance(batch, Mapping):
        return {key: _to_device(value, device) for key, value in batch.items()}
    if isinstance(batch, (tuple, list)):
        return type(batch)(_to_device(value, device) for value in batch)
    return batch


class _OnDevice:
    """Iterate a data loader with every batch moved to ``device``."""

    def __init__(self, loader: DataLoader, device: torch.device) -> None:
        self.loader, self.device = loader, device

    def __iter__(self) -> Iterator[Any]:
        return (_to_device(batch, self.device) for batch in self.loader)

    def __len__(self) -> int:
        return len(self.loader)


class _EpochBatches(Sampler[list[int]]):
    """Batches of one epoch of a (distributed, shuffled) sampler; ``skip`` drops the first batches on resume."""

    def __init__(self, sampler: DistributedSampler, batch_size: int) -> None:
        self.sampler, self.batch_size, self.skip = sampler, batch_size, 0

    def start(self, epoch: int, skip: int) -> None:
        self.sampler.set_epoch(epoch)
        self.skip = skip

    def __iter__(self) -> Iterator[list[int]]:
        order = list(self.sampler)
        for first in range(self.skip * self.batch_size, len(order), self.batch_size):
            yield order[first : first + self.batch_size]

    def __len__(self) -> int:
        return math.ceil(len(self.sampler) / self.batch_size) - self.skip


def _finite_or_none(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None (strict JSON has no NaN or infinity)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {key: _finite_or_none(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite_or_none(item) for item in value]
    return value


def _model_config(model: nn.Module) -> Any:
    config = getattr(model, "config", None)
    return to_jsonable(config) if dataclasses.is_dataclass(config) else None


def _mean_over_ranks(values: dict[str, float], weight: int, context: DistributedContext) -> dict[str, float]:
    """Average ``values`` over ranks weighted by ``weight`` (all-reduce of weighted sums and of the weights)."""
    if not context.distributed:
        return values
    names = sorted(values)
    totals = torch.tensor(
        [values[n] * weight for n in names] + [weight], dtype=torch.float64, device=context.device
    )
    dist.all_reduce(totals)
    return {name: (totals[i] / totals[-1]).item() for i, name in enumerate(names)}


def _resume(
    run: RunDir,
    recorded: dict[str, Any],
    module: nn.Module,
    optimizer: torch.optim.Optimizer,
    context: DistributedContext,
) -> Checkpoint | None:
    """Restore weights and optimizer from the newest checkpoint of ``run`` on every rank; rank 0 checks settings."""
    checkpoint = None
    if context.is_main:
        checkpoint = resume_run(run, recorded, list(recorded), module, optimizer, map_location=context.device)
    if context.distributed:
        dist.barrier()  # rank 0 has compared the settings and written config.json; the others read the same file
        if not context.is_main and (found := latest_checkpoint(run.checkpoints)) is not None:
            checkpoint = load_checkpoint(found, map_location=context.device)
            checkpoint.restore(module, optimizer, rng=False)
    return checkpoint


def _sha256(path: os.PathLike[str] | str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _save_best(module: nn.Module, folder: os.PathLike[str] | str, extra: dict[str, Any]) -> str:
    """Write ``module``'s weights to ``folder`` as ``config.json`` + ``model.safetensors``; returns the weights' SHA-256.

    A :class:`papers_common.Pretrained` model is saved with ``save_pretrained(folder, extra=extra)``, which
    ``from_pretrained`` reads back. Any other module (no dataclass config to rebuild it from) gets the same two
    files, its config holding only ``architectures`` and ``extra``, for :func:`fit` to resume from. Files of the
    0.1.0 layout (``step-*``) left by a resumed run are removed.
    """
    folder = Path(folder)
    if isinstance(module, Pretrained):
        module.save_pretrained(folder, extra=extra)
    else:
        with atomic_path(folder / WEIGHTS_FILE) as tmp:
            save_model(module, os.fspath(tmp), metadata={"format": "pt"})
        write_json(folder / CONFIG_FILE, {"architectures": [type(module).__name__], "extra": extra})
    for stale in folder.glob("step-*"):
        stale.unlink()
    return _sha256(folder / WEIGHTS_FILE)


def _best_weights(run: RunDir, state: Mapping[str, Any], module: nn.Module) -> dict[str, torch.Tensor]:
    """The best weights stored in ``run`` (CPU copies) if they are those the checkpoint's ``state`` recorded, else {}.

    The checkpoint written after each validation records the SHA-256 of the best weights file. A crash after new
    best weights were written (in part or in full) and before that checkpoint leaves a file that does not match;
    the replayed validation of that step then writes them again. A run of graphormer2 0.1.0 kept a training
    checkpoint in ``best/``, matched by its step.
    """
    folder = run.root / BEST_DIR
    weights = folder / WEIGHTS_FILE
    if (folder / CONFIG_FILE).is_file() and weights.is_file():
        if state.get("best_sha256") != _sha256(weights):
            return {}
        shadow = copy.deepcopy(module).cpu()
        load_model(shadow, os.fspath(weights))
        return {name: value.detach().clone() for name, value in shadow.state_dict().items()}
    if latest_checkpoint(folder) is None:
        return {}
    best = load_checkpoint(folder, map_location="cpu")
    return best.model if best.step == state["best_step"] else {}


def fit(
    model: nn.Module,
    train_set: Dataset,
    valid_set: Dataset,
    collate_fn: Callable[[list[Any]], Any],
    objective: Objective,
    config: TrainConfig,
    *,
    run: RunDir | None = None,
    device: torch.device | str = "cpu",
    extra_config: Mapping[str, Any] | None = None,
    best_extra: Mapping[str, Any] | None = None,
) -> FitResult:
    """Train ``model`` on ``train_set``, validate on ``valid_set``, keep the best weights; resume from ``run``.

    Each step: learning rate η(step) (:func:`learning_rate`), torch's global generator (dropout) reseeded with
    ``seed + step`` as fairseq does, loss by ``objective``, backward, global-norm clipping, AdamW update. The data
    order of epoch e comes from ``DistributedSampler(seed=seed)`` at epoch e (which pads the last shard with a few
    repeated items when the set does not split evenly across processes). With a ``run`` directory, rank 0 writes
    ``config.json`` (the resolved settings), ``metrics.jsonl`` (training loss every ``log_every`` steps,
    validation metrics prefixed ``valid_``), checkpoints under ``checkpoints/`` (weights, optimizer, step and
    early-stopping state; the newest ``keep_checkpoints`` kept), the best weights under ``best/`` (a
    ``save_pretrained`` folder whose ``extra`` is ``best_extra`` plus ``step`` and ``valid_<metric>``) and the
    :class:`FitResult` in ``fit.json``. Calling ``fit`` again on the same ``run`` with the same settings continues
    from the newest complete checkpoint and gives the same weights as an uninterrupted run.

    Args:
        model: maps a collated batch to predictions; moved to ``device``.
        train_set, valid_set: map-style datasets of items for ``collate_fn``.
        collate_fn: items -> batch (``graphormer2.collate.collate``, ``graphormer2.atoms.collate_atoms``).
        objective: loss and validation metrics (:class:`RegressionObjective`, :class:`ClassificationObjective`,
            :class:`ModelLossObjective` or your own :class:`Objective`).
        config: optimisation settings.
        run: where to write logs and checkpoints, and to resume from; None: nothing is written.
        device: ``"cpu"``, ``"cuda"``, ``"auto"``...; under torchrun each rank uses GPU ``LOCAL_RANK``.
        extra_config: more settings to record in ``config.json`` and to require equal on resume (e.g. the data).
        best_extra: JSON values to store with the best weights (``best/config.json``'s ``extra``): what predicting
            from that folder alone needs, such as target names and scaling or featurisation settings. Not compared
            on resume.

    Raises:
        InputError: empty datasets, fewer validation items than processes, a resume with other settings, or a
            non-finite loss or gradient (the message names the step; the last good weights are checkpointed).
    """
    if len(train_set) == 0:
        raise InputError("train_set: the training set is empty")
    with distributed_context(device) as context:
        if len(valid_set) < context.world_size:
            raise InputError(
                f"valid_set: {len(valid_set)} item(s) cannot be shared among {context.world_size} processes"
            )
        module = model.to(context.device)
        optimizer = torch.optim.AdamW(
            module.parameters(),
            lr=config.lr,
            betas=config.betas,
            eps=config.eps,
            weight_decay=config.weight_decay,
        )
        sampler = DistributedSampler(
            train_set, num_replicas=context.world_size, rank=context.rank, shuffle=True, seed=config.seed
        )
        batches = _EpochBatches(sampler, config.batch_size)
        loader_seed = torch.Generator()
        train_loader = DataLoader(train_set, batch_sampler=batches, collate_fn=collate_fn,
                                  num_workers=config.num_workers, generator=loader_seed)  # fmt: skip
        shard = Subset(valid_set, range(context.rank, len(valid_set), context.world_size))
        valid_loader = DataLoader(shard, batch_size=config.eval_batch_size or config.batch_size,
                                  collate_fn=collate_fn, num_workers=config.num_workers)  # fmt: skip
        steps_per_epoch = math.ceil(len(sampler) / config.batch_size)
        total = config.max_steps if config.max_steps is not None else config.epochs * steps_per_epoch

        recorded = {
            "train": to_jsonable(config),
            "model_class": type(module).__name__,
            "model": _model_config(module),
            "objective": {"class": type(objective).__name__, "metric": objective.metric},
            "data": {"train": len(train_set), "valid": len(valid_set), "world_size": context.world_size},
            "extra": to_jsonable(dict(extra_config or {})),
        }
        state: dict[str, Any] = {"best_metric": math.inf, "best_step": 0, "bad_evals": 0, "history": [],
                                 "stopped_early": False, "seconds": 0.0, "loss_sum": 0.0, "loss_count": 0}  # fmt: skip
        best_state: dict[str, torch.Tensor] = {}
        step = 0
        checkpoint = None if run is None else _resume(run, recorded, module, optimizer, context)
        if checkpoint is not None:
            step = checkpoint.step
            state.update(checkpoint.extra)
            best_state = _best_weights(run, state, module)

        trained = (
            DistributedDataParallel(
                module,
                device_ids=[context.device.index] if context.device.type == "cuda" else None,
                find_unused_parameters=config.find_unused_parameters,
            )
            if context.distributed
            else module
        )

        def save(at: int) -> None:
            if run is not None and context.is_main:
                save_checkpoint(run.checkpoints, at, module, optimizer=optimizer, config=recorded,
                                extra=state, rng=False, keep=config.keep_checkpoints)  # fmt: skip

        def validate(at: int) -> None:
            nonlocal best_state
            module.eval()
            batches = _OnDevice(valid_loader, context.device)
            with progress(total=len(batches), desc=f"validate at step {at}", unit="batch", leave=False,
                          disable=not context.is_main) as validating, torch.no_grad():  # fmt: skip
                metrics = objective.evaluate(module, _counted(batches, validating))
                if objective.metric not in metrics:
                    raise InputError(
                        f"{type(objective).__name__}.evaluate returned no {objective.metric!r} metric"
                    )
                metrics = _mean_over_ranks(metrics, len(shard), context)
                validating.set_postfix({objective.metric: metrics[objective.metric]}, refresh=False)
            module.train()
            state["history"].append({"step": at, **metrics})
            if metrics[objective.metric] < state["best_metric"]:
                state.update(best_metric=metrics[objective.metric], best_step=at, bad_evals=0)
                best_state = {
                    name: value.detach().cpu().clone() for name, value in module.state_dict().items()
                }
                if run is not None and context.is_main:
                    saved = {**to_jsonable(dict(best_extra or {})), "step": at,
                             f"valid_{objective.metric}": state["best_metric"]}  # fmt: skip
                    state["best_sha256"] = _save_best(module, run.root / BEST_DIR, saved)
            else:
                state["bad_evals"] += 1
            state["stopped_early"] = 0 < config.patience <= state["bad_evals"]
            if run is not None and context.is_main:
                run.log(at, **{f"valid_{name}": value for name, value in metrics.items()})

        def fail(at: int, what: str) -> InputError:
            save(at)
            return InputError(
                f"the {what} became non-finite at step {at + 1}; lower lr or check the data "
                f"(the model keeps the weights after step {at}{', checkpointed' if run is not None else ''})"
            )

        bar = progress(total=total, initial=step, desc="train", unit="step", disable=not context.is_main)
        began = time.perf_counter() - state["seconds"]
        module.train()
        while step < total and not state["stopped_early"]:
            epoch, done_in_epoch = divmod(step, steps_per_epoch)
            batches.start(epoch, done_in_epoch)
            loader_seed.manual_seed(config.seed + epoch)
            for batch in train_loader:
                rate = learning_rate(config, step, total)
                for group in optimizer.param_groups:
                    group["lr"] = rate
                torch.manual_seed(config.seed + step)
                loss, parts = objective.loss(trained, _to_device(batch, context.device), step, total)
                mean_loss = loss.detach().clone()
                if context.distributed:
                    dist.all_reduce(mean_loss)
                    mean_loss /= context.world_size
                if not torch.isfinite(mean_loss):
                    raise fail(step, "loss")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                norm = nn.utils.clip_grad_norm_(module.parameters(), config.clip_norm or math.inf)
                if not torch.isfinite(norm):
                    raise fail(step, "gradient norm")
                optimizer.step()
                step += 1
                state["loss_sum"] += mean_loss.item()
                state["loss_count"] += 1
                bar.set_postfix(epoch=epoch + 1, loss=f"{mean_loss.item():.4g}", refresh=False)
                bar.update(1)
                if step % config.log_every == 0 or step == total:
                    if run is not None and context.is_main:
                        mean = state["loss_sum"] / state["loss_count"]
                        run.log(
                            step,
                            **{**parts, "loss": mean, "lr": rate, "grad_norm": norm.item(), "epoch": epoch},
                        )
                    state.update(loss_sum=0.0, loss_count=0)
                evaluated = step == total or step % (config.eval_every or steps_per_epoch) == 0
                if evaluated:
                    validate(step)
                state["seconds"] = time.perf_counter() - began
                if evaluated or (config.checkpoint_every and step % config.checkpoint_every == 0):
                    save(step)
                if step >= total or state["stopped_early"]:
                    break
        bar.close()
        result = FitResult(
            best_metric=state["best_metric"],
            best_step=state["best_step"],
            steps=step,
            seconds=state["seconds"],
            history=state["history"],
            stopped_early=state["stopped_early"],
            best_state=best_state,
        )
        if run is not None and context.is_main:
            run.write_json("fit.json", _finite_or_none({
                "best_metric": result.best_metric, "best_step": result.best_step, "steps": result.steps,
                "seconds": result.seconds, "stopped_early": result.stopped_early, "history": result.history}))  # fmt: skip
        return result
