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
encoder the tasks of a meta-step are computed together: their parameters are stacked on a first dimension and
:func:`stacked_forward` runs all of them in one forward (the protein CNN's per-task convolutions as one grouped
convolution), so that each inner step is one backward pass for all tasks; another model's tasks are batched by
``torch.func.vmap``. Molecular graphs differ in size between tasks, so with the GIN they run one after another
(``vmap=False`` gives this path for any model; the batched and sequential paths agree, which the tests check).

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
from portal_learning.model import CPIModel, _masked_softmax

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


def _stacked_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Per-task ``nn.Linear``: ``(T, B, i)`` inputs, ``(T, o, i)`` weights and ``(T, o)`` biases → ``(T, B, o)``,
    computed as ``(W xᵀ)ᵀ`` so that the weights' gradient comes out contiguous, like the weights."""
    return torch.baddbmm(bias[:, :, None], weight, x.transpose(1, 2)).transpose(1, 2)


def _stacked_norm(
    x: torch.Tensor, norm: nn.modules.batchnorm._BatchNorm, weight: torch.Tensor, bias: torch.Tensor
) -> torch.Tensor:
    """Per-task BatchNorm of ``(B, T·C, ...)`` activations, the tasks folded into the channels so that each task
    has its own batch statistics, with ``(T, C)`` affine parameters; with ``norm`` in evaluation mode, its running
    statistics (shared by the tasks). The running statistics are never written."""
    tasks = weight.shape[0]
    running = (
        (None, None) if norm.training else (norm.running_mean.repeat(tasks), norm.running_var.repeat(tasks))
    )
    return nn.functional.batch_norm(
        x, *running, weight.reshape(-1), bias.reshape(-1), norm.training, 0.0, norm.eps
    )


def stacked_forward(model: CPIModel, params: Tensors, inputs: tuple) -> torch.Tensor:
    """:meth:`CPIModel.forward` of a fingerprint model for T tasks at once, each with its own parameters — the same
    function as ``functional_call`` of the model per task, without :func:`torch.func.vmap`.

    Args:
        model: gives the architecture, the BatchNorm (batch or running statistics) and dropout settings, and
            every parameter that ``params`` lacks (shared by the tasks).
        params: ``(T, ...)`` per-task values of the model's parameters, by name.
        inputs: ``(T, B, bits)`` fingerprints, ``(T, B, L)`` residue tokens and their ``(T, B, L)`` mask.

    Returns:
        ``(T, B, 2)`` logits. The protein CNN keeps its activations as ``(B, L, T, C)``: seen as a channels-last
        ``(B, T·C, 1, L)`` image, the tasks' convolutions are one grouped 2-D convolution and their BatchNorms one
        BatchNorm over T·C channels (on CPU, channels last is the faster layout for both).
    """
    fingerprints, tokens, residue_mask = inputs
    tasks, size, length = tokens.shape
    own = dict(model.named_parameters())

    def p(name: str) -> torch.Tensor:
        return params[name] if name in params else own[name].expand(tasks, *own[name].shape)

    chem = fingerprints.to(model.bilinear.dtype)
    for index, layer in enumerate(model.chemical):
        if isinstance(layer, nn.Linear):
            chem = _stacked_linear(chem, p(f"chemical.{index}.weight"), p(f"chemical.{index}.bias"))
        else:
            chem = layer(chem)
    chem = chem[:, :, None, :]  # (T, B, 1, d_c): one position per molecule
    cnn = model.protein
    table = p("protein.embed.weight")  # row 0 (padding) gets no gradient, as in nn.Embedding(padding_idx=0)
    table = torch.cat([table[:, :1].detach(), table[:, 1:]], dim=1)
    x = table[torch.arange(tasks, device=tokens.device)[:, None, None], tokens]  # (T, B, L, E)
    if cnn.positions is not None:
        x = x + p("protein.positions.weight")[:, None, :length]
    keep = residue_mask.permute(1, 2, 0)[..., None].to(x.dtype)  # (B, L, T, 1)
    h = torch.einsum("tble,tce->bltc", x, p("protein.project.weight")[..., 0]).contiguous()
    h = (h + p("protein.project.bias")).mul_(keep)  # (B, L, T, C)
    channels = h.shape[3]
    for index, (conv, norm) in enumerate(zip(cnn.convs, cnn.norms, strict=True)):
        weight = p(f"protein.convs.{index}.weight")  # (T, C, C, K)
        image = h.view(size, length, tasks * channels).transpose(1, 2)[:, :, None, :]  # (B, T·C, 1, L)
        out = nn.functional.conv2d(
            image,
            weight.reshape(tasks * channels, channels, 1, -1),
            p(f"protein.convs.{index}.bias").reshape(-1),
            padding=(0, conv.padding[0]),
            groups=tasks,
        )
        out = _stacked_norm(out, norm, p(f"protein.norms.{index}.weight"), p(f"protein.norms.{index}.bias"))
        h = (h + torch.relu_(out).permute(0, 2, 3, 1).reshape(h.shape)).mul_(keep)
    scores = torch.tanh(torch.einsum("tbnc,tcp,bltp->tbnl", chem, p("bilinear"), h))
    scores = scores * residue_mask[:, :, None, :]  # (T, B, 1, L); the chemical mask is all ones
    chem_weights = torch.softmax(scores.sum(3), dim=-1)  # (T, B, 1)
    prot_weights = _masked_softmax(scores.sum(2), residue_mask)  # (T, B, L)
    out = torch.cat([torch.einsum("tbn,tbnc->tbc", chem_weights, chem),
                     torch.einsum("tbl,bltp->tbp", prot_weights, h)], dim=2)  # fmt: skip
    for index, layer in enumerate(model.head):
        if isinstance(layer, nn.Linear):
            out = _stacked_linear(out, p(f"head.{index}.weight"), p(f"head.{index}.bias"))
        elif isinstance(layer, nn.modules.batchnorm._BatchNorm):
            folded = out.transpose(0, 1).reshape(size, -1)  # (B, T·C)
            out = _stacked_norm(folded, layer, p(f"head.{index}.weight"), p(f"head.{index}.bias"))
            out = out.view(size, tasks, -1).transpose(0, 1)
        else:
            out = layer(out)  # ReLU, dropout (its own draws per task)
    return out


