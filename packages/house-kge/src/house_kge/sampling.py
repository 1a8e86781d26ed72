"""True-answer index over triples, and uniform negative sampling that can skip true triples.

Triples are packed into int64 keys ((known · R + r) · E + candidate), one sorted array per direction, so that
membership tests and "all true answers of these queries" are ``searchsorted`` calls over the whole batch.
"""

from __future__ import annotations

from typing import Literal

import torch

Direction = Literal["tail", "head"]


class AnswerIndex:
    """The true tails of every (h, r) and the true heads of every (r, t) in a set of triples ``(n, 3)``."""

    def __init__(self, triples: torch.Tensor, num_entities: int, num_relations: int) -> None:
        self.num_entities = num_entities
        self.num_relations = num_relations
        h, r, t = triples[:, 0], triples[:, 1], triples[:, 2]
        self._keys = {
            "tail": torch.unique(self._pack(h, r, t)),  # sorted
            "head": torch.unique(self._pack(t, r, h)),
        }

    def _pack(self, known: torch.Tensor, relation: torch.Tensor, candidate: torch.Tensor) -> torch.Tensor:
        return (known.long() * self.num_relations + relation.long()) * self.num_entities + candidate.long()

    def contains(
        self, known: torch.Tensor, relations: torch.Tensor, candidates: torch.Tensor, direction: Direction
    ) -> torch.Tensor:
        """``(B, N)`` bool: is (known, r, candidate) (tail direction) or (candidate, r, known) a true triple."""
        keys = self._keys[direction]
        packed = self._pack(known.unsqueeze(1), relations.unsqueeze(1), candidates)
        position = torch.searchsorted(keys, packed).clamp(max=keys.numel() - 1)
        return keys[position] == packed

    def answers(
        self, known: torch.Tensor, relations: torch.Tensor, direction: Direction
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """All true answers of ``B`` queries as ``(rows, entities)`` index pairs (for masking a ``(B, E)`` score)."""
        keys = self._keys[direction]
        base = self._pack(known, relations, torch.zeros_like(known))
        low = torch.searchsorted(keys, base)
        high = torch.searchsorted(keys, base + self.num_entities)
        counts = high - low
        rows = torch.repeat_interleave(torch.arange(known.shape[0]), counts)
        starts = torch.repeat_interleave(low - torch.cumsum(counts, 0) + counts, counts)
        positions = starts + torch.arange(int(counts.sum()))
        return rows, keys[positions] - base[rows]


def sample_negatives(
    known: torch.Tensor,
    relations: torch.Tensor,
    count: int,
    num_entities: int,
    direction: Direction,
    *,
    index: AnswerIndex | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``(B, count)`` uniformly drawn candidate entities, skipping true answers when ``index`` is given.

    Rows are filled in rounds that draw 2, 4, 8, ... times ``count`` candidates for the rows still short of
    non-answers; a query whose answers cover almost every entity (none left after 8 rounds) gets unfiltered
    draws, where the official toolkit would loop forever.
    """
    batch = known.shape[0]
    out = torch.empty(batch, count, dtype=torch.long)
    todo = torch.arange(batch)
    for round_ in range(8):
        draws = torch.randint(num_entities, (todo.numel(), (2 << round_) * count), generator=generator)
        if index is None:
            out[todo] = draws[:, :count]
            return out
        valid = ~index.contains(known[todo], relations[todo], draws, direction)
        order = torch.argsort((~valid).to(torch.int8), dim=1, stable=True)  # valid draws first, in draw order
        chosen = torch.gather(draws, 1, order[:, :count])
        full = valid.sum(1) >= count
        out[todo[full]] = chosen[full]
        todo = todo[~full]
        if todo.numel() == 0:
            return out
    out[todo] = torch.randint(num_entities, (todo.numel(), count), generator=generator)
    return out
