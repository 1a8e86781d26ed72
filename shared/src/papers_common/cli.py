"""``papers_common``: validate report files and assemble ``REPORT.md``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from papers_common import __version__
from papers_common.app import App, option
from papers_common.errors import InputError
from papers_common.report import load_bench, load_results
from papers_common.summary import collect, update_readme_status, write_report

app = App(
    "papers-common", description="Check and assemble the results of the papers packages.", version=__version__
)


@dataclass
class ReportArgs:
    reports: Path = option(Path("reports"), help="directory holding one folder per package")
    out: Path | None = option(
        None, help="where to write the report (default: <reports>/REPORT.md)", output="file"
    )
    readme: Path | None = option(None, help="README whose status block is refreshed from the results")


@dataclass
class ValidateArgs:
    files: list[Path] = option(
        help="results.json or bench.json files (a name starting with 'bench' is checked as a benchmark)"
    )


@app.command("report", ReportArgs, help="assemble REPORT.md from every package's results.json and bench.json")
def report(args: ReportArgs) -> None:
    if not args.reports.is_dir():
        raise InputError(f"--reports {args.reports}: no such directory")
    path = write_report(args.reports, args.out)
    print(f"wrote {path}")
    if args.readme is not None:
        changed = update_readme_status(args.readme, collect(args.reports))
        print(f"updated {changed} status row(s) in {args.readme}")


@app.command("validate", ValidateArgs, help="check report files against the JSON Schemas")
def validate(args: ValidateArgs) -> None:
    for file in args.files:
        (load_bench if file.name.startswith("bench") else load_results)(file)
        print(f"{file}: valid")


def main() -> None:
    raise SystemExit(app.main())
