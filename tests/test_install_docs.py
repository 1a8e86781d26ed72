"""The install commands in every README name real members, folders and extras."""

from __future__ import annotations

from pathlib import Path

import contract
import pytest
from conftest import MEMBERS, ROOT

import noxfile

BY_NAME = {m.name: (m.rel, m.extras) for m in MEMBERS}
READMES = [ROOT / "README.md", *(m.path / "README.md" for m in MEMBERS)]


@pytest.mark.parametrize("readme", READMES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_install_lines_name_real_members_and_extras(readme: Path) -> None:
    text = readme.read_text(encoding="utf-8")
    assert not contract.install_problems(text, BY_NAME, readme.relative_to(ROOT).as_posix())


def test_paper_readmes_say_how_to_install_from_a_checkout_and_after_a_release(member: noxfile.Member) -> None:
    if not member.is_paper:
        return
    text = (member.path / "README.md").read_text(encoding="utf-8")
    assert f"pip install ./shared ./packages/{member.name}" in text
    assert f"pip install {member.name}" in text
    assert "download.pytorch.org/whl/cpu" in text, f"{member.rel}/README.md: how to get CPU-only torch"
    assert "Install size" in text, f"{member.rel}/README.md: how large the install is"


def test_the_checker_finds_wrong_folders_names_and_extras() -> None:
    members = {
        "papers-common": ("shared", frozenset({"report"})),
        "house-kge": ("packages/house-kge", frozenset()),
    }
    text = "\n".join(
        [
            "pip install ./shared ./packages/house-kge",  # fine
            "pip install torch --index-url https://download.pytorch.org/whl/cpu",  # third party: fine
            "pip install './shared[report]' './packages/house-kge[reproduce]'",  # no such extra
            "pip install ./packages/housekge ./shared",  # no such folder
            "pip install ./packages/house-kge",  # the common package would come from PyPI
            "pip install 'house-kge[bench]'  # comment",  # no such extra
        ]
    )
    assert contract.install_problems(text, members, "R.md") == [
        "R.md: `pip install './shared[report]' './packages/house-kge[reproduce]'`: house-kge has no extra 'reproduce'",
        "R.md: `pip install ./packages/housekge ./shared`: ./packages/housekge is not a workspace member's folder",
        "R.md: `pip install ./packages/house-kge`: a checkout install needs ./shared in the same command",
        "R.md: `pip install 'house-kge[bench]'`: house-kge has no extra 'bench'",
    ]
