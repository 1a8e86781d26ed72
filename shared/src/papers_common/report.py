"""The report contract: what every ``reproduce`` run and benchmark writes, and how it is checked.

``results.json`` lists *claims*. A claim's ``holds`` is never typed in: :func:`claim` computes it from the measured
number and a rule (a target, a baseline plus a margin, or a baseline times a factor), and records the rule as text.
``bench.json`` records a side-by-side measurement against an anchor with the ratio ``ours / anchor``. Both are
validated against the JSON Schemas in ``papers_common/schemas`` before they are written and when they are read.
"""

from __future__ import annotations

import json
import math
import os
import platform
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from papers_common import atomic
from papers_common.errors import InputError, SchemaError

Mode = Literal["quick", "full"]


@dataclass(frozen=True)
class Paper:
    """The paper a package implements. ``arxiv`` is an id such as ``"2205.13401"`` (or ``None``)."""

    title: str
    arxiv: str | None


@dataclass(frozen=True)
class Baseline:
    """The method a claim is compared against, measured in the same run."""

    name: str
    value: float


@dataclass(frozen=True)
class Spread:
    """The per-seed measurements behind a comparison decided over several seeds (:func:`claim_over_seeds`).

    ``ours[i]`` and ``baseline[i]`` were measured with ``seeds[i]`` (``None`` where a run did not give a finite
    number); ``sd`` is the sample standard deviation of the per-seed advantages of ours over the baseline.
    """

    seeds: tuple[int, ...]
    ours: tuple[float | None, ...]
    baseline: tuple[float | None, ...]
    sd: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "seeds": list(self.seeds),
            "ours": list(self.ours),
            "baseline": list(self.baseline),
            "sd": self.sd,
        }

    def ours_cell(self) -> str:
        """``mean ± sd (n seeds)`` of our per-seed values."""
        return _mean_sd_cell(self.ours)

    def baseline_cell(self) -> str:
        """``mean ± sd (n seeds)`` of the baseline's per-seed values."""
        return _mean_sd_cell(self.baseline)


def _mean(values: tuple[float | None, ...]) -> float | None:
    """The mean of the finite values, ``None`` when there is none."""
    finite = [v for v in values if v is not None]
    return sum(finite) / len(finite) if finite else None


def _mean_sd_cell(values: tuple[float | None, ...]) -> str:
    finite = [v for v in values if v is not None]
    if len(finite) < len(values) or len(finite) < 2:
        return f"{fmt(finite[0]) if len(finite) == 1 else '—'} ({len(finite)} of {len(values)} seeds finite)"
    mean = sum(finite) / len(finite)
    sd = math.sqrt(sum((v - mean) ** 2 for v in finite) / (len(finite) - 1))
    return f"{fmt(mean)} ± {sd:.2g} ({len(finite)} seeds)"


@dataclass(frozen=True)
class Claim:
    """One checked statement. Build it with :func:`claim` (or :func:`claim_over_seeds`), which computes ``holds``
    and ``rule``."""

    id: str
    statement: str
    metric: str
    higher_is_better: bool
    ours: float | bool | None
    baseline: Baseline | None
    paper_value: float | None
    holds: bool
    rule: str
    paper_source: str | None = None
    spread: Spread | None = None

    def ours_cell(self) -> str:
        """Our value for a table: ``mean ± sd (n seeds)`` for a claim decided over seeds, else the number."""
        return self.spread.ours_cell() if self.spread is not None else fmt(self.ours)

    def baseline_cell(self) -> str:
        """``name: value`` (``mean ± sd (n seeds)`` over seeds), or ``—`` without a baseline."""
        if self.baseline is None:
            return "—"
        value = self.spread.baseline_cell() if self.spread is not None else fmt(self.baseline.value)
        return f"{cell(self.baseline.name)}: {value}"

    def paper_cell(self) -> str:
        """The paper's figure with its source (``0.511 (Table 2)``), the reason there is none, or ``—``."""
        if self.paper_value is None:
            return self.paper_source or "—"
        return (
            f"{fmt(self.paper_value)} ({self.paper_source})" if self.paper_source else fmt(self.paper_value)
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "statement": self.statement,
            "metric": self.metric,
            "higher_is_better": self.higher_is_better,
            "ours": self.ours,
            "baseline": None
            if self.baseline is None
            else {"name": self.baseline.name, "value": self.baseline.value},
            "paper_value": self.paper_value,
            "paper_source": self.paper_source,
            "holds": self.holds,
            "rule": self.rule,
            **({"seeds": self.spread.to_dict()} if self.spread is not None else {}),
        }


