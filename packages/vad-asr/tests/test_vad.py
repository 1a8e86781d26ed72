"""Each VAD finds the pauses of a tone–silence signal; audio windows are read mono, resampled, in bounds."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import espeak

from papers_common import InputError
from vad_asr.audio import AudioFile, resample, write_audio
from vad_asr.vad import detect_speech, make_detector, pauses

RATE = 16_000
# speech-like bursts (seconds) separated by silences of 0.7 s, 1.0 s and 0.7 s
BURSTS = [(0.5, 2.0), (2.7, 4.0), (5.0, 6.3), (7.0, 8.0)]
LENGTH_S = 8.5


def voiced(rate: int = RATE, seed: int = 0) -> np.ndarray:
    """Harmonic bursts with a 4 Hz syllable envelope (what speech detectors respond to), silence elsewhere."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(LENGTH_S * rate)) / rate
    signal = np.zeros_like(t)
    for a, b in BURSTS:
        inside = (t >= a) & (t < b)
        tt = t[inside] - a
        pitch = 140 + 20 * np.sin(2 * np.pi * 0.7 * tt)
        phase = 2 * np.pi * np.cumsum(pitch) / rate
        voice = sum(np.sin(k * phase) / k for k in range(1, 12))
        signal[inside] = 0.3 * voice * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * tt) ** 2)
    return (signal + 1e-4 * rng.standard_normal(len(t))).astype(np.float32)


def spoken() -> np.ndarray:
    """espeak-ng speech in every burst (silero-vad is trained on speech and ignores pure tones)."""
    t = np.zeros(int(LENGTH_S * RATE), dtype=np.float32)
    for k, (a, b) in enumerate(BURSTS):
        voice = np.trim_zeros(espeak(f"number {k} is a fine one to say aloud", speed=170))[
            : int((b - a) * RATE)
        ]
        t[int(a * RATE) : int(a * RATE) + len(voice)] = voice
    return t


@pytest.mark.parametrize(("backend", "signal"), [("energy", voiced), ("webrtc", voiced), ("silero", spoken)])
def test_each_vad_finds_the_pauses(backend, signal):
    samples = signal()
    found = pauses(detect_speech(samples, make_detector(backend), block_s=3.0), len(samples))
    inner = [(p.start / RATE, p.end / RATE) for p in found if p.length >= 0.3 * RATE and p.start > 0]
    inner = [p for p in inner if p[1] < LENGTH_S - 0.01]
    expected = [(2.0, 2.7), (4.0, 5.0), (6.3, 7.0)]
    assert len(inner) == len(expected), inner
    for (a, b), (x, y) in zip(inner, expected, strict=True):
        assert abs((a + b) / 2 - (x + y) / 2) < 0.12  # midpoints, where VADOI cuts


def test_resampling_keeps_duration_and_windows_match_the_whole_file(tmp_path):
    rate = 22_050
    t = np.arange(rate * 3) / rate
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    whole = resample(tone, rate)
    assert len(whole) == 48_000  # 22,050 -> 16,000 is 320/441: duration kept
    path = tmp_path / "tone.wav"
    stereo = np.stack([tone, tone], axis=1)
    import soundfile as sf

    sf.write(path, stereo, rate, subtype="FLOAT")
    audio = AudioFile(path)
    assert (audio.channels, audio.num_samples) == (2, 48_000)
    window = audio.read(10_000, 26_000)
    np.testing.assert_allclose(window, whole[10_000:26_000], atol=2e-3)
    assert len(audio.read(47_000, 60_000)) == 1_000


@pytest.mark.parametrize("rate", [8_000, 48_000])
def test_other_rates_are_resampled_to_16k(tmp_path, rate):
    path = tmp_path / "x.wav"
    write_audio(path, np.zeros(rate * 2, dtype=np.float32), rate)
    audio = AudioFile(path)
    assert audio.num_samples == 32_000
    assert len(audio.read(0, 32_000)) == 32_000


def test_bad_files_are_named(tmp_path):
    with pytest.raises(InputError, match="no such audio file"):
        AudioFile(tmp_path / "missing.wav")
    text = tmp_path / "notes.wav"
    text.write_text("not audio")
    with pytest.raises(InputError, match=r"notes\.wav: not a readable audio file"):
        AudioFile(text)
    empty = tmp_path / "empty.wav"
    write_audio(empty, np.zeros(0, dtype=np.float32), RATE)
    with pytest.raises(InputError, match=r"empty\.wav: the recording holds no samples"):
        AudioFile(empty)
