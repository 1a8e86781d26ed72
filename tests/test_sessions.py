"""The nox sessions sync the extras their commands need, whether or not a member has them yet."""

from __future__ import annotations

import itertools
from pathlib import Path

import nox
import pytest
from conftest import MEMBERS

import noxfile

COMMON = next(m for m in MEMBERS if not m.is_paper)
PAPERS = [m for m in MEMBERS if m.is_paper]


class FakeSession:
    """Enough of ``nox.Session`` for the session functions to run without running anything."""

    posargs: list[str] = []  # noqa: RUF012

    def chdir(self, path: object) -> None:
        pass

    def run(self, *args: object, **kwargs: object) -> None:
        pass

    def log(self, *args: object) -> None:
        pass

    def error(self, message: str) -> None:
        raise AssertionError(message)


def synced(name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str]:
    """The arguments the session ``name`` passes to ``uv sync``."""
    calls: list[tuple[str, ...]] = []
    monkeypatch.setattr(noxfile, "sync", lambda session, *args: calls.append(args))
    monkeypatch.setattr(noxfile, "REPORTS", tmp_path / "reports")
    nox.registry.get()[name](FakeSession())
    assert len(calls) == 1
    return list(calls[0])


def extra_pairs(args: list[str]) -> set[tuple[str, str]]:
    """``(package, extra)`` for every ``--extra``, the package being the last ``--package`` before it."""
    pairs, package = set(), None
    for flag, value in itertools.pairwise(args):
        if flag == "--package":
            package = value
        elif flag == "--extra":
            pairs.add((package, value))
    return pairs


def report_pairs() -> set[tuple[str, str]]:
    return {(COMMON.name, "report")} if "report" in COMMON.extras else set()


def test_tests_sync_the_test_and_reproduce_extras(
    member: noxfile.Member, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    args = synced(f"tests-{member.name}", monkeypatch, tmp_path)
    assert args[:2] == ["--package", member.name]
    assert args.count("--package") == 1, "a member's tests see only what it declares"
    wanted = {"test", "reproduce", "report"} & member.extras
    assert extra_pairs(args) == {(member.name, e) for e in wanted}


@pytest.mark.parametrize("paper", PAPERS, ids=[m.name for m in PAPERS])
def test_reproduce_and_bench_sync_their_extras(
    paper: noxfile.Member, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    reproduce = synced(f"reproduce-{paper.name}", monkeypatch, tmp_path)
    assert reproduce[:2] == ["--package", paper.name]
    assert extra_pairs(reproduce) == {(paper.name, e) for e in {"reproduce"} & paper.extras} | report_pairs()
    bench = synced(f"bench-{paper.name}", monkeypatch, tmp_path)
    assert bench[:2] == ["--package", paper.name]
    assert (
        extra_pairs(bench)
        == {(paper.name, e) for e in {"bench", "reproduce"} & paper.extras} | report_pairs()
    )


@pytest.mark.parametrize("name", ["reproduce", "bench"])
def test_the_all_packages_sessions_sync_every_extra(
    name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert synced(name, monkeypatch, tmp_path) == ["--all-packages", "--all-extras"]


def test_extras_are_added_only_when_declared() -> None:
    member = noxfile.Member("x", Path("x"), "0.1.0", {}, frozenset({"test", "bench"}), (), ())
    assert noxfile.extras(member, "test", "reproduce", "bench") == ["--extra", "test", "--extra", "bench"]
    common = noxfile.Member("c", Path("c"), "0.1.0", {}, frozenset({"test"}), (), ())
    assert noxfile.report_extra(common) == []
    common = noxfile.Member("c", Path("c"), "0.1.0", {}, frozenset({"test", "report"}), (), ())
    assert noxfile.report_extra(common) == ["--package", "c", "--extra", "report"]
