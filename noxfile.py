"""nox sessions for the papers workspace.

Members (``shared`` and every ``packages/*`` with a ``pyproject.toml``) are discovered from the filesystem, so a new
package gets its sessions by existing:

- ``tests-<member>``: a fresh venv holding only that member, papers_common and their locked dependencies plus the
  member's ``test`` extra (and its ``reproduce`` extra, as the tests run the reproduction, and papers-common's
  ``report`` extra, when the member has them); runs the member's ``tests/``. An undeclared import fails here.
- ``tests-<member>-<integration>``: a member's tests against a third-party framework it plugs into
  (``[tool.papers.integration.<name>]`` in its ``pyproject.toml``: the tests folder, extra requirements, and
  distributions installed without their dependencies), in the member's test venv plus those.
- ``wheel-<member>``: builds the sdist (which must carry README.md, LICENSE and CITATION.cff) and wheel with
  ``uv build --package``, installs the wheel (and papers_common's)
  non-editable into a clean venv, imports it and runs ``<script> --help``.
- ``install-by-name``: builds every member's wheel into one wheelhouse, then for each paper package creates a fresh
  venv and runs ``uv pip install --find-links WHEELHOUSE <package>``: the package is installed by its distribution
  name, as pip would after a release, and papers-common is found only through the name in the package's metadata
  (third-party packages come from PyPI, pinned to the lock by a constraints file that names no workspace member).
  In that venv it runs ``<script> --help``, imports the package's and papers_common's ``__all__`` and checks that
  the distribution ``papers-common`` is installed at exactly the version in the wheelhouse. A package whose
  metadata names another distribution fails here even when something of that name exists on PyPI. What is
  installed is the README's own release line (its first ``pip install NAME[extras]``), and the README's
  ``## Quickstart`` Python blocks then run as written in that venv, from a scratch folder holding the files they
  read (``tests/data/quickstart/`` of the package, when it exists): the install line and the quickstart cannot
  drift apart.
- ``lint``: ruff check and ruff format --check on the whole tree.
- ``workspace``: the cross-cutting contract in ``tests/``; its venv holds every member (no extras), whose console
  scripts ``tests/test_output_paths.py`` runs.
- ``reproduce-<package>`` / ``reproduce``: ``<script> reproduce --quick --out reports/<package>`` (``-- --full``
  for the long version; other arguments after ``--`` are passed on, e.g. ``-- --data-dir DIR``), then
  ``reports/REPORT.md``, whose first table is each package's status; tracked files are never written. The venv holds the package's ``reproduce`` extra and
  papers-common's ``report`` extra when they exist. Not run by default.
- ``bench-<package>`` / ``bench``: ``benchmarks/run.py --out reports/<package>`` writing ``bench.json``, with the
  package's ``bench`` and ``reproduce`` extras when it has them (and papers-common's ``report`` extra, which
  validates ``bench.json``). Not run by default.
- ``readme-status``: refresh the README's status column from ``reports/`` (the only session that edits a tracked
  file, and only when asked for).
- ``workflows``: regenerate ``.github/workflows/package-<member>.yml`` from the template below.

``nox`` alone runs lint, workspace, install-by-name, every tests-* and every wheel-*.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
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
class Integration:
    """A member's integration with a third-party framework, from ``[tool.papers.integration.<name>]``: its tests
    (``tests``, a folder of the member) run in the session ``tests-<member>-<name>`` after the member's ``test``
    extra is synced and ``requirements`` (then ``no_deps``, installed without their dependencies and without build
    isolation: for a distribution whose declared dependencies cannot be installed beside the lock) are added."""

    name: str
    tests: str
    requirements: tuple[str, ...] = ()
    no_deps: tuple[str, ...] = ()


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
    integrations: tuple[Integration, ...] = ()

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
            papers = read_toml(path / "pyproject.toml").get("tool", {}).get("papers", {})
            found.append(
                Member(
                    name=project["name"],
                    path=path.resolve(),
                    version=project.get("version", ""),
                    scripts=dict(project.get("scripts", {})),
                    extras=frozenset(project.get("optional-dependencies", {})),
                    dependencies=tuple(project.get("dependencies", [])),
                    apt=tuple(papers.get("apt", [])),
                    integrations=tuple(
                        Integration(
                            name,
                            table["tests"],
                            tuple(table.get("requirements", [])),
                            tuple(table.get("no-deps", [])),
                        )
                        for name, table in papers.get("integration", {}).items()
                    ),
                )
            )
    return found


MEMBERS = members()
PAPERS = [m for m in MEMBERS if m.is_paper]
COMMON = next(m for m in MEMBERS if not m.is_paper)


def uv_bin() -> str:
    found = shutil.which("uv")
    if found is None:
        raise RuntimeError("uv is not on PATH: install it with `pip install uv`")
    return found


def sync(session: nox.Session, *args: str) -> None:
    """``uv sync --locked --no-dev`` into this session's venv: exactly the locked set, nothing else."""
    env = {"UV_PROJECT_ENVIRONMENT": session.virtualenv.location}
    session.run_install(uv_bin(), "sync", "--locked", "--no-dev", *args, env=env, external=True)


