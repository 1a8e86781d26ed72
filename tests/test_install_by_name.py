"""The ``install-by-name`` session installs each package by its name, as pip would after a release.

The logic is driven here on a tiny synthetic workspace (a common package, a paper package that depends on it by
name, and an impostor), offline: ``--no-index`` and a private uv cache, no third-party dependencies.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import nox
import pytest
from conftest import ROOT

import noxfile

BUILD = '[build-system]\nrequires = ["uv_build"]\nbuild-backend = "uv_build"\n'


def write_project(path: Path, name: str, body: str, files: dict[str, str]) -> None:
    path.mkdir(parents=True)
    (path / "pyproject.toml").write_text(
        BUILD + f'\n[project]\nname = "{name}"\nversion = "0.1.0"\nrequires-python = ">=3.10"\n' + body
    )
    for relative, text in files.items():
        (path / relative).parent.mkdir(parents=True, exist_ok=True)
        (path / relative).write_text(textwrap.dedent(text))


COMMON_INIT = '__all__ = ["hello"]\n\ndef hello():\n    return "hello"\n'


def tiny_workspace(
    root: Path, paper_requires: str, impostor_init: str, readme: str = ""
) -> list[noxfile.Member]:
    """A workspace of ``tiny-common``, ``tiny-paper`` (requiring ``paper_requires``, with an extra ``also`` that
    pulls in ``impostor``, and ``readme`` as its README) and ``impostor``.

    ``impostor`` is another distribution that ships a ``tiny_common`` module whose ``__init__`` is ``impostor_init``.
    """
    (root / "pyproject.toml").parent.mkdir(parents=True)
    (root / "pyproject.toml").write_text(
        '[project]\nname = "ws"\nversion = "0"\nrequires-python = ">=3.10"\ndependencies = []\n\n'
        '[tool.uv]\npackage = false\n\n[tool.uv.workspace]\nmembers = ["shared", "packages/*", "others/*"]\n'
    )
    write_project(
        root / "shared",
        "tiny-common",
        "dependencies = []\n",
        {"src/tiny_common/__init__.py": COMMON_INIT},
    )
    sources = (
        "\n[tool.uv.sources]\ntiny-common = { workspace = true }\n" if "tiny-common" in paper_requires else ""
    )
    write_project(
        root / "packages" / "tiny-paper",
        "tiny-paper",
        f'dependencies = ["{paper_requires}"]\n\n[project.optional-dependencies]\nalso = ["impostor"]\n\n'
        f'[project.scripts]\ntiny-paper = "tiny_paper.cli:main"\n{sources}',
        {
            "README.md": readme,
            "src/tiny_paper/__init__.py": """\
                from tiny_common import hello

                __all__ = ["greet", "hello"]

                def greet():
                    return hello() + ", paper"
                """,
            "src/tiny_paper/cli.py": """\
                import argparse

                def main():
                    argparse.ArgumentParser(prog="tiny-paper", description="a tiny paper").parse_args()
                """,
        },
    )
    write_project(
        root / "others" / "impostor",
        "impostor",
        'dependencies = []\n\n[tool.uv.build-backend]\nmodule-name = "tiny_common"\n',
        {"src/tiny_common/__init__.py": impostor_init},
    )
    return noxfile.members(root)


@pytest.fixture
def isolated_uv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A private uv cache, so that nothing here depends on (or leaves wheels in) the user's cache."""
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "uv-cache"))
    monkeypatch.delenv("UV_FIND_LINKS", raising=False)
    monkeypatch.delenv("UV_CONSTRAINT", raising=False)


def install(
    root: Path, paper_requires: str, impostor_init: str = "__all__ = []\n", readme: str = ""
) -> list[str]:
    found = {m.name: m for m in tiny_workspace(root, paper_requires, impostor_init, readme)}
    wheelhouse = root / "wheelhouse"
    assert noxfile.build_wheelhouse(root, list(found), wheelhouse) == []
    assert set(noxfile.wheel_versions(wheelhouse)) == {"tiny-common", "tiny-paper", "impostor"}
    return noxfile.install_by_name(
        wheelhouse,
        found["tiny-paper"],
        root / "venv",
        common=found["tiny-common"],
        python=sys.executable,
        no_index=True,
    )


@pytest.mark.usefixtures("isolated_uv")
def test_the_common_package_found_by_its_name_passes(tmp_path: Path) -> None:
    assert install(tmp_path / "ws", "tiny-common>=0.1") == []


@pytest.mark.usefixtures("isolated_uv")
def test_a_dependency_on_an_unknown_name_fails(tmp_path: Path) -> None:
    problems = install(tmp_path / "ws", "some-other-name>=0.1")
    assert len(problems) == 1
    assert problems[0].startswith("tiny-paper: `uv pip install tiny-paper` from the wheelhouse failed")
    assert "some-other-name" in problems[0]


