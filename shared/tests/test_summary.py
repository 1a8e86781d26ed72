"""REPORT.md assembly, the README status block, and the ``papers_common`` command."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from papers_common import (
    Anchor,
    Baseline,
    Bench,
    Measurement,
    Paper,
    Results,
    claim,
    write_bench,
    write_results,
)
from papers_common.cli import app
from papers_common.summary import STATUS_BEGIN, STATUS_END, collect, update_readme_status, write_report

MACHINE = {"cpu": "Test CPU", "cores": 4, "torch": "2.5.0", "device": "cpu"}


def write_alpha(reports: Path) -> Path:
    """A package whose reproduce run wrote results (one of two claims holds) and a benchmark."""
    directory = reports / "alpha"
    results = Results(
        package="alpha",
        version="0.2.0",
        paper=Paper("Alpha attention", "2101.00001"),
        mode="full",
        config={"lr": 0.1},
        seconds=3.0,
        claims=[
            claim(
                "acc",
                "alpha beats the baseline",
                metric="accuracy",
                ours=0.91,
                baseline=Baseline("adam", 0.85),
                paper_value=0.93,
                paper_source="Table 1",
            ),
            claim(
                "speed",
                "alpha converges in 100 steps",
                metric="steps",
                ours=150.0,
                target=100.0,
                higher_is_better=False,
            ),
        ],
        figures=["curve.png"],
    )
    write_results(results, directory)
    bench = Bench(
        package="alpha",
        anchor=Anchor("torch-sdpa", "2.5.0"),
        headline=Measurement(
            "seq 512", "throughput", "tok/s", ours=200.0, anchor_value=100.0, higher_is_better=True
        ),
        machine=MACHINE,
        rows=[Measurement("seq 64", "latency", "ms", ours=2.0, anchor_value=4.0, higher_is_better=False)],
    )
    write_bench(bench, directory)
    return directory


def make_reports(tmp_path: Path) -> Path:
    reports = tmp_path / "reports"
    write_alpha(reports)
    (reports / "beta").mkdir()  # reproduce failed: no results.json
    (reports / "beta" / "log.txt").write_text("crashed\n", encoding="utf-8")
    return reports


def test_report_command_builds_report_md(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    reports = make_reports(tmp_path)
    assert app.main(["report", "--reports", str(reports)]) == 0
    report = reports / "REPORT.md"
    assert capsys.readouterr().out == f"wrote {report}\n"
    text = report.read_text(encoding="utf-8")
    lines = text.splitlines()
    assert lines[0] == "# Reproduction report"
    status = lines[lines.index("## Status") + 2 : lines.index("## Claims") - 1]
    assert status[:2] == ["| package | status |", "|---|---|"]
    assert status[2].startswith("| alpha | ⚠️ 1/2 claims hold (full, ")
    assert status[3] == "| beta | no results (reproduce failed or was not run) |"
    assert "| alpha (full) | alpha beats the baseline | 0.93 (Table 1) | 0.91 | adam: 0.85 | yes |" in lines
    assert "| alpha (full) | alpha converges in 100 steps | — | 150 | — | no |" in lines
    assert "| beta | no results (reproduce failed or was not run) | — | — | — | no |" in lines
    assert text.count("(alpha/curve.png)") == 1, "each figure is linked once"
    assert "- alpha: [curve.png](alpha/curve.png)" in lines
    assert "1 of 2 claims hold across 1 package(s)." in lines
    assert "## Benchmarks" in lines
    assert "| alpha | torch-sdpa 2.5.0 | seq 512 | throughput | 200 tok/s | 100 tok/s | 2 | higher |" in lines
    assert "| alpha | torch-sdpa 2.5.0 | seq 64 | latency | 2 ms | 4 ms | 0.5 | lower |" in lines
    assert "| | machine: Test CPU, 4 cores, torch 2.5.0, cpu | | | | | | |" in lines


def test_report_out_elsewhere_links_relative_to_it(tmp_path: Path) -> None:
    reports = make_reports(tmp_path)
    out = tmp_path / "docs" / "REPORT.md"
    assert app.main(["report", "--reports", str(reports), "--out", str(out)]) == 0
    assert "[curve.png](../reports/alpha/curve.png)" in out.read_text(encoding="utf-8")
    assert not (reports / "REPORT.md").exists()


def test_report_without_benchmarks_has_no_benchmark_section(tmp_path: Path) -> None:
    reports = make_reports(tmp_path)
    (reports / "alpha" / "bench.json").unlink()
    text = write_report(reports).read_text(encoding="utf-8")
    assert "## Benchmarks" not in text
    assert "1 of 2 claims hold" in text


def test_report_command_rejects_invalid_results(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    reports = make_reports(tmp_path)
    path = reports / "alpha" / "results.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    data["claims"][0]["holds"] = "yes"
    path.write_text(json.dumps(data), encoding="utf-8")
    assert app.main(["report", "--reports", str(reports)]) == 2
    err = capsys.readouterr().err
    assert f"papers-common: error: {path}: claims[0].holds: 'yes' is not of type 'boolean'" in err
    assert "Traceback" not in err
    assert not (reports / "REPORT.md").exists()


def test_report_command_missing_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert app.main(["report", "--reports", str(tmp_path / "nope")]) == 2
    assert "--reports" in capsys.readouterr().err


README = f"""# papers

