"""Long-form recognition: plan windows, decode each with the engine, merge the seams (VADOI §3).

``transcribe_long(audio, engine, policy="vadoi", merge="softmatch")`` is the whole method. The recording is read
window by window (:class:`~vad_asr.audio.AudioFile`), so memory stays bounded by the window length; the VAD pass of
``vadoi`` reads it block by block first. Every run reports its compute: seconds decoded / seconds of input (the
paper's measure), engine calls and wall time.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from papers_common import progress
from vad_asr.audio import TARGET_RATE, AudioFile
from vad_asr.engines import Engine
from vad_asr.merging import Merge, concatenate, merger
from vad_asr.policies import Pause, Policy, Window, compute_ratio, plan_windows
from vad_asr.vad import VoiceDetector, detect_speech, make_detector, pauses
from vad_asr.words import Word


@dataclass(frozen=True)
class Compute:
    """What a long-form run cost.

    Attributes:
        audio_s: seconds of input.
        decoded_s: seconds of audio the engine decoded (windows summed).
        ratio: ``decoded_s / audio_s`` (1.0 without overlap, about 2.0 for OI at 50%).
        engine_calls: windows decoded.
        wall_s: seconds of wall time, VAD included; ``vad_s`` of them in the VAD pass.
        real_time_factor: ``wall_s / audio_s``.
    """

    audio_s: float
    decoded_s: float
    ratio: float
    engine_calls: int
    wall_s: float
    vad_s: float
    real_time_factor: float


@dataclass
class Transcript:
    """The words of a recording, the windows that produced them and what it cost."""

    words: list[Word]
    windows: list[Window]
    compute: Compute
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return " ".join(w.text for w in self.words)

    def to_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "words": [asdict(w) for w in self.words],
            "windows": [
                {"start_s": w.start / TARGET_RATE, "end_s": w.end / TARGET_RATE, "seam": w.seam}
                for w in self.windows
            ],
            "compute": asdict(self.compute),
            "settings": self.settings,
        }


class _Samples:
    """An in-memory recording with AudioFile's reading interface."""

    def __init__(self, samples: np.ndarray) -> None:
        self.samples = np.asarray(samples, dtype=np.float32)
        if self.samples.ndim != 1:
            raise ValueError(f"samples must be mono (n,), got shape {self.samples.shape}")
        self.num_samples = len(self.samples)

    def read(self, start: int, end: int) -> np.ndarray:
        return self.samples[max(0, start) : end]


def transcribe_long(
    audio: str | Path | AudioFile | np.ndarray,
    engine: Engine,
    *,
    policy: Policy = "vadoi",
    merge: Merge = "softmatch",
    window_s: float = 20.0,
    overlap: float | None = None,
    vad: VoiceDetector | str = "silero",
    search_s: float | None = None,
    min_pause_s: float = 0.3,
    soft_threshold: float = 0.75,
    show_progress: bool = False,
) -> Transcript:
    """Transcribe a recording of any length with an engine that handles short chunks.

    Args:
        audio: a file path, an :class:`~vad_asr.audio.AudioFile`, or ``(n,)`` float samples at 16 kHz.
        engine: anything with ``transcribe(samples, sample_rate) -> list[Word]``.
        policy: ``fixed``, ``overlap`` (OI), ``partial`` (OI with o < 0.5) or ``vadoi``.
        merge: the seam merge of overlapping windows: ``center``, ``softmatch`` (center with Soft-Match),
            ``lcs`` (the Hugging Face pipeline's) or ``nemo`` (NeMo's LCS).
        window_s: L, the longest window in seconds.
        overlap: o (``None``: the policy's default, see :func:`~vad_asr.policies.plan_windows`).
        vad: a detector or a backend name (``silero``, ``webrtc``, ``energy``); used by ``vadoi`` only.
        search_s, min_pause_s: VADOI's Δ (default L/4) and s_min.
        soft_threshold: τ_soft of ``softmatch``.
        show_progress: a bar over the windows.
    """
    started = time.perf_counter()
    source = AudioFile(audio) if isinstance(audio, (str, Path)) else audio
    reader = _Samples(source) if isinstance(source, np.ndarray) else source
    n = reader.num_samples
    found: list[Pause] = []
    vad_s = 0.0
    if policy == "vadoi":
        detector = make_detector(vad) if isinstance(vad, str) else vad  # type: ignore[arg-type]
        vad_started = time.perf_counter()
        speech = detect_speech(reader.samples if isinstance(reader, _Samples) else reader, detector)
        found = pauses(speech, n)
        vad_s = time.perf_counter() - vad_started
    windows = plan_windows(policy, n, TARGET_RATE, window_s=window_s, overlap=overlap, pauses=found,
                           search_s=search_s, min_pause_s=min_pause_s)  # fmt: skip
    join = merger(merge, soft_threshold=soft_threshold)
    words: list[Word] = []
    previous: Window | None = None
    bar = progress(total=len(windows), desc="transcribe", unit="window", disable=not show_progress)
    for window in windows:
        chunk = reader.read(window.start, window.end)
        offset = window.start / TARGET_RATE
        new = [w.shifted(offset) for w in engine.transcribe(chunk, TARGET_RATE)]
        if previous is None or window.seam != "overlap":
            words = concatenate(words, new)
        else:
            # only the previous window's words take part; earlier ones are final
            since = previous.start / TARGET_RATE
            final = [w for w in words if w.start < since]
            recent = words[len(final) :]
            words = final + join(recent, new, first_centre=previous.centre(TARGET_RATE),
                                 second_centre=window.centre(TARGET_RATE),
                                 overlap=(window.start / TARGET_RATE, previous.end / TARGET_RATE))  # fmt: skip
        previous = window
        bar.update(1)
    bar.close()
    wall = time.perf_counter() - started
    audio_s = n / TARGET_RATE
    compute = Compute(audio_s=audio_s, decoded_s=sum(w.length for w in windows) / TARGET_RATE,
                      ratio=compute_ratio(windows, n), engine_calls=len(windows), wall_s=wall, vad_s=vad_s,
                      real_time_factor=wall / max(audio_s, 1e-9))  # fmt: skip
    settings = {"policy": policy, "merge": merge, "window_s": window_s, "overlap": overlap,
                "vad": vad if isinstance(vad, str) else type(vad).__name__, "search_s": search_s,
                "min_pause_s": min_pause_s, "soft_threshold": soft_threshold}  # fmt: skip
    return Transcript(words, windows, compute, settings)
