"""The common package's API is recorded per version, and each paper package's bound on it covers what it uses.

shared/CHANGELOG.md gives, for every ``## [X.Y.Z] - DATE``, an ``API (`__all__`): ...`` paragraph: the common
package's ``__all__`` at that version. A paper package asks for ``papers-common>=X.Y.Z,<next major`` and may use
only names of the API of X.Y.Z. Everything is read statically, from the source tree.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import contract
import pytest
from conftest import MEMBERS, ROOT

import noxfile

COMMON = next(m for m in MEMBERS if not m.is_paper)
PAPERS = [m for m in MEMBERS if m.is_paper]
CHANGELOG = COMMON.path / "CHANGELOG.md"
INIT = COMMON.path / "src" / COMMON.import_name / "__init__.py"


def recorded_apis() -> dict[str, frozenset[str]]:
    return contract.changelog_apis(CHANGELOG.read_text(encoding="utf-8"))


def current_api() -> frozenset[str]:
    return contract.exported_names(INIT.read_text(encoding="utf-8"), str(INIT))


def test_every_common_version_records_its_api() -> None:
    apis = recorded_apis()  # raises on a version heading without a well-formed record
    assert COMMON.version in apis, f"{CHANGELOG.relative_to(ROOT)}: no entry for {COMMON.version}"


def test_the_current_record_is_the_api() -> None:
    record, actual = recorded_apis()[COMMON.version], current_api()
    assert record == actual, (
        f"{CHANGELOG.relative_to(ROOT)} [{COMMON.version}] lists the API of {COMMON.import_name}.__all__: "
        f"in __all__ but not recorded: {sorted(actual - record)}; recorded but not in __all__: {sorted(record - actual)}"
    )


def test_the_api_changes_only_with_a_new_minor_version() -> None:
    assert contract.api_history_problems(recorded_apis()) == []


@pytest.mark.parametrize("paper", PAPERS, ids=[m.name for m in PAPERS])
def test_paper_bound_covers_the_names_it_uses(paper: noxfile.Member) -> None:
    project = noxfile.read_toml(paper.path / "pyproject.toml")["project"]
    problems = contract.common_api_problems(
        paper.path,
        project,
        recorded_apis(),
        current_api(),
        COMMON.version,
        dist=COMMON.name,
        module=COMMON.import_name,
    )
    assert not problems, f"{paper.rel}:\n" + "\n".join(problems)


# The checkers themselves, on small inputs where they must find problems.

SYNTHETIC_CHANGELOG = """\
# Changelog

## [0.2.0] - 2026-12-01

Adds `b`.

- more prose with `code` in it.

API (`__all__`): `a`, `b`,
`c`.

## [0.1.0] - 2026-11-24

