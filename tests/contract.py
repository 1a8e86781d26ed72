"""Checks of the workspace contract, written as functions that return what is wrong (empty when all is well).

They take plain paths and names so that the tests can also run them on small synthetic trees and see them fail.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

PAPER_FILES = ("pyproject.toml", "README.md", "CHANGELOG.md", "LICENSE", "benchmarks/run.py")
PAPER_MODULES = ("__init__.py", "cli.py", "reproduce.py", "py.typed")
COMMON_FILES = ("pyproject.toml", "README.md", "CHANGELOG.md", "LICENSE")
COMMON_MODULES = ("__init__.py", "cli.py", "py.typed")
PAPER_SECTIONS = ("Install", "Quickstart", "Reproduce", "Results", "Limitations")
COMMON_SECTIONS = ("Install", "Quickstart", "Limitations")


def missing_files(path: Path, import_name: str, *, paper: bool) -> list[str]:
    """Required files absent from a member directory (``tests/`` must hold at least one ``test_*.py``)."""
    files = PAPER_FILES if paper else COMMON_FILES
    modules = PAPER_MODULES if paper else COMMON_MODULES
    wanted = [*files, *(f"src/{import_name}/{m}" for m in modules)]
    missing = [w for w in wanted if not (path / w).is_file()]
    if not any((path / "tests").glob("test_*.py")):
        missing.append("tests/test_*.py")
    return missing


def missing_sections(readme: Path, sections: tuple[str, ...]) -> list[str]:
    """README headings (any level) that are absent; a heading matches when it starts with the section name."""
    headings = [
        m.group(1).strip() for m in re.finditer(r"^#{1,6}\s+(.+)$", readme.read_text(encoding="utf-8"), re.M)
    ]
    return [s for s in sections if not any(h.lower().startswith(s.lower()) for h in headings)]


def changelog_has(changelog: Path, version: str) -> bool:
    """Whether a heading names ``version`` (``## 0.1.0``, ``## [0.1.0] - 2026-01-01``, ``## v0.1.0``)."""
    pattern = rf"^#{{1,6}}\s+\[?v?{re.escape(version)}\]?(\s|$)"
    return re.search(pattern, changelog.read_text(encoding="utf-8"), re.M) is not None


def requirement_name(requirement: str) -> str:
    """The normalised distribution name of a PEP 508 requirement string."""
    name = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    if name is None:
        raise ValueError(f"not a requirement: {requirement!r}")
    return re.sub(r"[-_.]+", "-", name.group(1)).lower()


def member_dependencies(project: dict, member_names: set[str]) -> set[str]:
    """Workspace members among a project's dependencies, optional extras included."""
    requirements = list(project.get("dependencies", []))
    for extra in project.get("optional-dependencies", {}).values():
        requirements += extra
    return {requirement_name(r) for r in requirements} & member_names


def imported_modules(source: str, filename: str = "<source>") -> set[str]:
    """Top-level module names a Python source imports (absolute imports only; relative ones stay inside)."""
    found = set()
    for node in ast.walk(ast.parse(source, filename=filename)):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.add(node.args[0].value.split(".")[0])
    return found


def cross_imports(path: Path, forbidden: set[str]) -> list[str]:
    """``file: module`` for every import of a forbidden top-level module in any ``.py`` under ``path``."""
    problems = []
    for file in sorted(path.rglob("*.py")):
        if any(part in (".venv", ".nox", "build", "dist") for part in file.parts):
            continue
        for module in sorted(imported_modules(file.read_text(encoding="utf-8"), str(file)) & forbidden):
            problems.append(f"{file.relative_to(path)}: imports {module}")
    return problems


def defines_all(init: Path) -> bool:
    """Whether a package ``__init__.py`` assigns ``__all__``."""
    tree = ast.parse(init.read_text(encoding="utf-8"))
    return any(
        isinstance(node, (ast.Assign, ast.AnnAssign))
        and any(
            isinstance(t, ast.Name) and t.id == "__all__"
            for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
        )
        for node in tree.body
    )
