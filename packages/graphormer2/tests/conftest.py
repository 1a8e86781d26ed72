"""Fixtures shared by the graphormer2 tests. Every tensor here is tiny: extra intra-op threads would only add
synchronisation on a machine whose cores are shared with other jobs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture
def rng() -> np.random.Generator:
    """A NumPy generator with a fixed seed."""
    return np.random.default_rng(0)
