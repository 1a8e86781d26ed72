"""The true-answer index and uniform negative sampling, against brute-force Python sets."""

from __future__ import annotations

from collections import defaultdict

import pytest
import torch
from house_kge import AnswerIndex, sample_negatives

E, R = 13, 4


def random_triples(count: int = 70, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    triples = torch.stack(
        [
            torch.randint(E, (count,), generator=generator),
            torch.randint(R, (count,), generator=generator),
            torch.randint(E, (count,), generator=generator),
        ],
        dim=1,
    )
    return torch.cat([triples, triples[:5]])  # duplicates must not matter


def brute_force_answers(triples: torch.Tensor) -> dict[str, dict[tuple[int, int], set[int]]]:
    answers: dict[str, dict[tuple[int, int], set[int]]] = {"tail": defaultdict(set), "head": defaultdict(set)}
    for h, r, t in triples.tolist():
        answers["tail"][(h, r)].add(t)
        answers["head"][(t, r)].add(h)
    return answers


@pytest.mark.parametrize("direction", ["tail", "head"])
def test_contains_matches_python_sets(direction: str) -> None:
    triples = random_triples()
    index = AnswerIndex(triples, E, R)
    truth = brute_force_answers(triples)[direction]
    known, relations = torch.meshgrid(torch.arange(E), torch.arange(R), indexing="ij")
    known, relations = known.reshape(-1), relations.reshape(-1)
    candidates = torch.arange(E).expand(len(known), -1)
    contained = index.contains(known, relations, candidates, direction)
    assert contained.shape == (E * R, E)
    expected = torch.tensor(
        [
            [c in truth.get((q, r), set()) for c in range(E)]
            for q, r in zip(known.tolist(), relations.tolist(), strict=True)
        ]
    )
    assert torch.equal(contained, expected)
    assert expected.any()  # the graph is not empty in this direction


def test_contains_on_the_largest_key() -> None:
    """The last possible key (E − 1, R − 1, E − 1) and keys beyond every stored key."""
    index = AnswerIndex(torch.tensor([[E - 1, R - 1, E - 1], [0, 0, 1]]), E, R)
    known = torch.tensor([E - 1, E - 1, 0])
    relations = torch.tensor([R - 1, R - 1, 0])
    candidates = torch.tensor([[E - 1], [E - 2], [0]])
    assert index.contains(known, relations, candidates, "tail")[:, 0].tolist() == [True, False, False]


@pytest.mark.parametrize("direction", ["tail", "head"])
def test_answers_match_python_sets(direction: str) -> None:
    triples = random_triples(seed=1)
    index = AnswerIndex(triples, E, R)
    truth = brute_force_answers(triples)[direction]
    generator = torch.Generator().manual_seed(2)
    known = torch.cat([torch.randint(E, (40,), generator=generator), torch.tensor([0, E - 1])])
    relations = torch.cat([torch.randint(R, (40,), generator=generator), torch.tensor([0, R - 1])])
    rows, entities = index.answers(known, relations, direction)
    found: dict[int, list[int]] = defaultdict(list)
    for row, entity in zip(rows.tolist(), entities.tolist(), strict=True):
        found[row].append(entity)
    for row, (q, r) in enumerate(zip(known.tolist(), relations.tolist(), strict=True)):
        assert sorted(found[row]) == sorted(truth.get((q, r), set())), (row, q, r)
    assert len(rows) > 0
    assert any(
        not truth.get((q, r)) for q, r in zip(known.tolist(), relations.tolist(), strict=True)
    )  # some have none


def crowded_index() -> tuple[AnswerIndex, torch.Tensor, torch.Tensor]:
    """Query (0, r0) has every entity but 3 and 7 as a true tail; query (1, r1) has one true tail."""
    rows = [[0, 0, t] for t in range(E) if t not in (3, 7)] + [[1, 1, 5], [2, 2, 4]]
    return AnswerIndex(torch.tensor(rows), E, R), torch.tensor([0, 1, 2, 5]), torch.tensor([0, 1, 2, 3])


def test_negatives_skip_true_answers() -> None:
    index, known, relations = crowded_index()
    generator = torch.Generator().manual_seed(3)
    negatives = sample_negatives(known, relations, 6, E, "tail", index=index, generator=generator)
    assert negatives.shape == (4, 6)
    assert negatives.dtype == torch.long
    assert negatives.min().item() >= 0
    assert negatives.max().item() < E
    assert not index.contains(known, relations, negatives, "tail").any()
    assert set(negatives[0].tolist()) <= {3, 7}  # a query whose answers cover most entities is still filled
    assert 5 not in negatives[1].tolist()


def test_negatives_skip_true_answers_in_the_head_direction() -> None:
    triples = random_triples(seed=4)
    index = AnswerIndex(triples, E, R)
    generator = torch.Generator().manual_seed(5)
    negatives = sample_negatives(
        triples[:, 2], triples[:, 1], 20, E, "head", index=index, generator=generator
    )
    truth = brute_force_answers(triples)["head"]
    for (_, r, t), row in zip(triples.tolist(), negatives.tolist(), strict=True):
        assert not set(row) & truth[(t, r)]


def test_query_whose_answers_are_every_entity_gets_unfiltered_draws() -> None:
    index = AnswerIndex(torch.tensor([[0, 0, t] for t in range(E)]), E, R)
    generator = torch.Generator().manual_seed(6)
    negatives = sample_negatives(
        torch.tensor([0, 1]), torch.tensor([0, 0]), 520, E, "tail", index=index, generator=generator
    )
    assert negatives.shape == (2, 520)
    assert negatives.min().item() >= 0
    assert negatives.max().item() < E
    assert not index.contains(torch.tensor([1]), torch.tensor([0]), negatives[1:], "tail").any()
    # the crowded row holds uniform draws over all entities (40 expected each), not leftover memory
    counts = torch.bincount(negatives[0], minlength=E).double()
    assert ((counts - 40) ** 2 / 40).sum().item() < 40.0


def test_negatives_without_an_index_are_uniform() -> None:
    index, known, relations = crowded_index()
    generator = torch.Generator().manual_seed(7)
    batch = known[:1].expand(2000)
    negatives = sample_negatives(batch, relations[:1].expand(2000), 13, E, "tail", generator=generator)
    assert negatives.shape == (2000, 13)
    counts = torch.bincount(negatives.reshape(-1), minlength=E).double()
    expected = negatives.numel() / E  # 2000 per entity
    chi_square = ((counts - expected) ** 2 / expected).sum().item()
    assert chi_square < 40.0  # 12 degrees of freedom: P(χ² > 40) ≈ 7e-5
    assert index.contains(batch[:50], relations[:1].expand(50), negatives[:50], "tail").any()  # unfiltered


def test_negatives_are_deterministic_given_a_generator() -> None:
    index, known, relations = crowded_index()

    def draw(seed: int, with_index: bool) -> torch.Tensor:
        generator = torch.Generator().manual_seed(seed)
        return sample_negatives(
            known, relations, 8, E, "tail", index=index if with_index else None, generator=generator
        )

    for with_index in (True, False):
        assert torch.equal(draw(8, with_index), draw(8, with_index))
        assert not torch.equal(draw(8, with_index), draw(9, with_index))
