"""The long-form driver with an engine that knows the reference: merges recover it, fixed windows err at seams."""

from __future__ import annotations

import numpy as np
import pytest

from vad_asr.evaluation import word_error_rate
from vad_asr.longform import transcribe_long
from vad_asr.words import Word

RATE = 16_000
N = RATE * 95  # 95 s
_RNG = np.random.default_rng(0)
# distinct random words: Soft-Match must not find neighbours alike (as "word10" and "word11" would be)
REFERENCE = [Word("".join(_RNG.choice(list("abcdefghijklmnopqrstuvwxyz"), 7)), 0.3 + 0.7 * k, 0.8 + 0.7 * k)
             for k in range(134)]  # fmt: skip


class OracleEngine:
    """Reads the chunk's offset from a ramp signal (sample i holds i / N) and returns the reference words whose
    mid-time lies in the chunk; words within ``edge_s`` of a cut (a chunk edge inside the recording) come out
    wrong, as a real engine's do."""

    def __init__(self, edge_s: float = 0.0) -> None:
        self.edge_s = edge_s

    def transcribe(self, samples: np.ndarray, sample_rate: int) -> list[Word]:
        start = round(float(samples[0]) * N) / sample_rate
        end = start + len(samples) / sample_rate
        words = []
        for w in REFERENCE:
            if start <= w.mid < end:
                garbled = (start > 0 and w.mid - start < self.edge_s) or (
                    end < N / RATE and end - w.mid < self.edge_s
                )
                words.append(Word("xxx" if garbled else w.text, w.start - start, w.end - start))
        return words


RAMP = (np.arange(N, dtype=np.float64) / N).astype(np.float32)


@pytest.mark.parametrize("policy", ["fixed", "overlap", "partial"])
@pytest.mark.parametrize("merge", ["center", "softmatch", "lcs", "nemo"])
def test_a_perfect_engine_gives_the_reference_under_every_policy_and_merge(policy, merge):
    result = transcribe_long(RAMP, OracleEngine(), policy=policy, merge=merge, window_s=10.0)
    assert [w.text for w in result.words] == [w.text for w in REFERENCE]
    assert result.compute.engine_calls == len(result.windows)
    assert result.compute.audio_s == pytest.approx(95.0)


def test_overlap_and_center_merge_remove_the_errors_fixed_windows_make_at_seams():
    engine = OracleEngine(edge_s=1.0)
    fixed = transcribe_long(RAMP, engine, policy="fixed", window_s=10.0)
    overlap = transcribe_long(RAMP, engine, policy="overlap", merge="center", window_s=10.0)
    assert word_error_rate(REFERENCE, fixed.words) > 0.15  # ~3 of every 14 words sit within 1 s of a cut
    assert word_error_rate(REFERENCE, overlap.words) == 0.0  # each seam word is central in the other window
    assert fixed.compute.ratio == pytest.approx(1.0)
    assert overlap.compute.ratio == pytest.approx(1.9, abs=0.1)
