"""Figures are written as PNG files, atomically."""

from __future__ import annotations

import struct
from pathlib import Path

from papers_common import plot_bars, plot_lines

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from the IHDR chunk, after checking the PNG signature."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    assert data.rstrip(b"\x00")[-8:-4] == b"IEND"  # the file is complete
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_plot_lines_writes_png(tmp_path: Path) -> None:
    path = plot_lines(
        tmp_path / "figs" / "loss.png",
        {"ours": ([1, 2, 3], [1.0, 0.5, 0.25]), "baseline": ([1, 2, 3], [1.0, 0.8, 0.7])},
        xlabel="step",
        ylabel="loss",
        title="Training loss",
        logy=True,
    )
    assert path == tmp_path / "figs" / "loss.png"
    assert png_size(path) == (720, 480)  # 6 x 4 inches at 120 dpi
    assert [p.name for p in path.parent.iterdir()] == ["loss.png"]


def test_figures_are_closed(tmp_path: Path) -> None:
    import matplotlib.pyplot as plt

    plot_lines(tmp_path / "a.png", {"s": ([0, 1], [0, 1])}, xlabel="x", ylabel="y")
    plot_bars(tmp_path / "b.png", {"a": 1.0}, ylabel="y")
    assert plt.get_fignums() == []


def test_plot_lines_single_series_log_x(tmp_path: Path) -> None:
    path = plot_lines(
        tmp_path / "a.png", {"only": ((1, 10, 100), (3, 2, 1))}, xlabel="n", ylabel="t", logx=True
    )
    assert png_size(path) == (720, 480)


def test_plot_bars_writes_png(tmp_path: Path) -> None:
    path = plot_bars(
        tmp_path / "acc.png",
        {"ours": 0.93, "adam": 0.88, "sgd": 0.81},
        ylabel="accuracy",
        reference=0.95,
        reference_label="paper",
    )
    assert png_size(path) == (720, 480)


def test_plot_replaces_existing_file(tmp_path: Path) -> None:
    target = tmp_path / "bars.png"
    target.write_bytes(b"not a png")
    plot_bars(target, {"a": 1.0}, ylabel="y", reference=0.5)
    assert target.read_bytes()[:8] == PNG_SIGNATURE
    assert [p.name for p in tmp_path.iterdir()] == ["bars.png"]


def test_different_data_gives_different_images(tmp_path: Path) -> None:
    a = plot_bars(tmp_path / "a.png", {"x": 1.0, "y": 2.0}, ylabel="v")
    b = plot_bars(tmp_path / "b.png", {"x": 2.0, "y": 1.0}, ylabel="v")
    assert a.read_bytes() != b.read_bytes()


def test_long_bar_names_never_overlap() -> None:
    from papers_common.plotting import _bars_figure, _labels_overlap, _pyplot

    plt = _pyplot()
    names = ["Graphormer (Pre-LN)", "Graphormer (Post-LN)", "GIN (virtual node)", "mean predictor", "GIN"]
    fig = _bars_figure(
        plt, dict.fromkeys(names, 1.0), ylabel="MAE", title=None, reference=None, reference_label=None
    )
    assert not _labels_overlap(fig, fig.axes[0].get_xticklabels())
    assert fig.axes[0].get_xticklabels()[1].get_text() == "Graphormer\n(Post-LN)"
    plt.close(fig)
    short = _bars_figure(
        plt, {"a": 1.0, "b": 2.0}, ylabel="v", title=None, reference=None, reference_label=None
    )
    assert [t.get_text() for t in short.axes[0].get_xticklabels()] == ["a", "b"], (
        "short names stay as they are"
    )
    plt.close(short)
