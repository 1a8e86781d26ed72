"""Merging two hypotheses of a known overlap recovers the original words."""

from __future__ import annotations

from vad_asr.merging import merge_center, merge_lcs_midpoint, merge_lcs_nemo, merger
from vad_asr.words import Word

TEXT = [
    "it",
    "was",
    "the",
    "best",
    "of",
    "times",
    "it",
    "was",
    "the",
    "worst",
    "of",
    "times",
    "it",
    "was",
    "the",
    "age",
    "of",
    "wisdom",
]


def timed(texts: list[str], start: int = 0) -> list[Word]:
    """One word per second from ``start``."""
    return [Word(t, start + k + 0.1, start + k + 0.9) for k, t in enumerate(texts)]


ALL = timed(TEXT)  # 18 words over 18 s
# window A = [0, 12) s, window B = [6, 18) s: both hear words 6..11
A, B = ALL[:12], ALL[6:]
SEAM = {"first_centre": 6.0, "second_centre": 12.0, "overlap": (6.0, 12.0)}


def texts(words: list[Word]) -> list[str]:
    return [w.text for w in words]


def test_every_merge_recovers_the_words_of_a_clean_overlap():
    assert merge_center(A, B, **SEAM) == ALL
    assert texts(merge_lcs_midpoint(A, B)) == TEXT
    assert texts(merge_lcs_nemo(A, B)) == TEXT


def test_errors_at_window_edges_are_taken_from_the_other_window():
    # A mishears its last word (near its edge), B its first: the nearer centre wins each time
    a = [*A[:11], Word("thymes", 11.1, 11.9)]
    b = [Word("wass", 6.1, 6.9), *B[1:]]
    assert texts(merge_center(a, b, **SEAM)) == TEXT


def test_soft_match_pairs_a_near_identical_word_that_exact_matching_duplicates():
    # windows [0, 16) and [8, 24) s (centres 8 and 16). A hears "colour" just before 12 s and a spurious "x";
    # B hears "color" just after 12 s. Exact matching pairs x with color and leaves colour alone: both sides of
    # 12 s emit their word, a duplicate. Soft-Match (sim 5/6 >= 0.75) pairs colour with color: one word.
    a = [Word("colour", 11.7, 12.1), Word("x", 12.2, 12.4), Word("y", 12.8, 13.2)]
    b = [Word("color", 11.9, 12.3), Word("y", 12.8, 13.2)]
    seam = {"first_centre": 8.0, "second_centre": 16.0, "overlap": (8.0, 16.0)}
    assert texts(merge_center(a, b, **seam)) == ["colour", "color", "y"]
    assert texts(merge_center(a, b, **seam, soft_threshold=0.75)) == ["colour", "y"]


def test_an_empty_chunk_keeps_the_other_hypothesis():
    assert merge_center(A, [], **SEAM) == A[:9]  # words nearer B's centre were B's to give
    assert merge_center([], B, **SEAM) == B[3:]
    assert merge_lcs_midpoint(A, []) == A
    assert merge_lcs_nemo([], B) == B


def test_merger_by_name():
    assert merger("softmatch")(A, B, **SEAM) == ALL
    assert texts(merger("lcs")(A, B, **SEAM)) == TEXT
