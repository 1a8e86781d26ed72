"""Training moves the weights; experiments and sweeps measure what they say."""

from __future__ import annotations

import pytest
import torch

from advsep import Dataset, Setup, make_classifier, run_experiment, shuffled_labels, sweep, train_classifier
from papers_common import InputError


def test_training_moves_the_weights_further_with_more_epochs(mixture):
    distances = []
    for epochs in (0, 1, 4):
        torch.manual_seed(0)
        net = make_classifier("two-layer", mixture.shape, mixture.classes, width=64)
        distances.append(train_classifier(net, mixture, epochs=epochs, lr=1.0).distance)
    assert distances[0] == 0.0
    assert 0 < distances[1] < distances[2]


def test_training_learns_a_separable_mixture(mixture):
    torch.manual_seed(0)
    net = make_classifier("two-layer", mixture.shape, mixture.classes, width=256)
    before = train_classifier(net, mixture, epochs=0, lr=2.0)
    report = train_classifier(net, mixture, epochs=10, lr=2.0)
    assert before.test_accuracy < 0.5  # 4 classes
    assert report.train_accuracy > 0.75
    assert report.test_accuracy > 0.75


def test_bad_training_settings_are_named(mixture):
    net = make_classifier("two-layer", mixture.shape, mixture.classes, width=8)
    with pytest.raises(InputError, match="learning rate must be positive"):
        train_classifier(net, mixture, epochs=1, lr=float("nan"))
    with pytest.raises(InputError, match="epochs must be a non-negative integer"):
        train_classifier(net, mixture, epochs=-1, lr=0.1)
    with pytest.raises(InputError, match="the batch size must be an integer >= 1, got 0"):
        train_classifier(net, mixture, epochs=1, lr=0.1, batch_size=0)
    with pytest.raises(InputError, match="training diverged"):
        train_classifier(make_classifier("mlp", mixture.shape, 4, width=64, depth=4, parameterization="standard"),
                         mixture, epochs=3, lr=1e6)  # fmt: skip


def test_noises_at_initialisation_are_separable_and_carry_the_labels_that_built_them(mixture):
    base = Setup(width=2048)
    true = run_experiment(mixture, base)
    assert true["noise_test_accuracy"] >= 0.95
    assert true["noise_test_accuracy_true_labels"] == true["noise_test_accuracy"]
    control = run_experiment(mixture, Setup(width=2048, labels="shuffled"))
    assert control["noise_test_accuracy"] >= 0.9
    assert control["noise_test_accuracy_true_labels"] < 0.4  # 4 classes: chance 0.25


def test_shuffled_labels_keep_the_counts():
    y = torch.arange(20) % 4
    s = shuffled_labels(y, 0)
    assert torch.equal(torch.bincount(s), torch.bincount(y))
    assert not torch.equal(s, y)


def test_sweeps_follow_their_axis_in_order(mixture):
    rows = sweep(mixture, Setup(width=4), "width", [1, 4, 512])
    assert [r["value"] for r in rows] == [1, 4, 512]
    assert [r["width"] for r in rows] == [1, 4, 512]
    accuracies = [r["noise_test_accuracy"] for r in rows]
    assert accuracies[-1] > accuracies[0] + 0.2  # separability grows with width
    deep = sweep(mixture, Setup(width=64), "depth", [2, 3])
    assert [r["model"] for r in deep] == ["mlp", "mlp"]
    assert [r["depth"] for r in deep] == [2, 3]
    steps = sweep(mixture, Setup(width=64), "steps", [1, 2])
    assert [r["method"] for r in steps] == ["pgd", "pgd"]
    trained = sweep(mixture, Setup(width=64, lr=1.0), "epochs", [0, 3])
    assert trained[0]["distance"] == 0.0 < trained[1]["distance"]
    with pytest.raises(InputError, match="unknown sweep axis 'batch'"):
        sweep(mixture, Setup(), "batch", [1])  # type: ignore[arg-type]
    with pytest.raises(InputError, match="needs at least one value"):
        sweep(mixture, Setup(), "width", [])


def test_a_network_that_stays_at_the_majority_class_is_reported(mixture, caplog):
    x, y = torch.ones(40, 3), torch.tensor([1] * 30 + [0] * 10)  # nothing to learn but the label counts
    flat = Dataset("flat", x, y, x[:8], y[:8], 2)
    torch.manual_seed(0)
    net = make_classifier("mlp", (3,), 2, width=8, parameterization="standard")
    report = train_classifier(net, flat, epochs=3, lr=0.5)
    assert report.majority_accuracy == 0.75
    assert report.at_majority
    assert ("flat: after 3 epochs at lr 0.5 the network's training accuracy is 0.750, no better than always "
            "predicting the most common class (0.750)") in caplog.text  # fmt: skip
    caplog.clear()
    torch.manual_seed(0)
    net = make_classifier("two-layer", mixture.shape, mixture.classes, width=256)
    assert not train_classifier(net, mixture, epochs=5, lr=2.0).at_majority
    assert not train_classifier(
        net, mixture, epochs=0, lr=2.0
    ).at_majority  # untrained: nothing to warn about
    assert "no better than" not in caplog.text


def test_the_cnn_records_none_for_the_sizes_it_does_not_have(mixture):
    setup = Setup(model="cnn", width=512, depth=4)
    assert (setup.width, setup.depth, setup.parameterization) == (None, None, "standard")
    with pytest.raises(InputError, match="the two-layer network has depth 2, got depth=5"):
        Setup(model="two-layer", depth=5)
    with pytest.raises(InputError, match="the cnn has fixed channels"):
        sweep(mixture, Setup(model="cnn"), "width", [4, 8])