def extras(member: Member, *names: str) -> list[str]:
    """``--extra NAME`` for each of ``names`` that the member declares (sessions work before and after it gains one)."""
    return [arg for name in names if name in member.extras for arg in ("--extra", name)]


def report_extra(common: Member | None = None) -> list[str]:
    """Arguments that add papers-common's ``report`` extra (what ``papers-common report`` needs) to a sync."""
    common = COMMON if common is None else common
    return ["--package", common.name, "--extra", "report"] if "report" in common.extras else []


def make_tests(member: Member) -> None:
    @nox.session(name=f"tests-{member.name}")
    def tests(session: nox.Session) -> None:
        # The tests run the reproduction (reproduce extra); papers-common's own tests cover its report extra.
        sync(session, "--package", member.name, *extras(member, "test", "reproduce", "report"))
        session.chdir(member.path)
        session.run("pytest", "tests", *session.posargs, env=TEST_ENV)

    tests.__doc__ = (
        f"Run {member.name}'s tests in a venv holding only it, papers_common and their dependencies."
    )


def make_integration_tests(member: Member, integration: Integration) -> None:
    @nox.session(name=f"tests-{member.name}-{integration.name}")
    def tests(session: nox.Session) -> None:
        sync(session, "--package", member.name, *extras(member, "test"))
        python = ["--python", str(Path(session.virtualenv.location) / "bin" / "python")]
        if integration.requirements:
            session.run_install(uv_bin(), "pip", "install", *python, *integration.requirements, external=True)
        if integration.no_deps:
            session.run_install(uv_bin(), "pip", "install", *python, "--no-deps", "--no-build-isolation",
                                *integration.no_deps, external=True)  # fmt: skip
        session.chdir(member.path)
        session.run("pytest", integration.tests, *session.posargs, env=TEST_ENV)

    tests.__doc__ = f"Run {member.name}'s {integration.name} integration tests ({integration.tests}/)."


SDIST_FILES = ("pyproject.toml", "README.md", "LICENSE", "CITATION.cff")
"""Files every member's sdist carries at its top level."""


def sdist_members(dist: Path, member: Member) -> set[str]:
    """The top-level file names in ``member``'s sdist in ``dist``."""
    import tarfile

    (sdist,) = dist.glob(f"{member.name.replace('-', '_')}-{member.version}.tar.gz")
    with tarfile.open(sdist) as archive:
        return {Path(name).name for name in archive.getnames() if name.count("/") == 1}


def make_wheel(member: Member) -> None:
    @nox.session(name=f"wheel-{member.name}")
    def wheel(session: nox.Session) -> None:
        dist = Path(session.create_tmp()).resolve() / "dist"
        shutil.rmtree(dist, ignore_errors=True)
        for name in dict.fromkeys([member.name, "papers-common"]):
            session.run(
                uv_bin(), "build", "--package", name, "--out-dir", str(dist), "--quiet", external=True
            )
        sdist_files = sdist_members(dist, member)
        missing = [f for f in SDIST_FILES if f not in sdist_files]
        if missing:
            session.error(f"{member.name}'s sdist lacks {', '.join(missing)}")
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
        f"Build {member.name}'s sdist (checked for {', '.join(SDIST_FILES)}) and wheel, install the wheel "
        "non-editable, import it, run --help."
    )


Runner = Callable[..., tuple[int, str]]


def run_command(
    args: Sequence[str], cwd: Path | None = None, env: dict[str, str] | None = None
) -> tuple[int, str]:
    """Run a command; returns its exit status and its stdout and stderr together."""
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    return done.returncode, done.stdout


