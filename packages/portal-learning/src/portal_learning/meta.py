"""Out-of-cluster meta-learning (Portal 2): every protein family of OOD-train is a task.

A meta-step draws ``tasks`` families; each gives a class-balanced support set (``support`` positives and as many
negatives) and a disjoint class-balanced query set (``query`` + ``query``). With meta-parameters θ, task i adapts by
``inner_steps`` steps of gradient descent on its support loss,

    θ'_i = θ − α ∇_θ L^s_i(θ)   (repeated; α = ``inner_lr``),                              (1)

and the meta-gradient is the query loss at the adapted weights, summed over tasks:

    MAML:    g = Σ_i ∇_θ L^q_i(θ'_i(θ))            (back-propagated through (1), second order)   (2)
    FOMAML:  g = Σ_i ∇_θ' L^q_i(θ') at θ' = θ'_i   (the Jacobian dθ'/dθ taken as the identity)   (3)

The outer optimiser (Adam) steps θ with g. Adaptation is functional (``torch.func.functional_call``
on a dictionary of tensors): the meta-parameters are never written to by the inner loop. With the fingerprint
encoder the tasks of a meta-step are computed together by ``torch.func.vmap`` (one batched forward and backward
for all of them); molecular graphs differ in size between tasks, so with the GIN they run one after another
(``vmap=False`` gives this path for any model; the two agree, which the tests check).

``mode="official"`` reproduces what the paper's released code effectively does, for comparison: its inner loop
steps the model's own parameters in place and its "reset" copies from those same parameters, so no reset happens.
Task i+1 starts from task i's adapted weights, the query gradients are taken at whichever weights each task ended
on, and the outer step is applied to the weights left by the last task: a sequential, first-order update in which
tasks see each other's inner steps (a Reptile/FOMAML hybrid), not (2) or (3).

BatchNorm normalises with batch statistics inside the meta-gradient (the running statistics are state, not part
of θ, and a transformed function may not write them); after each outer step one forward pass of the new θ over
the meta-step's pairs, without gradients, updates the running statistics that evaluation uses.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, grad, vmap

from papers_common import InputError

MODES = ("fomaml", "maml", "official")
Tensors = dict[str, torch.Tensor]


@dataclass(frozen=True)
class MetaConfig:
    """The meta-learning settings (defaults: the paper's — 5 tasks, support 1 + 1, query 4 + 4, 5 inner SGD steps
    at 0.01, the outer Adam's rate annealed by a cosine over 10 rounds, evaluation every 80 meta-steps). The outer
    learning rate is the trainer's (:class:`portal_learning.train.TrainConfig`)."""

    mode: str = "fomaml"
    tasks: int = 5
    support: int = 1
    query: int = 4
    inner_steps: int = 5
    inner_lr: float = 0.01
    cosine_rounds: int = 10
    steps_per_round: int = 80
    vmap: bool = True

    def check(self) -> None:
        if self.mode not in MODES:
            raise InputError(f"meta-learning mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        for flag, value in (("--tasks", self.tasks), ("--support", self.support), ("--query", self.query),
                            ("--steps-per-round", self.steps_per_round),
                            ("--cosine-rounds", self.cosine_rounds)):  # fmt: skip
            if value < 1:
                raise InputError(f"{flag} must be at least 1, got {value}")
        if self.inner_steps < 0:
            raise InputError(f"--inner-steps must be 0 or more, got {self.inner_steps}")
        if not (self.inner_lr > 0 and math.isfinite(self.inner_lr)):
            raise InputError(f"--inner-lr must be a positive number, got {self.inner_lr}")


@dataclass(frozen=True)
class Task:
    """One family's episode: row indices of its support and query pairs (each class-balanced)."""

    family: str
    support: np.ndarray
    query: np.ndarray


class FamilyTasks:
    """Samples episodes from the families of a set of rows (families with both classes only).

    Args:
        families: ``(n,)`` family of every row of the data.
        labels: ``(n,)`` 0/1 labels.
        rows: the rows to draw from (OOD-train).
    """

    def __init__(self, families: np.ndarray, labels: np.ndarray, rows: np.ndarray) -> None:
        self.pools: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for family in sorted(set(families[rows].tolist())):
            mine = rows[families[rows] == family]
            positive, negative = mine[labels[mine] == 1], mine[labels[mine] == 0]
            if len(positive) and len(negative):
                self.pools[family] = (positive, negative)
        if not self.pools:
            raise InputError(
                "no family of OOD-train has both active and inactive pairs: nothing to meta-learn"
            )
        self.names = list(self.pools)

    def sample(self, rng: np.random.Generator, tasks: int, support: int, query: int) -> list[Task]:
        """``tasks`` distinct families (drawn with repeats when there are fewer families than tasks); per class
        ``support`` and ``query`` rows, disjoint where the family has enough, else drawn with replacement."""
        chosen = rng.choice(len(self.names), size=tasks, replace=tasks > len(self.names))
        found = []
        for index in chosen:
            family = self.names[int(index)]
            support_rows, query_rows = [], []
            for pool in self.pools[family]:
                need = support + query
                drawn = rng.choice(pool, size=need, replace=len(pool) < need)
                support_rows.append(drawn[:support])
                query_rows.append(drawn[support:])
            found.append(Task(family, np.concatenate(support_rows), np.concatenate(query_rows)))
        return found


Batch = tuple[Any, torch.Tensor]  # (model inputs, labels)


def task_loss(model: nn.Module, params: Tensors, batch: Batch) -> torch.Tensor:
    """Cross-entropy of ``model`` evaluated with ``params`` in place of its trainable tensors."""
    inputs, labels = batch
    return nn.functional.cross_entropy(functional_call(model, params, inputs), labels)


def adapt(model: nn.Module, params: Tensors, support: Batch, steps: int, lr: float) -> Tensors:
    """Eq. (1): ``steps`` gradient-descent steps on the support loss, as new tensors (``params`` untouched);
    differentiable with respect to ``params`` when called inside :func:`torch.func.grad`."""
    loss_grad = grad(lambda p: task_loss(model, p, support))
    for _ in range(steps):
        gradients = loss_grad(params)
        params = {name: value - lr * gradients[name] for name, value in params.items()}
    return params


def task_gradient(
    model: nn.Module, params: Tensors, support: Batch, query: Batch, config: MetaConfig
) -> tuple[Tensors, torch.Tensor]:
    """One task's meta-gradient — eq. (2) for ``maml``, eq. (3) for ``fomaml`` — and its query loss."""

    def query_loss(p: Tensors) -> tuple[torch.Tensor, torch.Tensor]:
        loss = task_loss(model, p, query)
        return loss, loss.detach()

    if config.mode == "maml":
        return grad(lambda p: query_loss(adapt(model, p, support, config.inner_steps, config.inner_lr)),
                    has_aux=True)(params)  # fmt: skip
    adapted = adapt(model, params, support, config.inner_steps, config.inner_lr)
    return grad(query_loss, has_aux=True)({name: value.detach() for name, value in adapted.items()})


def stack_batches(batches: list[Batch]) -> Batch:
    """Tasks' batches of equal shapes stacked on a new first dimension (``(T, ...)``) for :func:`torch.func.vmap`."""
    inputs = tuple(torch.stack([b[0][k] for b in batches]) for k in range(len(batches[0][0])))
    return inputs, torch.stack([b[1] for b in batches])


@contextmanager
def batch_statistics(model: nn.Module) -> Iterator[None]:
    """BatchNorm layers normalise with batch statistics and leave their running statistics alone."""
    layers = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    tracked = [m.track_running_stats for m in layers]
    for m in layers:
        m.track_running_stats = False
    try:
        yield
    finally:
        for m, flag in zip(layers, tracked, strict=True):
            m.track_running_stats = flag


def meta_gradient(
    model: nn.Module,
    supports: list[Batch],
    queries: list[Batch],
    config: MetaConfig,
    *,
    batched: bool,
) -> tuple[Tensors, float]:
    """The summed meta-gradient of eq. (2)/(3) over tasks (for the trainable parameters) and the mean query loss;
    the model is read, never written. ``batched`` computes every task at once with :func:`torch.func.vmap` (the
    batches' tensors must have equal shapes across tasks); otherwise tasks run in turn."""
    params = {name: p.detach() for name, p in model.named_parameters() if p.requires_grad}
    with batch_statistics(model):
        if batched:
            grads, losses = vmap(lambda p, s, q: task_gradient(model, p, s, q, config), in_dims=(None, 0, 0),
                                 randomness="different")(params, stack_batches(supports), stack_batches(queries))  # fmt: skip
            return {name: g.sum(0) for name, g in grads.items()}, float(losses.mean())
        summed = {name: torch.zeros_like(p) for name, p in params.items()}
        losses = []
        for support, query in zip(supports, queries, strict=True):
            grads, loss = task_gradient(model, params, support, query, config)
            for name, g in grads.items():
                summed[name] += g
            losses.append(float(loss))
    return summed, float(np.mean(losses))


def official_step(
    model: nn.Module, supports: list[Batch], queries: list[Batch], config: MetaConfig,
    optimizer: torch.optim.Optimizer,
) -> float:  # fmt: skip
    """The released code's update (module docstring): tasks in turn, each adapting the model's own weights in
    place from where the previous task left them; query gradients accumulate; one outer step at the end."""
    weights = [p for p in model.parameters() if p.requires_grad]
    optimizer.zero_grad(set_to_none=True)
    losses = []
    for (inputs, labels), (query_inputs, query_labels) in zip(supports, queries, strict=True):
        for _ in range(config.inner_steps):
            gradients = torch.autograd.grad(nn.functional.cross_entropy(model(*inputs), labels), weights)
            with torch.no_grad():
                for weight, gradient in zip(weights, gradients, strict=True):
                    weight -= config.inner_lr * gradient
        loss = nn.functional.cross_entropy(model(*query_inputs), query_labels)
        loss.backward()
        losses.append(loss.item())
    optimizer.step()
    return float(np.mean(losses))


def meta_step(
    model: nn.Module,
    supports: list[Batch],
    queries: list[Batch],
    config: MetaConfig,
    optimizer: torch.optim.Optimizer,
    *,
    batched: bool,
) -> float:
    """One outer update of ``model`` by ``config.mode``; returns the mean query loss."""
    if config.mode == "official":
        return official_step(model, supports, queries, config, optimizer)
    gradients, loss = meta_gradient(model, supports, queries, config, batched=batched)
    optimizer.zero_grad(set_to_none=True)
    for name, p in model.named_parameters():
        if name in gradients:
            p.grad = gradients[name]
    optimizer.step()
    with torch.no_grad():  # the running statistics follow the new θ
        for inputs, _ in queries:
            model(*inputs)
    return loss
