"""Progress: a bar on a terminal, timed log records when stderr is redirected, nothing when quiet."""

from __future__ import annotations

import io
import logging
import subprocess
import sys
import textwrap
from collections.abc import Callable

import pytest

from papers_common import configure_logging, progress, progress_enabled
from papers_common import monitoring as progress_module
from papers_common.monitoring import LogProgress, progress_mode


class FakeStream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


@pytest.fixture(autouse=True)
def not_quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PAPERS_PROGRESS", raising=False)
    monkeypatch.delenv("PAPERS_PROGRESS_INTERVAL", raising=False)
    monkeypatch.setitem(progress_module._settings, "quiet", False)


@pytest.fixture
def stderr(monkeypatch: pytest.MonkeyPatch) -> Callable[[bool], FakeStream]:
    """Replace stderr by a stream that is (or is not) a terminal; call it in the test body (capturing swaps it)."""

    def use(tty: bool) -> FakeStream:
        stream = FakeStream(tty)
        monkeypatch.setattr(sys, "stderr", stream)
        return stream

    return use


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(progress_module.time, "monotonic", fake)
    return fake


def test_a_terminal_gets_a_bar(stderr: Callable[[bool], FakeStream]) -> None:
    err = stderr(True)
    assert progress_mode() == "bar"
    bar = progress(range(3), desc="training")
    assert not bar.disable
    assert list(bar) == [0, 1, 2]
    bar.close()
    assert "training" in err.getvalue()
    assert "3/3" in err.getvalue()


@pytest.mark.parametrize("ci", ["", "true"])
def test_redirected_stderr_gets_log_records_even_under_ci(
    stderr: Callable[[bool], FakeStream], monkeypatch: pytest.MonkeyPatch, ci: str
) -> None:
    monkeypatch.setenv("CI", ci)
    stderr(False)
    assert progress_mode() == "log"
    assert progress_enabled()
    assert isinstance(progress(range(2)), LogProgress)


def test_records_come_at_the_interval_and_at_the_end(clock: Clock, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="papers_common.monitoring")
    bar = LogProgress(total=100, desc="train", interval=30)
    for _ in range(10):  # 10 steps of 4 s: records after 32 s (step 8) only
        clock.now += 4
        bar.update(1)
        bar.set_postfix(loss=0.123456)
    assert [r.getMessage() for r in caplog.records] == [
        "train: 8/100 (8%), 0.25 it/s, elapsed 0:00:32, ETA 0:06:08, loss=0.123"
    ]
    clock.now += 20  # 28 s after that record (at 32 s): none yet
    bar.update(90)
    bar.close()
    bar.close()  # once only
    assert [r.getMessage() for r in caplog.records][1:] == [
        "train: 100/100 (100%), 1.67 it/s, elapsed 0:01:00, loss=0.123 (done)"
    ]


def test_iterating_counts_and_closes(clock: Clock, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="papers_common.monitoring")
    items = []
    for item in progress_module.progress(range(4), desc="eval", interval=0):
        clock.now += 1
        items.append(item)
    assert items == [0, 1, 2, 3]
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0].startswith("eval: 1/4 (25%)")
    assert messages[-1] == "eval: 4/4 (100%), 1 it/s, elapsed 0:00:04 (done)"


def test_a_resumed_run_counts_its_rate_from_where_it_resumed(clock: Clock) -> None:
    bar = LogProgress(total=1000, initial=900, desc="train", unit="step")
    clock.now += 10
    bar.update(50)
    assert bar.line(clock.now) == "train: 950/1000 (95%), 5 step/s, elapsed 0:00:10, ETA 0:00:10"


def test_unknown_total_leaves_out_percentage_and_eta(clock: Clock) -> None:
    bar = LogProgress(desc="read")
    clock.now += 2
    bar.update(7)
    assert bar.line(clock.now) == "read: 7, 3.5 it/s, elapsed 0:00:02"


def test_interval_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAPERS_PROGRESS_INTERVAL", "5")
    assert LogProgress().interval == 5.0
    monkeypatch.setenv("PAPERS_PROGRESS_INTERVAL", "soon")
    assert LogProgress().interval == 30.0


def test_quiet_silences_bars_and_records(stderr: Callable[[bool], FakeStream]) -> None:
    err = stderr(True)
    try:
        configure_logging(quiet=True)
        assert not progress_enabled()
        bar = progress(range(3), desc="training")
        assert bar.disable
        assert list(bar) == [0, 1, 2]
        bar.close()
        logging.getLogger("papers_common.monitoring").info("not shown")
        assert logging.getLogger().getEffectiveLevel() == logging.WARNING
    finally:
        configure_logging()
    assert err.getvalue() == ""


def test_explicit_disable_and_environment_override(
    stderr: Callable[[bool], FakeStream], monkeypatch: pytest.MonkeyPatch
) -> None:
    stderr(True)
    assert progress(total=10, disable=True).disable
    monkeypatch.setenv("PAPERS_PROGRESS", "log")
    assert isinstance(progress(total=10), LogProgress)
    monkeypatch.setenv("PAPERS_PROGRESS", "off")
    assert progress(total=10).disable


def test_a_redirected_program_prints_progress_lines_to_stderr() -> None:
    """End to end: configure_logging + progress in a child whose stderr is a pipe."""
    code = textwrap.dedent(
        """
        import time
        from papers_common import configure_logging, progress
        configure_logging()
        bar = progress(total=6, desc="work", interval=0.05)
        for _ in range(6):
            time.sleep(0.03)
            bar.update()
            bar.set_postfix(loss=0.5)
        bar.close()
        print("stdout stays clean")
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout == "stdout stays clean\n"
    lines = done.stderr.strip().splitlines()
    assert len(lines) >= 3, done.stderr
    assert all(" work: " in line for line in lines)
    assert lines[-1].endswith("loss=0.5 (done)")
    assert "6/6 (100%)" in lines[-1]