def normalize(name: str) -> str:
    """A distribution name normalised as PEP 503 does (``Papers_Common`` -> ``papers-common``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def wheel_versions(wheelhouse: Path) -> dict[str, str]:
    """Normalised distribution name -> version of every wheel in ``wheelhouse`` (read from the file names)."""
    found = {}
    for wheel in sorted(wheelhouse.glob("*.whl")):
        name, version = wheel.name.split("-")[:2]
        found[normalize(name)] = version
    return found


def build_wheelhouse(
    root: Path,
    names: Sequence[str],
    wheelhouse: Path,
    *,
    python: str | None = None,
    run: Runner = run_command,
) -> list[str]:
    """``uv build --package NAME --wheel`` for each workspace member into one (emptied) wheelhouse; the problems.

    ``python`` is the interpreter uv builds with (the session's, so that ``--force-python`` applies here too).
    """
    shutil.rmtree(wheelhouse, ignore_errors=True)
    wheelhouse.mkdir(parents=True)
    problems = []
    interpreter = ["--python", python] if python else []
    for name in names:
        build = [uv_bin(), "build", "--package", name, "--wheel", *interpreter, "--out-dir", wheelhouse, "--quiet"]  # fmt: skip
        code, out = run(build, root)
        if code:
            problems.append(f"{name}: `uv build --package {name} --wheel` failed:\n{tail(out)}")
    return problems


def locked_constraints(
    root: Path,
    member: str,
    workspace: Sequence[str],
    out: Path,
    *,
    python: str | None = None,
    run: Runner = run_command,
) -> None:
    """Write the lock's third-party pins for ``member`` (all extras) to ``out``, as a constraints file.

    Raises ``RuntimeError`` when the export fails or names a workspace member: the common package must be found only
    through the name in the package's own metadata, never through a pin here.
    """
    interpreter = ["--python", python] if python else []
    code, text = run(
        [uv_bin(), "export", "--package", member, "--locked", "--no-dev", "--no-hashes", "--no-emit-workspace",
         "--all-extras", *interpreter, "--quiet"],
        root,
    )  # fmt: skip
    if code:
        raise RuntimeError(f"`uv export --package {member}` failed:\n{tail(text)}")
    pins = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    named = {normalize(re.split(r"[\s\[<>=!~;@]", line.strip(), maxsplit=1)[0]) for line in pins}
    members_named = sorted(named & {normalize(n) for n in workspace})
    if members_named or any(line.lstrip().startswith(("-e", ".", "/", "file:")) for line in pins):
        raise RuntimeError(f"the constraints for {member} name workspace members {members_named}: {out}")
    out.write_text("\n".join(pins) + "\n", encoding="utf-8")


def tail(text: str, lines: int = 25) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def venv_bin(venv: Path) -> Path:
    return venv / ("Scripts" if os.name == "nt" else "bin")


# Runs inside the fresh venv, from the venv's folder (never the source tree): the installed distributions' versions,
# then every name of the package's and papers_common's __all__. Prints each problem on a line and exits 1.
INSTALL_PROBE = """\
import importlib, importlib.metadata as md, json, sys
from pathlib import Path
want = json.loads(sys.argv[1])
problems = []
for dist, version in ((want["common"], want["common_version"]), (want["name"], want["version"])):
    try:
        got = md.version(dist)
    except md.PackageNotFoundError:
        requires = [r for r in md.requires(want["name"]) or [] if "extra ==" not in r] if dist != want["name"] else None
        problems.append(f"the distribution {dist} is not installed (the wheelhouse has {version}); "
                        f"{want['name']} requires {requires}")
        continue
    if got != version:
        problems.append(f"{dist} {got} is installed, not {version} from the wheelhouse")
for module in (want["import"], want["common_import"]):
    try:
        package = importlib.import_module(module)
        where = Path(package.__file__).resolve()
        if not where.is_relative_to(Path(sys.prefix).resolve()):
            problems.append(f"{module} was imported from {where}, outside the venv")
        missing = []
        for name in package.__all__:
            try:
                getattr(package, name)
            except Exception as error:
                missing.append(f"{name} ({type(error).__name__}: {error})")
        if missing:
            problems.append(f"{module}.__all__ names what it cannot give: " + ", ".join(missing))
    except Exception as error:
        problems.append(f"import {module} failed: {type(error).__name__}: {error}")
print("\\n".join(problems))
sys.exit(1 if problems else 0)
"""


QUICKSTART_FILES = Path("tests") / "data" / "quickstart"  # in a member: the files its README quickstart reads


def readme_requirement(member: Member) -> str:
    """The requirement of the README's release install line: its first ``pip install NAME[extras]`` (quotes
    dropped), e.g. ``house-kge[pykeen]``; the bare name when the README has none."""
    readme = member.path / "README.md"
    text = readme.read_text(encoding="utf-8") if readme.exists() else ""
    for match in re.finditer(r"^\s*pip install\s+(\S+)", text, flags=re.M):
        requirement = match.group(1).strip("'\"")
        if normalize(re.split(r"[\[<>=!~;]", requirement, maxsplit=1)[0]) == normalize(member.name):
            return requirement
    return member.name


def readme_quickstart(member: Member) -> str:
    """The ``python`` blocks of the README's ``## Quickstart`` section, in order, as one script ("" if none)."""
    readme = member.path / "README.md"
    text = readme.read_text(encoding="utf-8") if readme.exists() else ""
    section = re.search(r"^## Quickstart\s*$(.*?)(?=^## |\Z)", text, flags=re.M | re.S)
    if section is None:
        return ""
    return "\n".join(re.findall(r"^```python\n(.*?)^```", section.group(1), flags=re.M | re.S))


