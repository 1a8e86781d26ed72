"""Packages share code only through papers_common: no dependency on, and no import of, another paper package."""

from __future__ import annotations

import textwrap
from pathlib import Path

import contract
import pytest
from conftest import MEMBERS, ROOT

import noxfile

NAMES = {m.name for m in MEMBERS}
PAPER_IMPORTS = {m.import_name for m in MEMBERS if m.is_paper}


def test_papers_common_is_the_only_member_dependency(member: noxfile.Member) -> None:
    project = noxfile.read_toml(member.path / "pyproject.toml")["project"]
    allowed = {"papers-common"} if member.is_paper else set()
    extra = contract.member_dependencies(project, NAMES - {member.name}) - allowed
    assert not extra, f"{member.rel}/pyproject.toml depends on workspace member(s) {sorted(extra)}"


def test_paper_packages_take_papers_common_from_the_workspace(member: noxfile.Member) -> None:
    pyproject = noxfile.read_toml(member.path / "pyproject.toml")
    sources = pyproject.get("tool", {}).get("uv", {}).get("sources", {})
    if not member.is_paper:
        assert sources == {}, f"{member.rel}: papers-common takes nothing from the workspace"
        return
    assert sources.get("papers-common") == {"workspace": True}, (
        f"{member.rel}: [tool.uv.sources] papers-common = {{ workspace = true }}"
    )
    assert "papers-common" in {contract.requirement_name(r) for r in pyproject["project"]["dependencies"]}


def test_no_imports_of_other_paper_packages(member: noxfile.Member) -> None:
    problems = contract.cross_imports(member.path, PAPER_IMPORTS - {member.import_name})
    assert not problems, f"{member.rel}: " + "; ".join(problems)


def test_shared_code_is_only_papers_common() -> None:
    shared = [
        p.name
        for p in (ROOT / "shared" / "src").iterdir()
        if p.is_dir() and not p.name.startswith((".", "_"))
    ]
    assert shared == ["papers_common"], f"shared/src must hold only the papers_common package, found {shared}"


# The checkers themselves, on small trees where they must find problems.


def test_cross_import_checker_finds_every_import_form(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("import urpe.attention\n")
    (tmp_path / "b.py").write_text("from house_kge import HousE\n")
    (tmp_path / "c.py").write_text("import importlib\nm = importlib.import_module('pinn_stein.stein')\n")
    (tmp_path / "d.py").write_text("from . import local\nimport torch\nfrom papers_common import App\n")
    found = contract.cross_imports(tmp_path, {"urpe", "house_kge", "pinn_stein"})
    assert found == ["a.py: imports urpe", "b.py: imports house_kge", "c.py: imports pinn_stein"]


def test_dependency_checker_sees_extras() -> None:
    project = {
        "dependencies": ["papers-common>=0.2", "torch"],
        "optional-dependencies": {"x": ["House_KGE[pykeen]>=1"]},
    }
    assert contract.member_dependencies(project, {"papers-common", "house-kge", "urpe"}) == {
        "papers-common",
        "house-kge",
    }


def test_layout_checkers_report_what_is_missing(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("# x\n## Install\n### Quickstart: ten lines\n")
    (tmp_path / "CHANGELOG.md").write_text("# Changelog\n## [0.2.0] - 2026-11-24\n")
    assert contract.missing_sections(tmp_path / "README.md", contract.PAPER_SECTIONS) == [
        "Reproduce",
        "Results",
        "Limitations",
        "Citing",
    ]
    assert contract.changelog_has(tmp_path / "CHANGELOG.md", "0.2.0")
    assert not contract.changelog_has(tmp_path / "CHANGELOG.md", "0.2")
    missing = contract.missing_files(tmp_path, "x", paper=True)
    assert "src/x/reproduce.py" in missing
    assert "tests/test_*.py" in missing
    assert "README.md" not in missing
    assert "CITATION.cff" in missing
    init = tmp_path / "init.py"
    init.write_text(textwrap.dedent("from .a import b\n"))
    assert not contract.defines_all(init)
    init.write_text('__all__: list[str] = ["b"]\n')
    assert contract.defines_all(init)


@pytest.mark.parametrize("requirement", ["", "   ", ";python_version<'3'"])
def test_requirement_name_rejects_garbage(requirement: str) -> None:
    with pytest.raises(ValueError, match="not a requirement"):
        contract.requirement_name(requirement)
