"""Labelled datasets available offline, and the user's own arrays.

- ``digits``: scikit-learn's bundled 8×8 handwritten digits (1,797 images, 10 classes), split 1,200 / 597 by a
  seeded permutation, each pixel standardised with the training split's mean and standard deviation;
- ``mnist1d``: MNIST-1D (Greydanus, 2020) generated locally from its templates with the package's default
  arguments (5,000 signals of length 40, 10 classes, its own 4,000 / 1,000 split; never downloaded);
- ``gaussian``: a synthetic mixture in the theorem's setting: K class means drawn on the unit sphere of R^d,
  points = mean + isotropic noise, renormalised to the sphere;
- a ``.npz`` file with arrays ``x`` (N, ...) and ``y`` (N,), and optionally ``x_test`` / ``y_test`` (otherwise
  a seeded 80 / 20 split); labels may be any integers (e.g. {0, 100, 200} or {-1, 1}): they are mapped to
  0..K-1 in sorted order and the mapping is kept in ``Dataset.label_values``;
- ``torchvision:NAME:ROOT`` (e.g. ``torchvision:CIFAR10:data``): a torchvision dataset already on disk
  (``download=False``), pixels scaled to [0, 1]; needs torchvision.

The user's own data (``.npz`` and torchvision) is standardised by :func:`load_dataset` unless asked not to:
each feature minus its training-split mean, divided by its training-split standard deviation
(:func:`standardize`; the statistics are kept in ``Dataset.standardization``). Raw features of very different
scales (e.g. breast-cancer measurements from 0.001 to 4,000) otherwise leave a trained network at the
majority class.

Inputs keep their per-example shape (digits (1, 8, 8), mnist1d (1, 40)); MLPs and probes flatten them.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from advsep.noise import check_labelled
from papers_common import InputError

NAMES = ("digits", "mnist1d", "gaussian")


@dataclass
class Standardization:
    """Per-feature statistics of a training split: x ↦ (x − mean) / std, ``mean`` and ``std`` ``(*shape)``
    float32 (features that never vary get std 1)."""

    mean: torch.Tensor
    std: torch.Tensor

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` ``(N, *shape)`` standardised."""
        return (x - self.mean) / self.std

    def save(self, path: str | Path) -> Path:
        """Write ``mean`` and ``std`` to an ``.npz`` file (arrays ``mean``, ``std``)."""
        from papers_common import atomic_path

        path = Path(path)
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:
            np.savez(handle, mean=self.mean.numpy(), std=self.std.numpy())
        return path


@dataclass
class Dataset:
    """Train and test splits: inputs ``(N, *shape)`` float32 and labels ``(N,)`` int64 in [0, classes).

    ``label_values[k]`` is the label class k had in the source file when the source's labels were not already
    0..K-1 (None otherwise); ``standardization`` holds the statistics the inputs were standardised with (None
    when they were not).
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    classes: int
    label_values: list[int] | None = None
    standardization: Standardization | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        check_labelled(self.x_train, self.y_train, self.classes, what=f"{self.name} training split")
        check_labelled(self.x_test, self.y_test, self.classes, what=f"{self.name} test split")
        if self.x_train.shape[1:] != self.x_test.shape[1:]:
            raise InputError(
                f"{self.name}: training examples have shape {tuple(self.x_train.shape[1:])}, "
                f"test examples {tuple(self.x_test.shape[1:])}"
            )

    @property
    def shape(self) -> tuple[int, ...]:
        """The per-example input shape."""
        return tuple(self.x_train.shape[1:])

    def describe(self) -> dict[str, Any]:
        described = {"name": self.name, "shape": list(self.shape), "classes": self.classes,
                     "train": int(self.x_train.shape[0]), "test": int(self.x_test.shape[0]),
                     "standardized": self.standardization is not None}  # fmt: skip
        if self.label_values is not None:
            described["label_values"] = list(self.label_values)
        return described

    def majority_share(self) -> float:
        """The share of the most common training label: the accuracy of always predicting it."""
        return float(torch.bincount(self.y_train, minlength=self.classes).max()) / max(
            1, self.y_train.shape[0]
        )


def standardize(data: Dataset) -> Dataset:
    """``data`` with each input feature standardised by the training split's mean and standard deviation."""
    mean = data.x_train.mean(0)
    std = data.x_train.std(0, unbiased=False)
    std = torch.where(std > 0, std, torch.ones_like(std))  # constant features stay constant (at 0)
    stats = Standardization(mean, std)
    return replace(
        data, x_train=stats.apply(data.x_train), x_test=stats.apply(data.x_test), standardization=stats
    )


