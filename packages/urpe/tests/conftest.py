"""Fixtures shared by the urpe tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from papers_common import preserved_global_state

# Every tensor in these tests is tiny: extra intra-op threads only add synchronisation, which dominates (by orders
# of magnitude) when other processes occupy the cores.
torch.set_num_threads(1)

SAMPLE_TEXT = (
    "It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of "
    "foolishness, it was the epoch of belief, it was the epoch of incredulity, it was the season of Light, "
    "it was the season of Darkness, it was the spring of hope, it was the winter of despair.\n"
)


@pytest.fixture
def text_folder(tmp_path: Path) -> Path:
    """A folder of ``.txt`` files (one nested) plus catalogue and non-text files that a corpus must skip."""
    root = tmp_path / "texts"
    (root / "nested").mkdir(parents=True)
    (root / "a.txt").write_text(SAMPLE_TEXT * 4, encoding="utf-8")
    (root / "nested" / "b.txt").write_text(SAMPLE_TEXT.upper() * 3, encoding="utf-8")
    (root / "METADATA.txt").write_text("catalogue entry that must not be read\n" * 50, encoding="utf-8")
    (root / "README.txt").write_text("readme that must not be read\n" * 50, encoding="utf-8")
    (root / "notes.md").write_text("markdown that must not be read\n" * 50, encoding="utf-8")
    return root


@pytest.fixture
def restore_torch_determinism() -> Iterator[None]:
    """Undo the process-wide settings that ``papers_common.seed_everything`` (run by ``urpe train``) changes."""
    with preserved_global_state():
        yield