def install_by_name(
    wheelhouse: Path,
    member: Member,
    venv_dir: Path,
    *,
    common: Member,
    python: str,
    constraints: Path | None = None,
    no_index: bool = False,
    run: Runner = run_command,
) -> list[str]:
    """Install ``member`` by its README's release line into a fresh venv, as pip would after a release; the problems.

    ``uv pip install --find-links WHEELHOUSE REQUIREMENT`` (the registry too, unless ``no_index``, pinned by
    ``constraints``), where the requirement is :func:`readme_requirement` (the distribution name with the extras
    the README's line names), so that ``common`` is found only through the name in the member's metadata; then
    ``<script> --help`` for each console script, a probe that imports both ``__all__`` and checks that ``common``
    is installed at exactly the version of its wheel in the wheelhouse, and the README's quickstart
    (:func:`readme_quickstart`) run as written from a scratch folder holding the member's
    ``tests/data/quickstart/`` files. Each problem is a line starting with the member's name.
    """
    built = wheel_versions(wheelhouse)
    for needed in (common, member):
        if normalize(needed.name) not in built:
            return [f"{member.name}: the wheelhouse {wheelhouse} holds no {needed.name} wheel"]
    shutil.rmtree(venv_dir, ignore_errors=True)
    code, out = run([uv_bin(), "venv", "--quiet", "--python", python, venv_dir])
    if code:
        return [f"{member.name}: `uv venv` failed:\n{tail(out)}"]
    python_in_venv = venv_bin(venv_dir) / ("python.exe" if os.name == "nt" else "python")
    install = [uv_bin(), "pip", "install", "--python", python_in_venv, "--find-links", wheelhouse]
    for name in built:  # a wheel rebuilt under the same file name must not come from a stale cache entry
        install += ["--refresh-package", name]
    if constraints is not None:
        install += ["--constraint", constraints]
    if no_index:
        install.append("--no-index")
    requirement = readme_requirement(member)
    code, out = run([*install, requirement], venv_dir)
    if code:
        return [f"{member.name}: `uv pip install {requirement}` from the wheelhouse failed:\n{tail(out)}"]
    # Nothing from outside the venv on sys.path; bytecode may be written (the venv is throwaway), so that --help
    # after the probe does not compile torch's sources a second time.
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONDONTWRITEBYTECODE")
    }
    env.update(
        TEST_ENV,
        VIRTUAL_ENV=str(venv_dir),
        PATH=os.pathsep.join([str(venv_bin(venv_dir)), env.get("PATH", "")]),
    )
    want = {
        "name": member.name,
        "version": built[normalize(member.name)],
        "import": member.import_name,
        "common": common.name,
        "common_version": built[normalize(common.name)],
        "common_import": common.import_name,
    }
    problems = []
    code, out = run([python_in_venv, "-c", INSTALL_PROBE, json.dumps(want)], venv_dir, env)
    if code:
        problems += [
            f"{member.name}: {line}" for line in (out.strip() or f"the probe exited {code}").splitlines()
        ]
    for script in member.scripts:
        code, out = run([venv_bin(venv_dir) / script, "--help"], venv_dir, env)
        if code:
            problems.append(f"{member.name}: `{script} --help` exited {code}:\n{tail(out)}")
    quickstart = readme_quickstart(member)
    if quickstart:
        scratch = venv_dir / "quickstart"
        shutil.rmtree(scratch, ignore_errors=True)
        if (member.path / QUICKSTART_FILES).is_dir():
            shutil.copytree(member.path / QUICKSTART_FILES, scratch)
        scratch.mkdir(parents=True, exist_ok=True)
        (scratch / "quickstart.py").write_text(quickstart, encoding="utf-8")
        code, out = run([python_in_venv, "quickstart.py"], scratch, env)
        if code:
            problems.append(
                f"{member.name}: the README's quickstart failed after `pip install {requirement}` "
                f"(exit {code}):\n{tail(out)}"
            )
    return problems


