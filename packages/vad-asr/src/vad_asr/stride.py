"""Hugging Face pipeline-style stride chunking for a CTC engine: merge frames, not words (an anchor for VADOI).

The ``transformers`` ASR pipeline with ``chunk_length_s`` and ``stride_length_s`` (default: a sixth of the chunk on
each side) decodes windows of length ``chunk`` every ``chunk − 2·stride`` samples, drops the frames of each window's
left and right stride (none at the recording's two ends), concatenates the rest and decodes the whole sequence of
frames once. Every frame of the recording then comes from a window in which it has at least ``stride`` of context
on both sides. Window edges are aligned to the model's frame (640 samples, 40 ms, for :class:`~vad_asr.ctc.CTCModel`)
so that the kept frames tile the recording exactly.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from papers_common import InputError
from vad_asr.audio import TARGET_RATE, AudioFile
from vad_asr.ctc import CTCEngine, output_frames
from vad_asr.features import HOP
from vad_asr.longform import Compute, Transcript
from vad_asr.policies import Window

FRAME = HOP * 4  # samples per output frame of the CTC model


def transcribe_strided(
    audio: str | Path | AudioFile, engine: CTCEngine, *, chunk_s: float = 20.0, stride_s: float | None = None
) -> Transcript:
    """Transcribe with stride chunking and frame-level merging (the Hugging Face CTC pipeline's rule).

    Args:
        audio: a file path or an :class:`~vad_asr.audio.AudioFile`.
        engine: a CTC engine (its per-frame log-probabilities are merged).
        chunk_s: window length in seconds.
        stride_s: context dropped on each side of a window, seconds (default: ``chunk_s / 6``).
    """
    started = time.perf_counter()
    source = AudioFile(audio) if isinstance(audio, (str, Path)) else audio
    n = source.num_samples
    chunk = max(FRAME, round(chunk_s * TARGET_RATE / FRAME) * FRAME)
    stride = round((chunk_s / 6 if stride_s is None else stride_s) * TARGET_RATE / FRAME) * FRAME
    step = chunk - 2 * stride
    if stride < 0 or step < FRAME:
        raise InputError(
            f"the stride must be non-negative and below a third of the chunk, got {stride_s} s for {chunk_s} s"
        )
    import torch

    total = int(output_frames(torch.tensor([n]))[0])
    merged = np.zeros((total, 29), dtype=np.float32)
    windows: list[Window] = []
    start = 0
    while True:
        end = min(start + chunk, n)
        last = end >= n
        log_probs = engine.log_probs(source.read(start, end))
        first_frame = start // FRAME
        keep_from = 0 if start == 0 else stride // FRAME
        keep_to = len(log_probs) if last else min(len(log_probs), (chunk - stride) // FRAME)
        target = slice(first_frame + keep_from, min(total, first_frame + keep_to))
        merged[target] = log_probs[keep_from : keep_from + (target.stop - target.start)]
        windows.append(Window(start, end, "start" if start == 0 else "overlap"))
        if last:
            break
        start += step
    words = engine.decode(merged)
    wall = time.perf_counter() - started
    audio_s = n / TARGET_RATE
    decoded = sum(w.length for w in windows) / TARGET_RATE
    compute = Compute(audio_s=audio_s, decoded_s=decoded, ratio=decoded / max(audio_s, 1e-9),
                      engine_calls=len(windows), wall_s=wall, vad_s=0.0,
                      real_time_factor=wall / max(audio_s, 1e-9))  # fmt: skip
    return Transcript(
        words, windows, compute, {"policy": "stride", "chunk_s": chunk_s, "stride_s": stride / TARGET_RATE}
    )
