"""Training: loss, learning-rate schedule, learning on a structured graph, checkpoints and resumption."""

from __future__ import annotations

import math
import re
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from house_kge import (
    AnswerIndex,
    HousE,
    HousEConfig,
    RotatE,
    RotatEConfig,
    TrainConfig,
    adversarial_loss,
    evaluate,
    learning_rate,
    load_trained,
    sized_for,
    train,
)

from papers_common import InputError, RunDir, latest_checkpoint, load_checkpoint

F64 = torch.float64


def log_sigmoid(x: float) -> float:
    return -math.log1p(math.exp(-x))


def test_adversarial_loss_by_hand() -> None:
    positive = torch.tensor([1.5, -0.5], dtype=F64)
    negative = torch.tensor([[0.2, -1.0, 2.0], [-3.0, 0.5, 0.0]], dtype=F64)
    weight = torch.tensor([0.25, 0.75], dtype=F64)
    alpha = 0.7
    expected_pos = -(0.25 * log_sigmoid(1.5) + 0.75 * log_sigmoid(-0.5)) / 1.0
    expected_neg = 0.0
    for i, row in enumerate(negative.tolist()):
        exps = [math.exp(alpha * s) for s in row]
        p = [e / sum(exps) for e in exps]
        expected_neg -= weight[i].item() * sum(pj * log_sigmoid(-s) for pj, s in zip(p, row, strict=True))
    loss_pos, loss_neg = adversarial_loss(positive, negative, weight, alpha)
    assert loss_pos.item() == pytest.approx(expected_pos, rel=1e-12)
    assert loss_neg.item() == pytest.approx(expected_neg, rel=1e-12)


def test_adversarial_loss_with_alpha_zero_is_the_uniform_mean() -> None:
    positive = torch.tensor([0.3, 2.0, -1.0], dtype=F64)
    negative = torch.tensor([[0.0, 1.0], [-2.0, 4.0], [0.5, 0.5]], dtype=F64)
    weight = torch.tensor([1.0, 2.0, 3.0], dtype=F64)
    _, loss_neg = adversarial_loss(positive, negative, weight, 0.0)
    expected = -sum(
        w * (log_sigmoid(-a) + log_sigmoid(-b)) / 2
        for w, (a, b) in zip([1, 2, 3], negative.tolist(), strict=True)
    )
    assert loss_neg.item() == pytest.approx(expected / 6, rel=1e-12)
    # and a vanishing temperature approaches the uniform weights
    _, almost = adversarial_loss(positive, negative, weight, 1e-9)
    assert almost.item() == pytest.approx(loss_neg.item(), rel=1e-8)


def test_adversarial_weights_are_detached() -> None:
    """∂L_neg/∂f_ij = w_i p_ij σ(f_ij) / Σw: no gradient flows through the softmax weights p_ij."""
    negative = torch.tensor([[0.2, -1.0, 2.0], [-3.0, 0.5, 0.0]], dtype=F64, requires_grad=True)
    weight = torch.tensor([0.5, 1.5], dtype=F64)
    _, loss_neg = adversarial_loss(torch.zeros(2, dtype=F64), negative, weight, 1.3)
    loss_neg.backward()
    p = torch.softmax(1.3 * negative.detach(), dim=1)
    expected = weight[:, None] * p * torch.sigmoid(negative.detach()) / weight.sum()
    torch.testing.assert_close(negative.grad, expected, rtol=1e-12, atol=0)


def test_learning_rate_schedule() -> None:
    config = TrainConfig(steps=200, lr=1.0, warm_up=10)
    assert [learning_rate(config, s) for s in (0, 9, 10)] == [
        1.0,
        1.0,
        1.0,
    ]  # step warm_up still at the old rate
    assert learning_rate(config, 11) == pytest.approx(0.1)  # ÷10 after warm_up
    assert learning_rate(config, 20) == pytest.approx(0.1)
    assert learning_rate(config, 21) == pytest.approx(0.01)  # the next drop after 2·warm_up
    assert learning_rate(config, 40) == pytest.approx(0.01)
    assert learning_rate(config, 41) == pytest.approx(0.001)  # then 4·warm_up
    assert learning_rate(config, 81) == pytest.approx(0.0001)
    default = TrainConfig(steps=100, lr=0.5)
    assert learning_rate(default, 50) == 0.5
    assert learning_rate(default, 51) == pytest.approx(0.05)  # warm_up defaults to steps // 2
    assert learning_rate(default, 99) == pytest.approx(0.05)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"steps": -1}, "steps"),
        ({"batch_size": 0}, "batch_size"),
        ({"negatives": 0}, "negatives"),
        ({"log_every": 0}, "log_every"),
        ({"eval_every": -1}, "eval_every"),
        ({"checkpoint_every": -1}, "checkpoint_every"),
        ({"lr": 0.0}, "lr"),
        ({"lr": float("nan")}, "lr"),
        ({"lr": float("inf")}, "lr"),
        ({"alpha": -0.1}, "alpha"),
        ({"regularization": -1.0}, "regularization"),
    ],
)
def test_bad_train_config_is_an_input_error(kwargs: dict, field: str) -> None:
    with pytest.raises(InputError, match=re.escape(field)):
        TrainConfig(**kwargs)


