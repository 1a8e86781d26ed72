"""Shared fixtures: small seeded datasets and a clean global state for every test."""

from __future__ import annotations

import pytest
import torch

from advsep import Dataset, gaussian
from papers_common import preserved_global_state


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with preserved_global_state():
        yield


@pytest.fixture(scope="session")
def mixture() -> Dataset:
    """A 4-class mixture on the sphere of R^32: 400 training and 200 test points."""
    return gaussian(dim=32, classes=4, train=400, test=200, noise=1.0, seed=3)


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)