@pytest.mark.usefixtures("isolated_uv")
def test_a_dependency_on_another_distribution_in_the_wheelhouse_fails(tmp_path: Path) -> None:
    # `impostor` installs, and even provides a `tiny_common` module, but it is not the common distribution.
    problems = install(tmp_path / "ws", "impostor>=0.1")
    assert problems, "a package that names another distribution must fail"
    assert all(p.startswith("tiny-paper: ") for p in problems)
    text = "\n".join(problems)
    assert "the distribution tiny-common is not installed (the wheelhouse has 0.1.0)" in text
    assert "impostor>=0.1" in text
    assert "import tiny_paper failed" in text
    assert "`tiny-paper --help` exited" in text


@pytest.mark.usefixtures("isolated_uv")
def test_another_distribution_even_with_the_api_fails_on_its_metadata(tmp_path: Path) -> None:
    # Everything imports and --help runs; only the installed distributions' metadata tell the impostor apart.
    problems = install(tmp_path / "ws", "impostor>=0.1", impostor_init=COMMON_INIT)
    assert problems == [
        "tiny-paper: the distribution tiny-common is not installed (the wheelhouse has 0.1.0); "
        "tiny-paper requires ['impostor>=0.1']"
    ]


QUICKSTART = """\
# tiny-paper

## Install

```bash
pip install {line}
```

## Quickstart

```python
from tiny_paper import greet

print(greet())
```

Then:

```python
import importlib.metadata
from pathlib import Path

assert importlib.metadata.version("impostor") == "0.1.0"  # what the `also` extra brings
assert Path("data.txt").read_text() == "beside the quickstart"
```

## CLI

```python
raise SystemExit("not part of the quickstart")
```
"""


@pytest.mark.usefixtures("isolated_uv")
def test_the_readme_quickstart_runs_in_the_venv_its_install_line_makes(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    readme = QUICKSTART.format(line="'tiny-paper[also]'  # with the extra")
    found = {m.name: m for m in tiny_workspace(root, "tiny-common>=0.1", COMMON_INIT, readme)}
    (found["tiny-paper"].path / noxfile.QUICKSTART_FILES).mkdir(parents=True)
    (found["tiny-paper"].path / noxfile.QUICKSTART_FILES / "data.txt").write_text("beside the quickstart")
    assert noxfile.readme_requirement(found["tiny-paper"]) == "tiny-paper[also]"
    assert noxfile.build_wheelhouse(root, list(found), root / "wheelhouse") == []
    problems = noxfile.install_by_name(
        root / "wheelhouse", found["tiny-paper"], root / "venv", common=found["tiny-common"],
        python=sys.executable, no_index=True,
    )  # fmt: skip
    assert problems == []


@pytest.mark.usefixtures("isolated_uv")
def test_a_quickstart_that_needs_more_than_the_install_line_gives_fails(tmp_path: Path) -> None:
    # the README installs the bare name, but its quickstart uses what only the `also` extra installs
    problems = install(tmp_path / "ws", "tiny-common>=0.1", COMMON_INIT, QUICKSTART.format(line="tiny-paper"))
    assert len(problems) == 1
    assert problems[0].startswith(
        "tiny-paper: the README's quickstart failed after `pip install tiny-paper` (exit 1):"
    )
    assert "PackageNotFoundError" in problems[0]


def test_the_paper_readmes_install_lines_and_quickstarts_are_found() -> None:
    for member in noxfile.PAPERS:
        requirement = noxfile.readme_requirement(member)
        assert noxfile.normalize(requirement.split("[")[0]) == member.name
        assert "import" in noxfile.readme_quickstart(member), f"{member.rel}/README.md: no Python quickstart"
    house = next(m for m in noxfile.PAPERS if m.name == "house-kge")
    assert noxfile.readme_requirement(house) == "house-kge[pykeen]"


def test_the_session_runs_by_default() -> None:
    assert nox.registry.get()["install-by-name"].default, "install-by-name must run with plain `nox`"


@pytest.mark.parametrize("paper", noxfile.PAPERS, ids=[m.name for m in noxfile.PAPERS])
def test_constraints_pin_no_workspace_member(paper: noxfile.Member, tmp_path: Path) -> None:
    out = tmp_path / "constraints.txt"
    try:
        noxfile.locked_constraints(ROOT, paper.name, [m.name for m in noxfile.MEMBERS], out)
    except RuntimeError as error:
        if "needs to be updated" in str(error):
            pytest.skip("uv.lock is stale: test_uv_lock_is_current reports it")
        raise
    pinned = {noxfile.normalize(line.split("==")[0].split()[0]) for line in out.read_text().splitlines()}
    assert "torch" in pinned
    assert not pinned & {m.name for m in noxfile.MEMBERS}
    assert "papers" not in out.read_text().replace("papers-workspace", "")  # not even in a comment


def test_constraints_that_name_a_member_are_refused(tmp_path: Path) -> None:
    def fake_export(args: list[str], cwd: Path | None = None) -> tuple[int, str]:
        return 0, "torch==2.5.0\n-e ./shared\npapers-common==0.2.0\n"

    with pytest.raises(RuntimeError, match=r"name workspace members \['papers-common'\]"):
        noxfile.locked_constraints(ROOT, "urpe", ["papers-common"], tmp_path / "c.txt", run=fake_export)
