"""Datasets: the offline ones as documented, the user's .npz files, and named errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from advsep import Dataset, digits, gaussian, load_dataset, load_npz, mnist1d, standardize
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
        ({"x": np.zeros((4, 2)), "y": np.zeros(4, dtype=int)}, r"1 value\(s\) \[0\]; .* at least two classes"),
        ({"x": np.zeros((4, 2)), "y": np.array([0, 1, 0, 1]), "x_test": np.zeros((2, 2)), "y_test": np.array([1, 7])},
         r"'y_test' has label\(s\) \[7\] that never occur in 'y'"),
        ({"x": np.zeros((4, 2)), "y": np.array([0, 1, 0, 1]), "x_test": np.zeros((2, 2))}, "both 'x_test' and 'y_test'"),
        ({"x": np.zeros((4, 2)), "y": np.array([0, 1, 0, 1]), "x_test": np.zeros((2, 3)), "y_test": np.array([0, 1])},
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
    (tmp_path / "broken.npz").write_text("x,y\n1,0\n")
    with pytest.raises(InputError, match=r"broken\.npz: not an npz archive \(numpy\.savez writes a zip file"):
        load_dataset(tmp_path / "broken.npz")
    np.save(tmp_path / "single.npy", np.zeros((3, 2)))
    (tmp_path / "single.npy").rename(tmp_path / "single.npz")
    with pytest.raises(InputError, match=r"single\.npz: a single \.npy array, not an npz archive"):
        load_dataset(tmp_path / "single.npz")
    with pytest.raises(InputError, match="torchvision:NAME:ROOT"):
        load_dataset("torchvision:CIFAR10")


def test_a_non_finite_row_is_named_by_file_array_and_row_as_stored(tmp_path):
    x = np.ones((30, 3))
    x[17, 1] = np.nan
    np.savez(tmp_path / "users.npz", x=x, y=np.arange(30) % 2)  # no test split: the rows are shuffled after
    with pytest.raises(InputError, match=r"users\.npz: 'x' row 17 has a non-finite value"):
        load_dataset(tmp_path / "users.npz")
    xt = np.ones((5, 3))
    xt[[2, 4], 0] = np.inf
    np.savez(
        tmp_path / "split.npz", x=np.ones((30, 3)), y=np.arange(30) % 2, x_test=xt, y_test=np.arange(5) % 2
    )
    with pytest.raises(
        InputError, match=r"split\.npz: 'x_test' row 2 has a non-finite value \(and 1 more rows\)"
    ):
        load_dataset(tmp_path / "split.npz")


def test_labels_that_are_not_0_to_k_are_mapped_and_the_mapping_kept(tmp_path):
    rng = np.random.default_rng(0)
    y = np.array([0, 100, 200])[np.arange(60) % 3]
    np.savez(tmp_path / "sparse.npz", x=rng.normal(size=(60, 4)), y=y)
    data = load_dataset(tmp_path / "sparse.npz")
    assert data.classes == 3
    assert data.label_values == [0, 100, 200]
    assert data.describe()["label_values"] == [0, 100, 200]
    assert set(data.y_train.tolist()) == {0, 1, 2}
    np.savez(tmp_path / "signs.npz", x=rng.normal(size=(40, 4)), y=np.where(np.arange(40) % 2, 1, -1))
    signs = load_dataset(tmp_path / "signs.npz")
    assert (signs.classes, signs.label_values) == (2, [-1, 1])
    np.savez(tmp_path / "plain.npz", x=rng.normal(size=(40, 4)), y=np.arange(40) % 4)
    plain = load_dataset(tmp_path / "plain.npz")
    assert plain.label_values is None
    assert "label_values" not in plain.describe()


def test_users_features_are_standardised_with_the_training_splits_statistics(tmp_path):
    rng = np.random.default_rng(1)
    scale = np.array([1e-3, 1.0, 4e3])  # breast-cancer-like: features on very different scales
    x, xt = rng.normal(size=(200, 3)) * scale + 5 * scale, rng.normal(size=(50, 3)) * scale
    np.savez(tmp_path / "scales.npz", x=x, y=np.arange(200) % 2, x_test=xt, y_test=np.arange(50) % 2)
    data = load_dataset(tmp_path / "scales.npz")
    assert data.describe()["standardized"] is True
    assert torch.allclose(data.x_train.mean(0), torch.zeros(3), atol=1e-4)
    assert torch.allclose(data.x_train.std(0, unbiased=False), torch.ones(3), atol=1e-4)
    stats = data.standardization
    assert stats is not None
    expected = (torch.as_tensor(xt, dtype=torch.float32) - stats.mean) / stats.std  # the training statistics
    assert torch.allclose(data.x_test, expected)
    assert torch.allclose(stats.mean, torch.as_tensor(x.mean(0), dtype=torch.float32), rtol=1e-5)
    raw = load_dataset(tmp_path / "scales.npz", standardize_features=False)
    assert raw.standardization is None
    assert raw.describe()["standardized"] is False
    assert float(raw.x_train[:, 2].abs().max()) > 1e4
    saved = np.load(stats.save(tmp_path / "standardization.npz"))
    assert np.allclose(saved["mean"], stats.mean.numpy())
    assert np.allclose(saved["std"], stats.std.numpy())
    one_constant_feature = Dataset("c", torch.tensor([[1.0, 2.0], [1.0, 3.0]]), torch.tensor([0, 1]),
                                   torch.tensor([[1.0, 5.0]]), torch.tensor([0]), 2)  # fmt: skip
    constant = standardize(one_constant_feature)
    assert constant.x_train[:, 0].eq(0).all()
    assert constant.x_test.tolist() == [[0.0, 5.0]]
    assert digits().standardization is None  # the bundled sets keep their documented scales
