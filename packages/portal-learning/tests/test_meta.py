"""Meta-learning: FOMAML and MAML against hand-derived gradients, the meta-parameters never written by the inner
loop, batched (stacked parameters, or vmap) and sequential tasks agreeing, the stacked forward being the model's,
the released code's sequential update, episode sampling."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from portal_learning.meta import (
    FamilyTasks,
    MetaConfig,
    batch_statistics,
    meta_gradient,
    meta_step,
    official_step,
    stack_batches,
    stacked_forward,
)
from portal_learning.model import CPIConfig, CPIModel
from torch import nn
from torch.func import functional_call

from papers_common import InputError


class Linear(nn.Module):
    """Two-class logits ``W x``, ``W`` (2, d): the case the gradients are derived for by hand."""

    def __init__(self, weight: np.ndarray) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.tensor(weight))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.weight.T


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _gradient(w: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """∇_W of the mean cross-entropy: mean over examples of (p − e_y) xᵀ."""
    p = _softmax(x @ w.T)
    return (p - np.eye(2)[y]).T @ x / len(x)


def _hessian_times(w: np.ndarray, x: np.ndarray, v: np.ndarray) -> np.ndarray:
    """H[V] of the mean cross-entropy: mean over examples of ((diag p − p pᵀ) V x) xᵀ."""
    out = np.zeros_like(w)
    for row in x:
        p = _softmax(w @ row)
        out += np.outer((np.diag(p) - np.outer(p, p)) @ (v @ row), row)
    return out / len(x)


@pytest.fixture
def linear_task():
    rng = np.random.default_rng(3)
    w = rng.normal(size=(2, 4))
    support = (rng.normal(size=(2, 4)), np.array([1, 0]))
    query = (rng.normal(size=(8, 4)), np.array([1, 0] * 4))
    return w, support, query


def _batch(part):
    x, y = part
    return (torch.tensor(x),), torch.tensor(y)


def test_fomaml_and_maml_match_the_hand_derived_gradients(linear_task):
    w, (xs, ys), (xq, yq) = linear_task
    alpha = 0.3
    adapted = w - alpha * _gradient(w, xs, ys)  # eq. (1), one step
    query_gradient = _gradient(adapted, xq, yq)
    expected = {
        "fomaml": query_gradient,  # eq. (3)
        "maml": query_gradient
        - alpha * _hessian_times(w, xs, query_gradient),  # eq. (2): (I − αH_s) ∇L_q(θ')
    }
    for mode, want in expected.items():
        config = MetaConfig(mode=mode, inner_steps=1, inner_lr=alpha)
        got, _ = meta_gradient(Linear(w), [_batch((xs, ys))], [_batch((xq, yq))], config, batched=False)
        np.testing.assert_allclose(got["weight"].numpy(), want, rtol=1e-10, atol=1e-12)
    # the difference is exactly the second-order term, and it is not negligible here
    assert np.abs(alpha * _hessian_times(w, xs, query_gradient)).max() > 1e-3


def test_maml_is_the_exact_gradient_through_several_inner_steps(linear_task):
    w, (xs, ys), (xq, yq) = linear_task
    alpha, steps = 0.3, 3

    def objective(weight: np.ndarray) -> float:
        for _ in range(steps):
            weight = weight - alpha * _gradient(weight, xs, ys)
        p = _softmax(xq @ weight.T)
        return float(-np.log(p[np.arange(len(yq)), yq]).mean())

    config = MetaConfig(mode="maml", inner_steps=steps, inner_lr=alpha)
    got, _ = meta_gradient(Linear(w), [_batch((xs, ys))], [_batch((xq, yq))], config, batched=False)
    numeric = np.zeros_like(w)
    for index in np.ndindex(w.shape):
        step = np.zeros_like(w)
        step[index] = 1e-6
        numeric[index] = (objective(w + step) - objective(w - step)) / 2e-6
    np.testing.assert_allclose(got["weight"].numpy(), numeric, rtol=1e-6, atol=1e-9)


def _cpi_tasks(small, count: int = 3):
    config = CPIConfig(chemical="fingerprint", fingerprint_bits=256, gin_hidden=16, protein_embedding=8,
                       protein_channels=12, protein_layers=1, protein_kernel=3, head_dropout=0.0,
                       output_dropout=0.0)  # fmt: skip
    from portal_learning.train import PairData

    data = PairData(small.records, config)
    families = np.array([r.family for r in small.records])
    episodes = FamilyTasks(families, data.labels, np.arange(len(families))).sample(
        np.random.default_rng(0), count, 1, 4
    )

    def batch(rows):
        molecules, tokens, mask = data.batch(rows.tolist(), torch.device("cpu"), 200)
        return (molecules.double(), tokens, mask), torch.from_numpy(data.labels[rows])

    torch.manual_seed(0)
    model = CPIModel(config).double()
    return model, [batch(e.support) for e in episodes], [batch(e.query) for e in episodes]


@pytest.mark.parametrize("mode", ["fomaml", "maml"])
def test_batched_and_sequential_meta_gradients_agree_and_leave_the_model_alone(small, mode):
    model, supports, queries = _cpi_tasks(small)
    for layer in model.modules():  # running statistics that differ from any batch's
        if isinstance(layer, torch.nn.modules.batchnorm._BatchNorm):
            layer.running_mean.uniform_(-1, 1)
            layer.running_var.uniform_(0.5, 2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    config = MetaConfig(mode=mode, inner_steps=2, inner_lr=0.01)
    batched, loss_b = meta_gradient(model, supports, queries, config, batched=True)
    sequential, loss_s = meta_gradient(model, supports, queries, config, batched=False)
    assert loss_b == pytest.approx(loss_s, rel=1e-9)
    scale = max(value.abs().max().item() for value in sequential.values())
    for name, value in sequential.items():
        assert (batched[name] - value).abs().max().item() <= 1e-8 * scale, name
    for name, value in model.state_dict().items():  # parameters and BatchNorm statistics untouched
        assert torch.equal(value, before[name]), name


@pytest.mark.parametrize("mode", ["fomaml", "maml"])
def test_vmap_batches_the_tasks_of_other_models(linear_task, mode):
    w, support, query = linear_task
    rng = np.random.default_rng(7)
    second = ((rng.normal(size=(2, 4)), np.array([0, 1])), (rng.normal(size=(8, 4)), np.array([0, 1] * 4)))
    supports, queries = [_batch(support), _batch(second[0])], [_batch(query), _batch(second[1])]
    config = MetaConfig(mode=mode, inner_steps=2, inner_lr=0.3)
    batched, loss_b = meta_gradient(Linear(w), supports, queries, config, batched=True)
    sequential, loss_s = meta_gradient(Linear(w), supports, queries, config, batched=False)
    assert loss_b == pytest.approx(loss_s, rel=1e-12)
    np.testing.assert_allclose(
        batched["weight"].numpy(), sequential["weight"].numpy(), rtol=1e-10, atol=1e-12
    )


def test_the_stacked_forward_is_the_model_run_per_task(small):
    model, _, queries = _cpi_tasks(small)
    (molecules, tokens, mask), _ = stack_batches(queries)
    tokens, mask = tokens.clone(), mask.clone()
    tokens[:, 1, 150:], mask[:, 1, 150:] = 0, False  # padded residues, in every task and in one only
    tokens[0, 2, 90:], mask[0, 2, 90:] = 0, False
    tokens[1, 0, 5] = 0  # the padding token where the mask keeps it: its embedding row still gets no gradient
    model.head[5].eval()  # one BatchNorm normalises with (made-up) running statistics
    model.head[5].running_mean.uniform_(-1, 1)
    model.head[5].running_var.uniform_(0.5, 2)
    generator = torch.Generator().manual_seed(1)
    params = {  # per-task values of all parameters but one, which the tasks share
        name: p.detach() + 0.1 * torch.randn(3, *p.shape, generator=generator, dtype=p.dtype)
        for name, p in model.named_parameters()
        if name != "protein.project.weight"
    }
    for value in params.values():
        value.requires_grad_()
    with batch_statistics(model):
        stacked = stacked_forward(model, params, (molecules, tokens, mask))
        weights = torch.randn(stacked.shape, generator=generator, dtype=stacked.dtype)
        gradients = torch.autograd.grad((stacked * weights).sum(), list(params.values()))
        for t in range(3):
            own = {name: value[t] for name, value in params.items()}
            logits = functional_call(model, own, (molecules[t], tokens[t], mask[t]))
            np.testing.assert_allclose(
                stacked[t].detach().numpy(), logits.detach().numpy(), rtol=1e-10, atol=1e-12
            )
            expected = torch.autograd.grad((logits * weights[t]).sum(), list(own.values()))
            for name, got, want in zip(params, gradients, expected, strict=True):
                np.testing.assert_allclose(got[t].numpy(), want.numpy(), rtol=1e-9, atol=1e-12, err_msg=name)
    assert (gradients[list(params).index("protein.embed.weight")][:, 0] == 0).all()  # the padding row


def test_a_meta_step_moves_only_trainable_parameters_and_refreshes_batchnorm(small):
    model, supports, queries = _cpi_tasks(small)
    for p in model.protein.parameters():
        p.requires_grad_(False)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.Adam((p for p in model.parameters() if p.requires_grad), lr=1e-2)
    meta_step(model, supports, queries, MetaConfig(mode="fomaml"), optimizer, batched=True)
    after = model.state_dict()
    for name in before:
        moved = not torch.equal(after[name], before[name])
        if name.startswith("protein.") and "running" not in name and "num_batches" not in name:
            assert not moved, name  # frozen
        elif name.startswith("head.0.") or name == "bilinear":
            assert moved, name
    assert not torch.equal(after["head.1.running_mean"], before["head.1.running_mean"])


def test_the_official_update_lets_tasks_see_each_others_inner_steps(linear_task):
    w, support, query = linear_task
    rng = np.random.default_rng(5)
    second = ((rng.normal(size=(2, 4)), np.array([0, 1])), (rng.normal(size=(8, 4)), np.array([0, 1] * 4)))
    alpha, beta, steps = 0.2, 0.1, 2
    config = MetaConfig(mode="official", inner_steps=steps, inner_lr=alpha)
    model = Linear(w)
    official_step(model, [_batch(support), _batch(second[0])], [_batch(query), _batch(second[1])], config,
                  torch.optim.SGD(model.parameters(), lr=beta))  # fmt: skip
    # by hand: task 2 adapts from task 1's adapted weights; the outer step starts from task 2's
    weight, total = w.copy(), np.zeros_like(w)
    for (xs, ys), (xq, yq) in ((support, query), second):
        for _ in range(steps):
            weight = weight - alpha * _gradient(weight, xs, ys)
        total += _gradient(weight, xq, yq)
    np.testing.assert_allclose(model.weight.detach().numpy(), weight - beta * total, rtol=1e-10)


def test_episodes_are_class_balanced_disjoint_and_from_two_class_families():
    families = np.array(["a"] * 12 + ["b"] * 6 + ["c"] * 5)
    labels = np.array([1, 0] * 6 + [1, 0, 0, 1, 0, 0] + [0] * 5)
    tasks = FamilyTasks(families, labels, np.arange(len(labels)))
    assert tasks.names == ["a", "b"]  # "c" has no active pair
    for task in tasks.sample(np.random.default_rng(1), 2, 1, 2):
        assert list(labels[task.support]) == [1, 0]
        assert list(labels[task.query]) == [1, 1, 0, 0]
        assert set(families[np.concatenate([task.support, task.query])]) == {task.family}
        if task.family == "a":  # enough pairs: support and query disjoint
            assert not set(task.support) & set(task.query)
    with pytest.raises(InputError, match="both active and inactive"):
        FamilyTasks(families[-5:], labels[-5:], np.arange(5))
    with pytest.raises(InputError, match="--inner-lr"):
        MetaConfig(inner_lr=0.0).check()
    with pytest.raises(InputError, match="mode"):
        MetaConfig(mode="reptile").check()
