"""Datasets: the offline ones as documented, the user's .npz files, and named errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from advsep import digits, gaussian, load_dataset, load_npz, mnist1d
from papers_common import InputError


def test_digits_split_and_standardisation():
    data = digits(seed=0)
    assert data.x_train.shape == (1200, 1, 8, 8)
    assert data.x_test.shape == (597, 1, 8, 8)
    assert data.classes == 10
    assert set(data.y_train.tolist()) == set(range(10))
    flat = data.x_train.reshape(1200, -1)
    assert torch.allclose(flat.mean(0), torch.zeros(64), atol=1e-5)
    used = flat.std(0, unbiased=False) > 0
    assert torch.allclose(flat.std(0, unbiased=False)[used], torch.ones(int(used.sum())), atol=1e-4)
    assert not torch.equal(digits(seed=1).y_train, data.y_train)


def test_mnist1d_is_generated_locally_and_leaves_numpys_generator_alone():
    np.random.seed(123)  # noqa: NPY002 - the legacy global generator is what is checked
    before = np.random.get_state()[1].copy()  # noqa: NPY002
    data = mnist1d()
    assert np.array_equal(np.random.get_state()[1], before)  # noqa: NPY002
    assert data.x_train.shape == (4000, 1, 40)
    assert data.x_test.shape == (1000, 1, 40)
    assert data.classes == 10
    assert torch.equal(mnist1d().x_test, data.x_test)  # deterministic


def test_gaussian_points_lie_on_the_sphere():
    data = gaussian(dim=12, classes=3, train=50, test=20, seed=0)
    assert torch.allclose(data.x_train.norm(dim=1), torch.ones(50), atol=1e-5)
    assert data.shape == (12,)


def test_npz_with_and_without_a_test_split(tmp_path):
    x = np.random.default_rng(0).normal(size=(50, 3, 4)).astype(np.float32)
    y = np.arange(50) % 5
    np.savez(tmp_path / "plain.npz", x=x, y=y)
    data = load_dataset(tmp_path / "plain.npz")
    assert data.x_train.shape == (40, 3, 4)
    assert data.x_test.shape == (10, 3, 4)
    assert data.classes == 5
    np.savez(tmp_path / "split.npz", x=x[:30], y=y[:30], x_test=x[30:], y_test=y[30:])
    split = load_npz(tmp_path / "split.npz")
    assert split.x_test.shape[0] == 20
    assert split.name == "split"


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"x": np.zeros((4, 2))}, "needs arrays 'x' and 'y'"),
        ({"x": np.zeros((4, 2)), "y": np.zeros(3, dtype=int)}, "'x' has 4 examples, 'y' 3"),
        ({"x": np.zeros((4, 2)), "y": np.zeros(4)}, "'y' must hold integer labels"),
        ({"x": np.zeros((4, 2)), "y": np.array([0, 1, -1, 0])}, "labels must be >= 0"),
        ({"x": np.full((4, 2), np.nan), "y": np.zeros(4, dtype=int)}, "non-finite value"),
        ({"x": np.zeros((4, 2)), "y": np.zeros(4, dtype=int), "x_test": np.zeros((2, 2))}, "both 'x_test' and 'y_test'"),
        ({"x": np.zeros((4, 2)), "y": np.zeros(4, dtype=int), "x_test": np.zeros((2, 3)), "y_test": np.zeros(2, dtype=int)},
         "training examples have shape"),
    ],
)  # fmt: skip
def test_bad_npz_files_are_named(tmp_path, arrays, message):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(InputError, match=message):
        load_dataset(path)


def test_unknown_and_missing_datasets_are_named(tmp_path):
    with pytest.raises(InputError, match="unknown dataset 'cifar'"):
        load_dataset("cifar")
    with pytest.raises(InputError, match="no such file"):
        load_dataset(tmp_path / "missing.npz")
    (tmp_path / "broken.npz").write_text("not a zip")
    with pytest.raises(InputError, match=r"not a readable \.npz file"):
        load_dataset(tmp_path / "broken.npz")
    with pytest.raises(InputError, match="torchvision:NAME:ROOT"):
        load_dataset("torchvision:CIFAR10")
