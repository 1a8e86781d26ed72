"""Shared fixtures: a small generated benchmark (seconds)."""

from __future__ import annotations

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def small():
    from portal_learning import SynthSettings, generate

    return generate(SynthSettings(families=12, molecules=300, pairs_per_member=20, seed=0))
