"""A miniature reproduction writes a valid report whose claims come from the measured rows."""

from __future__ import annotations

import json

import pytest

from papers_common import load_results
from vad_asr.reproduce import Plan, engine_claims, run, shipped_sentences

MINI = Plan(
    ctc_minutes=0.5,
    pocketsphinx_minutes=0.15,
    recording_minutes=0.5,
    windows=(5.0,),
    partial_overlaps=(0.25,),
)


def test_the_held_out_plays_ship_with_the_package():
    sentences = shipped_sentences()
    assert len(sentences) > 1500
    assert all(4 <= len(s.split()) <= 40 for s in sentences)


@pytest.fixture(scope="module")
def report(tmp_path_factory, have_espeak):
    out = tmp_path_factory.mktemp("reproduce")
    results = run(out, plan=MINI)
    return out, results


def test_a_miniature_reproduction_writes_a_valid_report(report):
    out, results = report
    loaded = load_results(out / "results.json")  # schema-checked
    assert (out / "results.md").is_file()
    assert (out / "wer_vs_compute.png").stat().st_size > 10_000
    assert "| ctc-greedy |" in (out / "tables.md").read_text()
    assert {c.id for c in loaded.claims} >= {
        "ctc-1-wer",
        "ctc-2-compute",
        "ctc-3-seams",
        "pocketsphinx-1-wer",
    }
    assert loaded.mode == results.mode


def test_claims_follow_from_the_measured_rows(report):
    out, results = report
    rows = json.loads((out / "rows.json").read_text())
    claims = {c.id: c for c in results.claims}
    pick = {(r["engine"], r["policy"], r["merge"]): r for r in rows}
    oi, fixed = pick[("ctc", "overlap", "softmatch")], pick[("ctc", "fixed", "center")]
    vadoi, exact = pick[("ctc", "vadoi", "softmatch")], pick[("ctc", "overlap", "center")]
    assert claims["ctc-1-wer"].ours == pytest.approx(oi["wer"])
    assert claims["ctc-1-wer"].baseline.value == pytest.approx(fixed["wer"])
    assert claims["ctc-1-wer"].holds == (oi["wer"] <= fixed["wer"])
    assert claims["ctc-2-wer"].holds == (vadoi["wer"] <= oi["wer"] + 0.005)
    ratio = vadoi["compute_ratio"] / oi["compute_ratio"]
    assert claims["ctc-2-compute"].ours == pytest.approx(ratio)
    assert claims["ctc-2-compute"].holds == (ratio <= 0.8)
    soft = [r for r in rows if r["engine"] == "ctc" and r["policy"] != "fixed" and r["merge"] == "softmatch"]
    hard = [r for r in rows if r["engine"] == "ctc" and r["policy"] != "fixed" and r["merge"] == "center"]
    assert len(soft) == len(hard) == 3  # partial 0.25, OI-50, VADOI
    assert claims["ctc-3-seams"].holds == (
        sum(r["seam_errors"] for r in soft) < sum(r["seam_errors"] for r in hard)
    )
    assert exact["compute_ratio"] == pytest.approx(oi["compute_ratio"])  # the same windows
    assert 1.7 < oi["compute_ratio"] < 2.1  # 2 less the last window's share
    assert fixed["compute_ratio"] == pytest.approx(1.0)
    # flipping a measurement flips the claim
    worse = [dict(r, wer=1.0) if (r["engine"], r["policy"], r["merge"]) == ("ctc", "overlap", "softmatch") else r
             for r in rows]  # fmt: skip
    assert not {c.id: c for c in engine_claims(worse, "ctc", 5.0, MINI)}["ctc-1-wer"].holds
