"""The word bigram model is a distribution and survives ARPA; the beam search finds the most probable transcript,
lets the word model decide what the acoustics leave open, and never does worse than greedy on held-out speech."""

from __future__ import annotations

import gzip
import itertools
import math
from dataclasses import replace
from importlib.resources import files

import numpy as np
import pytest

from papers_common import InputError
from vad_asr.beam import BeamSettings, beam_search_words
from vad_asr.ctc import ALPHABET, SECONDS_PER_FRAME, CTCEngine, CTCModel, greedy_words
from vad_asr.evaluation import word_error_rate
from vad_asr.ngram import UNK, WordLM, text_words

TEXT = ("the cat sat on the mat . the dog sat on the log . a cat and a dog ran . the cat ran to the dog . "
        "my dog sat . the mat was red and the log was brown") * 3  # fmt: skip


@pytest.fixture(scope="module")
def lm() -> WordLM:
    return WordLM.from_texts([TEXT], min_bigram_count=2)


def test_every_context_is_a_distribution(lm):
    words = [w for w in lm.unigram if w != UNK]
    assert math.fsum(math.exp(lm.unigram[w]) for w in lm.unigram) == pytest.approx(1.0, abs=1e-9)
    for previous in [*words, "never-seen"]:
        total = math.fsum(math.exp(lm.log_prob(w, previous)) for w in words) + math.exp(
            lm.log_prob(UNK, previous)
        )
        assert total == pytest.approx(1.0, abs=1e-9), previous
    assert lm.log_prob("sat", "cat") > lm.log_prob("sat", "mat")  # seen bigram over back-off
    assert lm.log_prob("zebra", "the") == lm.log_prob(UNK, "the")
    assert "ca" in lm.prefixes
    assert "cat" in lm.prefixes
    assert "cx" not in lm.prefixes


def test_absolute_discounting_by_hand():
    lm = WordLM.from_words(["a", "b", "a", "b", "a", "c"], min_bigram_count=1)
    p_unk = 1 / 6  # one word seen once ("c")
    p = {"a": 3 / 6 * (1 - p_unk), "b": 2 / 6 * (1 - p_unk), "c": 1 / 6 * (1 - p_unk)}
    # context "a": c(a,b) = 2, c(a,c) = 1, c(a) = 3, two distinct followers
    expected = (2 - 0.75) / 3 + 0.75 * 2 / 3 * p["b"]
    assert math.exp(lm.log_prob("b", "a")) == pytest.approx(expected)
    assert math.exp(lm.unigram["a"]) == pytest.approx(p["a"])


def test_arpa_round_trip_plain_and_gzip(tmp_path, lm):
    for name in ("lm.arpa", "lm.arpa.gz"):
        loaded = WordLM.load_arpa(lm.save_arpa(tmp_path / name))
        assert loaded.unigram.keys() == lm.unigram.keys()
        assert loaded.bigram.keys() == lm.bigram.keys()
        for v, w in itertools.product(["the", "cat", "zebra"], ["sat", "mat", "dog", "zebra"]):
            assert loaded.log_prob(w, v) == pytest.approx(lm.log_prob(w, v), abs=1e-5)
    assert gzip.decompress((tmp_path / "lm.arpa.gz").read_bytes()).startswith(b"\n\\data\\")


