"""``vad-asr reproduce``: the paper's WER-versus-compute trade-off, measured on synthetic long-form speech.

A corpus is synthesised by espeak-ng from the sentences of *The Tempest* and *Twelfth Night* that ship in the
package (plays the shipped CTC model never heard), then decoded by every policy with two engines: the shipped CTC
model as it decodes by default (beam search with its word model) and PocketSphinx. Claims, per engine, at
L = 10 s, each on WER and on the chunking-induced error rate:

1. 50% overlapping inference (OI) has a lower WER than fixed windows without overlap.
2. VADOI keeps its WER within 0.5 absolute points of OI-50's while decoding at most 0.8× OI-50's audio seconds
   (the paper: about 20% less compute at the same WER).
3. Soft-Match does not raise WER over exact matching (the same windows, averaged over the overlapping policies:
   partial 12.5% and 25%, OI-50, VADOI; PocketSphinx skips the partial ones in quick mode), and leaves fewer
   errors within 1 s of their seams.
4. The WER-versus-compute plot of every policy and overlap ratio (``wer_vs_compute.png`` for the CTC engine,
   ``wer_vs_compute_pocketsphinx.png``).

The CTC model's greedy decoding (``ctc-greedy``, no word model, like the paper's end-to-end model without an
external language model) adds rows to the table and the plot. Full mode adds L = 20 s and longer corpora. Window
hypotheses are
decoded once per distinct window and reused by the merges that differ only after decoding (the compute each run
reports is that of its own plan). PocketSphinx runs in a second process beside the CTC engine.
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np

from papers_common import Baseline, Claim, Paper, Results, RunDir, claim, plot_lines, write_results
from vad_asr import __version__
from vad_asr.engines import Engine, make_engine
from vad_asr.words import Word

LOG = logging.getLogger(__name__)
PAPER = Paper(
    "VADOI: Voice-Activity-Detection Overlapping Inference for End-to-end Long-form Speech Recognition",
    "2202.10593",
)
TEXTS = ("tempest", "twelfth_night")
WER_POINTS = 0.005  # claim 2: "within 0.5 absolute points"
COMPUTE_TARGET = 0.8
PAPER_COMPUTE = (
    "about 20% less computation than OI-50 at the same WER (abstract; LibriSpeech and MS-SLT long-form)"
)
PAPER_QUALITATIVE = "qualitative in the paper; its per-setup WER tables are not available here"


@dataclass(frozen=True)
class Plan:
    """One mode's sizes: minutes of speech per engine and window lengths."""

    ctc_minutes: float
    pocketsphinx_minutes: float
    recording_minutes: float
    windows: tuple[float, ...]
    partial_overlaps: tuple[float, ...]
    pocketsphinx_partial: bool = False
    seed: int = 0


QUICK = Plan(ctc_minutes=15, pocketsphinx_minutes=2, recording_minutes=5, windows=(10.0,),
             partial_overlaps=(0.125, 0.25))  # fmt: skip
FULL = Plan(ctc_minutes=60, pocketsphinx_minutes=10, recording_minutes=5, windows=(10.0, 20.0),
            partial_overlaps=(0.125, 0.25), pocketsphinx_partial=True)  # fmt: skip


def shipped_sentences() -> list[str]:
    """The sentences of the held-out plays that ship in the package (Project Gutenberg, public domain)."""
    folder = files("vad_asr") / "texts"
    return [line for name in TEXTS for line in (folder / f"{name}.txt").read_text(encoding="utf-8").splitlines()
            if line.strip()]  # fmt: skip


