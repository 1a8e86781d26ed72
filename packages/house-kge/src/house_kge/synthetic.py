"""Synthetic graphs whose held-out triples follow from training triples through one relation pattern (paper §4).

- symmetric: ``spouse`` over a random matching; the test asks the reverse of a training triple.
- antisymmetric: ``parent`` along a random chain, with its inverse ``child`` fully known; the test asks held-out
  ``parent`` triples, whose reverse direction is a training triple that a symmetric model would confuse with them.
- inverse: ``above`` (x → x + 7 around a random ring of all entities) is fully known; the test asks held-out
  triples of its inverse ``below``.
- composition: ``first`` (x → x + 3 around the ring) and ``second`` (x → x + 5) are fully known, ``both`` =
  second ∘ first; the test asks held-out ``both`` triples.

Inverse and composition use shifts around one ring so that a rotation can express them exactly; with random
permutations of all entities instead, no model with fewer parameters than entities can generalise, and the
held-out triples measure memorisation rather than the pattern.
"""

from __future__ import annotations

import torch

from house_kge.data import KnowledgeGraph
from papers_common import InputError

PATTERNS: tuple[str, ...] = ("symmetric", "antisymmetric", "inverse", "composition")
RELATIONS = ("spouse", "parent", "child", "above", "below", "first", "second", "both")


def pattern_graph(
    num_entities: int = 200, *, held_out: float = 0.2, seed: int = 0
) -> tuple[KnowledgeGraph, dict[str, torch.Tensor]]:
    """One graph mixing the four patterns, and the test triples of each pattern.

    Args:
        num_entities: an even number of entities (the matching pairs them all).
        held_out: fraction of each pattern's inferable triples moved to test (half of those to valid).

    Returns:
        The graph (valid and test hold every pattern's held-out triples) and ``{pattern: (n, 3) test triples}``.
    """
    if num_entities < 8 or num_entities % 2:
        raise InputError(f"pattern_graph needs an even number of at least 8 entities, got {num_entities}")
    if not 0 < held_out < 1:
        raise InputError(f"held_out must lie in (0, 1), got {held_out}")
    generator = torch.Generator().manual_seed(seed)
    rel = {name: i for i, name in enumerate(RELATIONS)}
    n = num_entities

    def triples(heads: torch.Tensor, relation: str, tails: torch.Tensor) -> torch.Tensor:
        return torch.stack([heads, torch.full_like(heads, rel[relation]), tails], dim=1)

    def split(candidates: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        order = torch.randperm(candidates.shape[0], generator=generator)
        count = max(2, round(held_out * candidates.shape[0]))
        return candidates[order[count:]], candidates[order[:count]]

    perm = torch.randperm(n, generator=generator)
    a, b = perm[: n // 2], perm[n // 2 :]
    spouse_kept, spouse_test = split(triples(a, "spouse", b))
    reversed_test = spouse_test[:, [2, 1, 0]]
    symmetric_train = torch.cat([spouse_kept, spouse_kept[:, [2, 1, 0]], spouse_test])

    chain = torch.randperm(n, generator=generator)
    parent_train, parent_test = split(triples(chain[:-1], "parent", chain[1:]))
    antisymmetric_train = torch.cat([parent_train, triples(chain[1:], "child", chain[:-1])])

    ring = torch.randperm(n, generator=generator)

    def shift(step: int) -> torch.Tensor:
        return ring[(torch.arange(n) + step) % n]

    below_train, below_test = split(triples(shift(7), "below", ring))
    inverse_train = torch.cat([triples(ring, "above", shift(7)), below_train])

    both_train, both_test = split(triples(ring, "both", shift(8)))
    composition_train = torch.cat(
        [triples(ring, "first", shift(3)), triples(ring, "second", shift(5)), both_train]
    )

    tests = {
        "symmetric": reversed_test,
        "antisymmetric": parent_test,
        "inverse": below_test,
        "composition": both_test,
    }
    held = torch.cat(list(tests.values()))
    order = torch.randperm(held.shape[0], generator=generator)
    graph = KnowledgeGraph(
        name="patterns",
        entities=[f"e{i}" for i in range(n)],
        relations=list(RELATIONS),
        train=torch.cat([symmetric_train, antisymmetric_train, inverse_train, composition_train]),
        valid=held[order[: held.shape[0] // 2]],
        test=held,
    )
    return graph, tests
