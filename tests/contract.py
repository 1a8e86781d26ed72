"""Checks of the workspace contract, written as functions that return what is wrong (empty when all is well).

They take plain paths and names so that the tests can also run them on small synthetic trees and see them fail.
"""

from __future__ import annotations

import ast
import itertools
import re
from pathlib import Path

PAPER_FILES = ("pyproject.toml", "README.md", "CHANGELOG.md", "LICENSE", "CITATION.cff", "benchmarks/run.py")
PAPER_MODULES = ("__init__.py", "cli.py", "reproduce.py", "py.typed")
COMMON_FILES = ("pyproject.toml", "README.md", "CHANGELOG.md", "LICENSE", "CITATION.cff")
COMMON_MODULES = ("__init__.py", "cli.py", "py.typed")
PAPER_SECTIONS = ("Install", "Quickstart", "Reproduce", "Results", "Limitations", "Citing")
COMMON_SECTIONS = ("Install", "Quickstart", "Limitations", "Citing")


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


# The common package's API by version (shared/CHANGELOG.md) and the bounds the paper packages put on it.

VERSION_HEADING = re.compile(r"^##[ \t]+\[(\d+\.\d+\.\d+)\][ \t]+-[ \t]+\S.*$", re.M)
API_RECORD = re.compile(r"^API \(`__all__`\):(.*?)(?=\n[ \t]*\n|\Z)", re.M | re.S)


def changelog_apis(text: str) -> dict[str, frozenset[str]]:
    """Version -> the backticked names of its ``API (`__all__`): ...`` paragraph, for every ``## [X.Y.Z] - DATE``.

    The paragraph may wrap over lines and ends with a period. Raises ``ValueError`` naming the version when a
    heading has no such paragraph, two of them, one that does not end with a period, or a name that is not one.
    """
    headings = list(VERSION_HEADING.finditer(text))
    apis: dict[str, frozenset[str]] = {}
    for heading, following in zip(headings, [*headings[1:], None], strict=True):
        version = heading.group(1)
        if version in apis:
            raise ValueError(f"CHANGELOG: version {version} has two entries")
        body = text[heading.end() : following.start() if following else len(text)]
        records = API_RECORD.findall(body)
        if len(records) != 1:
            raise ValueError(
                f"CHANGELOG: [{version}] needs one 'API (`__all__`): ...' paragraph, found {len(records)}"
            )
        record = records[0].strip()
        if not record.endswith("."):
            raise ValueError(f"CHANGELOG: [{version}]'s API paragraph must end with a period")
        names = re.findall(r"`([^`]*)`", record)
        bad = [n for n in names if not n.isidentifier()]
        if bad or not names:
            raise ValueError(
                f"CHANGELOG: [{version}]'s API paragraph names no identifiers or bad ones: {bad}"
            )
        apis[version] = frozenset(names) - {"__version__"}
    return apis


def exported_names(init_source: str, filename: str = "__init__.py") -> frozenset[str]:
    """The names a package ``__init__`` exports, read statically (no import): the values of its ``_EXPORTS``
    mapping (module -> names, from which ``__all__`` is built), else a literal ``__all__``; ``__version__`` left out.
    """
    literal = {}
    for node in ast.parse(init_source, filename=filename).body:
        targets = (
            node.targets
            if isinstance(node, ast.Assign)
            else [node.target]
            if isinstance(node, ast.AnnAssign)
            else []
        )
        for target in targets:
            if (
                isinstance(target, ast.Name)
                and target.id in ("_EXPORTS", "__all__")
                and node.value is not None
            ):
                try:
                    literal[target.id] = ast.literal_eval(node.value)
                except ValueError:
                    continue
    if "_EXPORTS" in literal:
        names = {name for module_names in literal["_EXPORTS"].values() for name in module_names}
    elif "__all__" in literal:
        names = set(literal["__all__"])
    else:
        raise ValueError(f"{filename}: neither _EXPORTS nor a literal __all__")
    return frozenset(names) - {"__version__"}


