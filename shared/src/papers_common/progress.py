"""Progress bars that stay out of logs: silent when stdout is not a terminal or when ``CI`` is set."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from tqdm import tqdm

T = TypeVar("T")


def progress_enabled() -> bool:
    """Whether bars are drawn: stdout is a terminal and the ``CI`` variable is unset or empty."""
    return sys.stdout.isatty() and not os.environ.get("CI")


def progress(
    iterable: Iterable[T] | None = None, *, total: int | None = None, desc: str | None = None, **kwargs: Any
) -> tqdm:
    """A ``tqdm`` bar (on stderr) that is disabled when :func:`progress_enabled` is false.

    Use ``bar.set_postfix(loss=...)`` for live values. Extra keyword arguments go to ``tqdm``.
    """
    from tqdm.auto import tqdm

    kwargs.setdefault("disable", not progress_enabled())
    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(iterable, total=total, desc=desc, **kwargs)
