"""The common package's old name is gone: it belongs to an unrelated project on PyPI.

Only the CHANGELOGs (history) and uv.lock may still say it. The name is built here so that this file does not
mention it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import contract
import pytest
from conftest import ROOT

OLD = "paper" + "kit"
OLD_NAME = re.compile(r"paper[-_.]?kit", re.IGNORECASE)  # any case, also with - _ . between the two words


def allowed(path: str) -> bool:
    return path == "uv.lock" or path.endswith("CHANGELOG.md")


def tracked_files() -> list[str]:
    git = shutil.which("git")
    if git is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    out = subprocess.run([git, "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True)
    return [p for p in out.stdout.decode("utf-8").split("\0") if p]


def test_no_tracked_file_mentions_the_old_name() -> None:
    files = [f for f in tracked_files() if not allowed(f)]
    found = contract.files_mentioning(ROOT, files, OLD_NAME)
    assert not found, (
        f"the old name {OLD!r} is still mentioned (rename to papers-common / papers_common): {found}"
    )


def test_the_finder_sees_every_spelling(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text(f"import {OLD}\n")
    (tmp_path / "b.md").write_text(f"fine\n{OLD.capitalize()[:5]}-Kit here\n")
    (tmp_path / "c.toml").write_text('name = "papers-common"\n')
    found = contract.files_mentioning(tmp_path, ["a.py", "b.md", "c.toml", "gone.txt"], OLD_NAME)
    assert found == ["a.py:1", "b.md:2"]
    assert not allowed("packages/x/README.md")
    assert allowed("packages/x/CHANGELOG.md")
    assert allowed("uv.lock")