def claim(
    id: str,
    statement: str,
    *,
    metric: str,
    ours: float | bool,
    higher_is_better: bool = True,
    target: float | None = None,
    baseline: Baseline | None = None,
    margin: float = 0.0,
    factor: float | None = None,
    paper_value: float | None = None,
    paper_source: str | None = None,
) -> Claim:
    """Build a claim whose ``holds`` follows from the measurement by a stated rule.

    With ``higher_is_better`` the rule requires every given condition (mirrored when lower is better):

    - ``target``: ``ours >= target``;
    - ``baseline`` without ``factor``: ``ours >= baseline.value + margin``;
    - ``baseline`` with ``factor``: ``ours >= factor * baseline.value`` (lower is better:
      ``factor * ours <= baseline.value``, i.e. ``factor`` times smaller).

    A boolean ``ours`` is its own rule (a yes/no property measured by the code); a non-finite ``ours`` is stored as
    ``null`` and never holds.

    ``paper_value`` is the paper's comparable figure and ``paper_source`` where it is printed ("Table 2, WN18RR,
    d = 800"); without a figure, ``paper_source`` says why ("not reported at this scale", "qualitative: Fig. 3").
    Reports show one or the other, so a reader never meets a bare dash.
    """
    if paper_value is not None and not paper_source:
        raise ValueError(
            f"claim {id!r}: say where the paper's value {paper_value:g} comes from (paper_source)"
        )
    if isinstance(ours, bool):
        if target is not None or baseline is not None or factor is not None:
            raise ValueError(f"claim {id!r}: a boolean measurement takes no target, baseline or factor")
        return Claim(
            id,
            statement,
            metric,
            higher_is_better,
            ours,
            None,
            paper_value,
            ours,
            "ours is true",
            paper_source,
        )
    if target is None and baseline is None:
        raise ValueError(f"claim {id!r}: give a target, a baseline, or both, so that 'holds' can be computed")
    if factor is not None and baseline is None:
        raise ValueError(f"claim {id!r}: factor compares against a baseline; none was given")
    value = float(ours)
    finite = math.isfinite(value)
    ge = ">=" if higher_is_better else "<="
    checks: list[tuple[bool, str]] = []
    if target is not None:
        checks.append((value >= target if higher_is_better else value <= target, f"ours {ge} {target:g}"))
    if baseline is not None and factor is not None:
        if higher_is_better:
            checks.append((value >= factor * baseline.value, f"ours >= {factor:g} x {baseline.name}"))
        else:
            checks.append((factor * value <= baseline.value, f"{factor:g} x ours <= {baseline.name}"))
    elif baseline is not None:
        sign = "+" if higher_is_better else "-"
        bound = baseline.value + margin if higher_is_better else baseline.value - margin
        checks.append(
            (
                value >= bound if higher_is_better else value <= bound,
                f"ours {ge} {baseline.name} {sign} {margin:g}",
            )
        )
    holds = finite and all(ok for ok, _ in checks)
    rule = " and ".join(text for _, text in checks)
    return Claim(
        id,
        statement,
        metric,
        higher_is_better,
        value if finite else None,
        baseline,
        paper_value,
        holds,
        rule,
        paper_source,
    )