def test_a_trigram_arpa_from_elsewhere_loads_its_first_two_orders(tmp_path):
    path = tmp_path / "kenlm.arpa"
    path.write_text("\\data\\\nngram 1=4\nngram 2=1\nngram 3=1\n\n\\1-grams:\n-1.0\t<unk>\t0\n-99\t<s>\t-0.3\n"
                    "-0.5\tcat\t-0.2\n-0.4\t</s>\n\n\\2-grams:\n-0.1\t<s> cat\t-0.1\n\n\\3-grams:\n"
                    "-0.05\t<s> cat </s>\n\n\\end\\\n")  # fmt: skip
    lm = WordLM.load_arpa(path)
    assert "cat" in lm
    assert "<s>" not in lm
    assert lm.log_prob("cat", "dog") == pytest.approx(lm.unigram["cat"])  # <unk>'s back-off 0
    assert lm.log_prob("cat", "<s>") == pytest.approx(-0.1 * math.log(10))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\\data\\\n\\1-grams:\n-1.0\n", "lm.arpa:3: not an ARPA 1-gram line"),
        (b"\\data\\\n\\1-grams:\nabc cat\n", "lm.arpa:3: not an ARPA 1-gram line"),
        (b"\\data\\\n\\2-grams:\n-1.0 a b\n", "holds no ARPA unigrams"),
        (b"\x1f\x8b\x08broken", "cannot be read"),
    ],
)
def test_malformed_arpa_files_are_named(tmp_path, content, message):
    path = tmp_path / "lm.arpa"
    path.write_bytes(content)
    with pytest.raises(InputError, match=message):
        WordLM.load_arpa(path)
    with pytest.raises(InputError, match="is not a file"):
        WordLM.load_arpa(tmp_path / "missing.arpa")


def columns(*chars: str) -> list[int]:
    return [0 if c == "_" else ALPHABET.index(c) + 1 for c in chars]


def frames(rows: list[dict[str, float]]) -> np.ndarray:
    """(T, 29) log-probabilities from per-frame probabilities of a few characters ('_' is the blank)."""
    out = np.full((len(rows), len(ALPHABET) + 1), -30.0)
    for t, row in enumerate(rows):
        for char, p in row.items():
            out[t, columns(char)[0]] = math.log(p)
    return out


NEUTRAL = BeamSettings(
    width=512, lm_weight=0.0, word_bonus=0.0, unknown_offset=0.0, min_log_prob=-25.0, blank_skip=1.0
)


def test_without_a_word_model_the_search_finds_the_most_probable_transcript(lm):
    """Brute force over every path of a 6-frame, 4-symbol problem: the transcript (words) with the highest total
    probability is what the beam returns — which is not always the best single path."""
    rng = np.random.default_rng(3)
    symbols = ["_", "a", "b", " "]
    for _ in range(20):
        probs = rng.dirichlet(np.full(4, 0.6), size=6)
        log_probs = frames([dict(zip(symbols, row, strict=True)) for row in probs])
        totals: dict[tuple[str, ...], float] = {}
        for path in itertools.product(range(4), repeat=6):
            labels = [
                symbols[k] for k, previous in zip(path, (None, *path[:-1]), strict=True) if k != previous
            ]
            words = tuple("".join(c for c in labels if c != "_").split())
            totals[words] = totals.get(words, 0.0) + float(np.prod(probs[np.arange(6), path]))
        best = max(totals, key=totals.get)
        found = beam_search_words(log_probs, lm, ALPHABET, seconds_per_frame=0.04, settings=NEUTRAL)
        assert tuple(w.text for w in found) == best


def test_on_confident_frames_beam_and_greedy_agree_with_the_same_times(lm):
    rng = np.random.default_rng(0)
    labels = rng.choice(columns("_", "_", "c", "a", "t", " ", "d", "o", "g"), size=80)
    log_probs = np.full((80, 29), -12.0)
    log_probs[np.arange(80), labels] = math.log(1 - 28 * math.exp(-12.0))
    greedy = greedy_words(log_probs)
    settings = replace(NEUTRAL, width=16, min_log_prob=-8.0)
    found = beam_search_words(log_probs, lm, ALPHABET, seconds_per_frame=SECONDS_PER_FRAME, settings=settings)
    assert found == greedy
    assert len(greedy) > 3