API (`__all__`): `__version__`, `a`.
"""


def test_changelog_parser_reads_wrapped_records() -> None:
    assert contract.changelog_apis(SYNTHETIC_CHANGELOG) == {
        "0.2.0": frozenset({"a", "b", "c"}),
        "0.1.0": frozenset({"a"}),
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("## [0.1.0] - 2026-01-01\n\nNo record.\n", r"\[0\.1\.0\] needs one"),
        ("## [0.1.0] - 2026-01-01\n\nAPI (`__all__`): `a`, `b`\n", "must end with a period"),
        ("## [0.1.0] - 2026-01-01\n\nAPI (`__all__`): `a b`.\n", "bad ones"),
        (
            "## [0.1.0] - x\n\nAPI (`__all__`): `a`.\n\n## [0.1.0] - y\n\nAPI (`__all__`): `a`.\n",
            "two entries",
        ),
    ],
)
def test_changelog_parser_refuses_bad_records(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        contract.changelog_apis(text)


def test_exported_names_are_read_statically() -> None:
    lazy = '_EXPORTS = {"m": ["a", "b"], "n": ["c"]}\n__all__ = ["__version__", *sorted(_EXPORTS)]\n'
    assert contract.exported_names(lazy) == {"a", "b", "c"}
    assert contract.exported_names('__all__ = ["__version__", "x"]\n') == {"x"}
    with pytest.raises(ValueError, match="neither"):
        contract.exported_names("__all__ = make()\n")


def test_every_import_form_is_seen() -> None:
    source = textwrap.dedent(
        """\
        import papers_common
        import papers_common as pc
        import papers_common.atomic
        import papers_common.report as rep
        from papers_common import A, B as Bee
        from papers_common.sub import C
        from papers_common_other import NOT_IT

        def f():
            from papers_common import D
            return papers_common.E, pc.F, papers_common.atomic.G, rep.H, other.papers_common
        """
    )
    assert [n for _, n in contract.names_used_from(source, "papers_common")] == [
        "A",
        "B",
        "C",
        "D",
        "E",
        "F",
        "G",
        "H",
    ]


@pytest.mark.parametrize(
    ("specifier", "problem"),
    [
        (">=0.2.0,<1", None),
        (">=0.1.0,<1,!=0.1.5", None),
        (">=0.2.0", "needs one upper bound"),
        ("<1", "needs one lower bound"),
        (">=0.2.0,<2", "at most <1"),
        (">=0.3.0,<1", "names no version"),
        (">=0.2,<1", "names no version"),
        ("~=0.2.0", "only >=, < and !="),
        (">=0.1.0,<0.2", "does not satisfy"),
    ],
)
def test_bound_checker(specifier: str, problem: str | None) -> None:
    lower, problems = contract.bound_problems(specifier, {"0.1.0", "0.2.0"}, "0.2.0")
    if problem is None:
        assert problems == []
        assert lower in {"0.1.0", "0.2.0"}
    else:
        assert any(problem in p for p in problems), problems


def synthetic_package(root: Path, source: str) -> Path:
    (root / "src" / "pkg").mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "src" / "pkg" / "__init__.py").write_text(source)
    (root / "tests" / "test_pkg.py").write_text("from papers_common import a\n")
    return root


APIS = {"0.1.0": frozenset({"a"}), "0.2.0": frozenset({"a", "b"})}


def test_a_name_newer_than_the_bound_is_reported(tmp_path: Path) -> None:
    package = synthetic_package(tmp_path, "from papers_common import a, b\n")
    project = {"dependencies": ["papers-common>=0.1.0,<1"]}
    assert contract.common_api_problems(package, project, APIS, APIS["0.2.0"], "0.2.0") == [
        "src/pkg/__init__.py:1: b (not in papers-common 0.1.0, the lower bound; new in 0.2.0)"
    ]
    project = {"dependencies": ["papers-common>=0.2.0,<1"]}
    assert contract.common_api_problems(package, project, APIS, APIS["0.2.0"], "0.2.0") == []


def test_a_private_name_from_a_submodule_is_reported(tmp_path: Path) -> None:
    package = synthetic_package(
        tmp_path, "from papers_common.atomic import a\nfrom papers_common.report import fmt\n"
    )
    project = {"dependencies": ["papers-common>=0.2.0,<1"]}
    assert contract.common_api_problems(package, project, APIS, APIS["0.2.0"], "0.2.0") == [
        "src/pkg/__init__.py:2: fmt (not in papers-common's public API, __all__)"
    ]


def test_bad_bounds_in_dependencies_and_extras_are_reported(tmp_path: Path) -> None:
    package = synthetic_package(tmp_path, "")
    project = {
        "dependencies": ["papers-common>=0.2.0"],
        "optional-dependencies": {
            "reproduce": ["papers-common[report]>=0.2.0,<3"],
            "x": ["papers-common[report]"],
        },
    }
    problems = contract.common_api_problems(package, project, APIS, APIS["0.2.0"], "0.2.0")
    assert len(problems) == 2
    assert problems[0].startswith("pyproject.toml: papers-common: needs one upper bound")
    assert problems[1].startswith("pyproject.toml: extra reproduce: papers-common: the upper bound <3")
    assert contract.common_api_problems(
        package, {"dependencies": ["torch"]}, APIS, APIS["0.2.0"], "0.2.0"
    ) == ["pyproject.toml: dependencies must name papers-common once, found 0"]


def test_api_history_checker() -> None:
    assert contract.api_history_problems(APIS) == []
    assert contract.api_history_problems({"0.1.0": frozenset("a"), "0.1.1": frozenset("ab")}) == [
        "0.1.0 -> 0.1.1 changes the API (+['b'] -[]) in a patch release"
    ]
    assert contract.api_history_problems({"1.0.0": frozenset("ab"), "1.1.0": frozenset("a")}) == [
        "1.0.0 -> 1.1.0 removes ['b']: that needs a new major version"
    ]
    assert contract.api_history_problems({"0.1.0": frozenset("ab"), "0.2.0": frozenset("a")}) == []
