"""Assemble every package's results into one ``REPORT.md``; on request, refresh the status column of the root README."""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from papers_common import atomic
from papers_common.report import Results, cell, fmt, load_bench, load_results

STATUS_BEGIN = "<!-- status:begin -->"
STATUS_END = "<!-- status:end -->"


@dataclass
class PackageReport:
    """What one package's report directory holds: results and bench (either may be missing)."""

    name: str
    directory: Path
    results: Results | None
    bench: dict[str, Any] | None

    @property
    def status(self) -> str:
        if self.results is None:
            return "no results (reproduce failed or was not run)"
        held = sum(c.holds for c in self.results.claims)
        day = dt.date.fromtimestamp((self.directory / "results.json").stat().st_mtime).isoformat()
        mark = "✅" if held == len(self.results.claims) else "⚠️"
        return f"{mark} {held}/{len(self.results.claims)} claims hold ({self.results.mode}, {day})"


def collect(reports: str | os.PathLike[str]) -> list[PackageReport]:
    """Read and validate ``<reports>/<package>/results.json`` and ``bench.json`` for every package directory."""
    found = []
    for directory in sorted(p for p in Path(reports).iterdir() if p.is_dir()):
        results = load_results(directory / "results.json") if (directory / "results.json").exists() else None
        bench = load_bench(directory / "bench.json") if (directory / "bench.json").exists() else None
        found.append(PackageReport(directory.name, directory, results, bench))
    return found


def report_markdown(packages: list[PackageReport], base: Path) -> str:
    """``REPORT.md``: each package's status, one row per claim, each package's figures (linked once), then one row
    per benchmark measurement. Links are relative to ``base``."""
    lines = [
        "# Reproduction report",
        "",
        "Assembled by `papers-common report` from each package's `results.json` and `bench.json`.",
        "",
        "## Status",
        "",
        "| package | status |",
        "|---|---|",
        *(f"| {pkg.name} | {pkg.status} |" for pkg in packages),
        "",
        "## Claims",
        "",
        "| package | claim | paper | ours | baseline | holds |",
        "|---|---|---|---|---|---|",
    ]
    total = held = 0
    for pkg in packages:
        if pkg.results is None:
            lines.append(f"| {pkg.name} | {pkg.status} | — | — | — | no |")
            continue
        for c in pkg.results.claims:
            total += 1
            held += c.holds
            lines.append(
                f"| {pkg.name} ({pkg.results.mode}) | {cell(c.statement)} | {cell(c.paper_cell())} | {c.ours_cell()} | {c.baseline_cell()} | {fmt(c.holds)} |"
            )
    lines += [
        "",
        f"{held} of {total} claims hold across {sum(p.results is not None for p in packages)} package(s).",
        "",
    ]
    with_figures = [p for p in packages if p.results is not None and p.results.figures]
    if with_figures:
        lines += ["## Figures", ""]
        for pkg in with_figures:
            assert pkg.results is not None
            links = ", ".join(f"[{name}]({_rel(pkg.directory / name, base)})" for name in pkg.results.figures)
            lines.append(f"- {pkg.name}: {links}")
        lines.append("")
    benches = [p for p in packages if p.bench is not None]
    if benches:
        lines += [
            "## Benchmarks",
            "",
            "| package | anchor | workload | metric | ours | anchor value | ratio (ours / anchor) | better is |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for pkg in benches:
            bench = pkg.bench
            assert bench is not None
            for row in [bench, *bench.get("rows", [])]:
                anchor = row.get("anchor", bench["anchor"])
                lines.append(
                    f"| {pkg.name} | {anchor['name']} {anchor['version']} | {cell(row['workload'])} | {cell(row['metric'])} | "
                    f"{fmt(row['ours'])} {row['unit']} | {fmt(row['anchor_value'])} {row['unit']} | {fmt(row['ratio'])} | "
                    f"{'higher' if row['higher_is_better'] else 'lower'} |"
                )
            machine = bench["machine"]
            lines.append(
                f"| | machine: {machine['cpu']}, {machine['cores']} cores, torch {machine['torch']}, {machine['device']} | | | | | | |"
            )
        lines.append("")
    return "\n".join(lines)


def write_report(reports: str | os.PathLike[str], out: str | os.PathLike[str] | None = None) -> Path:
    """Write ``REPORT.md`` (default ``<reports>/REPORT.md``) and return its path."""
    target = Path(out) if out is not None else Path(reports) / "REPORT.md"
    text = report_markdown(collect(reports), target.parent)
    return atomic.write_text(target, text)


def update_readme_status(readme: str | os.PathLike[str], packages: list[PackageReport]) -> int:
    """Rewrite the last cell of each package row between the status markers; returns how many rows changed.

    A row belongs to a package when its first cell names it in backticks (```urpe```); rows of packages without a
    report keep their text.
    """
    path = Path(readme)
    text = path.read_text(encoding="utf-8")
    if STATUS_BEGIN not in text or STATUS_END not in text:
        raise ValueError(f"{path}: no {STATUS_BEGIN} ... {STATUS_END} block")
    head, rest = text.split(STATUS_BEGIN, 1)
    block, tail = rest.split(STATUS_END, 1)
    by_name = {p.name: p for p in packages if p.results is not None}
    changed = 0
    rows = []
    for line in block.split("\n"):
        cells = line.split("|")
        match = re.search(r"`([a-z0-9-]+)`", cells[1]) if len(cells) > 3 else None
        if match and match.group(1) in by_name:
            cells[-2] = f" {by_name[match.group(1)].status} "
            line = "|".join(cells)
            changed += 1
        rows.append(line)
    atomic.write_text(path, head + STATUS_BEGIN + "\n".join(rows) + STATUS_END + tail)
    return changed


def _rel(path: Path, base: Path) -> str:
    return Path(os.path.relpath(path, base)).as_posix()