def names_used_from(source: str, package: str, filename: str = "<source>") -> list[tuple[int, str]]:
    """``(line, name)`` for every name a source takes from ``package``.

    ``from package import A`` and ``from package.sub import B`` give ``A`` and ``B`` (``*`` for a star import);
    ``import package`` (or ``import package as p``) and then ``package.C`` give ``C``; after
    ``import package.sub``, ``package.sub.D`` gives ``D``.
    """
    tree = ast.parse(source, filename=filename)
    used: list[tuple[int, str]] = []
    roots: set[str] = set()  # local names bound to the package itself
    submodules: set[str] = set()  # first components of `import package.sub`
    bound_submodules: set[str] = set()  # local names bound to a submodule by `import package.sub as s`
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == package or node.module.startswith(package + "."):
                used.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == package:
                    roots.add(alias.asname or package)
                elif alias.name.startswith(package + "."):
                    if alias.asname:
                        bound_submodules.add(alias.asname)
                    else:
                        roots.add(package)
                        submodules.add(alias.name.split(".")[1])
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        value = node.value
        on_package = isinstance(value, ast.Name) and (
            value.id in bound_submodules or (value.id in roots and node.attr not in submodules)
        )
        on_submodule = (  # package.sub.D after `import package.sub`
            isinstance(value, ast.Attribute)
            and isinstance(value.value, ast.Name)
            and value.value.id in roots
            and value.attr in submodules
        )
        if on_package or on_submodule:
            used.append((node.lineno, node.attr))
    return sorted(set(used))


def normalize(name: str) -> str:
    """A distribution name normalised as PEP 503 does."""
    return re.sub(r"[-_.]+", "-", name).lower()


def bound_problems(specifier: str, versions: set[str], current: str) -> tuple[str | None, list[str]]:
    """The lower bound of a ``>=X.Y.Z,<N`` specifier on the common package, and what is wrong with it.

    The lower bound must name a version with a CHANGELOG entry (``versions``); the upper bound must be above it and
    no higher than its next major (``<1`` for 0.x); the workspace's ``current`` version must satisfy it.
    """
    from packaging.specifiers import SpecifierSet
    from packaging.version import InvalidVersion, Version

    spec = SpecifierSet(specifier)
    lowers = [s.version for s in spec if s.operator == ">="]
    uppers = [s.version for s in spec if s.operator == "<"]
    others = sorted(str(s) for s in spec if s.operator not in (">=", "<", "!="))
    problems = []
    if others:
        problems.append(f"only >=, < and != belong in the bound, not {', '.join(others)}")
    if len(lowers) != 1:
        problems.append(f"needs one lower bound >=X.Y.Z, has {lowers or 'none'} in {specifier!r}")
        lower = None
    else:
        lower = lowers[0]
        if not re.fullmatch(r"\d+\.\d+\.\d+", lower) or lower not in versions:
            problems.append(
                f"the lower bound >={lower} names no version of shared/CHANGELOG.md ({sorted(versions)})"
            )
    if len(uppers) != 1:
        problems.append(f"needs one upper bound <N (the next major), has {uppers or 'none'} in {specifier!r}")
    elif lower is not None:
        try:
            upper, low = Version(uppers[0]), Version(lower)
        except InvalidVersion:
            problems.append(f"bad version in {specifier!r}")
        else:
            ceiling = Version(f"{low.major + 1}")
            if not low < upper <= ceiling:
                problems.append(
                    f"the upper bound <{uppers[0]} must be above >={lower} and at most <{ceiling}"
                )
    if current not in spec:
        problems.append(f"the workspace's version {current} does not satisfy {specifier!r}")
    return lower, problems


def common_api_problems(
    package_dir: Path,
    project: dict,
    apis: dict[str, frozenset[str]],
    current_api: frozenset[str],
    current_version: str,
    *,
    dist: str = "papers-common",
    module: str = "papers_common",
    folders: tuple[str, ...] = ("src", "benchmarks", "tests"),
) -> list[str]:
    """What is wrong with a package's bound on the common package and with the names it takes from it.

    ``pyproject.toml: ...`` for a bad or missing ``>=X.Y.Z,<N`` (extras that name the common package with a version
    are checked too); ``file: name (...)`` for every name imported from the common package under ``folders`` that is
    not in its public API at all, or not yet in the API of the lower bound.
    """
    from packaging.requirements import Requirement
    from packaging.version import Version

    versions = set(apis)
    problems = []
    main = [Requirement(r) for r in project.get("dependencies", []) if requirement_name(r) == normalize(dist)]
    if len(main) != 1:
        return [f"pyproject.toml: dependencies must name {dist} once, found {len(main)}"]
    lower, found = bound_problems(str(main[0].specifier), versions, current_version)
    problems += [f"pyproject.toml: {dist}: {p}" for p in found]
    for extra, requirements in project.get("optional-dependencies", {}).items():
        for text in requirements:
            if requirement_name(text) == normalize(dist) and str(Requirement(text).specifier):
                _, found = bound_problems(str(Requirement(text).specifier), versions, current_version)
                problems += [f"pyproject.toml: extra {extra}: {dist}: {p}" for p in found]
    if lower not in apis:
        return problems
    public = current_api.union(*apis.values())
    first = {}
    for version in sorted(apis, key=Version):
        for name in apis[version]:
            first.setdefault(name, version)
    for folder in folders:
        for file in sorted((package_dir / folder).rglob("*.py")):
            if any(part in (".venv", ".nox", "build", "dist", "__pycache__") for part in file.parts):
                continue
            where = file.relative_to(package_dir).as_posix()
            for line, name in names_used_from(file.read_text(encoding="utf-8"), module, str(file)):
                if name not in public:
                    problems.append(f"{where}:{line}: {name} (not in {dist}'s public API, __all__)")
                elif name not in apis[lower]:
                    since = first.get(name, "an unreleased version")
                    problems.append(
                        f"{where}:{line}: {name} (not in {dist} {lower}, the lower bound; new in {since})"
                    )
    return problems