def stacked_losses(model: CPIModel, params: Tensors, batch: Batch) -> torch.Tensor:
    """``(T,)`` per-task cross-entropies of :func:`stacked_forward` on a stacked ``(T, B, ...)`` batch."""
    inputs, labels = batch
    logits = stacked_forward(model, params, inputs)
    return nn.functional.cross_entropy(logits.transpose(1, 2), labels, reduction="none").mean(1)


def stacked_meta_gradient(
    model: CPIModel, params: Tensors, support: Batch, query: Batch, config: MetaConfig
) -> tuple[Tensors, torch.Tensor]:
    """Eq. (2) or (3) summed over the tasks of stacked ``(T, B, ...)`` batches, and the ``(T,)`` query losses.

    The tasks' adapted parameters are stacked ``(T, ...)`` and task i's loss depends on slice i only, so the
    gradient of the summed loss with respect to the stack holds every task's own gradient: eq. (1) for all tasks
    is one backward pass per inner step. For ``maml`` the stack starts as θ broadcast to the tasks, and the
    gradient of the summed query loss with respect to θ is the sum over tasks of eq. (2).
    """
    tasks = support[1].shape[0]
    second_order = config.mode == "maml"
    theta = {name: value.detach().requires_grad_(second_order) for name, value in params.items()}
    adapted = {name: value.expand(tasks, *value.shape) for name, value in theta.items()}
    if not second_order:
        adapted = {name: value.clone().requires_grad_() for name, value in adapted.items()}
    for _ in range(config.inner_steps):
        loss = stacked_losses(model, adapted, support).sum()
        gradients = torch.autograd.grad(loss, list(adapted.values()), create_graph=second_order)
        adapted = {name: torch.add(value, g, alpha=-config.inner_lr)
                   for (name, value), g in zip(adapted.items(), gradients, strict=True)}  # fmt: skip
        if not second_order:
            adapted = {name: value.detach().requires_grad_() for name, value in adapted.items()}
    losses = stacked_losses(model, adapted, query)
    wrt = theta if second_order else adapted
    gradients = torch.autograd.grad(losses.sum(), list(wrt.values()))
    summed = {name: g if second_order else g.sum(0) for name, g in zip(wrt, gradients, strict=True)}
    return summed, losses.detach()


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
    the model is read, never written. ``batched`` computes every task at once (the batches' tensors must have
    equal shapes across tasks) — a fingerprint :class:`CPIModel` by :func:`stacked_meta_gradient`, any other model
    with :func:`torch.func.vmap`; otherwise tasks run in turn."""
    params = {name: p.detach() for name, p in model.named_parameters() if p.requires_grad}
    with batch_statistics(model):
        if batched and isinstance(model, CPIModel) and model.config.chemical == "fingerprint":
            grads, losses = stacked_meta_gradient(model, params, stack_batches(supports), stack_batches(queries),
                                                  config)  # fmt: skip
            return grads, float(losses.mean())
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
