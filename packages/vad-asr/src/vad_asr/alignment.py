"""Word alignment of two hypotheses by weighted Levenshtein distance, with VADOI's Soft-Match (VADOI §3).

Insertion and deletion cost 1; a substitution costs 0 when the two words match and 1 otherwise. Words match when
their normalised forms are equal or, with Soft-Match, when their character similarity

    sim(w₁, w₂) = 1 − lev_char(w₁, w₂) / max(|w₁|, |w₂|)

reaches the threshold τ_soft (0.75 by default). The dynamic programme runs one vectorised NumPy pass per row: with
``t[j] = min(D[i−1, j] + 1, D[i−1, j−1] + c[i, j])`` the row is ``D[i, j] = min_k≤j (t[k] + j − k)``, a running
minimum of ``t[k] − k``. The pairwise similarities come from rapidfuzz's ``cdist`` in C.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from rapidfuzz.distance import Levenshtein
from rapidfuzz.process import cdist

from vad_asr.words import normalize_word

SOFT_THRESHOLD = 0.75
Column = tuple[int | None, int | None]
"""One alignment column: ``(i, j)`` a pair, ``(i, None)`` a word of the first hypothesis alone (deletion),
``(None, j)`` one of the second alone (insertion)."""


def word_similarity(first: Sequence[str], second: Sequence[str]) -> np.ndarray:
    """``(len(first), len(second))`` similarities ``1 − lev_char / max length`` of the normalised words.

    Two empty words are identical (1.0).
    """
    a = [normalize_word(w) for w in first]
    b = [normalize_word(w) for w in second]
    if not a or not b:
        return np.zeros((len(a), len(b)))
    return cdist(a, b, scorer=Levenshtein.normalized_similarity, dtype=np.float64)


def substitution_costs(
    first: Sequence[str], second: Sequence[str], soft_threshold: float | None = None
) -> np.ndarray:
    """``(n, m)`` 0/1 substitution costs: 0 where the words match (exactly, or by Soft-Match at ``soft_threshold``)."""
    if soft_threshold is None:
        a = [normalize_word(w) for w in first]
        b = [normalize_word(w) for w in second]
        return np.array([[0.0 if x == y else 1.0 for y in b] for x in a]).reshape(len(a), len(b))
    if not 0.0 < soft_threshold <= 1.0:
        raise ValueError(f"the Soft-Match threshold must lie in (0, 1], got {soft_threshold}")
    return np.where(word_similarity(first, second) >= soft_threshold - 1e-12, 0.0, 1.0)


def edit_table(costs: np.ndarray) -> np.ndarray:
    """The ``(n + 1, m + 1)`` table D of minimal edit costs of prefixes, for ``(n, m)`` substitution costs."""
    n, m = costs.shape
    table = np.empty((n + 1, m + 1))
    table[0] = np.arange(m + 1)
    offsets = np.arange(m + 1)
    for i in range(1, n + 1):
        t = np.empty(m + 1)
        t[0] = i
        t[1:] = np.minimum(table[i - 1, 1:] + 1.0, table[i - 1, :-1] + costs[i - 1])
        table[i] = np.minimum.accumulate(t - offsets) + offsets
    return table


def align(
    first: Sequence[str], second: Sequence[str], *, soft_threshold: float | None = None
) -> list[Column]:
    """A minimal-cost alignment of two word sequences, as columns in order.

    The backtrace prefers the diagonal move (a pair) on ties, then a deletion, then an insertion.

    Args:
        first, second: the words (compared after :func:`~vad_asr.words.normalize_word`).
        soft_threshold: τ_soft for Soft-Match; ``None``: exact matching only.
    """
    costs = substitution_costs(first, second, soft_threshold)
    table = edit_table(costs)
    columns: list[Column] = []
    i, j = len(first), len(second)
    while i > 0 or j > 0:
        if i > 0 and j > 0 and table[i, j] == table[i - 1, j - 1] + costs[i - 1, j - 1]:
            columns.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        elif i > 0 and table[i, j] == table[i - 1, j] + 1.0:
            columns.append((i - 1, None))
            i -= 1
        else:
            columns.append((None, j - 1))
            j -= 1
    columns.reverse()
    return columns


def alignment_cost(columns: Sequence[Column], costs: np.ndarray) -> float:
    """The total cost of an alignment under ``costs`` (pairs cost their substitution, gaps 1)."""
    return float(sum(1.0 if i is None or j is None else costs[i, j] for i, j in columns))
