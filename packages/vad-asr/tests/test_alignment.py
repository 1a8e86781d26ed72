"""Edit-distance alignment equals a brute-force reference; Soft-Match matches near-identical words."""

from __future__ import annotations

import random

import numpy as np
import pytest

from vad_asr.alignment import align, alignment_cost, edit_table, substitution_costs, word_similarity


def reference_table(costs: np.ndarray) -> np.ndarray:
    """The textbook O(n·m) recurrence."""
    n, m = costs.shape
    table = np.zeros((n + 1, m + 1))
    table[:, 0] = np.arange(n + 1)
    table[0, :] = np.arange(m + 1)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            table[i, j] = min(
                table[i - 1, j] + 1, table[i, j - 1] + 1, table[i - 1, j - 1] + costs[i - 1, j - 1]
            )
    return table


def test_vectorised_table_equals_the_reference_on_random_sequences():
    rng = random.Random(0)
    vocabulary = ["a", "b", "c", "d"]
    for _ in range(200):
        first = rng.choices(vocabulary, k=rng.randint(0, 9))
        second = rng.choices(vocabulary, k=rng.randint(0, 9))
        costs = substitution_costs(first, second)
        table = edit_table(costs)
        np.testing.assert_array_equal(table, reference_table(costs))
        columns = align(first, second)
        # the backtrace is a valid alignment of minimal cost that uses every word once, in order
        assert alignment_cost(columns, costs) == table[-1, -1]
        assert [i for i, _ in columns if i is not None] == list(range(len(first)))
        assert [j for _, j in columns if j is not None] == list(range(len(second)))


def test_ties_prefer_the_diagonal():
    assert align(["a", "b"], ["c", "d"]) == [(0, 0), (1, 1)]


def test_soft_match_pairs_near_identical_words_only_above_the_threshold():
    assert word_similarity(["colour"], ["color"])[0, 0] == pytest.approx(1 - 1 / 6)
    first, second = ["the", "colour", "red"], ["the", "color", "red"]
    exact = substitution_costs(first, second)
    soft = substitution_costs(first, second, soft_threshold=0.75)
    assert exact[1, 1] == 1.0
    assert soft[1, 1] == 0.0
    assert substitution_costs(["cat"], ["cut"], soft_threshold=0.75)[0, 0] == 1.0  # sim 2/3 < 0.75
    assert substitution_costs(["Hello,"], ["hello"])[0, 0] == 0.0  # normalised before comparing
