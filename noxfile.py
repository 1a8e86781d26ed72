"""nox sessions for the papers workspace.

Members (``shared`` and every ``packages/*`` with a ``pyproject.toml``) are discovered from the filesystem, so a new
package gets its sessions by existing:

- ``tests-<member>``: a fresh venv holding only that member, papers_common and their locked dependencies plus the
  member's ``test`` extra; runs the member's ``tests/``. An undeclared import fails here.
- ``wheel-<member>``: builds the sdist and wheel with ``uv build --package``, installs the wheel (and papers_common's)
  non-editable into a clean venv, imports it and runs ``<script> --help``.
- ``lint``: ruff check and ruff format --check on the whole tree.
- ``workspace``: the cross-cutting contract in ``tests/``.
- ``reproduce-<package>`` / ``reproduce``: ``<script> reproduce --quick --out reports/<package>`` (``-- --full``
  for the long version; other arguments after ``--`` are passed on, e.g. ``-- --data-dir DIR``), then ``reports/REPORT.md`` and the README status column. Not run by default.
- ``bench-<package>`` / ``bench``: ``benchmarks/run.py --out reports/<package>`` writing ``bench.json``. Not run
  by default.
- ``workflows``: regenerate ``.github/workflows/package-<member>.yml`` from the template below.

``nox`` alone runs lint, workspace, every tests-* and every wheel-*.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import nox

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent
REPORTS = ROOT / "reports"
WORKFLOWS = ROOT / ".github" / "workflows"
CI_PYTHONS = ("3.10", "3.12")
TEST_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "MPLBACKEND": "Agg",
}

nox.needs_version = ">=2025.2.9"
nox.options.default_venv_backend = "uv"
nox.options.error_on_missing_interpreters = True


@dataclass(frozen=True)
class Member:
    """A workspace member, read from its ``pyproject.toml``."""

    name: str
    path: Path
    version: str
    scripts: dict[str, str]
    extras: frozenset[str]
    dependencies: tuple[str, ...]
    apt: tuple[str, ...]

    @property
    def rel(self) -> str:
        return self.path.relative_to(ROOT).as_posix()

    @property
    def import_name(self) -> str:
        return self.name.replace("-", "_")

    @property
    def is_paper(self) -> bool:
        """Paper packages live under ``packages/``; ``shared/`` is the common package."""
        return self.path.parent.name == "packages"


def read_toml(path: Path) -> dict:
    with path.open("rb") as handle:
        return tomllib.load(handle)


def members(root: Path = ROOT) -> list[Member]:
    """Every workspace member, in the order of the root's ``[tool.uv.workspace] members`` globs."""
    patterns = read_toml(root / "pyproject.toml")["tool"]["uv"]["workspace"]["members"]
    found = []
    for pattern in patterns:
        for path in sorted(root.glob(pattern)):
            if not (path / "pyproject.toml").is_file():
                continue
            project = read_toml(path / "pyproject.toml")["project"]
            found.append(
                Member(
                    name=project["name"],
                    path=path.resolve(),
                    version=project.get("version", ""),
                    scripts=dict(project.get("scripts", {})),
                    extras=frozenset(project.get("optional-dependencies", {})),
                    dependencies=tuple(project.get("dependencies", [])),
                    apt=tuple(
                        read_toml(path / "pyproject.toml").get("tool", {}).get("papers", {}).get("apt", [])
                    ),
                )
            )
    return found


MEMBERS = members()
PAPERS = [m for m in MEMBERS if m.is_paper]


def uv_bin() -> str:
    found = shutil.which("uv")
    if found is None:
        raise RuntimeError("uv is not on PATH: install it with `pip install uv`")
    return found


def sync(session: nox.Session, *args: str) -> None:
    """``uv sync --locked --no-dev`` into this session's venv: exactly the locked set, nothing else."""
    env = {"UV_PROJECT_ENVIRONMENT": session.virtualenv.location}
    session.run_install(uv_bin(), "sync", "--locked", "--no-dev", *args, env=env, external=True)


