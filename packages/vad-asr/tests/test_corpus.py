"""Synthetic and LibriSpeech-style corpora, and their evaluation by every policy."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import soundfile as sf
from test_engines import tiny_ctc  # noqa: F401  (fixture)

from papers_common import InputError
from vad_asr import synthesis
from vad_asr.audio import AudioFile
from vad_asr.corpus import (
    SynthesisSettings,
    build_librispeech,
    load_corpus,
    synthesize_corpus,
    text_sentences,
)
from vad_asr.engines import make_engine
from vad_asr.evaluation import evaluate_corpus, word_error_rate

pytestmark = pytest.mark.usefixtures("have_espeak")

TEXT = """It was the best of times, it was the worst of times. It was the age of wisdom, it was the age of
foolishness. There were 12 jurors. It was the epoch of belief, it was the epoch of incredulity. It was the season
of Light, it was the season of Darkness. We had everything before us, we had nothing before us. Yes."""


def test_sentences_a_synthesiser_reads_as_written():
    found = text_sentences([TEXT])
    assert "There were 12 jurors." not in found  # digits would be spoken as words the reference lacks
    assert "Yes." not in found  # too short
    assert found[0] == "It was the best of times, it was the worst of times."


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus")
    synthesize_corpus(text_sentences([TEXT]), out, SynthesisSettings(minutes=2.0, noise_db=-60.0, seed=1))
    return out


def test_a_synthetic_recording_has_exact_segments_and_ordered_word_times(corpus):
    [(audio_path, recording)] = load_corpus(corpus)
    audio = AudioFile(audio_path)
    assert audio.rate == 16_000
    assert recording.duration_s == pytest.approx(audio.duration)
    assert recording.duration_s >= 120.0
    segments = recording.segments
    assert {s["voice"] for s in segments} > {segments[0]["voice"]}  # voices vary
    gaps = [b["start"] - a["end"] for a, b in itertools.pairwise(segments)]
    assert min(gaps) < 0.3 <= max(gaps) <= 1.5 + 1e-6  # short pauses force VADOI's overlap fallback
    assert " ".join(s["text"] for s in segments).split() == [w.text for w in recording.words]
    starts = [w.start for w in recording.words]
    assert starts == sorted(starts)
    for segment in segments:  # every word lies in its sentence
        inside = [w for w in recording.words if segment["start"] - 1e-6 <= w.start < segment["end"]]
        assert [w.text for w in inside] == segment["text"].split()
    samples = audio.read(0, audio.num_samples)
    gap = segments[0]["end"] + 0.02, segments[1]["start"] - 0.02
    quiet = samples[int(gap[0] * 16_000) : int(gap[1] * 16_000)]
    assert len(quiet) == 0 or np.sqrt(np.mean(quiet**2)) < 3e-3  # pauses hold only the -60 dBFS noise


@pytest.mark.parametrize("policy", ["fixed", "overlap", "partial", "vadoi"])
def test_every_policy_gives_a_wer_on_a_two_minute_recording(corpus, tiny_ctc, policy):  # noqa: F811
    engine = make_engine("hf", model=tiny_ctc)
    result = evaluate_corpus(corpus, engine, policy=policy, merge="softmatch", window_s=10.0, vad="energy")
    assert result.wer > 0.0
    assert np.isfinite(result.wer)
    assert result.engine_calls >= 12
    expected = {"fixed": (1.0, 1.0), "overlap": (1.85, 2.0), "partial": (1.25, 1.4), "vadoi": (1.0, 2.0)}[
        policy
    ]
    assert expected[0] - 1e-6 <= result.compute_ratio <= expected[1] + 1e-6
    assert result.recordings[0]["recording"] == "recording000.wav"


def test_vadoi_cuts_at_the_synthetic_pauses(corpus):
    from vad_asr.longform import transcribe_long

    class Silent:
        def transcribe(self, samples, sample_rate):
            return []

    [(audio_path, _recording)] = load_corpus(corpus)
    result = transcribe_long(audio_path, Silent(), policy="vadoi", window_s=10.0, vad="energy")
    clean = [w for w in result.windows if w.seam == "clean"]
    assert clean, "some windows end at a pause"
    audio = AudioFile(audio_path)
    for window in clean:  # each clean cut lies in silence (between sentences, or at a comma's pause)
        around = audio.read(window.start - 800, window.start + 800)  # ±0.05 s
        assert np.sqrt(np.mean(around**2)) < 0.01, window.start / 16_000  # below -40 dBFS; speech is ~-20
    assert result.compute.ratio < 1.9


def test_librispeech_chapters_are_joined_in_order(tmp_path):
    chapter = tmp_path / "test-clean" / "84" / "121123"
    chapter.mkdir(parents=True)
    lines = []
    for k, text in enumerate(["HELLO THERE", "GENERAL KENOBI YOU ARE A BOLD ONE"]):
        sf.write(chapter / f"84-121123-{k:04d}.flac", np.zeros(16_000 * (k + 1), dtype=np.float32), 16_000)
        lines.append(f"84-121123-{k:04d} {text}")
    (chapter / "84-121123.trans.txt").write_text("\n".join(lines) + "\n")
    [reference] = build_librispeech(tmp_path / "test-clean", tmp_path / "out")
    data = json.loads(reference.read_text())
    assert data["duration_s"] == pytest.approx(3.0)
    assert [(s["start"], s["end"]) for s in data["segments"]] == [(0.0, 1.0), (1.0, 3.0)]
    assert (
        word_error_rate(
            "hello there general kenobi you are a bold one", " ".join(w["text"] for w in data["words"])
        )
        == 0.0
    )
    with pytest.raises(InputError, match="no SPEAKER/CHAPTER"):
        build_librispeech(tmp_path / "out", tmp_path / "x")


def test_a_missing_espeak_ng_says_how_to_install_it(monkeypatch):
    monkeypatch.setattr(synthesis.Synthesizer, "_library", None)
    monkeypatch.setattr(synthesis.ctypes.util, "find_library", lambda name: None)
    with pytest.raises(InputError, match="apt-get install espeak-ng"):
        synthesis.Synthesizer()


def test_seam_errors_count_only_the_words_near_a_seam():
    from vad_asr.evaluation import seam_errors, seam_times
    from vad_asr.policies import Window
    from vad_asr.words import Word

    reference = [
        Word(t, float(k), k + 0.5)
        for k, t in enumerate(["one", "two", "three", "four", "five", "six", "seven", "eight"])
    ]
    windows = [Window(0, 16_000 * 4, "start"), Window(16_000 * 3, 16_000 * 8, "overlap")]
    assert seam_times(windows) == [3.5]  # the middle of the shared second
    assert seam_times([Window(0, 16_000 * 4, "start"), Window(16_000 * 4, 16_000 * 8, "clean")]) == [4.0]
    # "four" (mid 3.25) and "five" (4.25) lie within 1 s of 3.5; "three" (2.25) does not
    assert seam_errors(reference, "one two three four five six seven eight", [3.5]) == (0, 2)
    assert seam_errors(reference, "one two tree for five six seven ate", [3.5]) == (
        1,
        2,
    )  # only "for" is near
    assert seam_errors(reference, "one two three four four five six seven eight", [3.5]) == (1, 2)  # inserted
    assert seam_errors(reference, "one two three six seven eight", [3.5]) == (2, 2)  # both deleted
    assert seam_errors(reference, "one two three six seven eight", [0.5]) == (0, 2)
