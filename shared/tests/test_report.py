"""The report contract: claim rules, schema validation of results.json and bench.json, and the written files."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import pytest

import papers_common
from papers_common import (
    Anchor,
    Baseline,
    Bench,
    Measurement,
    Paper,
    Results,
    SchemaError,
    claim,
    load_bench,
    load_results,
    validate,
    write_bench,
    write_results,
)
from papers_common.errors import InputError
from papers_common.report import fmt, machine_info

# --- claim() ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ours", "higher_is_better", "holds"),
    [
        (0.9, True, True),
        (0.8, True, True),  # the bound itself counts
        (0.7, True, False),
        (0.7, False, True),
        (0.8, False, True),
        (0.9, False, False),
    ],
)
def test_target_rule(ours: float, higher_is_better: bool, holds: bool) -> None:
    c = claim(
        "acc", "beats the target", metric="accuracy", ours=ours, target=0.8, higher_is_better=higher_is_better
    )
    assert c.holds is holds
    assert c.rule == ("ours >= 0.8" if higher_is_better else "ours <= 0.8")
    assert c.ours == ours
    assert c.baseline is None


@pytest.mark.parametrize(
    ("ours", "higher_is_better", "holds"),
    [
        (12.0, True, True),
        (11.5, True, False),  # beats the baseline, but not by the margin
        (8.0, False, True),
        (8.5, False, False),
    ],
)
def test_baseline_plus_margin_rule(ours: float, higher_is_better: bool, holds: bool) -> None:
    base = Baseline("adam", 10.0)
    c = claim(
        "m",
        "beats adam",
        metric="loss",
        ours=ours,
        baseline=base,
        margin=2.0,
        higher_is_better=higher_is_better,
    )
    assert c.holds is holds
    assert c.rule == ("ours >= adam + 2" if higher_is_better else "ours <= adam - 2")
    assert c.baseline == base


def test_baseline_without_margin_is_a_plain_comparison() -> None:
    base = Baseline("sgd", 1.0)
    assert claim("a", "s", metric="m", ours=1.0, baseline=base).holds
    assert not claim("a", "s", metric="m", ours=0.999, baseline=base).holds
    assert not claim("a", "s", metric="m", ours=1.001, baseline=base, higher_is_better=False).holds


@pytest.mark.parametrize(
    ("ours", "higher_is_better", "holds"),
    [
        (20.0, True, True),
        (19.0, True, False),
        (5.0, False, True),  # 2 x 5 <= 10: twice as small
        (6.0, False, False),
    ],
)
def test_factor_rule(ours: float, higher_is_better: bool, holds: bool) -> None:
    c = claim(
        "speed", "twice as good", metric="time", ours=ours, baseline=Baseline("ref", 10.0), factor=2.0,
        higher_is_better=higher_is_better,
    )  # fmt: skip
    assert c.holds is holds
    assert c.rule == ("ours >= 2 x ref" if higher_is_better else "2 x ours <= ref")


def test_every_condition_must_hold() -> None:
    base = Baseline("b", 0.5)
    assert claim("x", "s", metric="m", ours=0.9, target=0.8, baseline=base, margin=0.1).holds
    both = claim("x", "s", metric="m", ours=0.7, target=0.8, baseline=base, margin=0.1)
    assert not both.holds  # the baseline condition holds, the target does not
    assert both.rule == "ours >= 0.8 and ours >= b + 0.1"
    assert not claim(
        "x", "s", metric="m", ours=0.9, target=0.8, baseline=Baseline("b", 0.85), margin=0.1
    ).holds


@pytest.mark.parametrize("value", [True, False])
def test_boolean_claim_is_its_own_rule(value: bool) -> None:
    c = claim("exact", "resumes exactly", metric="bit-exact resume", ours=value, paper_value=None)
    assert c.holds is value
    assert c.ours is value
    assert c.rule == "ours is true"


def test_boolean_claim_refuses_targets() -> None:
    with pytest.raises(ValueError, match="boolean"):
        claim("b", "s", metric="m", ours=True, target=1.0)
    with pytest.raises(ValueError, match="boolean"):
        claim("b", "s", metric="m", ours=False, baseline=Baseline("x", 1.0))


@pytest.mark.parametrize(
    ("ours", "higher_is_better"),
    [(math.nan, True), (math.nan, False), (math.inf, True), (-math.inf, False)],
)
def test_non_finite_measurement_never_holds(ours: float, higher_is_better: bool) -> None:
    # inf >= 0 and -inf <= 1 would pass a bare comparison.
    c = claim(
        "d",
        "diverged",
        metric="loss",
        ours=ours,
        target=0.0 if higher_is_better else 1.0,
        higher_is_better=higher_is_better,
    )
    assert c.holds is False
    assert c.ours is None
    c = claim(
        "d",
        "diverged",
        metric="loss",
        ours=ours,
        baseline=Baseline("b", 0.0),
        higher_is_better=higher_is_better,
    )
    assert c.holds is False


def test_claim_needs_a_rule() -> None:
    with pytest.raises(ValueError, match="target, a baseline"):
        claim("c", "s", metric="m", ours=1.0)
    with pytest.raises(ValueError, match="factor"):
        claim("c", "s", metric="m", ours=1.0, target=0.5, factor=2.0)


def test_integer_measurement_is_stored_as_float() -> None:
    c = claim("c", "s", metric="m", ours=3, target=2)
    assert c.ours == 3.0
    assert isinstance(c.ours, float)


# --- results.json ----------------------------------------------------------------------------------------


def make_results(**overrides: Any) -> Results:
    claims = [
        claim(
            "beats-adam",
            "URPE beats Adam on the copy task",
            metric="accuracy",
            ours=0.97,
            baseline=Baseline("adam", 0.9),
            margin=0.02,
            paper_value=0.99,
            paper_source="Table 1",
        ),
        claim(
            "loss.target", "final loss under 0.1", metric="loss", ours=0.2, target=0.1, higher_is_better=False
        ),
        claim("resume_exact", "resume is bit-exact", metric="bit-exact", ours=True),
    ]
    fields: dict[str, Any] = {
        "package": "urpe",
        "version": "0.1.0",
        "paper": Paper("Your Transformer May Not be as Powerful as You Expect", "2205.13401"),
        "mode": "quick",
        "config": {"lr": 1e-3, "out": Path("runs/x"), "sizes": (1, 2)},
        "seconds": 12.3456,
        "claims": claims,
        "figures": ["loss.png"],
    }
    fields.update(overrides)
    return Results(**fields)


def valid_results_dict() -> dict[str, Any]:
    return make_results().to_dict()


def test_results_to_dict_is_valid_json_values() -> None:
    data = valid_results_dict()
    validate(data, "results")
    assert data["config"] == {"lr": 1e-3, "out": "runs/x", "sizes": [1, 2]}
    assert data["seconds"] == 12.346
    assert [c["holds"] for c in data["claims"]] == [True, False, True]
    assert json.loads(json.dumps(data)) == data


def test_write_results_writes_json_and_markdown(tmp_path: Path) -> None:
    results = make_results()
    json_path, md_path = write_results(results, tmp_path / "reports" / "urpe")
    assert json_path == tmp_path / "reports" / "urpe" / "results.json"
    assert md_path == tmp_path / "reports" / "urpe" / "results.md"
    assert json.loads(json_path.read_text(encoding="utf-8")) == results.to_dict()

    md = md_path.read_text(encoding="utf-8")
    assert md.startswith("# urpe 0.1.0: reproduction (quick)\n")
    assert "arXiv:2205.13401" in md
    rows = [line for line in md.splitlines() if line.startswith("| ") and not line.startswith("| claim ")]
    assert len(rows) == 3
    for c, row in zip(results.claims, rows, strict=True):
        assert row.startswith(f"| {c.id} | {c.statement} | {c.metric} |")
        assert row.endswith(f"| {c.rule} | {'yes' if c.holds else 'no'} |")
    assert "| adam: 0.9 |" in rows[0]
    assert "[loss.png](loss.png)" in md


def test_load_results_round_trips(tmp_path: Path) -> None:
    results = make_results()
    json_path, _ = write_results(results, tmp_path)
    loaded = load_results(json_path)
    assert loaded.claims == results.claims
    assert loaded.paper == results.paper
    assert loaded.mode == "quick"
    assert loaded.figures == ["loss.png"]
    assert loaded.all_hold is False
    assert load_results(json_path).to_dict() == results.to_dict()


def test_write_results_refuses_invalid_results_and_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match="package"):
        write_results(make_results(package="Not A Slug"), tmp_path)
    with pytest.raises(SchemaError, match=r"claims: \[\] should be non-empty"):
        write_results(make_results(claims=[]), tmp_path)
    assert list(tmp_path.iterdir()) == []


def broken(path: tuple[Any, ...], value: Any = None, *, delete: bool = False) -> dict[str, Any]:
    data = copy.deepcopy(valid_results_dict())
    node = data
    for part in path[:-1]:
        node = node[part]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return data


@pytest.mark.parametrize(
    ("data", "field", "detail"),
    [
        (broken(("claims", 0, "holds"), "yes"), "claims[0].holds", "'yes' is not of type 'boolean'"),
        (broken(("claims", 1, "metric"), delete=True), "claims[1]", "'metric' is a required property"),
        (broken(("seconds",), delete=True), "(top level)", "'seconds' is a required property"),
        (broken(("mode",), "fast"), "mode", "'fast' is not one of ['quick', 'full']"),
        (broken(("paper", "arxiv"), "arxiv-2205"), "paper.arxiv", "does not match"),
        (broken(("claims", 2, "id"), "Bad Id"), "claims[2].id", "does not match"),
        (broken(("seconds",), -1), "seconds", "minimum"),
        (broken(("figures", 0), "/abs/loss.png"), "figures[0]", "does not match"),
        (broken(("claims", 0, "baseline"), {"name": "adam"}), "claims[0].baseline", "is not valid under any"),
        (broken(("surprise",), 1), "(top level)", "'surprise' was unexpected"),
    ],
)
def test_validate_names_the_offending_field(data: dict[str, Any], field: str, detail: str) -> None:
    with pytest.raises(SchemaError) as err:
        validate(data, "results", source="reports/urpe/results.json")
    assert f"reports/urpe/results.json: {field}: " in str(err.value)
    assert detail in str(err.value)


def test_validate_lists_every_error() -> None:
    data = broken(("claims", 0, "holds"), "yes")
    data["mode"] = "fast"
    with pytest.raises(SchemaError) as err:
        validate(data, "results")
    lines = str(err.value).splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("results.json: claims[0].holds: ")
    assert lines[1].startswith("results.json: mode: ")


def test_schema_error_is_an_input_error() -> None:
    assert issubclass(SchemaError, InputError)
    assert issubclass(SchemaError, ValueError)


def test_load_results_rejects_schema_violations_naming_file_and_field(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    path.write_text(json.dumps(broken(("claims", 0, "holds"), "yes")), encoding="utf-8")
    with pytest.raises(papers_common.SchemaError) as err:
        papers_common.load_results(path)
    assert f"{path}: claims[0].holds: 'yes' is not of type 'boolean'" in str(err.value)


def test_load_results_rejects_bad_json_and_missing_files(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    path.write_text('{\n  "package": "x",\n  oops\n}', encoding="utf-8")
    with pytest.raises(SchemaError, match=r"results\.json:3: not valid JSON"):
        load_results(path)
    with pytest.raises(InputError, match="no such file"):
        load_results(tmp_path / "absent.json")


def test_nan_measurement_round_trips_as_null(tmp_path: Path) -> None:
    results = make_results(claims=[claim("nan", "diverges", metric="loss", ours=math.nan, target=1.0)])
    json_path, md_path = write_results(results, tmp_path)
    assert json.loads(json_path.read_text(encoding="utf-8"))["claims"][0]["ours"] is None
    assert load_results(json_path).claims[0].holds is False
    assert "| — |" in md_path.read_text(encoding="utf-8")


# --- bench.json ------------------------------------------------------------------------------------------

MACHINE = {"cpu": "Test CPU", "cores": 2, "torch": "2.0", "device": "cpu"}


def make_bench(**overrides: Any) -> Bench:
    fields: dict[str, Any] = {
        "package": "urpe",
        "anchor": Anchor("flash-attn", "2.5.0"),
        "headline": Measurement(
            "seq 1024", "throughput", "tokens/s", ours=300.0, anchor_value=120.0, higher_is_better=True
        ),
        "machine": MACHINE,
        "rows": [
            Measurement(
                "seq 256", "throughput", "tokens/s", ours=50.0, anchor_value=200.0, higher_is_better=True
            ),
            Measurement("seq 64", "latency", "ms", 3.0, 4.0, False, anchor=Anchor("xformers", "0.0.1")),
        ],
    }
    fields.update(overrides)
    return Bench(**fields)


def test_measurement_ratio_is_ours_over_anchor() -> None:
    m = Measurement("w", "m", "s", ours=3.0, anchor_value=12.0, higher_is_better=False)
    assert m.ratio == 0.25
    assert m.to_dict()["ratio"] == 0.25
    assert "anchor" not in m.to_dict()


def test_write_bench_validates_and_round_trips(tmp_path: Path) -> None:
    path = write_bench(make_bench(), tmp_path)
    assert path == tmp_path / "bench.json"
    data = load_bench(path)
    assert data["ratio"] == 2.5
    assert data["ours"] == 300.0
    assert data["anchor_value"] == 120.0
    assert data["anchor"] == {"name": "flash-attn", "version": "2.5.0"}
    assert [row["ratio"] for row in data["rows"]] == [0.25, 0.75]
    assert "anchor" not in data["rows"][0]
    assert data["rows"][1]["anchor"] == {"name": "xformers", "version": "0.0.1"}
    assert data["machine"] == MACHINE
    validate(data, "bench")


def test_bench_without_rows_has_no_rows_key(tmp_path: Path) -> None:
    data = load_bench(write_bench(make_bench(rows=[]), tmp_path))
    assert "rows" not in data
    assert data["ratio"] == 2.5


def test_invalid_bench_is_rejected_naming_the_field(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match=r"machine: 'cores' is a required property"):
        write_bench(make_bench(machine={"cpu": "x", "torch": "2", "device": "cpu"}), tmp_path)
    assert not (tmp_path / "bench.json").exists()
    data = make_bench().to_dict()
    data["rows"][0]["ratio"] = "fast"
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(SchemaError) as err:
        load_bench(path)
    assert f"{path}: rows[0].ratio: 'fast' is not of type 'number'" in str(err.value)


def test_machine_info_is_valid_for_bench() -> None:
    info = machine_info("cpu")
    assert info["device"] == "cpu"
    assert info["cores"] >= 1
    assert info["cpu"]
    validate(make_bench(machine=info).to_dict(), "bench")


@pytest.mark.parametrize(
    ("value", "text"),
    [(None, "—"), (True, "yes"), (False, "no"), (3, "3"), (0.123456, "0.1235"), (1e-9, "1e-09"), ("x", "x")],
)
def test_fmt(value: Any, text: str) -> None:
    assert fmt(value) == text


def test_markdown_rows_keep_their_columns_when_text_holds_pipes(tmp_path: Path) -> None:
    c = claim(
        "dev",
        "rows: max |sum - 1|\nsmall",
        metric="max |sum - 1|",
        ours=1e-7,
        higher_is_better=False,
        target=1e-5,
    )
    results = papers_common.Results("urpe", "0.1.0", papers_common.Paper("T", None), "quick", {}, 1.0, [c])
    _, md = papers_common.write_results(results, tmp_path)
    row = next(line for line in md.read_text().splitlines() if line.startswith("| dev "))
    header = next(line for line in md.read_text().splitlines() if line.startswith("| claim "))
    unescaped = row.replace("\\|", "")
    assert unescaped.count("|") == header.count("|")
    assert "max \\|sum - 1\\| small" in row


def test_summary_lines_name_each_claim_and_its_verdict() -> None:
    held = claim("a", "accuracy high", metric="acc", ours=0.98765, target=0.9)
    failed = claim("b", "loss low", metric="loss", ours=float("nan"), higher_is_better=False, target=1.0)
    flag = claim("c", "rows sum to one", metric="check", ours=False)
    results = Results("urpe", "0.3.0", Paper("T", None), "quick", {}, 1.0, [held, failed, flag])
    assert results.summary_lines() == [
        "HOLDS  a: accuracy high (ours 0.9877)",
        "FAILS  b: loss low (ours —)",  # a non-finite value is stored as None
        "FAILS  c: rows sum to one (ours no)",
    ]


def test_the_papers_figure_comes_with_its_source_or_a_reason(tmp_path: Path) -> None:
    sourced = claim(
        "mrr",
        "MRR at d = 200",
        metric="MRR",
        ours=0.47,
        target=0.45,
        paper_value=0.511,
        paper_source="Table 2",
    )
    reason = claim("speed", "fast", metric="s", ours=1.0, target=2.0, higher_is_better=False,
                   paper_source="not reported at this scale")  # fmt: skip
    bare = claim("old", "a claim of 0.3.0", metric="x", ours=1.0, target=0.0)
    assert [c.paper_cell() for c in (sourced, reason, bare)] == [
        "0.511 (Table 2)",
        "not reported at this scale",
        "—",
    ]
    with pytest.raises(ValueError, match="paper_source"):
        claim("mrr", "MRR", metric="MRR", ours=0.47, target=0.45, paper_value=0.511)
    results = Results("demo", "1.0", Paper("T", "2202.07919"), "quick", {}, 1.0, [sourced, reason, bare], [])
    write_results(results, tmp_path)
    loaded = load_results(tmp_path / "results.json")
    assert [c.paper_source for c in loaded.claims] == ["Table 2", "not reported at this scale", None]
    assert "| 0.511 (Table 2) |" in (tmp_path / "results.md").read_text(encoding="utf-8")
    old = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    for c in old["claims"]:
        del c["paper_source"]  # results.json written by papers-common 0.3.0
    assert Results.from_dict(old).claims[0].paper_source is None


def test_a_comparison_over_seeds_holds_only_beyond_the_spread_of_the_per_seed_advantages() -> None:
    from papers_common import claim_over_seeds

    clear = claim_over_seeds(
        "clear", "s", metric="MAE", seeds=[0, 1, 2], ours=[8.9, 9.0, 8.8], baseline_name="energy-only",
        baseline=[9.3, 9.5, 9.2], higher_is_better=False, paper_source="not reported",
    )  # fmt: skip
    advantages = [0.4, 0.5, 0.4]
    mean = sum(advantages) / 3
    sd = math.sqrt(sum((a - mean) ** 2 for a in advantages) / 2)
    assert clear.holds
    assert clear.ours == pytest.approx(8.9)
    assert clear.baseline == Baseline("energy-only", pytest.approx(9.3333333))
    assert clear.spread is not None
    assert clear.spread.sd == pytest.approx(sd)
    assert clear.ours_cell() == "8.9 ± 0.1 (3 seeds)"
    # the quick graphormer2 case: a 0.5% difference at one seed is inside the seed-to-seed spread
    noise = claim_over_seeds(
        "noise", "s", metric="MAE", seeds=[0, 1, 2], ours=[9.028, 8.9, 9.1], baseline_name="energy-only",
        baseline=[8.985, 9.0, 9.05], higher_is_better=False, paper_source="not reported",
    )  # fmt: skip
    assert not noise.holds
    assert noise.ours < noise.baseline.value


@pytest.mark.parametrize(
    ("ours", "baseline", "higher_is_better", "margin", "factor", "holds"),
    [
        ([2.0, 2.1], [1.0, 1.0], True, 0.0, 1.0, True),
        ([2.0, 2.1], [1.0, 1.0], True, 1.0, 1.0, False),  # mean advantage 1.05 - margin 1 < sd 0.07
        ([2.0, 2.1], [1.0, 1.0], True, 0.0, 2.0, False),  # ours - 2 x baseline: 0.05 mean, 0.07 sd
        ([1.0, 1.1], [2.5, 2.6], False, 0.0, 2.0, True),  # baseline - 2 x ours: 0.5, 0.4
        ([1.0, 3.0], [2.0, 2.0], False, 0.0, 1.0, False),  # one seed each way
    ],
)
def test_over_seeds_margin_factor_and_direction(
    ours: list[float],
    baseline: list[float],
    higher_is_better: bool,
    margin: float,
    factor: float,
    holds: bool,
) -> None:
    from papers_common import claim_over_seeds

    c = claim_over_seeds(
        "c", "s", metric="m", seeds=[0, 1], ours=ours, baseline_name="b", baseline=baseline,
        higher_is_better=higher_is_better, margin=margin, factor=factor, paper_source="not reported",
    )  # fmt: skip
    assert c.holds is holds


def test_over_seeds_refuses_one_seed_and_unpaired_values_and_never_holds_with_a_diverged_run(
    tmp_path: Path,
) -> None:
    from papers_common import claim_over_seeds

    with pytest.raises(ValueError, match="at least two seeds"):
        claim_over_seeds("c", "s", metric="m", seeds=[0], ours=[1.0], baseline_name="b", baseline=[0.0])
    with pytest.raises(ValueError, match="one of each per seed"):
        claim_over_seeds(
            "c", "s", metric="m", seeds=[0, 1], ours=[1.0], baseline_name="b", baseline=[0.0, 0.0]
        )
    diverged = claim_over_seeds(
        "c", "s", metric="m", seeds=[0, 1], ours=[math.nan, 5.0], baseline_name="b", baseline=[0.0, 0.0],
        paper_source="not reported",
    )  # fmt: skip
    assert not diverged.holds
    assert diverged.ours is None
    assert diverged.spread.ours == (None, 5.0)
    results = Results("toy", "0.1.0", Paper("T", None), "quick", {}, 1.0, [diverged])
    write_results(results, tmp_path)
    assert load_results(tmp_path / "results.json").claims == [diverged]
    assert "5 (1 of 2 seeds finite)" in (tmp_path / "results.md").read_text(encoding="utf-8")


def test_seeds_round_trip_through_results_json_and_show_in_both_tables(tmp_path: Path) -> None:
    from papers_common import claim_over_seeds, write_report

    c = claim_over_seeds(
        "c", "s", metric="m", seeds=[3, 4, 5], ours=[2.0, 2.2, 2.1], baseline_name="plain", baseline=[1.0, 1.1, 1.2],
        paper_source="not reported at this scale",
    )  # fmt: skip
    results = Results("toy", "0.1.0", Paper("T", None), "quick", {}, 1.0, [c])
    write_results(results, tmp_path / "toy")
    data = json.loads((tmp_path / "toy" / "results.json").read_text(encoding="utf-8"))
    assert data["claims"][0]["seeds"] == {"seeds": [3, 4, 5], "ours": [2.0, 2.2, 2.1], "baseline": [1.0, 1.1, 1.2],
                                          "sd": pytest.approx(0.1)}  # fmt: skip
    assert load_results(tmp_path / "toy" / "results.json").claims == [c]
    row = "| 2.1 ± 0.1 (3 seeds) | plain: 1.1 ± 0.1 (3 seeds) |"
    assert row in (tmp_path / "toy" / "results.md").read_text(encoding="utf-8")
    assert row in write_report(tmp_path).read_text(encoding="utf-8")
    assert "(ours 2.1 ± 0.1 (3 seeds); plain: 1.1 ± 0.1 (3 seeds))" in results.summary_lines()[0]