def small_house(graph, seed: int = 0, **kwargs) -> HousE:
    torch.manual_seed(seed)
    settings = {"dim": 16, "k": 4, "variant": "house", "projections": 1, "gamma": 4.0, **kwargs}
    return HousE(HousEConfig(graph.num_entities, graph.num_relations, **settings))


def test_loss_decreases_on_a_tiny_graph(make_random_graph, tmp_path: Path) -> None:
    graph = make_random_graph(num_entities=20, num_relations=3, num_triples=200)
    model = small_house(graph)
    run = RunDir(tmp_path / "run")
    config = TrainConfig(steps=80, batch_size=32, negatives=8, lr=0.03, log_every=1, checkpoint_every=0)
    # a fixed batch, scored before and after training
    batch = graph.train[:40]
    negatives = torch.randint(20, (40, 8), generator=torch.Generator().manual_seed(1))

    def fixed_loss() -> float:
        with torch.no_grad():
            positive = model.score_triples(batch)
            negative = model.score_candidates(batch[:, 0], batch[:, 1], negatives, "tail")
            loss_pos, loss_neg = adversarial_loss(positive, negative, torch.ones(40), 1.0)
        return ((loss_pos + loss_neg) / 2).item()

    before = fixed_loss()
    train(model, graph, config, seed=0, run=run)
    after = fixed_loss()
    losses = [record["loss"] for record in run.metrics()]
    assert [record["step"] for record in run.metrics()] == list(range(1, 81))
    first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
    assert last < 0.8 * first, (first, last)  # measured 0.78 -> 0.52
    assert after < 0.8 * before, (before, after)  # measured 0.94 -> 0.58


@pytest.mark.parametrize("model_name", ["house", "rotate"])
def test_training_learns_a_structured_graph(model_name: str, make_cyclic_graph, tmp_path: Path) -> None:
    """Held-out triples of rotation relations: untrained models score MRR ≈ 0.1; trained ones ≈ 1."""
    graph = make_cyclic_graph()
    if model_name == "house":
        model, steps = small_house(graph, seed=0), 150
    else:
        torch.manual_seed(0)
        model, steps = RotatE(RotatEConfig(graph.num_entities, graph.num_relations, dim=8, gamma=4.0)), 100
    index = AnswerIndex(graph.all_triples(), graph.num_entities, graph.num_relations)
    untrained = evaluate(model, graph.test, index)["mrr"]
    run = RunDir(tmp_path / "run")
    config = TrainConfig(
        steps=steps,
        batch_size=32,
        negatives=16,
        lr=0.05,
        warm_up=steps,
        eval_every=50,
        checkpoint_every=0,
        log_every=50,
    )
    result = train(model, graph, config, seed=0, run=run)
    assert result.steps == steps
    trained = evaluate(model, graph.test, index)["mrr"]
    assert untrained < 0.3, untrained
    assert trained > 0.8, trained  # measured 1.0 for both models with this seed
    validation = [record for record in run.metrics() if "valid_mrr" in record]
    assert [record["step"] for record in validation] == list(range(50, steps, 50))


def test_a_run_ends_with_the_saved_model_folder(make_random_graph, tmp_path: Path) -> None:
    graph = make_random_graph()
    run = RunDir(tmp_path / "run")
    model = small_house(graph)
    train(model, graph, TrainConfig(steps=3, batch_size=16, negatives=4, checkpoint_every=0), run=run)
    loaded, saved_graph = load_trained(run.path("model"))
    assert isinstance(loaded, HousE)
    assert loaded.config == model.config
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name
    assert saved_graph.entities == graph.entities
    assert saved_graph.relations == graph.relations
    assert torch.equal(saved_graph.all_triples(), graph.all_triples())


def test_optimizer_uses_the_scheduled_learning_rate(make_random_graph, tmp_path: Path) -> None:
    graph = make_random_graph()
    run = RunDir(tmp_path / "run")
    config = TrainConfig(
        steps=6, batch_size=16, negatives=4, lr=0.1, warm_up=2, checkpoint_every=0, log_every=1
    )
    train(small_house(graph), graph, config, run=run)
    checkpoint = load_checkpoint(latest_checkpoint(run.checkpoints))
    assert checkpoint.step == 6
    # steps 0–2 at 0.1, 3–4 at 0.01, 5 at 0.001 (each drop after the drop step): the optimizer held the last one
    assert checkpoint.optimizer["param_groups"][0]["lr"] == pytest.approx(0.001)
    assert [record["lr"] for record in run.metrics()] == pytest.approx([0.1, 0.1, 0.1, 0.01, 0.01, 0.001])


def parameters(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}


