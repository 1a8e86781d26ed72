"""VADOI + Soft-Match against the chunking users pick today, on the same engine and corpus, at equal compute.

The engine is the shipped CTC model (beam search with its word model, one thread). The corpus is synthesised by
espeak-ng from the held-out plays that ship with the package (a seed of its own, not the reproduction's). Our
method runs first; its compute ratio r (decoded audio seconds / audio seconds) then sets the anchors' overlap:

- Hugging Face ASR pipeline-style stride chunking for CTC (:func:`vad_asr.transcribe_strided`): windows of L with
  stride s = L(1 − 1/r)/2 dropped on each side, frames merged and decoded once — the same compute r.
- NeMo-style LCS merging of partially overlapping windows with o = 1 − 1/r — the same compute r.
- Our own OI-50 + Soft-Match (compute ≈ 2): the simpler method at twice the compute, as a row.

Headline: our WER / the best equal-compute anchor's WER (target ≤ 1). Rows: each anchor's WER ratio, compute
ratios and real-time factors (wall seconds / audio seconds, VAD included for ours). Writes ``bench.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from papers_common import Anchor, Bench, InputError, Measurement, machine_info, write_bench
from vad_asr import __version__, transcribe_strided
from vad_asr.corpus import SynthesisSettings, load_corpus, synthesize_corpus
from vad_asr.ctc import CTCEngine
from vad_asr.evaluation import evaluate_corpus, word_error_rate
from vad_asr.reproduce import shipped_sentences

SEED = 7


def strided(corpus: Path, engine: CTCEngine, window_s: float, stride_s: float) -> dict[str, float]:
    references, hypotheses, decoded, audio_s, wall = [], [], 0.0, 0.0, 0.0
    for path, recording in load_corpus(corpus):
        result = transcribe_strided(path, engine, chunk_s=window_s, stride_s=stride_s)
        references.append(recording.text)
        hypotheses.append(result.text)
        decoded += result.compute.decoded_s
        audio_s += result.compute.audio_s
        wall += result.compute.wall_s
    return {"wer": word_error_rate(" ".join(references), " ".join(hypotheses)), "compute_ratio": decoded / audio_s,
            "rtf": wall / audio_s}  # fmt: skip


def evaluated(corpus: Path, engine: CTCEngine, **options: object) -> dict[str, float]:
    result = evaluate_corpus(corpus, engine, **options)
    return {"wer": result.wer, "compute_ratio": result.compute_ratio, "rtf": result.real_time_factor,
            "oracle_wer": result.oracle_wer}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("reports/vad-asr"))
    parser.add_argument("--minutes", type=float, default=10.0, help="minutes of synthetic speech")
    parser.add_argument("--window", type=float, default=10.0, help="window length L, seconds")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    try:
        if not args.minutes > 0 or not args.window > 0 or args.threads < 1:
            raise InputError("--minutes and --window must be positive and --threads at least 1")
        if args.out.exists() and not args.out.is_dir():
            raise InputError(f"--out {args.out}: a file is in the way")
        return run(args)
    except InputError as error:
        print(f"bench-vad-asr: error: {error}", file=sys.stderr)
        return 2


def run(args: argparse.Namespace) -> int:
    torch.set_num_threads(args.threads)
    corpus = args.out / "bench-corpus"
    synthesize_corpus(shipped_sentences(), corpus,
                      SynthesisSettings(minutes=args.minutes, recording_minutes=min(5.0, args.minutes), seed=SEED))  # fmt: skip
    engine = CTCEngine.shipped()
    L = args.window
    started = time.perf_counter()
    ours = evaluated(corpus, engine, policy="vadoi", merge="softmatch", window_s=L)
    r = ours["compute_ratio"]
    hf = strided(corpus, engine, L, L * (1 - 1 / r) / 2)
    nemo = evaluated(corpus, engine, policy="partial", merge="nemo", window_s=L, overlap=1 - 1 / r)
    oi50 = evaluated(corpus, engine, policy="overlap", merge="softmatch", window_s=L)
    seconds = time.perf_counter() - started
    hf_anchor = Anchor("Hugging Face ASR pipeline CTC stride chunking (rule in vad_asr.stride)", __version__)
    nemo_anchor = Anchor(
        "NeMo-style LCS merge of partially overlapping windows (vad_asr.merging)", __version__
    )
    ours_anchor = Anchor("vad-asr OI-50 + Soft-Match (twice the compute)", __version__)
    best, best_anchor, best_name = (hf, hf_anchor, "HF stride") if hf["wer"] <= nemo["wer"] else (nemo, nemo_anchor, "NeMo LCS")  # fmt: skip
    workload = f"{args.minutes:g} min synthetic long-form speech, shipped CTC + word model, L = {L:g} s, compute ratio {r:.2f}"  # fmt: skip
    headline = Measurement(f"{workload}; WER vs the better equal-compute anchor ({best_name})", "WER", "fraction",
                           ours["wer"], best["wer"], False, best_anchor)  # fmt: skip
    rows = [
        Measurement(f"{workload}; WER vs HF stride (stride {L * (1 - 1 / r) / 2:.2f} s)", "WER", "fraction",
                    ours["wer"], hf["wer"], False, hf_anchor),
        Measurement(f"{workload}; WER vs NeMo LCS (o = {1 - 1 / r:.3f})", "WER", "fraction", ours["wer"],
                    nemo["wer"], False, nemo_anchor),
        Measurement(f"{workload}; WER vs our OI-50 + Soft-Match", "WER", "fraction", ours["wer"], oi50["wer"],
                    False, ours_anchor),
        Measurement("compute ratio (decoded s / audio s) vs HF stride", "compute ratio", "ratio", r,
                    hf["compute_ratio"], False, hf_anchor),
        Measurement("compute ratio vs NeMo LCS", "compute ratio", "ratio", r, nemo["compute_ratio"], False,
                    nemo_anchor),
        Measurement("compute ratio vs OI-50", "compute ratio", "ratio", r, oi50["compute_ratio"], False, ours_anchor),
        Measurement("real-time factor vs HF stride (ours: VAD included)", "real-time factor", "s/s", ours["rtf"],
                    hf["rtf"], False, hf_anchor),
        Measurement("real-time factor vs NeMo LCS", "real-time factor", "s/s", ours["rtf"], nemo["rtf"], False,
                    nemo_anchor),
    ]  # fmt: skip
    machine = {**machine_info(), "threads": args.threads, "seconds": round(seconds, 1),
               "oracle_wer": ours["oracle_wer"]}  # fmt: skip
    path = write_bench(Bench("vad-asr", best_anchor, headline, machine, rows), args.out)
    print(json.dumps({"ours": ours, "hf_stride": hf, "nemo_lcs": nemo, "oi50": oi50}, indent=1))
    print(f"WER ratio vs {best_name} at equal compute: {headline.ratio:.3f}; wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
