"""The synthetic relation-pattern graph: every held-out triple follows from training triples by its pattern."""

from __future__ import annotations

import pytest
import torch
from house_kge.synthetic import PATTERNS, RELATIONS, pattern_graph

from papers_common import InputError


def as_set(triples: torch.Tensor) -> set[tuple[int, int, int]]:
    return {tuple(row) for row in triples.tolist()}


@pytest.fixture(scope="module")
def graph_and_tests():
    return pattern_graph(40, seed=3)


def test_held_out_triples_are_not_in_training_and_are_implied(graph_and_tests) -> None:
    graph, tests = graph_and_tests
    train = as_set(graph.train)
    rel = {name: i for i, name in enumerate(RELATIONS)}
    assert set(tests) == set(PATTERNS)
    for pattern, triples in tests.items():
        assert triples.shape[0] >= 2
        for h, r, t in triples.tolist():
            assert (h, r, t) not in train
            if pattern == "symmetric":
                assert (t, r, h) in train
            elif pattern == "antisymmetric":
                assert (t, rel["child"], h) in train
                assert (t, r, h) not in train
            elif pattern == "inverse":
                assert (t, rel["above"], h) in train
            else:
                middle = [y for (x, s, y) in train if x == h and s == rel["first"]]
                assert len(middle) == 1
                assert (middle[0], rel["second"], t) in train


def test_valid_and_test_come_from_the_held_out_triples(graph_and_tests) -> None:
    graph, tests = graph_and_tests
    held = as_set(torch.cat(list(tests.values())))
    assert as_set(graph.test) == held
    assert as_set(graph.valid) <= held


def test_the_graph_is_reproducible_from_its_seed() -> None:
    first, _ = pattern_graph(20, seed=1)
    second, _ = pattern_graph(20, seed=1)
    assert torch.equal(first.train, second.train)


@pytest.mark.parametrize(("entities", "held_out"), [(7, 0.2), (6, 0.2), (20, 0.0), (20, 1.0)])
def test_bad_settings_are_rejected(entities: int, held_out: float) -> None:
    with pytest.raises(InputError):
        pattern_graph(entities, held_out=held_out)
