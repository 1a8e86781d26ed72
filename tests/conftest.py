"""Fixtures for the cross-cutting workspace contract: the members as the noxfile discovers them."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import noxfile  # noqa: E402  (the single source of member discovery and workflow rendering)

MEMBERS = noxfile.members(ROOT)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "member" in metafunc.fixturenames:
        metafunc.parametrize("member", MEMBERS, ids=[m.name for m in MEMBERS])
