"""Scoring long-form transcripts: word error rate (jiwer, on normalised words) and the chunking-induced error rate.

The chunking-induced error rate compares the long-form output with what the same engine writes when it decodes the
oracle segments (the reference sentences or utterances, one at a time): it counts the errors that cutting the
recording into windows and merging their hypotheses add, apart from the engine's own errors.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jiwer
import numpy as np

from vad_asr.audio import TARGET_RATE, AudioFile
from vad_asr.policies import Window
from vad_asr.words import Word, normalize_text, normalize_word

if TYPE_CHECKING:
    from vad_asr.corpus import Recording
    from vad_asr.engines import Engine


def word_error_rate(reference: str | Sequence[Word], hypothesis: str | Sequence[Word]) -> float:
    """(substitutions + deletions + insertions) / reference words, after lower-casing and stripping punctuation.

    An empty reference gives 0.0 for an empty hypothesis and 1.0 otherwise.
    """
    ref = normalize_text(reference if isinstance(reference, str) else " ".join(w.text for w in reference))
    hyp = normalize_text(hypothesis if isinstance(hypothesis, str) else " ".join(w.text for w in hypothesis))
    if not ref:
        return 0.0 if not hyp else 1.0
    if not hyp:
        return 1.0
    return float(jiwer.wer(" ".join(ref), " ".join(hyp)))


def oracle_words(audio: AudioFile, recording: Recording, engine: Engine) -> list[Word]:
    """The engine's words on the oracle segmentation: each reference segment (sentence / utterance) decoded alone,
    with a margin of up to 0.1 s of the surrounding silence."""
    words: list[Word] = []
    margin = round(0.1 * TARGET_RATE)
    for segment in recording.segments:
        start = max(0, round(float(segment["start"]) * TARGET_RATE) - margin)
        end = min(audio.num_samples, round(float(segment["end"]) * TARGET_RATE) + margin)
        words += [
            w.shifted(start / TARGET_RATE) for w in engine.transcribe(audio.read(start, end), TARGET_RATE)
        ]
    return words


SEAM_RADIUS_S = 1.0
"""Reference words whose mid-time lies within this many seconds of a seam count as seam words."""


def seam_times(windows: Sequence[Window]) -> list[float]:
    """The seams of a window plan in seconds: the middle of each shared stretch, or the cut between clean windows."""
    seams = []
    for previous, window in itertools.pairwise(windows):
        if window.seam == "overlap":
            seams.append(0.5 * (window.start + previous.end) / TARGET_RATE)
        else:
            seams.append(window.start / TARGET_RATE)
    return seams


def seam_errors(
    reference: Sequence[Word], hypothesis: str, seams: Sequence[float], *, radius_s: float = SEAM_RADIUS_S
) -> tuple[int, int]:
    """``(errors, words)``: the word errors at the seams and the reference words there.

    The hypothesis is aligned to the whole reference (jiwer's minimal edit alignment); a substitution or deletion
    counts when its reference word's mid-time lies within ``radius_s`` of a seam, an insertion when the reference
    word it precedes (or, at the end, follows) does.
    """
    kept = [(normalize_word(w.text), w.mid) for w in reference]
    kept = [(text, mid) for text, mid in kept if text]
    hyp = normalize_text(hypothesis)
    if not kept:
        return len(hyp) if seams else 0, 0
    mids = np.array([mid for _, mid in kept])
    near = np.zeros(len(kept), dtype=bool)
    for seam in seams:
        near |= np.abs(mids - seam) <= radius_s
    if not hyp:
        return int(near.sum()), int(near.sum())
    errors = 0
    for chunk in jiwer.process_words(" ".join(t for t, _ in kept), " ".join(hyp)).alignments[0]:
        if chunk.type in ("substitute", "delete"):
            errors += int(near[chunk.ref_start_idx : chunk.ref_end_idx].sum())
            if chunk.type == "substitute":  # a longer hypothesis stretch adds insertions at the same place
                extra = (chunk.hyp_end_idx - chunk.hyp_start_idx) - (chunk.ref_end_idx - chunk.ref_start_idx)
                errors += max(extra, 0) * int(near[chunk.ref_start_idx])
        elif chunk.type == "insert":
            at = min(chunk.ref_start_idx, len(kept) - 1)
            errors += (chunk.hyp_end_idx - chunk.hyp_start_idx) * int(near[at])
    return errors, int(near.sum())


@dataclass(frozen=True)
class Evaluation:
    """One policy and merge on one corpus.

    Attributes:
        wer: word error rate of the long-form output against the reference (all recordings pooled).
        oracle_wer: the engine's WER on the oracle segments (what it achieves without chunking trouble).
        chunking_error_rate: WER of the long-form output against the engine's own oracle-segment output: the
            errors that chunking and merging add.
        seam_wer: word errors within 1 s of a seam (:func:`seam_errors`) per reference word there (all recordings
            pooled); seam_errors and seam_words are its two counts.
        compute_ratio: decoded seconds / audio seconds; engine_calls, wall_s, real_time_factor as in
            :class:`~vad_asr.longform.Compute`.
        recordings: per-recording numbers.
    """

    wer: float
    oracle_wer: float
    chunking_error_rate: float
    seam_wer: float
    seam_errors: int
    seam_words: int
    compute_ratio: float
    engine_calls: int
    wall_s: float
    real_time_factor: float
    settings: dict[str, Any]
    recordings: list[dict[str, Any]]


def _pooled(pairs: Sequence[tuple[str, str]]) -> float:
    """WER over all pairs together (errors summed over reference words summed)."""
    references = [" ".join(normalize_text(r)) for r, _ in pairs]
    hypotheses = [" ".join(normalize_text(h)) for _, h in pairs]
    kept = [(r, h) for r, h in zip(references, hypotheses, strict=True) if r]
    if not kept:
        return 0.0
    output = jiwer.process_words([r for r, _ in kept], [h for _, h in kept])
    return float(output.wer)


def evaluate_corpus(
    corpus: str | Path, engine: Engine, *, oracle: dict[str, list[Word]] | None = None, **options: Any
) -> Evaluation:
    """Transcribe every recording of a corpus with :func:`~vad_asr.longform.transcribe_long` and score it.

    Args:
        corpus: a corpus folder (:func:`~vad_asr.corpus.load_corpus`).
        engine: the engine, also run on the oracle segments.
        oracle: the engine's oracle-segment words per recording name, when already computed (they depend on the
            engine only, so a comparison of policies computes them once); filled in when given empty.
        options: ``policy``, ``merge``, ``window_s``, ``overlap``, ``vad``... of ``transcribe_long``.
    """
    from vad_asr.corpus import load_corpus
    from vad_asr.longform import transcribe_long

    oracle = {} if oracle is None else oracle
    rows, pairs, oracle_pairs, chunk_pairs = [], [], [], []
    calls, wall, decoded, audio_s, at_seams, seam_words = 0, 0.0, 0.0, 0.0, 0, 0
    settings: dict[str, Any] = {}
    for path, recording in load_corpus(corpus):
        audio = AudioFile(path)
        result = transcribe_long(audio, engine, **options)
        settings = result.settings
        if path.name not in oracle:
            oracle[path.name] = oracle_words(audio, recording, engine)
        hypothesis = result.text
        oracle_text = " ".join(w.text for w in oracle[path.name])
        pairs.append((recording.text, hypothesis))
        oracle_pairs.append((recording.text, oracle_text))
        chunk_pairs.append((oracle_text, hypothesis))
        errors, words = seam_errors(recording.words, hypothesis, seam_times(result.windows))
        at_seams += errors
        seam_words += words
        calls += result.compute.engine_calls
        wall += result.compute.wall_s
        decoded += result.compute.decoded_s
        audio_s += result.compute.audio_s
        rows.append({"recording": path.name, "duration_s": recording.duration_s,
                     "wer": word_error_rate(recording.text, hypothesis),
                     "oracle_wer": word_error_rate(recording.text, oracle_text),
                     "chunking_error_rate": word_error_rate(oracle_text, hypothesis),
                     "seam_errors": errors, "seam_words": words,
                     "compute_ratio": result.compute.ratio, "engine_calls": result.compute.engine_calls,
                     "wall_s": result.compute.wall_s})  # fmt: skip
    return Evaluation(wer=_pooled(pairs), oracle_wer=_pooled(oracle_pairs), chunking_error_rate=_pooled(chunk_pairs),
                      seam_wer=at_seams / max(seam_words, 1), seam_errors=at_seams, seam_words=seam_words,
                      compute_ratio=decoded / max(audio_s, 1e-9), engine_calls=calls, wall_s=wall,
                      real_time_factor=wall / max(audio_s, 1e-9), settings=settings, recordings=rows)  # fmt: skip