def api_history_problems(apis: dict[str, frozenset[str]]) -> list[str]:
    """Version bumps too small for the API change: growing (or, while 0.x, shrinking) needs a new minor; shrinking
    from 1.0 on a new major."""
    from packaging.version import Version

    ordered = sorted(apis, key=Version)
    problems = []
    for before, after in itertools.pairwise(ordered):
        old, new = Version(before), Version(after)
        added, removed = sorted(apis[after] - apis[before]), sorted(apis[before] - apis[after])
        if removed and old.major >= 1 and new.major == old.major:
            problems.append(f"{before} -> {after} removes {removed}: that needs a new major version")
        elif (added or removed) and (new.major, new.minor) == (old.major, old.minor):
            problems.append(f"{before} -> {after} changes the API (+{added} -{removed}) in a patch release")
    return problems


def files_mentioning(root: Path, files: list[str], pattern: re.Pattern[str]) -> list[str]:
    """``file:line`` for every line of the given files (paths relative to ``root``) that matches ``pattern``;
    files that are absent or not UTF-8 text are read with replacement characters or skipped."""
    found = []
    for relative in files:
        path = root / relative
        if not path.is_file():
            continue
        text = path.read_bytes().decode("utf-8", errors="replace")
        found += [f"{relative}:{n}" for n, line in enumerate(text.splitlines(), 1) if pattern.search(line)]
    return found


PIP_INSTALL = re.compile(r"^\s*pip install (?!-)(.+?)(?:\s+#.*)?$", re.M)
TARGET = re.compile(r"^'?(\./)?([A-Za-z0-9./_-]+?)(?:\[([a-z0-9,_-]+)\])?'?$")


def install_problems(markdown: str, members: dict[str, tuple[str, frozenset[str]]], where: str) -> list[str]:
    """What is wrong with the ``pip install`` lines of a Markdown text, for the workspace's own packages.

    ``members`` maps a distribution name to (its folder relative to the root, its extras). A target such as
    ``./packages/house-kge[reproduce]`` must be a member's folder and name one of its extras; a bare name such as
    ``'house-kge[reproduce]'`` must be a member with that extra. Third-party names (torch, uv) are left alone.
    A folder installed from a checkout needs the common package's folder in the same command.
    """
    problems = []
    folders = {folder: name for name, (folder, _) in members.items()}
    for line in PIP_INSTALL.findall(markdown):
        tokens = [t for t in line.split() if not t.startswith("-")]
        local = []
        for token in tokens:
            match = TARGET.match(token)
            if match is None:
                continue
            is_path, target, extras = match.group(1), match.group(2), match.group(3)
            name = folders.get(target.rstrip("/")) if is_path else normalize(target)
            if is_path and name is None:
                problems.append(f"{where}: `pip install {line}`: {token} is not a workspace member's folder")
                continue
            if name not in members:
                continue
            local.append(name)
            for extra in (extras or "").split(","):
                if extra and extra not in members[name][1]:
                    problems.append(f"{where}: `pip install {line}`: {name} has no extra '{extra}'")
        paths = [t for t in tokens if t.lstrip("'").startswith("./")]
        common = [n for n, (folder, _) in members.items() if folder == "shared"]
        if paths and common and common[0] not in local:
            problems.append(
                f"{where}: `pip install {line}`: a checkout install needs ./shared in the same command"
            )
    return problems
