"""Fixtures shared by the paperkit tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture
def restore_torch_determinism(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Undo the process-wide settings that ``seed_everything`` changes (environment and torch flags)."""
    import torch

    for name in ("PYTHONHASHSEED", "CUBLAS_WORKSPACE_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    enabled = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    benchmark = torch.backends.cudnn.benchmark
    deterministic = torch.backends.cudnn.deterministic
    yield
    torch.use_deterministic_algorithms(enabled, warn_only=warn_only)
    torch.backends.cudnn.benchmark = benchmark
    torch.backends.cudnn.deterministic = deterministic