def make_tests(member: Member) -> None:
    @nox.session(name=f"tests-{member.name}")
    def tests(session: nox.Session) -> None:
        extras = ["--extra", "test"] if "test" in member.extras else []
        sync(session, "--package", member.name, *extras)
        session.chdir(member.path)
        session.run("pytest", "tests", *session.posargs, env=TEST_ENV)

    tests.__doc__ = (
        f"Run {member.name}'s tests in a venv holding only it, papers_common and their dependencies."
    )


def make_wheel(member: Member) -> None:
    @nox.session(name=f"wheel-{member.name}")
    def wheel(session: nox.Session) -> None:
        dist = Path(session.create_tmp()).resolve() / "dist"
        shutil.rmtree(dist, ignore_errors=True)
        for name in dict.fromkeys([member.name, "papers-common"]):
            session.run(
                uv_bin(), "build", "--package", name, "--out-dir", str(dist), "--quiet", external=True
            )
        constraints = dist / "constraints.txt"
        session.run(
            uv_bin(), "export", "--package", member.name, "--locked", "--no-dev", "--no-hashes", "--no-emit-workspace",
            "--all-extras", "--quiet", "--output-file", str(constraints), external=True,
        )  # fmt: skip
        session.install(*map(str, sorted(dist.glob("*.whl"))), "--constraint", str(constraints))
        session.chdir(dist)  # import from the installed wheel, never from the source tree
        probe = (
            f"import importlib.resources as r, {member.import_name} as m; "
            f"assert r.files('{member.import_name}').joinpath('py.typed').is_file(), 'py.typed missing from the wheel'; "
            "print(m.__name__, m.__version__, m.__file__)"
        )
        session.run("python", "-c", probe)
        for script in member.scripts:
            session.run(script, "--help", silent=True)
        session.log(f"sdist and wheel of {member.name}: " + ", ".join(p.name for p in sorted(dist.iterdir())))

    wheel.__doc__ = (
        f"Build {member.name}'s sdist and wheel, install the wheel non-editable, import it, run --help."
    )


def reproduce_into(session: nox.Session, member: Member) -> bool:
    """Run one package's reproduction into ``reports/<name>``; returns whether it exited cleanly."""
    out = REPORTS / member.name
    out.mkdir(parents=True, exist_ok=True)
    mode = "--full" if "--full" in session.posargs else "--quick"
    extra = [a for a in session.posargs if a not in ("--full", "--quick")]  # e.g. --data-dir DIR
    try:
        session.run(member.name, "reproduce", mode, "--out", str(out), *extra, env=TEST_ENV)
    except nox.command.CommandFailed:
        return False
    return True


def assemble_report(session: nox.Session) -> None:
    REPORTS.mkdir(exist_ok=True)
    session.run("papers-common", "report", "--reports", str(REPORTS), "--readme", str(ROOT / "README.md"))


def make_reproduce(member: Member) -> None:
    @nox.session(name=f"reproduce-{member.name}", default=False)
    def reproduce(session: nox.Session) -> None:
        sync(session, "--package", member.name)
        ok = reproduce_into(session, member)
        assemble_report(session)
        if not ok:
            session.error(f"{member.name} reproduce failed")

    reproduce.__doc__ = (
        f"Reproduce {member.name}'s key claims into reports/{member.name} (-- --full: long version)."
    )


def bench_into(session: nox.Session, member: Member) -> None:
    runner = member.path / "benchmarks" / "run.py"
    args = [a for a in session.posargs if a != "--full"]
    session.run("python", str(runner), "--out", str(REPORTS / member.name), *args, env=TEST_ENV)


def make_bench(member: Member) -> None:
    @nox.session(name=f"bench-{member.name}", default=False)
    def bench(session: nox.Session) -> None:
        extras = ["--extra", "bench"] if "bench" in member.extras else []
        sync(session, "--package", member.name, *extras)
        bench_into(session, member)

    bench.__doc__ = f"Benchmark {member.name} against its anchor into reports/{member.name}/bench.json."