def claim_over_seeds(
    id: str,
    statement: str,
    *,
    metric: str,
    seeds: Sequence[int],
    ours: Sequence[float],
    baseline_name: str,
    baseline: Sequence[float],
    higher_is_better: bool = True,
    margin: float = 0.0,
    factor: float = 1.0,
    paper_value: float | None = None,
    paper_source: str | None = None,
) -> Claim:
    """A comparison of two methods decided over several seeds, paired by seed.

    Seed ``i`` gives the advantage ``a_i = ours_i - factor * baseline_i`` (lower is better:
    ``a_i = baseline_i - factor * ours_i``). The claim holds when every run is finite and the mean advantage exceeds
    ``margin`` by more than the sample standard deviation of the advantages, ``mean(a) - margin > sd(a)``: a
    difference within the seed-to-seed noise never holds. ``ours`` and the baseline's value are the means; the
    per-seed values and ``sd(a)`` are kept in :attr:`Claim.spread` (``results.json``'s ``seeds``), and tables show
    ``mean ± sd (n seeds)``.
    """
    if paper_value is not None and not paper_source:
        raise ValueError(
            f"claim {id!r}: say where the paper's value {paper_value:g} comes from (paper_source)"
        )
    if not (len(seeds) == len(ours) == len(baseline)):
        raise ValueError(
            f"claim {id!r}: {len(seeds)} seeds, {len(ours)} values of ours and {len(baseline)} of the baseline; "
            "give one of each per seed"
        )
    if len(seeds) < 2:
        raise ValueError(f"claim {id!r}: a comparison over seeds needs at least two seeds, got {len(seeds)}")
    ours_f = tuple(float(v) if math.isfinite(float(v)) else None for v in ours)
    base_f = tuple(float(v) if math.isfinite(float(v)) else None for v in baseline)
    finite = all(v is not None for v in (*ours_f, *base_f))
    scale = "" if factor == 1.0 else f"{factor:g} x "
    what = f"ours - {scale}{baseline_name}" if higher_is_better else f"{baseline_name} - {scale}ours"
    rule = f"over {len(seeds)} seeds: mean({what}) - {margin:g} > sd({what})"
    sd: float | None = None
    holds = False
    if finite:
        adv = [
            (o - factor * b) if higher_is_better else (b - factor * o)
            for o, b in zip(ours_f, base_f, strict=True)
            if o is not None and b is not None
        ]
        mean_adv = sum(adv) / len(adv)
        sd = math.sqrt(sum((a - mean_adv) ** 2 for a in adv) / (len(adv) - 1))
        holds = mean_adv - margin > sd
        rule += f" ({mean_adv:.4g} - {margin:g} vs {sd:.2g})"
    mean_ours = _mean(ours_f) if all(v is not None for v in ours_f) else None
    mean_base = _mean(base_f)
    return Claim(
        id,
        statement,
        metric,
        higher_is_better,
        mean_ours,
        None if mean_base is None else Baseline(baseline_name, mean_base),
        paper_value,
        holds,
        rule,
        paper_source,
        Spread(tuple(int(s) for s in seeds), ours_f, base_f, sd),
    )


@dataclass
class Results:
    """The content of ``results.json``."""

    package: str
    version: str
    paper: Paper
    mode: Mode
    config: dict[str, Any]
    seconds: float
    claims: list[Claim]
    figures: list[str] = field(default_factory=list)

    @property
    def all_hold(self) -> bool:
        return all(c.holds for c in self.claims)

    def summary_lines(self) -> list[str]:
        """One line per claim for a terminal: ``HOLDS  id: statement (ours 0.991)`` or ``FAILS ...``."""
        lines = []
        for c in self.claims:
            ours = c.ours_cell()
            versus = f"; {c.baseline_cell()}" if c.spread is not None else ""
            lines.append(f"{'HOLDS' if c.holds else 'FAILS'}  {c.id}: {c.statement} (ours {ours}{versus})")
        return lines

    def to_dict(self) -> dict[str, Any]:
        from papers_common.rundir import to_jsonable

        return {
            "package": self.package,
            "version": self.version,
            "paper": {"title": self.paper.title, "arxiv": self.paper.arxiv},
            "mode": self.mode,
            "config": to_jsonable(self.config),
            "seconds": round(float(self.seconds), 3),
            "claims": [c.to_dict() for c in self.claims],
            "figures": list(self.figures),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "results.json") -> Results:
        validate(data, "results", source=source)
        claims = [
            Claim(
                id=c["id"],
                statement=c["statement"],
                metric=c["metric"],
                higher_is_better=c["higher_is_better"],
                ours=c["ours"],
                baseline=None if c["baseline"] is None else Baseline(**c["baseline"]),
                paper_value=c["paper_value"],
                paper_source=c.get("paper_source"),
                holds=c["holds"],
                rule=c.get("rule", ""),
                spread=None
                if c.get("seeds") is None
                else Spread(
                    tuple(c["seeds"]["seeds"]),
                    tuple(c["seeds"]["ours"]),
                    tuple(c["seeds"]["baseline"]),
                    c["seeds"]["sd"],
                ),
            )
            for c in data["claims"]
        ]
        paper = Paper(**data["paper"])
        return cls(
            data["package"],
            data["version"],
            paper,
            data["mode"],
            data["config"],
            data["seconds"],
            claims,
            data["figures"],
        )


@dataclass(frozen=True)
class Anchor:
    """The library or method users would otherwise pick, with its installed version."""

    name: str
    version: str


@dataclass(frozen=True)
class Measurement:
    """One side-by-side measurement; ``ratio`` is ``ours / anchor_value``."""

    workload: str
    metric: str
    unit: str
    ours: float
    anchor_value: float
    higher_is_better: bool
    anchor: Anchor | None = None

    @property
    def ratio(self) -> float:
        return self.ours / self.anchor_value if self.anchor_value else math.inf

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"anchor": _anchor_dict(self.anchor)} if self.anchor else {}
        data.update(
            workload=self.workload,
            metric=self.metric,
            unit=self.unit,
            ours=float(self.ours),
            anchor_value=float(self.anchor_value),
            ratio=float(self.ratio),
            higher_is_better=self.higher_is_better,
        )
        return data


