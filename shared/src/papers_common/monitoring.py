"""Progress that a person sees on a terminal and a log keeps when output is redirected.

:func:`progress` gives a ``tqdm`` bar when stderr is a terminal. When it is not (``nohup``, CI, a job scheduler)
it gives a :class:`LogProgress`, which emits one ``logging`` record every ``interval`` seconds (30 by default,
``$PAPERS_PROGRESS_INTERVAL``) and one when the work ends::

    2026-12-01 10:00:30 train: 1200/8000 (15%), 40.1 it/s, elapsed 0:00:30, ETA 0:02:50, loss=0.412

:func:`configure_logging` (called by every package's command line; ``--quiet`` passes ``quiet=True``) sends those
records to stderr, or silences bars and records alike. ``$PAPERS_PROGRESS`` = ``bar``, ``log`` or ``off`` overrides
the choice.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any, Literal, TypeVar

T = TypeVar("T")
Mode = Literal["bar", "log", "off"]

LOGGER = logging.getLogger("papers_common.monitoring")
INTERVAL_ENV = "PAPERS_PROGRESS_INTERVAL"
MODE_ENV = "PAPERS_PROGRESS"
DEFAULT_INTERVAL = 30.0
_settings: dict[str, Any] = {"quiet": False, "handler": None}


def configure_logging(*, quiet: bool = False, level: int = logging.INFO) -> None:
    """Send log records (progress lines included) to stderr at ``level``; with ``quiet`` only warnings and errors.

    Adds one handler to the root logger (replacing the one an earlier call added) unless the application has set
    up logging itself. ``quiet`` also turns progress bars and progress records off.
    """
    _settings["quiet"] = quiet
    root = logging.getLogger()
    if _settings["handler"] is not None:
        root.removeHandler(_settings["handler"])
        _settings["handler"] = None
    if not root.handlers:
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", datefmt="%Y-%m-%d %H:%M:%S"))
        root.addHandler(handler)
        _settings["handler"] = handler
    root.setLevel(logging.WARNING if quiet else level)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a record comes (test runners and tools swap it)."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def progress_mode() -> Mode:
    """``"off"`` when quiet, ``"bar"`` when stderr is a terminal, else ``"log"`` (``$PAPERS_PROGRESS`` overrides)."""
    if _settings["quiet"]:
        return "off"
    forced = os.environ.get(MODE_ENV, "").strip().lower()
    if forced in ("bar", "log", "off"):
        return forced  # type: ignore[return-value]
    return "bar" if sys.stderr.isatty() else "log"


def progress_enabled() -> bool:
    """Whether long work reports progress at all (a bar or log records)."""
    return progress_mode() != "off"


def progress(
    iterable: Iterable[T] | None = None,
    *,
    total: int | None = None,
    desc: str | None = None,
    interval: float | None = None,
    **kwargs: Any,
) -> Any:
    """A progress reporter over ``iterable`` (or updated by hand with ``update(n)``), chosen by :func:`progress_mode`.

    Both kinds take ``bar.update(n)``, ``bar.set_postfix(loss=...)``, ``close()`` and ``with``. ``interval`` is the
    seconds between log records; other keyword arguments go to ``tqdm`` (``initial``, ``unit`` and ``disable`` are
    honoured by both).
    """
    from tqdm.auto import tqdm

    mode = "off" if kwargs.get("disable") else progress_mode()
    if mode == "log":
        if total is None and hasattr(iterable, "__len__"):
            total = len(iterable)  # type: ignore[arg-type]
        return LogProgress(
            iterable,
            total=total,
            desc=desc,
            initial=int(kwargs.get("initial", 0)),
            unit=str(kwargs.get("unit", "it")),
            interval=interval,
        )
    kwargs["disable"] = mode == "off"
    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(iterable, total=total, desc=desc, **kwargs)


class LogProgress:
    """Progress as ``logging`` records: one every ``interval`` seconds while work goes on, one at the end.

    Args:
        iterable: what to iterate over, or ``None`` for ``update`` by hand.
        total: the expected count (``len(iterable)`` when it has one); ``None`` leaves out percentage and ETA.
        desc: the label that starts each record.
        initial: the count already done (a resumed run), not counted in the rate.
        unit: the unit of the rate.
        interval: seconds between records (``$PAPERS_PROGRESS_INTERVAL``, else 30).
        logger: where the records go.
    """

    disable = False

    def __init__(
        self,
        iterable: Iterable[Any] | None = None,
        *,
        total: int | None = None,
        desc: str | None = None,
        initial: int = 0,
        unit: str = "it",
        interval: float | None = None,
        logger: logging.Logger = LOGGER,
    ) -> None:
        self.iterable = iterable
        self.total = total
        self.desc = desc or "progress"
        self.n = self.initial = initial
        self.unit = unit
        self.interval = _interval() if interval is None else float(interval)
        self.logger = logger
        self.postfix = ""
        self._start = self._last = time.monotonic()
        self._closed = False

    def __iter__(self) -> Iterator[Any]:
        if self.iterable is None:
            raise TypeError("this progress reporter has no iterable; call update() instead")
        try:
            for item in self.iterable:
                yield item
                self.update(1)
        finally:
            self.close()

    def __enter__(self) -> LogProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def update(self, n: float = 1) -> None:
        """Count ``n`` more units; emit a record when ``interval`` seconds have passed since the last one."""
        self.n += n
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            self.logger.info(self.line(now))

    def set_postfix(
        self, ordered_dict: dict[str, Any] | None = None, refresh: bool = True, **kwargs: Any
    ) -> None:
        """The latest values (loss, metric) shown at the end of each record."""
        values = {**(ordered_dict or {}), **kwargs}
        self.postfix = ", ".join(f"{k}={_short(v)}" for k, v in values.items())

    def close(self) -> None:
        """Emit the final record (once)."""
        if not self._closed:
            self._closed = True
            self.logger.info(self.line(time.monotonic()) + " (done)")

    def line(self, now: float) -> str:
        """``desc: n/total (p%), rate, elapsed, ETA, postfix`` for the state at monotonic time ``now``."""
        elapsed = now - self._start
        rate = (self.n - self.initial) / elapsed if elapsed > 0 else math.nan
        parts = [f"{_count(self.n)}/{_count(self.total)}" if self.total else _count(self.n)]
        if self.total:
            parts[0] += f" ({100 * self.n / self.total:.0f}%)"
        parts.append(f"{_short(rate)} {self.unit}/s" if math.isfinite(rate) else f"? {self.unit}/s")
        parts.append(f"elapsed {_clock(elapsed)}")
        if self.total and math.isfinite(rate) and rate > 0 and self.n < self.total:
            parts.append(f"ETA {_clock((self.total - self.n) / rate)}")
        if self.postfix:
            parts.append(self.postfix)
        return f"{self.desc}: " + ", ".join(parts)


def _interval() -> float:
    raw = os.environ.get(INTERVAL_ENV)
    try:
        value = float(raw) if raw else DEFAULT_INTERVAL
    except ValueError:
        value = DEFAULT_INTERVAL
    return value if value >= 0 else DEFAULT_INTERVAL


def _count(value: float | None) -> str:
    return "?" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _clock(seconds: float) -> str:
    seconds = round(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
