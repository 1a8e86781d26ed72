"""Training with the RotatE recipe: self-adversarial negative sampling, subsampling weights, alternating head- and
tail-batch steps, an entity-norm regulariser, and Adam whose learning rate drops tenfold at the warm-up step
(the next drop point is then twice as far).

Loss per batch (p_ij = softmax_j(α f(h, r, t'_ij)), detached; w_i the subsampling weights):

    L_pos = −Σ_i w_i log σ(f_i) / Σ_i w_i,   L_neg = −Σ_i w_i Σ_j p_ij log σ(−f_ij) / Σ_i w_i,
    L = (L_pos + L_neg) / 2 + reg · mean_e ‖E_e‖_F.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

import torch
import torch.nn.functional as F

from house_kge.data import KnowledgeGraph, subsampling_weights
from house_kge.evaluation import evaluate
from house_kge.models import BlockModel
from house_kge.sampling import AnswerIndex, sample_negatives
from house_kge.saved import MODEL_FOLDER, save_trained
from papers_common import (
    InputError,
    RunDir,
    progress,
    resume_run,
    save_checkpoint,
)


@dataclass
class TrainConfig:
    """Optimisation settings (official flag in brackets).

    Attributes:
        steps: optimizer steps [max_steps]; batch_size [b]; negatives per positive [n].
        alpha: self-adversarial temperature α [a]; 0 weighs negatives uniformly.
        lr: initial Adam learning rate; warm_up: the step after which it is divided by 10 and Adam restarts
            (None: steps // 2); later drops come at 2·warm_up, 4·warm_up, ...
        regularization: weight of mean_e ‖E_e‖_F [r]; regularization_scope: over every entity (``all``, the
            official choice) or over the entities of the batch (``batch``, cheaper on large graphs).
        filter_negatives: skip true triples when sampling negatives (the toolkit does).
        uniform_weight: weigh every positive equally instead of by subsampling weights [uni_weight].
        eval_every: evaluate on the validation split every this many steps (0: never during training).
    """

    steps: int = 10_000
    batch_size: int = 512
    negatives: int = 128
    alpha: float = 1.0
    lr: float = 1e-3
    warm_up: int | None = None
    regularization: float = 0.0
    regularization_scope: Literal["all", "batch"] = "all"
    filter_negatives: bool = True
    uniform_weight: bool = False
    log_every: int = 100
    eval_every: int = 0
    eval_batch_size: int = 256
    checkpoint_every: int = 1000

    def __post_init__(self) -> None:
        for name, least in (("steps", 0), ("batch_size", 1), ("negatives", 1), ("log_every", 1), ("eval_every", 0),
                            ("eval_batch_size", 1), ("checkpoint_every", 0)):  # fmt: skip
            if getattr(self, name) < least:
                raise InputError(f"{name} must be at least {least}, got {getattr(self, name)}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise InputError(f"lr must be positive and finite, got {self.lr}")
        if self.regularization_scope not in ("all", "batch"):
            raise InputError(
                f"regularization_scope must be 'all' or 'batch', got {self.regularization_scope!r}"
            )
        if self.warm_up is not None and self.warm_up < 1:
            raise InputError(f"warm_up must be at least 1 (or unset for steps // 2), got {self.warm_up}")
        if self.alpha < 0 or self.regularization < 0:
            raise InputError(
                f"alpha and regularization must be non-negative, got {self.alpha} and {self.regularization}"
            )

    @property
    def first_drop(self) -> int:
        return self.warm_up if self.warm_up is not None else self.steps // 2


def sized_for(config: TrainConfig, graph: KnowledgeGraph) -> tuple[TrainConfig, dict[str, tuple[int, int]]]:
    """``config`` with the batch capped at the number of training triples and the negatives at the number of
    distinct candidates (E − 1 when true triples are filtered out, as the true answer is then never drawn; else E);
    and ``{field: (asked, used)}`` for each capped field.

    Benchmark defaults (batch 512, 128 negatives) on a graph of a few dozen triples would otherwise score the same
    entities many times over in every step.
    """
    limits = {
        "batch_size": max(1, graph.train.shape[0]),
        "negatives": max(1, graph.num_entities - 1 if config.filter_negatives else graph.num_entities),
    }
    capped = {
        name: (getattr(config, name), limit)
        for name, limit in limits.items()
        if getattr(config, name) > limit
    }
    return replace(config, **{name: used for name, (_, used) in capped.items()}), capped


def learning_rate(config: TrainConfig, step: int) -> float:
    """The toolkit's schedule for the 0-based ``step``: ``lr``, divided by 10 after each drop point.

    The official loop trains step ``warm_up`` at the old rate and lowers the rate after it, then doubles the drop
    point; so step s uses lr / 10^#{drops d_i < s}, d_i = warm_up · 2^i.
    """
    rate, drop = config.lr, config.first_drop
    while drop > 0 and step > drop:
        rate /= 10
        drop *= 2
    return rate


def adversarial_loss(
    positive: torch.Tensor, negative: torch.Tensor, weight: torch.Tensor, alpha: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """(L_pos, L_neg) for scores ``positive`` ``(B,)``, ``negative`` ``(B, N)`` and weights ``(B,)``."""
    if alpha > 0:
        probabilities = F.softmax(alpha * negative, dim=1).detach()
        negative_term = (probabilities * F.logsigmoid(-negative)).sum(1)
    else:
        negative_term = F.logsigmoid(-negative).mean(1)
    total = weight.sum()
    return -(weight * F.logsigmoid(positive)).sum() / total, -(weight * negative_term).sum() / total


@dataclass
class TrainResult:
    steps: int
    seconds: float
    triples_per_second: float
    metrics: dict[str, float] = field(default_factory=dict)


def train(
    model: BlockModel,
    graph: KnowledgeGraph,
    config: TrainConfig,
    *,
    seed: int = 0,
    device: torch.device | str = "cpu",
    run: RunDir | None = None,
    extra_config: dict[str, Any] | None = None,
) -> TrainResult:
    """Train ``model`` on ``graph.train``; validation metrics every ``eval_every`` steps.

    With ``run``, training resumes from its latest checkpoint, logs to its ``metrics.jsonl``, and the trained model
    is saved at the end as ``run/model`` (:func:`house_kge.saved.save_trained`: weights, config, vocabulary and
    triples). Progress (steps, latest loss) goes through :func:`papers_common.progress`.
    """
    device = torch.device(device)
    model.to(device)
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    positives = graph.train
    weights = subsampling_weights(positives, graph.num_relations)
    train_index = (
        AnswerIndex(positives, graph.num_entities, graph.num_relations) if config.filter_negatives else None
    )
    recorded = {
        "dataset": graph.describe(),
        "model_class": type(model).__name__,
        "model": asdict(model.config),
        "train": asdict(config),
        "seed": seed,
        **(extra_config or {}),
    }
    state = {"order": torch.randperm(positives.shape[0], generator=generator), "cursor": 0}
    start = 0
    if run is not None:
        compared = ("dataset", "model_class", "model", "train")
        checkpoint = resume_run(run, recorded, compared, model, optimizer, map_location=device)
        if checkpoint is not None:
            generator.set_state(checkpoint.extra["generator"].cpu())
            state = {"order": checkpoint.extra["order"].long(), "cursor": int(checkpoint.extra["cursor"])}
            start = checkpoint.step

    def save(step: int) -> None:
        if run is not None:
            extra = {"generator": generator.get_state(), "order": state["order"], "cursor": state["cursor"]}
            save_checkpoint(
                run.checkpoints, step, model, optimizer=optimizer, config=recorded, extra=extra, keep=2
            )

    def next_batch() -> torch.Tensor:
        if state["cursor"] + config.batch_size > positives.shape[0]:
            state["order"] = torch.randperm(positives.shape[0], generator=generator)
            state["cursor"] = 0
        rows = state["order"][state["cursor"] : state["cursor"] + config.batch_size]
        state["cursor"] += config.batch_size
        return rows

    model.train()
    began = time.perf_counter()
    bar = progress(
        range(start, config.steps),
        desc=f"{graph.name}/{type(model).__name__}",
        total=config.steps,
        initial=start,
        unit="step",
    )
    valid_index = None
    shown = -math.inf  # when the loss was last shown
    for step in bar:
        rate = learning_rate(config, step)
        if step > 0 and rate != learning_rate(config, step - 1):
            optimizer.state.clear()  # the official code builds a new Adam at every drop: its moments restart
        for group in optimizer.param_groups:
            group["lr"] = rate
        rows = next_batch()
        batch = positives[rows]
        direction = "head" if step % 2 == 0 else "tail"  # the toolkit starts with a tail-batch (README)
        known = batch[:, 2] if direction == "head" else batch[:, 0]
        target = batch[:, 0] if direction == "head" else batch[:, 2]
        negatives = sample_negatives(known, batch[:, 1], config.negatives, graph.num_entities, direction,
                                     index=train_index, generator=generator)  # fmt: skip
        candidates = torch.cat([target.unsqueeze(1), negatives], dim=1).to(device)
        scores = model.score_candidates(known.to(device), batch[:, 1].to(device), candidates, direction)
        weight = torch.ones(len(rows), device=device) if config.uniform_weight else weights[rows].to(device)
        loss_pos, loss_neg = adversarial_loss(scores[:, 0], scores[:, 1:], weight, config.alpha)
        loss = (loss_pos + loss_neg) / 2
        if config.regularization:
            ids = (
                None
                if config.regularization_scope == "all"
                else torch.unique(torch.cat([known.to(device).unsqueeze(1), candidates], 1))
            )
            loss = loss + config.regularization * model.entity_norm(ids)
        if not torch.isfinite(loss):
            save(step)
            raise InputError(
                f"the loss became non-finite at step {step + 1}; lower --lr (last good weights checkpointed)"
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        done = step + 1
        logged = done % config.log_every == 0 or done == config.steps
        # the loss shown with the progress is at most a second old; reading it more often would make a GPU wait
        if logged or time.perf_counter() - shown >= 1.0:
            value = loss.detach().item()
            bar.set_postfix(loss=f"{value:.4f}")
            shown = time.perf_counter()
        if logged and run is not None:
            run.log(done, loss=value, positive=loss_pos.detach().item(), negative=loss_neg.detach().item(),
                    lr=learning_rate(config, step))  # fmt: skip
        if (
            config.eval_every
            and done % config.eval_every == 0
            and done != config.steps
            and graph.valid.numel()
        ):
            valid_index = valid_index or AnswerIndex(
                graph.all_triples(), graph.num_entities, graph.num_relations
            )
            metrics = evaluate(
                model, graph.valid, valid_index, batch_size=config.eval_batch_size, desc=f"valid@{done}"
            )
            if run is not None:
                run.log(done, **{f"valid_{k}": v for k, v in metrics.items()})
        if done == config.steps or (config.checkpoint_every and done % config.checkpoint_every == 0):
            save(done)
    bar.close()
    seconds = time.perf_counter() - began
    if run is not None:
        save_trained(model, graph, run.path(MODEL_FOLDER))
    trained = config.steps - start
    return TrainResult(
        config.steps, seconds, trained * config.batch_size / seconds if trained else float("nan")
    )
