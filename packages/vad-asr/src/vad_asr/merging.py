"""Joining the hypotheses of consecutive windows into one transcript.

- :func:`merge_center` (VADOI §3 seam merge; ``soft_threshold`` turns on Soft-Match): align the words near the
  shared audio by weighted Levenshtein distance and keep, column by column, the word of the window whose centre is
  nearer — a window's edges are where an engine errs (cut words, missing context).
- :func:`merge_lcs_midpoint`: the Hugging Face ASR pipeline's seq2seq rule (slide the new words over the previous
  ones, take the offset with the highest match rate, cut both at the middle of the matched stretch); an anchor.
- :func:`merge_lcs_nemo`: NeMo's buffered-inference LCS rule (the longest common run of the previous tail and the
  new words; drop the new words up to its end, and do not cut at all when the run is at most one word); an anchor.
- :func:`concatenate`: clean seams (no shared audio) simply join.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

from papers_common import InputError
from vad_asr.alignment import SOFT_THRESHOLD, align
from vad_asr.words import Word, normalize_word

Merge = Literal["center", "softmatch", "lcs", "nemo"]
MERGES: tuple[Merge, ...] = ("center", "softmatch", "lcs", "nemo")
CONTEXT_S = 0.5
"""Seconds beyond the shared audio within which words take part in the alignment (VADOI §3)."""


def concatenate(first: Sequence[Word], second: Sequence[Word]) -> list[Word]:
    """The words of two windows that share no audio, in order."""
    return [*first, *second]


def merge_center(
    first: Sequence[Word],
    second: Sequence[Word],
    *,
    first_centre: float,
    second_centre: float,
    overlap: tuple[float, float],
    soft_threshold: float | None = None,
) -> list[Word]:
    """The seam merge of two overlapping windows' words (VADOI §3, our definition).

    With the shared audio ``[a, b)``, the words of ``first`` ending after ``a − 0.5 s`` and those of ``second``
    starting before ``b + 0.5 s`` are aligned (:func:`~vad_asr.alignment.align`). A pair column at time τ (the mean
    of its words' mid-times) emits the word of the window whose centre is nearer τ; a word alone in its column is
    emitted only when its own window is the nearer one. Words outside the compared stretch are kept as they are.

    Args:
        first, second: words (recording times) of the earlier and the later window, in time order.
        first_centre, second_centre: the windows' centres c_A < c_B in seconds.
        overlap: ``(a, b)`` the shared audio in seconds.
        soft_threshold: Soft-Match's τ_soft; ``None``: words match only when equal.
    """
    a, b = overlap
    head = [w for w in first if w.end <= a - CONTEXT_S]
    left = [w for w in first if w.end > a - CONTEXT_S]
    right = [w for w in second if w.start < b + CONTEXT_S]
    tail = [w for w in second if w.start >= b + CONTEXT_S]

    def nearer_first(tau: float) -> bool:
        return abs(tau - first_centre) <= abs(tau - second_centre)

    middle: list[Word] = []
    for i, j in align([w.text for w in left], [w.text for w in right], soft_threshold=soft_threshold):
        if i is not None and j is not None:
            tau = 0.5 * (left[i].mid + right[j].mid)
            middle.append(left[i] if nearer_first(tau) else right[j])
        elif i is not None:
            if nearer_first(left[i].mid):
                middle.append(left[i])
        elif j is not None and not nearer_first(right[j].mid):
            middle.append(right[j])
    return [*head, *middle, *tail]


def merge_lcs_midpoint(first: Sequence[Word], second: Sequence[Word]) -> list[Word]:
    """The Hugging Face pipeline's seq2seq chunk merge, on words.

    Every offset at which the start of ``second`` lies over the end of ``first`` is scored by the fraction of
    positions whose words are equal (plus ``offset / 10000``, favouring longer matches); offsets with at most one
    equal word are not considered. At the best offset both sequences are cut at the middle of the overlapping
    stretch: the earlier words come from ``first``, the later from ``second``. Without an acceptable offset the
    two are joined.
    """
    x = [normalize_word(w.text) for w in first]
    y = [normalize_word(w.text) for w in second]
    n, m = len(x), len(y)
    best, cut = 0.0, None
    for i in range(1, n + m):
        left_start, left_stop = max(0, n - i), min(n, n + m - i)
        right_start, right_stop = max(0, i - n), min(m, i)
        matches = sum(p == q for p, q in zip(x[left_start:left_stop], y[right_start:right_stop], strict=True))
        score = matches / i + i / 10000.0
        if matches > 1 and score > best:
            best = score
            cut = ((left_start + left_stop) // 2, (right_start + right_stop) // 2)
    if cut is None:
        return concatenate(first, second)
    return [*first[: cut[0]], *second[cut[1] :]]


def merge_lcs_nemo(first: Sequence[Word], second: Sequence[Word]) -> list[Word]:
    """NeMo-style LCS merge: the longest common contiguous run of ``first`` and ``second`` (normalised words).

    When the run is longer than one word, the words of ``second`` up to the end of the run are dropped (the run is
    kept from ``first``); otherwise the two are joined as they are. Among equally long runs the latest in ``first``
    is taken. (NeMo's token-level version also tolerates one skipped token per row; this one matches exactly.)
    """
    x = [normalize_word(w.text) for w in first]
    y = [normalize_word(w.text) for w in second]
    longest, end_j = 0, 0
    run = [0] * (len(y) + 1)
    for i in range(len(x)):
        previous = 0
        for j in range(len(y)):
            current = run[j + 1]
            run[j + 1] = previous + 1 if x[i] == y[j] else 0
            if run[j + 1] >= longest and run[j + 1] > 0:
                longest, end_j = run[j + 1], j + 1
            previous = current
    if longest <= 1:
        return concatenate(first, second)
    return [*first, *second[end_j:]]


def merger(name: Merge, *, soft_threshold: float = SOFT_THRESHOLD) -> Callable[..., list[Word]]:
    """A seam merge by name, called as ``merge(first, second, first_centre=, second_centre=, overlap=)``."""
    if name not in MERGES:
        raise InputError(f"merge must be one of {', '.join(MERGES)}, got {name!r}")

    def merge(
        first: Sequence[Word],
        second: Sequence[Word],
        *,
        first_centre: float,
        second_centre: float,
        overlap: tuple[float, float],
    ) -> list[Word]:
        if name == "lcs":
            return merge_lcs_midpoint(first, second)
        if name == "nemo":
            return merge_lcs_nemo(first, second)
        return merge_center(
            first, second, first_centre=first_centre, second_centre=second_centre, overlap=overlap,
            soft_threshold=soft_threshold if name == "softmatch" else None,
        )  # fmt: skip

    return merge
