"""Fixtures shared by the papers_common tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture
def restore_torch_determinism() -> Iterator[None]:
    """Undo the process-wide settings that ``seed_everything`` changes (environment, torch flags, generators)."""
    from papers_common import preserved_global_state

    with preserved_global_state():
        yield
