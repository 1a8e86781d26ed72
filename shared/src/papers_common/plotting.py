"""Figures for reports: matplotlib with the non-interactive Agg backend, written atomically as PNG."""

from __future__ import annotations

import itertools
import os
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

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
    """A bar per named value, with an optional horizontal reference line (a paper's number, a threshold).

    The figure widens with the number of bars; names too long to sit side by side are wrapped onto several lines,
    and the figure widened further if need be, so that no two tick labels overlap.
    """
    plt = _pyplot()
    fig = _bars_figure(
        plt, values, ylabel=ylabel, title=title, reference=reference, reference_label=reference_label
    )
    return _save(fig, plt, path)


def _bars_figure(
    plt: ModuleType,
    values: Mapping[str, float],
    *,
    ylabel: str,
    title: str | None,
    reference: float | None,
    reference_label: str | None,
) -> Figure:
    names = list(values)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(names)), 4), dpi=120)
    bars = ax.bar(names, [values[n] for n in names], color="tab:blue")
    ax.bar_label(bars, fmt="%.3g")
    if reference is not None:
        ax.axhline(reference, color="tab:red", linestyle="--", label=reference_label)
        if reference_label:
            ax.legend()
    ax.set(ylabel=ylabel, title=title or "")
    fig.tight_layout()
    if _labels_overlap(fig, ax.get_xticklabels()):
        ax.set_xticks(range(len(names)), [textwrap.fill(name, 12) for name in names])
        fig.tight_layout()
    while _labels_overlap(fig, ax.get_xticklabels()):
        fig.set_figwidth(fig.get_figwidth() * 1.25)
        fig.tight_layout()
    return fig


def _labels_overlap(fig: Figure, labels: Sequence[Any]) -> bool:
    """Whether any two neighbouring tick labels' drawn boxes overlap (with a small gap required)."""
    renderer = fig.canvas.get_renderer()
    boxes = [label.get_window_extent(renderer) for label in labels if label.get_text()]
    return any(left.x1 + 4 > right.x0 for left, right in itertools.pairwise(boxes))


def _save(fig: Figure, plt: ModuleType, path: str | os.PathLike[str]) -> Path:
    fig.tight_layout()
    with atomic.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return Path(path)
