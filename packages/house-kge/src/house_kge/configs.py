"""Ready hyperparameters: the paper's best configurations (official ``best_config.sh``) and small CPU ones.

Each entry gives the model settings (``HousEConfig`` fields) and the training settings (``TrainConfig`` fields).
"""

from __future__ import annotations

from typing import Any

from papers_common import InputError

PAPER: dict[str, dict[str, dict[str, Any]]] = {
    "house/wn18rr": {
        "model": {"variant": "house", "dim": 800, "k": 8, "projections": 1, "threshold": 0.5, "gamma": 6.0},
        "train": {"batch_size": 1000, "negatives": 200, "alpha": 1.149, "lr": 5.75e-4, "steps": 60_000, "warm_up": 20_000, "regularization": 0.0961},
    },
    "house/fb15k-237": {
        "model": {"variant": "house", "dim": 600, "k": 20, "projections": 6, "threshold": 0.6, "gamma": 5.0},
        "train": {"batch_size": 500, "negatives": 500, "alpha": 2.004, "lr": 7.94e-4, "steps": 100_000, "warm_up": 10_000, "regularization": 0.00337},
    },
    "house/wn18": {
        "model": {"variant": "house", "dim": 1000, "k": 12, "projections": 1, "threshold": 0.3, "gamma": 10.0},
        "train": {"batch_size": 1500, "negatives": 300, "alpha": 0.716, "lr": 5.27e-4, "steps": 60_000, "warm_up": 15_000, "regularization": 0.0167},
    },
    "house/fb15k": {
        "model": {"variant": "house", "dim": 1200, "k": 3, "projections": 2, "threshold": 0.6, "gamma": 20.0},
        "train": {"batch_size": 1000, "negatives": 300, "alpha": 0.718, "lr": 1.47e-3, "steps": 150_000, "warm_up": 20_000, "regularization": 0.182},
    },
    "house/yago3-10": {
        "model": {"variant": "house", "dim": 1000, "k": 20, "projections": 1, "threshold": 0.7, "gamma": 26.0},
        "train": {"batch_size": 1800, "negatives": 400, "alpha": 1.160, "lr": 2.59e-3, "steps": 250_000, "warm_up": 40_000, "regularization": 0.0882},
    },
    "house-r/wn18rr": {
        "model": {"variant": "house-r", "dim": 793, "k": 13, "threshold": 0.0, "gamma": 11.0},
        "train": {"batch_size": 2000, "negatives": 400, "alpha": 0.687, "lr": 5.93e-4, "steps": 60_000, "warm_up": 30_000, "regularization": 0.235},
    },
    "house-r/fb15k-237": {
        "model": {"variant": "house-r", "dim": 600, "k": 25, "threshold": 0.0, "gamma": 11.0},
        "train": {"batch_size": 1000, "negatives": 300, "alpha": 1.060, "lr": 7.35e-4, "steps": 100_000, "warm_up": 25_000, "regularization": 0.0},
    },
    "house+/wn18rr": {
        "model": {"variant": "house+", "dim": 800, "k": 8, "projections": 1, "threshold": 0.3, "gamma": 7.0},
        "train": {"batch_size": 800, "negatives": 300, "alpha": 0.834, "lr": 6.48e-4, "steps": 60_000, "warm_up": 20_000, "regularization": 0.0847},
    },
    "house+/fb15k-237": {
        "model": {"variant": "house+", "dim": 600, "k": 25, "projections": 6, "threshold": 0.6, "gamma": 5.0},
        "train": {"batch_size": 1000, "negatives": 300, "alpha": 2.624, "lr": 2.79e-4, "steps": 100_000, "warm_up": 35_000, "regularization": 0.0966},
    },
}  # fmt: skip


def paper_config(name: str) -> dict[str, dict[str, Any]]:
    """One of :data:`PAPER` by ``"<variant>/<dataset>"``; an unknown name is an error listing the choices."""
    if name not in PAPER:
        raise InputError(f"unknown configuration {name!r}; choose one of {', '.join(sorted(PAPER))}")
    return PAPER[name]