Intro text mentioning `alpha` stays as it is.

{STATUS_BEGIN}
| package | paper | status |
|---|---|---|
| [`alpha`](packages/alpha) | Alpha attention | old alpha status |
| [`beta`](packages/beta) | Beta norm | beta: not run yet |
| [`gamma`](packages/gamma) | Gamma | planned |
{STATUS_END}

| `alpha` | outside the block | untouched |
"""


def test_update_readme_status_rewrites_only_matching_status_cells(tmp_path: Path) -> None:
    reports = make_reports(tmp_path)
    readme = tmp_path / "README.md"
    readme.write_text(README, encoding="utf-8")
    assert update_readme_status(readme, collect(reports)) == 1
    day = dt.date.fromtimestamp((reports / "alpha" / "results.json").stat().st_mtime).isoformat()
    expected = README.replace(
        "| old alpha status |", f"| ⚠️ 1/2 claims hold (full, {day}) |"
    )  # beta has no results and gamma no report: their rows keep their text
    assert readme.read_text(encoding="utf-8") == expected


def test_report_command_refreshes_readme(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    reports = make_reports(tmp_path)
    readme = tmp_path / "README.md"
    readme.write_text(README, encoding="utf-8")
    assert app.main(["report", "--reports", str(reports), "--readme", str(readme)]) == 0
    assert f"updated 1 status row(s) in {readme}" in capsys.readouterr().out
    text = readme.read_text(encoding="utf-8")
    assert "| [`alpha`](packages/alpha) | Alpha attention | ⚠️ 1/2 claims hold (full, " in text
    assert "old alpha status" not in text
    assert "| [`beta`](packages/beta) | Beta norm | beta: not run yet |" in text


def test_status_marks_all_claims_holding(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    results = Results(
        "delta", "1.0", Paper("Delta", None), "quick", {}, 1.0, [claim("ok", "works", metric="m", ours=True)]
    )
    write_results(results, reports / "delta")
    [package] = collect(reports)
    assert package.status.startswith("✅ 1/1 claims hold (quick, ")


def test_update_readme_status_needs_markers(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# no block here\n", encoding="utf-8")
    with pytest.raises(ValueError, match="status:begin"):
        update_readme_status(readme, [])
    assert readme.read_text(encoding="utf-8") == "# no block here\n"


def test_validate_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = write_alpha(tmp_path / "reports")
    results, bench = directory / "results.json", directory / "bench.json"
    assert app.main(["validate", "--files", str(results), str(bench)]) == 0
    assert capsys.readouterr().out == f"{results}: valid\n{bench}: valid\n"

    data = json.loads(bench.read_text(encoding="utf-8"))
    del data["machine"]
    bad = tmp_path / "bench-bad.json"
    bad.write_text(json.dumps(data), encoding="utf-8")
    assert app.main(["validate", "--files", str(bad)]) == 2
    assert f"{bad}: (top level): 'machine' is a required property" in capsys.readouterr().err


def test_validate_command_needs_files(capsys: pytest.CaptureFixture[str]) -> None:
    assert app.main(["validate"]) == 2
    assert "missing required option(s) --files" in capsys.readouterr().err
