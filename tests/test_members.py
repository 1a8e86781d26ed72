"""Every workspace member has the shape CONTRIBUTING.md describes."""

from __future__ import annotations

import re

import contract
from conftest import MEMBERS, ROOT

import noxfile

PEP440 = re.compile(r"^\d+(\.\d+)*((a|b|rc)\d+)?(\.post\d+)?(\.dev\d+)?$")


def test_members_are_discovered() -> None:
    names = [m.name for m in MEMBERS]
    assert "papers-common" in names
    assert len(names) == len(set(names)), f"duplicate distribution names: {names}"
    assert all(m.path.parent == ROOT / "packages" for m in MEMBERS if m.name != "papers-common")


def test_required_files(member: noxfile.Member) -> None:
    missing = contract.missing_files(member.path, member.import_name, paper=member.is_paper)
    assert not missing, f"{member.rel}: missing {missing}"


def test_project_metadata(member: noxfile.Member) -> None:
    project = noxfile.read_toml(member.path / "pyproject.toml")["project"]
    assert PEP440.match(member.version), (
        f"{member.rel}/pyproject.toml: version {member.version!r} is not PEP 440"
    )
    assert project.get("description"), f"{member.rel}/pyproject.toml: no description"
    assert project.get("license"), f"{member.rel}/pyproject.toml: no license"
    assert project.get("readme") == "README.md", f"{member.rel}/pyproject.toml: readme must be README.md"
    assert project.get("requires-python") == ">=3.10", (
        f"{member.rel}/pyproject.toml: requires-python must be '>=3.10'"
    )
    assert "test" in member.extras, (
        f"{member.rel}/pyproject.toml: no [project.optional-dependencies] test extra"
    )
    test_extra = project["optional-dependencies"]["test"]
    assert "pytest" in {contract.requirement_name(r) for r in test_extra}, (
        f"{member.rel}: the test extra lacks pytest"
    )


def test_console_script_is_named_like_the_distribution(member: noxfile.Member) -> None:
    assert member.scripts.get(member.name) == f"{member.import_name}.cli:main", (
        f"{member.rel}/pyproject.toml: [project.scripts] must map {member.name!r} to '{member.import_name}.cli:main'"
    )


def test_init_declares_public_api(member: noxfile.Member) -> None:
    init = member.path / "src" / member.import_name / "__init__.py"
    assert contract.defines_all(init), f"{init.relative_to(ROOT)}: no __all__"


def test_readme_sections(member: noxfile.Member) -> None:
    sections = contract.PAPER_SECTIONS if member.is_paper else contract.COMMON_SECTIONS
    missing = contract.missing_sections(member.path / "README.md", sections)
    assert not missing, f"{member.rel}/README.md: missing sections {missing}"


def test_changelog_names_the_version(member: noxfile.Member) -> None:
    assert contract.changelog_has(member.path / "CHANGELOG.md", member.version), (
        f"{member.rel}/CHANGELOG.md: no entry for version {member.version}"
    )


def test_each_member_has_its_workflow(member: noxfile.Member) -> None:
    workflow = ROOT / ".github" / "workflows" / f"{noxfile.PACKAGE_WORKFLOW_PREFIX}{member.name}.yml"
    assert workflow.is_file(), f"{workflow.relative_to(ROOT)} is missing: run `nox -s workflows`"
