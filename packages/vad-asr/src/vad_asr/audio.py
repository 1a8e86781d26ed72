"""Reading recordings window by window: mono, resampled to the engine's rate, never loaded whole.

soundfile reads any format libsndfile knows (WAV, FLAC, OGG, ...); scipy's polyphase filter resamples
(``resample_poly(x, up, down)`` with ``up/down`` the reduced rate ratio: 22,050 → 16,000 Hz is ``320/441``). A window
is read with a margin on both sides, resampled and trimmed, so windows agree with resampling the whole file up to the
filter's edge effects at the very start and end of the recording.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from papers_common import InputError

TARGET_RATE = 16_000
MARGIN_S = (
    0.05  # longer than the polyphase filter's half length at every ratio we meet (≈ 10 input samples × down)
)


def resample(samples: np.ndarray, rate: int, target_rate: int = TARGET_RATE) -> np.ndarray:
    """``(n,)`` float samples at ``rate`` → ``(round(n · target/rate),)`` at ``target_rate`` (float32)."""
    if rate == target_rate:
        return samples.astype(np.float32, copy=False)
    g = math.gcd(rate, target_rate)
    return resample_poly(samples, target_rate // g, rate // g).astype(np.float32)


class AudioFile:
    """A recording on disk, read in windows at ``target_rate`` (mono: the channels' mean).

    Args:
        path: an audio file soundfile can read.
        target_rate: the rate windows are returned at (16 kHz for every engine here).

    Raises:
        InputError: the file is missing, unreadable, not audio, or holds no samples.
    """

    def __init__(self, path: str | Path, target_rate: int = TARGET_RATE) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise InputError(f"{self.path}: no such audio file")
        try:
            info = sf.info(str(self.path))
        except (sf.LibsndfileError, RuntimeError, TypeError) as error:
            raise InputError(f"{self.path}: not a readable audio file ({error})") from None
        if info.frames <= 0:
            raise InputError(f"{self.path}: the recording holds no samples")
        self.rate = int(info.samplerate)
        self.channels = int(info.channels)
        self.frames = int(info.frames)
        self.target_rate = target_rate
        self.num_samples = round(self.frames * target_rate / self.rate)

    @property
    def duration(self) -> float:
        """Seconds of audio."""
        return self.frames / self.rate

    def _read_native(self, start: int, stop: int) -> np.ndarray:
        try:
            data, _ = sf.read(str(self.path), start=start, stop=stop, dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError) as error:
            raise InputError(f"{self.path}: cannot read samples {start}..{stop} ({error})") from None
        return data.mean(axis=1)

    def read(self, start: int, end: int) -> np.ndarray:
        """Samples ``[start, end)`` at ``target_rate`` (float32, mono), clipped to the recording."""
        start, end = max(0, start), min(end, self.num_samples)
        if end <= start:
            return np.zeros(0, dtype=np.float32)
        if self.rate == self.target_rate:
            return self._read_native(start, end)
        g = math.gcd(self.rate, self.target_rate)
        up, down = self.target_rate // g, self.rate // g
        margin = math.ceil(MARGIN_S * self.rate)
        # start on a multiple of `down` input samples, so the output grid is the whole file's grid
        native_start = max(0, (start * down // up - margin) // down * down)
        native_stop = min(self.frames, -(-end * down // up) + margin)
        resampled = resample(self._read_native(native_start, native_stop), self.rate, self.target_rate)
        offset = native_start // down * up
        piece = resampled[start - offset : end - offset]
        if len(piece) < end - start:  # rounding at the very end of the file
            piece = np.pad(piece, (0, end - start - len(piece)))
        return piece

    def blocks(self, seconds: float) -> list[tuple[int, int]]:
        """Consecutive ``[start, end)`` sample ranges of about ``seconds`` covering the recording."""
        step = max(1, round(seconds * self.target_rate))
        return [(s, min(s + step, self.num_samples)) for s in range(0, self.num_samples, step)]


def write_audio(path: str | Path, samples: np.ndarray, rate: int) -> None:
    """Write mono float samples as 16-bit PCM WAV."""
    sf.write(str(path), np.clip(samples, -1.0, 1.0), rate, subtype="PCM_16")
