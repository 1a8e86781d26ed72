"""Figures for reports: matplotlib with the non-interactive Agg backend, written atomically as PNG."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from papers_common import atomic

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _pyplot() -> ModuleType:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def plot_lines(
    path: str | os.PathLike[str],
    series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    *,
    xlabel: str,
    ylabel: str,
    title: str | None = None,
    logx: bool = False,
    logy: bool = False,
) -> Path:
    """One line (with markers) per named ``(x, y)`` series; returns the written PNG's path."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    for name, (x, y) in series.items():
        ax.plot(list(x), list(y), marker="o", markersize=3, label=name)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title or "")
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.grid(True, which="both", alpha=0.3)
    if len(series) > 1:
        ax.legend()
    return _save(fig, plt, path)


def plot_bars(
    path: str | os.PathLike[str],
    values: Mapping[str, float],
    *,
    ylabel: str,
    title: str | None = None,
    reference: float | None = None,
    reference_label: str | None = None,
) -> Path:
    """A bar per named value, with an optional horizontal reference line (a paper's number, a threshold)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    names = list(values)
    bars = ax.bar(names, [values[n] for n in names], color="tab:blue")
    ax.bar_label(bars, fmt="%.3g")
    if reference is not None:
        ax.axhline(reference, color="tab:red", linestyle="--", label=reference_label)
        if reference_label:
            ax.legend()
    ax.set(ylabel=ylabel, title=title or "")
    return _save(fig, plt, path)


def _save(fig: Figure, plt: ModuleType, path: str | os.PathLike[str]) -> Path:
    fig.tight_layout()
    with atomic.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return Path(path)
