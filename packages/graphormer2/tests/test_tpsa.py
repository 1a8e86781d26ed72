"""A short TPSA run end to end (RDKit data -> featurisation -> Graphormer -> fit) must beat the mean predictor."""

from __future__ import annotations

import torch
from graphormer2 import (
    Graphormer,
    GraphormerConfig,
    RegressionObjective,
    TrainConfig,
    collate,
    fit,
    split,
    tpsa_task,
)
from torch.utils.data import DataLoader

torch.set_num_threads(1)


def test_short_tpsa_run_beats_the_mean_predictor() -> None:
    data = tpsa_task(limit=400)
    train, valid, test = split(data, (0.7, 0.15, 0.15), seed=0)
    train_targets = data.targets[torch.tensor(train.indices)]
    objective = RegressionObjective.standardising(train_targets)
    torch.manual_seed(0)
    model = Graphormer(GraphormerConfig.preset("slim", num_layers=2, hidden_dim=32, ffn_dim=32, num_heads=4,
                                               attention_dropout=0.0, activation_dropout=0.0))  # fmt: skip
    result = fit(
        model,
        train,
        valid,
        collate,
        objective,
        TrainConfig(epochs=10, batch_size=16, lr=1e-3, warmup_steps=10),
    )
    model.load_state_dict(result.best_state)
    model.eval()
    with torch.no_grad():
        mae = objective.evaluate(model, DataLoader(test, batch_size=64, collate_fn=collate))["mae"]
    test_targets = data.targets[torch.tensor(test.indices)]
    mean_predictor = float((test_targets - train_targets.mean(0)).abs().mean())
    assert mae < 0.6 * mean_predictor, (mae, mean_predictor)
