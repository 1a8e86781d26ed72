"""Progress bars are drawn only on a terminal and never under CI."""

from __future__ import annotations

import io
import sys
from collections.abc import Callable

import pytest

from papers_common import progress, progress_enabled


class FakeStream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> Callable[[], FakeStream]:
    """Make stdout a terminal, with CI unset.

    Output capturing swaps ``sys.stdout`` between the setup and the call phase, so tests call this in their body.
    """

    def use() -> FakeStream:
        monkeypatch.delenv("CI", raising=False)
        stream = FakeStream(tty=True)
        monkeypatch.setattr(sys, "stdout", stream)
        return stream

    return use


def test_enabled_on_a_terminal(terminal: Callable[[], FakeStream]) -> None:
    terminal()
    assert progress_enabled()


def test_disabled_when_stdout_is_not_a_terminal(
    terminal: Callable[[], FakeStream], monkeypatch: pytest.MonkeyPatch
) -> None:
    terminal()
    monkeypatch.setattr(sys, "stdout", FakeStream(tty=False))
    assert not progress_enabled()
    assert progress(range(2)).disable


@pytest.mark.parametrize("value", ["1", "true"])
def test_disabled_under_ci(
    terminal: Callable[[], FakeStream], monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    terminal()
    monkeypatch.setenv("CI", value)
    assert not progress_enabled()


def test_empty_ci_variable_does_not_disable(
    terminal: Callable[[], FakeStream], monkeypatch: pytest.MonkeyPatch
) -> None:
    terminal()
    monkeypatch.setenv("CI", "")
    assert progress_enabled()


def test_disabled_bar_iterates_and_prints_nothing(
    terminal: Callable[[], FakeStream], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stdout = terminal()
    monkeypatch.setenv("CI", "1")
    bar = progress(range(5), desc="training")
    assert bar.disable
    assert list(bar) == [0, 1, 2, 3, 4]
    bar.set_postfix(loss=0.5)
    bar.close()
    assert capsys.readouterr().err == ""
    assert stdout.getvalue() == ""


def test_enabled_bar_draws_on_stderr(
    terminal: Callable[[], FakeStream], capsys: pytest.CaptureFixture[str]
) -> None:
    stdout = terminal()
    bar = progress(range(3), desc="training")
    assert not bar.disable
    assert list(bar) == [0, 1, 2]
    bar.close()
    err = capsys.readouterr().err
    assert "training" in err
    assert "3/3" in err
    assert stdout.getvalue() == ""  # stdout stays clean


def test_explicit_disable_wins(terminal: Callable[[], FakeStream]) -> None:
    terminal()
    assert progress_enabled()
    assert progress(total=10, disable=True).disable