for _member in MEMBERS:
    make_tests(_member)
    make_wheel(_member)
for _member in PAPERS:
    make_reproduce(_member)
    make_bench(_member)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check over the whole tree."""
    sync(session, "--only-group", "lint")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def workspace(session: nox.Session) -> None:
    """The cross-cutting contract: layout, metadata, isolation, workflows, lock file (tests/)."""
    sync(session, "--only-group", "test")
    session.run("pytest", "tests", *session.posargs)


@nox.session(default=False)
def reproduce(session: nox.Session) -> None:
    """Every package's quick reproduction (-- --full: long), then reports/REPORT.md and the README status."""
    sync(session, "--all-packages")
    failed = [m.name for m in PAPERS if not reproduce_into(session, m)]
    assemble_report(session)
    if failed:
        session.error("reproduce failed for: " + ", ".join(failed))


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """Every package's benchmark against its anchor (reports/<package>/bench.json)."""
    sync(session, "--all-packages", "--all-extras")
    for member in PAPERS:
        bench_into(session, member)
    assemble_report(session)


@nox.session(python=False, default=False)
def workflows(session: nox.Session) -> None:
    """Regenerate .github/workflows/package-<member>.yml from the template; the workspace tests fail when they drift."""
    WORKFLOWS.mkdir(parents=True, exist_ok=True)
    wanted = render_workflows()
    for stale in WORKFLOWS.glob(f"{PACKAGE_WORKFLOW_PREFIX}*.yml"):
        if stale.name not in wanted:
            stale.unlink()
            session.log(f"removed {stale.name}")
    for name, text in wanted.items():
        (WORKFLOWS / name).write_text(text, encoding="utf-8")
        session.log(f"wrote .github/workflows/{name}")


PACKAGE_WORKFLOW_PREFIX = "package-"
PACKAGE_WORKFLOW = """\
# Generated by `nox -s workflows` from the template in noxfile.py: edit the template, not this file.
name: "@NAME@"

on:
  push:
    branches: [main]
    paths:
@PATHS@
  pull_request:
    paths:
@PATHS@
  workflow_dispatch:

permissions:
  contents: read

concurrency:
  group: ${{ github.workflow }}-${{ github.ref }}
  cancel-in-progress: true

jobs:
  test:
    name: "@NAME@ on Python ${{ matrix.python }}"
    runs-on: ubuntu-latest
    timeout-minutes: 60
    strategy:
      fail-fast: false
      matrix:
        python: [@PYTHONS@]
    steps:
      - uses: actions/checkout@v4
      - uses: astral-sh/setup-uv@v6
        with:
          python-version: ${{ matrix.python }}
@APT@      - name: tests and wheel
        run: uvx nox --force-python ${{ matrix.python }} -s tests-@NAME@ wheel-@NAME@
"""
APT_STEP = """\
      - name: Debian packages
        run: sudo apt-get update && sudo apt-get install -y --no-install-recommends @PACKAGES@
"""


def render_workflows(all_members: list[Member] | None = None) -> dict[str, str]:
    """File name -> text of every member's workflow (``package-<name>.yml``)."""
    rendered = {}
    for member in MEMBERS if all_members is None else all_members:
        file = f"{PACKAGE_WORKFLOW_PREFIX}{member.name}.yml"
        own = "shared/**" if not member.is_paper else f"packages/{member.name}/**"
        paths = dict.fromkeys(
            [own, "shared/**", "noxfile.py", "pyproject.toml", "uv.lock", f".github/workflows/{file}"]
        )
        apt = APT_STEP.replace("@PACKAGES@", " ".join(member.apt)) if member.apt else ""
        rendered[file] = (
            PACKAGE_WORKFLOW.replace("@PATHS@", "\n".join(f'      - "{p}"' for p in paths))
            .replace("@APT@", apt)
            .replace("@PYTHONS@", ", ".join(f'"{v}"' for v in CI_PYTHONS))
            .replace("@NAME@", member.name)
        )
    return rendered