def _tensors(
    name: str, x: np.ndarray, y: np.ndarray, xt: np.ndarray, yt: np.ndarray, classes: int
) -> Dataset:
    return Dataset(name, torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.int64),
                   torch.as_tensor(xt, dtype=torch.float32), torch.as_tensor(yt, dtype=torch.int64), classes)  # fmt: skip


def digits(*, seed: int = 0, train: int = 1200) -> Dataset:
    """scikit-learn's digits, ``train`` images for training and the rest for testing, standardised per pixel."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x, y = bunch.data.astype(np.float64), bunch.target.astype(np.int64)
    if not 1 <= train < len(y):
        raise InputError(
            f"digits has {len(y)} images; the training split must be 1..{len(y) - 1}, got {train}"
        )
    order = np.random.default_rng(seed).permutation(len(y))
    tr, te = order[:train], order[train:]
    mean, std = x[tr].mean(0), x[tr].std(0)
    std[std == 0] = 1.0  # pixels that are always blank stay 0
    x = ((x - mean) / std).reshape(-1, 1, 8, 8)
    return _tensors("digits", x[tr], y[tr], x[te], y[te], 10)


def mnist1d(*, seed: int = 42, samples: int = 5000) -> Dataset:
    """MNIST-1D generated from its templates (``seed`` and ``samples`` as in its ``get_dataset_args``)."""
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.seed, args.num_samples = seed, samples
    state = np.random.get_state()  # noqa: NPY002 - make_dataset seeds numpy's global generator; restore it
    try:
        made = make_dataset(args)
    finally:
        np.random.set_state(state)  # noqa: NPY002
    return _tensors(
        "mnist1d", made["x"][:, None, :], made["y"], made["x_test"][:, None, :], made["y_test"], 10
    )


def gaussian(
    *,
    dim: int = 64,
    classes: int = 10,
    train: int = 2000,
    test: int = 1000,
    noise: float = 1.0,
    seed: int = 0,
) -> Dataset:
    """A mixture on the unit sphere of R^dim: x = (μ_y + noise · z) / ‖·‖ with μ_k uniform on the sphere and
    z ~ N(0, I / dim); labels balanced at random."""
    if dim < 1 or classes < 2 or train < 1 or test < 1 or not noise >= 0:
        raise InputError(f"gaussian: need dim >= 1, classes >= 2, train/test >= 1, noise >= 0; got {dim, classes, train, test, noise}")  # fmt: skip
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(classes, dim, generator=g, dtype=torch.float64)
    means /= means.norm(dim=1, keepdim=True)
    y = torch.randint(0, classes, (train + test,), generator=g)
    x = means[y] + noise * torch.randn(train + test, dim, generator=g, dtype=torch.float64) / dim**0.5
    x /= x.norm(dim=1, keepdim=True)
    return Dataset("gaussian", x[:train].float(), y[:train], x[train:].float(), y[train:], classes)


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    with open(path, "rb") as handle:
        head = handle.read(6)
    if head.startswith(b"\x93NUMPY"):
        raise InputError(f"{path}: a single .npy array, not an npz archive; save x and y with numpy.savez")
    if not head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        raise InputError(
            f"{path}: not an npz archive (numpy.savez writes a zip file of arrays; this file starts with {head!r})"
        )
    try:
        with np.load(path, allow_pickle=False) as arrays:
            return {k: arrays[k] for k in arrays.files}
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        raise InputError(f"{path}: not a readable npz archive ({error})") from None


def _check_rows(path: Path, key: str, x: np.ndarray) -> None:
    finite = np.isfinite(x.reshape(len(x), -1)).all(1)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        more = f" (and {len(bad) - 1} more rows)" if len(bad) > 1 else ""
        raise InputError(f"{path}: '{key}' row {int(bad[0])} has a non-finite value{more}")


def load_npz(path: str | Path, *, seed: int = 0, test_fraction: float = 0.2) -> Dataset:
    """Arrays ``x``, ``y`` (and optionally ``x_test``, ``y_test``) from a NumPy ``.npz`` file.

    Labels may be any integers with at least two distinct values; when they are not 0..K-1 they are mapped to
    it in sorted order (``label_values`` keeps the original of each class). Without ``x_test`` a seeded
    ``test_fraction`` of the examples is held out. Errors name the file, the array and the row as stored.
    """
    path = Path(path)
    found = _read_npz(path)
    for key in ("x", "y"):
        if key not in found:
            raise InputError(f"{path}: needs arrays 'x' and 'y'; it has {sorted(found)}")
    if ("x_test" in found) != ("y_test" in found):
        raise InputError(f"{path}: give both 'x_test' and 'y_test' or neither")
    for key, value in found.items():
        if key.startswith("y") and not np.issubdtype(value.dtype, np.integer):
            raise InputError(f"{path}: '{key}' must hold integer labels, got dtype {value.dtype}")
        if key.startswith("x") and not np.issubdtype(value.dtype, np.number):
            raise InputError(f"{path}: '{key}' must be numeric, got dtype {value.dtype}")
    x, y = found["x"], found["y"]
    if x.ndim < 2:
        raise InputError(f"{path}: 'x' must be (examples, features...), got shape {x.shape}")
    if y.ndim != 1 or len(x) != len(y):
        raise InputError(f"{path}: 'x' has {len(x)} examples, 'y' {len(y)}")
    _check_rows(path, "x", x)
    if "x_test" in found:
        xt, yt = found["x_test"], found["y_test"]
        if yt.ndim != 1 or len(xt) != len(yt):
            raise InputError(f"{path}: 'x_test' has {len(xt)} examples, 'y_test' {len(yt)}")
        _check_rows(path, "x_test", xt)
        unseen = np.setdiff1d(yt, y)
        if unseen.size:
            raise InputError(
                f"{path}: 'y_test' has label(s) {unseen[:5].tolist()} that never occur in 'y'; the probe and the "
                "network cannot learn a class without training examples"
            )
    else:
        xt, yt = x[:0], y[:0]
    values = np.unique(np.concatenate([y, yt]))
    if len(values) < 2:
        raise InputError(
            f"{path}: the labels take {len(values)} value(s) {values.tolist()}; separating noises by label needs "
            "at least two classes"
        )
    contiguous = bool(values[0] == 0 and values[-1] == len(values) - 1)
    y, yt = np.searchsorted(values, y), np.searchsorted(values, yt)
    if "x_test" not in found:
        order = np.random.default_rng(seed).permutation(len(y))
        cut = len(y) - max(1, round(test_fraction * len(y)))
        if cut < 1:
            raise InputError(f"{path}: {len(y)} examples are too few to split into training and test sets")
        x, y, xt, yt = x[order[:cut]], y[order[:cut]], x[order[cut:]], y[order[cut:]]
    data = _tensors(path.stem, x, y, xt, yt, len(values))
    data.label_values = None if contiguous else [int(v) for v in values]
    return data


def load_torchvision(name: str, root: str | Path) -> Dataset:
    """A torchvision dataset class ``name`` already downloaded under ``root`` (train and test splits)."""
    try:
        import torchvision.datasets as datasets
    except ImportError:
        raise InputError(
            "torchvision:… datasets need torchvision installed (pip install torchvision)"
        ) from None
    cls = getattr(datasets, name, None)
    if cls is None:
        raise InputError(f"torchvision has no dataset {name!r}")
    try:
        splits = [cls(str(root), train=flag, download=False) for flag in (True, False)]
    except (RuntimeError, OSError) as error:
        raise InputError(f"torchvision {name} under {root}: {error}") from None
    arrays = []
    for split in splits:
        x = np.asarray(split.data, dtype=np.float32) / 255.0
        x = x[:, None] if x.ndim == 3 else x.transpose(0, 3, 1, 2)  # (N, H, W) or (N, H, W, C) → (N, C, H, W)
        arrays += [x, np.asarray(split.targets, dtype=np.int64)]
    classes = len(getattr(splits[0], "classes", [])) or int(arrays[1].max()) + 1
    return _tensors(name, *arrays, classes)


def load_dataset(spec: str | Path, *, seed: int = 0, standardize_features: bool = True) -> Dataset:
    """``digits``, ``mnist1d``, ``gaussian``, a ``.npz`` path or ``torchvision:NAME:ROOT``.

    The user's own data (``.npz``, torchvision) is standardised with its training split's statistics unless
    ``standardize_features`` is False; the bundled datasets keep their documented scales.
    """
    text = str(spec)
    if text == "digits":
        return digits(seed=seed)
    if text == "mnist1d":
        return mnist1d()
    if text == "gaussian":
        return gaussian(seed=seed)
    if text.startswith("torchvision:"):
        parts = text.split(":", 2)
        if len(parts) != 3 or not parts[1] or not parts[2]:
            raise InputError(f"expected torchvision:NAME:ROOT, got {text!r}")
        data = load_torchvision(parts[1], parts[2])
        return standardize(data) if standardize_features else data
    path = Path(text)
    if path.suffix == ".npz":
        if not path.is_file():
            raise InputError(f"{path}: no such file")
        data = load_npz(path, seed=seed)
        return standardize(data) if standardize_features else data
    raise InputError(
        f"unknown dataset {text!r}: use one of {', '.join(NAMES)}, a .npz file or torchvision:NAME:ROOT"
    )