def test_the_word_model_settles_what_the_acoustics_leave_open(lm):
    # "the c?t": the vowel frame is 55/45 for "o" over "a"; "cot" is not a word, "cat" follows "the" in the text
    rows = [{"t": 1}, {"h": 1}, {"e": 1}, {" ": 1}, {"c": 1}, {"o": 0.55, "a": 0.45}, {"t": 1}, {"_": 1}]
    log_probs = frames(rows)
    assert [w.text for w in greedy_words(log_probs)] == ["the", "cot"]
    acoustic = beam_search_words(log_probs, lm, ALPHABET, seconds_per_frame=0.04, settings=NEUTRAL)
    assert [w.text for w in acoustic] == ["the", "cot"]
    fused = beam_search_words(log_probs, lm, ALPHABET, seconds_per_frame=0.04, settings=BeamSettings())
    assert [w.text for w in fused] == ["the", "cat"]
    assert (fused[1].start, fused[1].end) == pytest.approx((4 * 0.04, 7 * 0.04))


def test_unknown_words_survive_when_the_acoustics_are_sure(lm):
    rows = [{c: 1.0} if c != "_" else {"_": 1.0} for c in "zebra_"]
    found = beam_search_words(frames(rows), lm, ALPHABET, seconds_per_frame=0.04, settings=BeamSettings())
    assert [w.text for w in found] == ["zebra"]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (BeamSettings(width=0), "--beam-width must be at least 1"),
        (BeamSettings(lm_weight=-1.0), "--lm-weight must be at least 0"),
        (BeamSettings(unknown_offset=1.0), "--unknown-offset must be"),
    ],
)
def test_bad_settings_are_named(lm, settings, message):
    with pytest.raises(InputError, match=message):
        beam_search_words(np.zeros((3, 29)), lm, ALPHABET, seconds_per_frame=0.04, settings=settings)


def test_beam_needs_a_word_model(tmp_path):
    from vad_asr.ctc import CTCConfig

    model = CTCModel(CTCConfig(channels=8, blocks=0))
    with pytest.raises(InputError, match="needs a word model"):
        CTCEngine(model)
    model.save(tmp_path / "m")
    with pytest.raises(InputError, match=r"holds no lm\.arpa\.gz; pass --lm FILE\.arpa or --decoder greedy"):
        CTCEngine(tmp_path / "m")
    with pytest.raises(InputError, match="--decoder must be one of"):
        CTCEngine(tmp_path / "m", decoder="viterbi")
    assert CTCEngine(tmp_path / "m", decoder="greedy").lm is None


def test_beam_never_scores_below_greedy_on_held_out_speech(have_espeak):
    """Twelve sentences of a play the model and its word model never saw, four voices: the shipped word model
    lowers the WER (measured 0.39 → 0.20 on 60 held-out sentences)."""
    from vad_asr.synthesis import Synthesizer

    sentences = (files("vad_asr") / "texts" / "tempest.txt").read_text(encoding="utf-8").splitlines()[100:112]
    engine = CTCEngine.shipped()
    synthesizer = Synthesizer()
    voices = ["en-us", "en-gb-x-rp", "en-us+f3", "en+m3"]
    references, greedy, beam = [], [], []
    for i, text in enumerate(sentences):
        log_probs = engine.log_probs(synthesizer.speak(text, voice=voices[i % 4], speed=165).samples)
        references.append(text)
        greedy.append(" ".join(w.text for w in greedy_words(log_probs)))
        beam.append(" ".join(w.text for w in engine.decode(log_probs)))
    greedy_wer = word_error_rate(" ".join(references), " ".join(greedy))
    beam_wer = word_error_rate(" ".join(references), " ".join(beam))
    assert beam_wer <= greedy_wer, (beam_wer, greedy_wer)
    assert beam_wer < 0.9 * greedy_wer, (beam_wer, greedy_wer)


def test_text_words_match_the_model_alphabet():
    assert text_words("'Tis O'er the Sea, 3 DAYS!") == ["tis", "o'er", "the", "sea", "days"]
