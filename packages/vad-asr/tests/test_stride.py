"""Stride chunking keeps every frame from a window where it has context on both sides, tiling the recording."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from vad_asr.ctc import CTCConfig, CTCEngine, CTCModel, greedy_words, output_frames
from vad_asr.stride import FRAME, transcribe_strided

N = 16_000 * 47 + 123  # 47 s and a bit
TOTAL = int(output_frames(torch.tensor([N]))[0])
rng = np.random.default_rng(0)
TRUE = rng.integers(0, 29, TOTAL)  # the "right" label of every global frame


class EdgeBlindEngine(CTCEngine):
    """Reads its window's offset from a ramp signal; frames within 1.5 s of a window edge inside the recording
    come out wrong (label 5), the rest right."""

    def __init__(self) -> None:
        self.model = CTCModel(CTCConfig(channels=8, blocks=0))
        self.lm = None

    def log_probs(self, samples: np.ndarray) -> np.ndarray:
        start = round(float(samples[0]) * N)
        frames = int(output_frames(torch.tensor([len(samples)]))[0])
        labels = TRUE[start // FRAME : start // FRAME + frames].copy()
        edge = round(1.5 * 16_000 / FRAME)
        if start > 0:
            labels[:edge] = 5
        if start + len(samples) < N:
            labels[-edge:] = 5
        out = np.full((frames, 29), -20.0, dtype=np.float32)
        out[np.arange(frames), labels] = 0.0
        return out


def one_hot(labels: np.ndarray) -> np.ndarray:
    out = np.full((len(labels), 29), -20.0, dtype=np.float32)
    out[np.arange(len(labels)), labels] = 0.0
    return out


@pytest.fixture
def ramp(tmp_path):
    path = tmp_path / "ramp.wav"
    sf.write(path, (np.arange(N) / N).astype(np.float32), 16_000, subtype="FLOAT")
    return path


@pytest.mark.parametrize(("chunk_s", "stride_s"), [(12.0, None), (10.0, 2.0), (20.0, 3.2)])
def test_kept_frames_tile_the_recording_and_drop_the_window_edges(ramp, chunk_s, stride_s):
    result = transcribe_strided(ramp, EdgeBlindEngine(), chunk_s=chunk_s, stride_s=stride_s)
    assert [w.text for w in result.words] == [w.text for w in greedy_words(one_hot(TRUE))]
    chunk, stride = result.windows[0].length, round(result.settings["stride_s"] * 16_000)
    assert result.compute.ratio == pytest.approx(chunk / (chunk - 2 * stride), abs=0.25)
    assert result.windows[-1].end == N


def test_a_stride_of_a_third_is_refused(ramp):
    from papers_common import InputError

    with pytest.raises(InputError, match="below a third"):
        transcribe_strided(ramp, EdgeBlindEngine(), chunk_s=6.0, stride_s=3.0)


def test_a_stride_shorter_than_the_engines_blind_edges_lets_errors_through(ramp):
    result = transcribe_strided(ramp, EdgeBlindEngine(), chunk_s=12.0, stride_s=0.8)
    assert [w.text for w in result.words] != [w.text for w in greedy_words(one_hot(TRUE))]