@nox.session(name="install-by-name")
def install_by_name_session(session: nox.Session) -> None:
    """Install each paper package by name from a wheelhouse of every member, as after a release; probe it."""
    tmp = Path(session.create_tmp()).resolve()
    wheelhouse = tmp / "wheelhouse"

    def run(
        args: Sequence[str], cwd: Path | None = None, env: dict[str, str] | None = None
    ) -> tuple[int, str]:
        session.log(shlex.join("$INSTALL_PROBE" if a == INSTALL_PROBE else str(a) for a in args))
        return run_command(args, cwd, env)

    python = shutil.which("python", path=session.bin) or sys.executable
    names = [m.name for m in MEMBERS]
    problems = build_wheelhouse(ROOT, names, wheelhouse, python=python, run=run)
    if problems:
        session.error("install-by-name: building the wheelhouse failed\n" + "\n".join(problems))
    session.log("wheelhouse: " + ", ".join(p.name for p in sorted(wheelhouse.glob("*.whl"))))
    failed: dict[str, list[str]] = {}
    for member in PAPERS:
        start = time.monotonic()
        constraints = tmp / f"constraints-{member.name}.txt"
        try:
            locked_constraints(ROOT, member.name, names, constraints, python=python, run=run)
        except RuntimeError as error:
            found = [f"{member.name}: {error}"]
        else:
            found = install_by_name(
                wheelhouse, member, tmp / "venvs" / member.name, common=COMMON, python=python,
                constraints=constraints, run=run,
            )  # fmt: skip
        if found:
            failed[member.name] = found
            session.warn("\n".join(found))
        else:
            session.log(
                f"{member.name}: installed as `{readme_requirement(member)}`, with {COMMON.name} "
                f"{wheel_versions(wheelhouse)[COMMON.name]} from the wheelhouse; probe, --help and the README's "
                f"quickstart pass ({time.monotonic() - start:.1f} s)"
            )
    if failed:
        session.error(
            f"install-by-name failed for {', '.join(failed)}:\n"
            + "\n".join(line for lines in failed.values() for line in lines)
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
    """``reports/REPORT.md`` (with its status table) from the packages' results; the checkout stays as it was."""
    REPORTS.mkdir(exist_ok=True)
    session.run("papers-common", "report", "--reports", str(REPORTS))


def make_reproduce(member: Member) -> None:
    @nox.session(name=f"reproduce-{member.name}", default=False)
    def reproduce(session: nox.Session) -> None:
        sync(session, "--package", member.name, *extras(member, "reproduce"), *report_extra())
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
        sync(session, "--package", member.name, *extras(member, "bench", "reproduce"), *report_extra())
        bench_into(session, member)

    bench.__doc__ = f"Benchmark {member.name} against its anchor into reports/{member.name}/bench.json."


for _member in MEMBERS:
    make_tests(_member)
    make_wheel(_member)
    for _integration in _member.integrations:
        make_integration_tests(_member, _integration)
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
    """The cross-cutting contract: layout, metadata, isolation, workflows, lock file, every console script (tests/)."""
    sync(session, "--all-packages", "--group", "test")  # every member's console script, for test_output_paths
    session.run("pytest", "tests", *session.posargs)


@nox.session(default=False)
def reproduce(session: nox.Session) -> None:
    """Every package's quick reproduction (-- --full: long), then reports/REPORT.md; the checkout stays clean."""
    sync(session, "--all-packages", "--all-extras")  # every reproduce extra and papers-common's report extra
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


@nox.session(name="readme-status", default=False)
def readme_status(session: nox.Session) -> None:
    """Refresh the README's status column from reports/ (written by a reproduce session); edits the tracked README."""
    sync(session, *report_extra())
    if not REPORTS.is_dir():
        session.error("no reports/ folder: run `uvx nox -s reproduce` first")
    session.run("papers-common", "report", "--reports", str(REPORTS), "--readme", str(ROOT / "README.md"))


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
        run: uvx nox --force-python ${{ matrix.python }} -s tests-@NAME@ wheel-@NAME@@INTEGRATIONS@
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
            .replace("@INTEGRATIONS@", "".join(f" tests-@NAME@-{i.name}" for i in member.integrations))
            .replace("@NAME@", member.name)
        )
    return rendered