@dataclass
class Bench:
    """The content of ``bench.json``: a headline measurement and optional further ``rows`` (sizes, settings)."""

    package: str
    anchor: Anchor
    headline: Measurement
    machine: dict[str, Any]
    rows: list[Measurement] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        headline = self.headline.to_dict()
        headline.pop("anchor", None)
        data = {
            "package": self.package,
            "anchor": _anchor_dict(self.anchor),
            **headline,
            "machine": self.machine,
        }
        if self.rows:
            data["rows"] = [row.to_dict() for row in self.rows]
        return data


def _anchor_dict(anchor: Anchor | None) -> dict[str, str] | None:
    return None if anchor is None else {"name": anchor.name, "version": anchor.version}


def machine_info(device: str = "cpu") -> dict[str, Any]:
    """CPU model, logical cores, torch version and the device a measurement ran on."""
    import torch

    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    name = str(device)
    if name.startswith("cuda") and torch.cuda.is_available():
        name = f"{name} ({torch.cuda.get_device_name(torch.device(name))})"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return {"cpu": cpu, "cores": cores, "torch": torch.__version__, "device": name}


@cache
def schema(kind: Literal["results", "bench"]) -> dict[str, Any]:
    """The JSON Schema shipped with papers_common for ``results.json`` or ``bench.json``."""
    text = (
        resources.files("papers_common")
        .joinpath("schemas", f"{kind}.schema.json")
        .read_text(encoding="utf-8")
    )
    return json.loads(text)


def validate(data: Any, kind: Literal["results", "bench"], *, source: str | None = None) -> None:
    """Check ``data`` against the schema; :class:`SchemaError` names the source and every offending field."""
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(schema(kind))
    errors = sorted(validator.iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path])
    if errors:
        where = source or f"{kind}.json"
        lines = [f"{where}: {_field(e.absolute_path)}: {e.message}" for e in errors]
        raise SchemaError("\n".join(lines))


def _field(path: Any) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def write_results(results: Results, out_dir: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Validate, then atomically write ``results.json`` and ``results.md`` into ``out_dir``."""
    data = results.to_dict()
    validate(data, "results", source=str(Path(out_dir) / "results.json"))
    json_path = atomic.write_json(Path(out_dir) / "results.json", data)
    md_path = atomic.write_text(Path(out_dir) / "results.md", results_markdown(results))
    return json_path, md_path


def write_bench(bench: Bench, out_dir: str | os.PathLike[str]) -> Path:
    """Validate, then atomically write ``bench.json`` into ``out_dir``."""
    data = bench.to_dict()
    validate(data, "bench", source=str(Path(out_dir) / "bench.json"))
    return atomic.write_json(Path(out_dir) / "bench.json", data)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise InputError(f"{path}: no such file") from err
    except json.JSONDecodeError as err:
        raise SchemaError(f"{path}:{err.lineno}: not valid JSON ({err.msg})") from err


def load_results(path: str | os.PathLike[str]) -> Results:
    """Read and validate a ``results.json``."""
    return Results.from_dict(_read_json(Path(path)), source=str(path))


def load_bench(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and validate a ``bench.json`` (returned as its JSON object)."""
    data = _read_json(Path(path))
    validate(data, "bench", source=str(path))
    return data


def fmt(value: Any) -> str:
    """Format a number for a Markdown table: 4 significant digits, ``—`` for none, yes/no for booleans."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    return cell(str(value))


def cell(text: str) -> str:
    """Text made safe for one Markdown table cell: pipes escaped, line breaks folded."""
    return " ".join(text.split()).replace("|", "\\|")


def results_markdown(results: Results) -> str:
    """``results.md``: the same content as ``results.json`` as a Markdown table."""
    arxiv = (
        f" ([arXiv:{results.paper.arxiv}](https://arxiv.org/abs/{results.paper.arxiv}))"
        if results.paper.arxiv
        else ""
    )
    lines = [
        f"# {results.package} {results.version}: reproduction ({results.mode})",
        "",
        f"Paper: {results.paper.title}{arxiv}. Run time: {results.seconds:.1f} s.",
        "",
        "| claim | statement | metric | paper | ours | baseline | rule | holds |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in results.claims:
        lines.append(
            f"| {c.id} | {cell(c.statement)} | {cell(c.metric)} | {cell(c.paper_cell())} | {c.ours_cell()} | {c.baseline_cell()} | {cell(c.rule)} "
            f"| {fmt(c.holds)} |"
        )
    if results.figures:
        lines += ["", "Figures: " + ", ".join(f"[{name}]({name})" for name in results.figures)]
    return "\n".join(lines) + "\n"
