"""Shared fixtures: small seeded datasets and a clean global state for every test."""

from __future__ import annotations

import pytest
import torch

from advsep import Dataset, gaussian
from papers_common import preserved_global_state


@pytest.fixture(scope="session", autouse=True)
def _one_thread():
    """Torch on one thread in this process, as ``reproduce`` runs it: on cores shared with other jobs, two threads
    wait for each other at every parallel region and the suite takes several times longer."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


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
