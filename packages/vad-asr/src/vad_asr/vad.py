"""Voice activity detection: where the speech is, and so where VADOI may cut (VADOI §3).

Three backends behind one interface, each run block by block over a recording so that an hour is never in memory:

- ``energy``: frames of 20 ms above a level in dBFS; no dependency, fit for clean recordings;
- ``silero``: silero-vad's neural detector (its weights ship in its wheel; threshold 0.5);
- ``webrtc``: Google's WebRTC GMM detector (the ``webrtcvad-wheels`` distribution), aggressiveness 0–3.

A detector returns speech segments in samples; :func:`pauses` turns them into the gaps VADOI looks at.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np

from papers_common import InputError
from vad_asr.audio import TARGET_RATE, AudioFile
from vad_asr.policies import Pause

Backend = Literal["energy", "silero", "webrtc"]
BACKENDS: tuple[Backend, ...] = ("energy", "silero", "webrtc")
BLOCK_S = 60.0


@dataclass(frozen=True)
class Speech:
    """A speech segment ``[start, end)`` in samples."""

    start: int
    end: int


class VoiceDetector(Protocol):
    """Anything that finds speech in a mono 16 kHz block: ``(n,)`` float32 → segments in block samples."""

    def speech(self, samples: np.ndarray, sample_rate: int) -> list[Speech]: ...


def _segments(flags: np.ndarray, frame: int) -> list[Speech]:
    """Runs of True frame flags as sample segments (frames of ``frame`` samples)."""
    padded = np.concatenate([[False], flags, [False]])
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    return [Speech(int(a) * frame, int(b) * frame) for a, b in zip(edges[::2], edges[1::2], strict=True)]


@dataclass
class EnergyDetector:
    """Speech where the 20 ms frame level is at least ``threshold_db`` dBFS (a full-scale sine is −3 dBFS)."""

    threshold_db: float = -40.0
    frame_s: float = 0.02

    def speech(self, samples: np.ndarray, sample_rate: int) -> list[Speech]:
        frame = max(1, round(self.frame_s * sample_rate))
        count = len(samples) // frame
        if count == 0:
            return []
        frames = samples[: count * frame].astype(np.float64).reshape(count, frame)
        level = 10.0 * np.log10(np.mean(frames**2, axis=1) + 1e-12)
        return _segments(level >= self.threshold_db, frame)


@dataclass
class SileroDetector:
    """silero-vad (``get_speech_timestamps``) at speech probability ``threshold``."""

    threshold: float = 0.5
    min_silence_ms: int = 100

    def __post_init__(self) -> None:
        import warnings

        from silero_vad import load_silero_vad

        with warnings.catch_warnings():  # silero-vad's loader uses APIs its dependencies deprecate
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)
            self._model = load_silero_vad()

    def speech(self, samples: np.ndarray, sample_rate: int) -> list[Speech]:
        import torch
        from silero_vad import get_speech_timestamps

        found = get_speech_timestamps(torch.from_numpy(np.ascontiguousarray(samples)), self._model,
                                      threshold=self.threshold, sampling_rate=sample_rate,
                                      min_silence_duration_ms=self.min_silence_ms, speech_pad_ms=0)  # fmt: skip
        return [Speech(int(s["start"]), int(s["end"])) for s in found]


@dataclass
class WebRTCDetector:
    """WebRTC's detector on 30 ms frames at ``aggressiveness`` 0 (least) to 3 (most eager to call silence)."""

    aggressiveness: int = 2
    frame_ms: int = 30

    def __post_init__(self) -> None:
        import webrtcvad

        if self.aggressiveness not in (0, 1, 2, 3):
            raise InputError(f"the WebRTC aggressiveness must be 0, 1, 2 or 3, got {self.aggressiveness}")
        self._vad = webrtcvad.Vad(self.aggressiveness)

    def speech(self, samples: np.ndarray, sample_rate: int) -> list[Speech]:
        frame = sample_rate * self.frame_ms // 1000
        count = len(samples) // frame
        pcm = (np.clip(samples[: count * frame], -1.0, 1.0) * 32767).astype("<i2")
        flags = np.array([self._vad.is_speech(pcm[k * frame : (k + 1) * frame].tobytes(), sample_rate)
                          for k in range(count)], dtype=bool)  # fmt: skip
        return _segments(flags, frame)


def make_detector(backend: Backend, **options: float) -> VoiceDetector:
    """A detector by name (``energy``, ``silero``, ``webrtc``) with its keyword options."""
    if backend == "energy":
        return EnergyDetector(**options)
    if backend == "silero":
        return SileroDetector(**options)  # type: ignore[arg-type]
    if backend == "webrtc":
        return WebRTCDetector(**options)  # type: ignore[arg-type]
    raise InputError(f"VAD must be one of {', '.join(BACKENDS)}, got {backend!r}")


def join_segments(segments: Sequence[Speech], *, min_gap: int = 0) -> list[Speech]:
    """Sorted segments with those closer than ``min_gap`` samples (or touching) joined into one."""
    joined: list[Speech] = []
    for segment in sorted(segments, key=lambda s: s.start):
        if joined and segment.start - joined[-1].end <= min_gap:
            joined[-1] = Speech(joined[-1].start, max(joined[-1].end, segment.end))
        else:
            joined.append(segment)
    return joined


def detect_speech(
    audio: AudioFile | np.ndarray, detector: VoiceDetector, *, block_s: float = BLOCK_S
) -> list[Speech]:
    """Speech segments (samples at 16 kHz) of a whole recording, detected block by block.

    Segments that touch a block boundary are joined with their continuation in the next block.
    """
    if isinstance(audio, np.ndarray):
        step = max(1, round(block_s * TARGET_RATE))
        ranges = [(s, min(s + step, len(audio))) for s in range(0, len(audio), step)]
        read = lambda a, b: audio[a:b]  # noqa: E731
    else:
        ranges, read = audio.blocks(block_s), audio.read
    found: list[Speech] = []
    for start, end in ranges:
        found += [
            Speech(s.start + start, s.end + start) for s in detector.speech(read(start, end), TARGET_RATE)
        ]
    return join_segments(found)


def pauses(speech: Sequence[Speech], num_samples: int) -> list[Pause]:
    """The gaps of ``[0, num_samples)`` without speech, in order (leading and trailing silence included)."""
    gaps, cursor = [], 0
    for segment in join_segments(speech):
        if segment.start > cursor:
            gaps.append(Pause(cursor, segment.start))
        cursor = max(cursor, segment.end)
    if cursor < num_samples:
        gaps.append(Pause(cursor, num_samples))
    return gaps