class CachedEngine:
    """An engine that decodes each distinct chunk once (runs that differ only in their merge share windows)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._seen: dict[bytes, list[Word]] = {}

    def transcribe(self, samples: np.ndarray, sample_rate: int) -> list[Word]:
        key = hashlib.blake2b(np.ascontiguousarray(samples).tobytes() + str(sample_rate).encode(),
                              digest_size=16).digest()  # fmt: skip
        if key not in self._seen:
            self._seen[key] = self.engine.transcribe(samples, sample_rate)
        return self._seen[key]


def overlapping(plan: Plan, engine: str) -> list[tuple[str, float]]:
    """The (policy, overlap) pairs whose windows share audio: partial overlaps (for PocketSphinx only when
    ``plan.pocketsphinx_partial``: its decoding is the slow part of the quick run), OI-50 and VADOI."""
    partial = plan.partial_overlaps if engine != "pocketsphinx" or plan.pocketsphinx_partial else ()
    return [*(("partial", o) for o in partial), ("overlap", 0.5), ("vadoi", 0.5)]


def runs(plan: Plan, engine: str) -> list[dict[str, Any]]:
    """The (policy, merge, overlap, window) runs: fixed windows, and every overlapping policy with each merge."""
    found = []
    for window in plan.windows:
        found.append({"policy": "fixed", "merge": "center", "overlap": 0.0, "window_s": window})
        for policy, overlap in overlapping(plan, engine):
            for merge in ("center", "softmatch"):
                found.append({"policy": policy, "merge": merge, "overlap": overlap, "window_s": window})
    return found


def evaluate_engine(engine_name: str, corpus: str, plan: Plan) -> list[dict[str, Any]]:
    """Every run of :func:`runs` for one engine on one corpus, as table rows (one thread)."""
    import torch

    from vad_asr.evaluation import evaluate_corpus

    torch.set_num_threads(1)
    if engine_name == "pocketsphinx":
        engine = CachedEngine(make_engine("pocketsphinx"))
    else:
        engine = CachedEngine(make_engine("ctc", decoder="greedy" if engine_name == "ctc-greedy" else "beam"))
    oracle: dict[str, list[Word]] = {}
    rows = []
    for run in runs(plan, engine_name):
        started = time.perf_counter()
        result = evaluate_corpus(corpus, engine, oracle=oracle, policy=run["policy"], merge=run["merge"],
                                 window_s=run["window_s"], overlap=run["overlap"] or None, vad="silero")  # fmt: skip
        rows.append({"engine": engine_name, **run, "wer": result.wer, "oracle_wer": result.oracle_wer,
                     "chunking_error_rate": result.chunking_error_rate, "seam_wer": result.seam_wer,
                     "seam_errors": result.seam_errors, "seam_words": result.seam_words,
                     "compute_ratio": result.compute_ratio, "engine_calls": result.engine_calls,
                     "seconds": time.perf_counter() - started})  # fmt: skip
        LOG.info("reproduce: %s %s/%s L=%g s: WER %.4f, chunking %.4f, compute %.2f (%.0f s)", engine_name,
                 run["policy"], run["merge"], run["window_s"], result.wer, result.chunking_error_rate,
                 result.compute_ratio, rows[-1]["seconds"])  # fmt: skip
    return rows


def _synthesise(folder: Path, minutes: float, plan: Plan, seed: int) -> Path:
    from vad_asr.corpus import SynthesisSettings, synthesize_corpus

    settings = SynthesisSettings(
        minutes=minutes, recording_minutes=min(minutes, plan.recording_minutes), seed=seed
    )
    synthesize_corpus(shipped_sentences(), folder, settings)
    return folder


def run(out: Path, *, quick: bool = True, plan: Plan | None = None) -> Results:
    """Synthesise the corpora, measure every run, and write results.json/.md, tables.md and the plot to ``out``."""
    plan = plan or (QUICK if quick else FULL)
    mode = "quick" if quick else "full"
    started = time.perf_counter()
    out = Path(out)
    record = RunDir(out)
    engines = ["ctc", "ctc-greedy", "pocketsphinx"]
    config = {"mode": mode, "plan": asdict(plan), "engines": engines, "texts": [f"vad_asr/texts/{n}.txt" for n in TEXTS],
              "threads_per_engine": 1, "vad": "silero", "soft_threshold": 0.75}  # fmt: skip
    record.write_config(config)
    ctc_corpus = _synthesise(out / "corpus-ctc", plan.ctc_minutes, plan, plan.seed)
    ps_corpus = _synthesise(out / "corpus-pocketsphinx", plan.pocketsphinx_minutes, plan, plan.seed + 1)
    LOG.info(
        "reproduce: corpora ready (%.0f s); PocketSphinx runs in a second process",
        time.perf_counter() - started,
    )
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        pocketsphinx = pool.submit(evaluate_engine, "pocketsphinx", str(ps_corpus), plan)
        rows = evaluate_engine("ctc", str(ctc_corpus), plan)
        rows += evaluate_engine("ctc-greedy", str(ctc_corpus), plan)
        rows += pocketsphinx.result()
    record.write_json("rows.json", rows)
    _write_table(record, rows, plan)
    figures = [_plot(out, rows, plan.windows[0], ("ctc", "ctc-greedy"), "wer_vs_compute.png"),
               _plot(out, rows, plan.windows[0], ("pocketsphinx",), "wer_vs_compute_pocketsphinx.png")]  # fmt: skip
    claims = [
        c for engine in ("ctc", "pocketsphinx") for c in engine_claims(rows, engine, plan.windows[0], plan)
    ]
    results = Results(
        "vad-asr", __version__, PAPER, mode, config, time.perf_counter() - started, claims, figures
    )
    write_results(results, out)
    return results


def _pick(
    rows: list[dict[str, Any]], engine: str, window: float, policy: str, merge: str, overlap: float = 0.5
) -> dict[str, Any]:
    for row in rows:
        if (row["engine"], row["window_s"], row["policy"], row["merge"]) == (
            engine,
            window,
            policy,
            merge,
        ) and (policy == "fixed" or abs(row["overlap"] - overlap) < 1e-9):
            return row
    raise KeyError(f"no run {engine} {policy}/{merge} (o = {overlap:g}) at L = {window:g} s")


def engine_claims(rows: list[dict[str, Any]], engine: str, window: float, plan: Plan) -> list[Claim]:
    """Claims 1–3 of one engine at window length ``window``, each on WER and on the chunking-induced error rate.

    Claim 3 pools the overlapping policies (each compared at the same windows): the mean WER and chunking-induced
    error rate over them, and the seam errors summed over them.
    """
    fixed = _pick(rows, engine, window, "fixed", "center")
    oi = _pick(rows, engine, window, "overlap", "softmatch")
    vadoi = _pick(rows, engine, window, "vadoi", "softmatch")
    soft = [_pick(rows, engine, window, p, "softmatch", o) for p, o in overlapping(plan, engine)]
    exact = [_pick(rows, engine, window, p, "center", o) for p, o in overlapping(plan, engine)]
    pooled = ", ".join(f"{p} {o:g}" if p == "partial" else p for p, o in overlapping(plan, engine))
    name = {"ctc": "CTC + word model", "ctc-greedy": "CTC, greedy", "pocketsphinx": "PocketSphinx"}[engine]
    at = f"{name}, L = {window:g} s"
    metrics = (
        ("wer", "WER", "WER"),
        ("chunking_error_rate", "chunking-induced error rate", "chunking error rate"),
    )
    claims = []
    for key, metric, short in metrics:
        claims.append(claim(f"{engine}-1-{key}", f"{at}: 50% overlapping inference has a lower {short} than fixed "
                            "windows without overlap", metric=metric, ours=oi[key], higher_is_better=False,
                            baseline=Baseline("fixed windows", fixed[key]), paper_source=PAPER_QUALITATIVE))  # fmt: skip
    for key, metric, short in metrics:
        claims.append(claim(f"{engine}-2-{key}", f"{at}: VADOI's {short} within 0.5 absolute points of OI-50's "
                            f"({oi[key]:.4f})", metric=metric, ours=vadoi[key], higher_is_better=False,
                            target=oi[key] + WER_POINTS, paper_source=PAPER_QUALITATIVE))  # fmt: skip
    claims.append(claim(f"{engine}-2-compute", f"{at}: VADOI decodes at most 0.8x the audio seconds of OI-50 "
                        f"(compute ratios {vadoi['compute_ratio']:.3f} / {oi['compute_ratio']:.3f})",
                        metric="VADOI compute / OI-50 compute", ours=vadoi["compute_ratio"] / oi["compute_ratio"],
                        higher_is_better=False, target=COMPUTE_TARGET, paper_value=COMPUTE_TARGET,
                        paper_source=PAPER_COMPUTE))  # fmt: skip
    for key, metric, short in metrics:
        claims.append(claim(f"{engine}-3-{key}", f"{at}: Soft-Match's mean {short} over the overlapping policies "
                            f"({pooled}; the same windows) is not above exact matching's", metric=f"mean {metric}",
                            ours=float(np.mean([r[key] for r in soft])), higher_is_better=False,
                            baseline=Baseline("exact match", float(np.mean([r[key] for r in exact]))),
                            paper_source=PAPER_QUALITATIVE))  # fmt: skip
    claims.append(claim(f"{engine}-3-seams", f"{at}: Soft-Match leaves fewer word errors within 1 s of a seam than "
                        f"exact matching, summed over the overlapping policies ({pooled})",
                        metric="errors at seams", ours=float(sum(r["seam_errors"] for r in soft)),
                        higher_is_better=False, margin=0.5,
                        baseline=Baseline("exact match", float(sum(r["seam_errors"] for r in exact))),
                        paper_source="qualitative in the paper: Soft-Match compensates similar words at seams"))  # fmt: skip
    return claims


def _plot(out: Path, rows: list[dict[str, Any]], window: float, engines: tuple[str, ...], name: str) -> str:
    """WER against compute ratio: fixed → partial → OI-50 as one line per engine, VADOI as a point."""
    series: dict[str, tuple[list[float], list[float]]] = {}
    for engine in engines:
        chosen = [r for r in rows if r["engine"] == engine and r["window_s"] == window
                  and (r["policy"] == "fixed" or r["merge"] == "softmatch")]  # fmt: skip
        line = sorted((r for r in chosen if r["policy"] != "vadoi"), key=lambda r: r["compute_ratio"])
        series[f"{engine}: fixed, partial, OI-50"] = (
            [r["compute_ratio"] for r in line],
            [r["wer"] for r in line],
        )
        point = [r for r in chosen if r["policy"] == "vadoi"]
        series[f"{engine}: VADOI"] = ([r["compute_ratio"] for r in point], [r["wer"] for r in point])
    path = plot_lines(out / name, series, xlabel="compute ratio (decoded s / audio s)", ylabel="WER",
                      title=f"WER against compute, L = {window:g} s, Soft-Match")  # fmt: skip
    return path.name


def _write_table(record: RunDir, rows: list[dict[str, Any]], plan: Plan) -> None:
    lines = [
        f"Synthetic long-form speech (espeak-ng, 8 voices, 140–190 wpm) from *The Tempest* and *Twelfth Night*: "
        f"{plan.ctc_minutes:g} min for the CTC engine, {plan.pocketsphinx_minutes:g} min for PocketSphinx.",
        "",
        "| engine | L (s) | policy | merge | overlap | WER | oracle WER | chunking error rate | WER at seams "
        "(errors / words) | compute ratio | engine calls |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['engine']} | {r['window_s']:g} | {r['policy']} | {r['merge']} | {r['overlap']:g} | "
                     f"{r['wer']:.4f} | {r['oracle_wer']:.4f} | {r['chunking_error_rate']:.4f} | "
                     f"{r['seam_wer']:.4f} ({r['seam_errors']} / {r['seam_words']}) | {r['compute_ratio']:.3f} | "
                     f"{r['engine_calls']} |")  # fmt: skip
    record.write_text("tables.md", "\n".join(lines) + "\n")