@pytest.mark.usefixtures("preserve_rng")
@pytest.mark.parametrize("model_name", ["house+", "rotate"])
def test_resume_from_a_checkpoint_is_bit_identical(
    model_name: str, make_random_graph, tmp_path: Path
) -> None:
    graph = make_random_graph(num_triples=150)  # 120 training triples: epochs of 2 batches of 48
    config = TrainConfig(
        steps=12,
        batch_size=48,
        negatives=6,
        lr=0.02,
        warm_up=5,
        alpha=0.8,
        regularization=0.01,
        checkpoint_every=4,
        log_every=1,
    )

    def fresh(seed: int):
        if model_name == "rotate":
            torch.manual_seed(seed)
            return RotatE(RotatEConfig(graph.num_entities, graph.num_relations, dim=6))
        return small_house(graph, seed=seed, variant="house+", k=3, dim=12, projections=2)

    uninterrupted = fresh(0)
    straight = RunDir(tmp_path / "straight")
    train(uninterrupted, graph, config, seed=3, run=straight)
    expected = parameters(uninterrupted)

    interrupted = RunDir(tmp_path / "interrupted")
    train(fresh(0), graph, config, seed=3, run=interrupted)
    last = latest_checkpoint(interrupted.checkpoints)
    assert last is not None
    assert last.name == "step-00000012.json"
    last.unlink()  # as if the run had stopped after step 8's checkpoint
    assert latest_checkpoint(interrupted.checkpoints).name == "step-00000008.json"
    resumed = fresh(99)  # other initial weights: only the checkpoint can make the result match
    result = train(resumed, graph, config, seed=3, run=interrupted)
    assert result.steps == 12
    for name, tensor in parameters(resumed).items():
        assert torch.equal(tensor, expected[name]), name
    straight_log = [{k: v for k, v in r.items() if k != "time"} for r in straight.metrics()]
    resumed_log = [{k: v for k, v in r.items() if k != "time"} for r in interrupted.metrics()]
    assert resumed_log == straight_log  # steps 9–12 logged once, with the same losses


@pytest.mark.usefixtures("preserve_rng")
def test_resume_with_other_settings_is_an_input_error(make_random_graph, tmp_path: Path) -> None:
    graph = make_random_graph()
    run = RunDir(tmp_path / "run")
    config = TrainConfig(steps=4, batch_size=16, negatives=4, lr=0.01, checkpoint_every=2)
    train(small_house(graph), graph, config, run=run)
    with pytest.raises(InputError, match="other settings"):
        train(small_house(graph), graph, replace(config, lr=0.02), run=run)
    with pytest.raises(InputError, match="other settings"):
        train(small_house(graph, gamma=6.0), graph, config, run=run)
    # the same settings resume: nothing is left to do, and the weights are the checkpoint's
    model = small_house(graph, seed=5)
    train(model, graph, config, run=run)
    stored = load_checkpoint(latest_checkpoint(run.checkpoints)).model
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, stored[name]), name


def test_training_is_deterministic_for_a_seed(make_random_graph) -> None:
    graph = make_random_graph()
    config = TrainConfig(steps=5, batch_size=16, negatives=4, lr=0.01, checkpoint_every=0)
    first, second, other = small_house(graph), small_house(graph), small_house(graph)
    train(first, graph, config, seed=1)
    train(second, graph, config, seed=1)
    train(other, graph, config, seed=2)
    for name, tensor in parameters(first).items():
        assert torch.equal(tensor, parameters(second)[name]), name
    assert not torch.equal(first.entity, other.entity)


def test_regularization_shrinks_the_entity_norms(make_random_graph) -> None:
    graph = make_random_graph()
    config = TrainConfig(steps=20, batch_size=16, negatives=4, lr=0.03, checkpoint_every=0)
    plain, regularised = small_house(graph), small_house(graph)
    train(plain, graph, config, seed=1)
    train(regularised, graph, replace(config, regularization=10.0), seed=1)
    # measured: 1.67 at initialisation, 1.51 without and 0.68 with the regulariser
    assert regularised.entity_norm().item() < 0.6 * plain.entity_norm().item()


def test_batch_scope_regularises_only_the_batch_entities() -> None:
    torch.manual_seed(0)
    model = RotatE(RotatEConfig(10, 2, dim=4))
    ids = torch.tensor([1, 3])
    expected = model.entity[ids].flatten(1).norm(dim=1).mean()
    assert torch.equal(model.entity_norm(ids), expected)
    assert not torch.equal(model.entity_norm(), expected)
    with pytest.raises(InputError, match="regularization_scope"):
        TrainConfig(regularization_scope="some")


def test_sized_for_caps_batch_and_negatives_at_the_graph(make_cyclic_graph) -> None:
    graph = make_cyclic_graph(num_entities=10, shifts=(1, 3), held_out=2)  # 16 training triples
    config, capped = sized_for(TrainConfig(batch_size=512, negatives=128), graph)
    assert (config.batch_size, config.negatives) == (16, 9)  # every entity but the true answer
    assert capped == {"batch_size": (512, 16), "negatives": (128, 9)}
    config, capped = sized_for(TrainConfig(negatives=128, filter_negatives=False), graph)
    assert config.negatives == 10  # unfiltered draws may hit the true answer too
    config, capped = sized_for(TrainConfig(batch_size=8, negatives=4), graph)
    assert (config.batch_size, config.negatives, capped) == (8, 4, {})
