"""Fixtures shared by the house-kge tests: tiny knowledge graphs written to disk or built in memory.

No test needs PyKEEN or the shared data folder: every graph here is generated from a fixed seed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
import torch
from house_kge import KnowledgeGraph

from papers_common import preserved_global_state

# Every tensor in these tests is tiny: extra intra-op threads only add synchronisation, which dominates (by orders
# of magnitude) when other processes occupy the cores.
torch.set_num_threads(1)

F64 = torch.float64

Triple = tuple[str, str, str]


def write_triples(path: Path, triples: Sequence[Triple]) -> Path:
    """``head<TAB>relation<TAB>tail`` lines."""
    path.write_text("".join(f"{h}\t{r}\t{t}\n" for h, r, t in triples), encoding="utf-8")
    return path


def write_dataset(
    root: Path,
    train: Sequence[Triple],
    valid: Sequence[Triple],
    test: Sequence[Triple],
    *,
    entities: Sequence[str] | None = None,
    relations: Sequence[str] | None = None,
    regions: Sequence[str] | None = None,
) -> Path:
    """A dataset directory in the RotatE-toolkit layout (optionally with dictionaries and ``regions.list``)."""
    root.mkdir(parents=True, exist_ok=True)
    for split, triples in (("train", train), ("valid", valid), ("test", test)):
        write_triples(root / f"{split}.txt", triples)
    if entities is not None:
        (root / "entities.dict").write_text("".join(f"{i}\t{e}\n" for i, e in enumerate(entities)), "utf-8")
    if relations is not None:
        (root / "relations.dict").write_text("".join(f"{i}\t{r}\n" for i, r in enumerate(relations)), "utf-8")
    if regions is not None:
        (root / "regions.list").write_text("".join(f"{r}\n" for r in regions), encoding="utf-8")
    return root


def cyclic_graph(
    num_entities: int = 30, shifts: Sequence[int] = (1, 2, 5), held_out: int = 8, seed: int = 0
) -> KnowledgeGraph:
    """Relation j maps entity i to i + shifts[j] (mod n): every relation is a rotation that a rotation model can
    learn exactly, and held-out triples follow from the training ones (the cycle fixes every embedding).

    ``held_out`` triples go to valid and as many to test; the rest is training data that mentions every entity.
    """
    triples = torch.tensor(
        [[i, j, (i + s) % num_entities] for j, s in enumerate(shifts) for i in range(num_entities)]
    )
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(triples), generator=generator)
    # keep relation 0 complete in training so that every entity stays on the cycle
    order = torch.cat([order[triples[order, 1] != 0], order[triples[order, 1] == 0]])
    valid, test, train = order[:held_out], order[held_out : 2 * held_out], order[2 * held_out :]
    return KnowledgeGraph(
        name="cyclic",
        entities=[f"e{i}" for i in range(num_entities)],
        relations=[f"shift{s}" for s in shifts],
        train=triples[train],
        valid=triples[valid],
        test=triples[test],
    )


def random_graph(
    num_entities: int = 20, num_relations: int = 3, num_triples: int = 200, seed: int = 0
) -> KnowledgeGraph:
    """Uniformly random id triples (duplicates removed), 10 % of them held out for valid and test each."""
    generator = torch.Generator().manual_seed(seed)
    triples = torch.stack(
        [
            torch.randint(num_entities, (num_triples,), generator=generator),
            torch.randint(num_relations, (num_triples,), generator=generator),
            torch.randint(num_entities, (num_triples,), generator=generator),
        ],
        dim=1,
    )
    triples = torch.unique(triples, dim=0)
    triples = triples[torch.randperm(len(triples), generator=generator)]
    tenth = len(triples) // 10
    return KnowledgeGraph(
        name="random",
        entities=[f"e{i}" for i in range(num_entities)],
        relations=[f"r{i}" for i in range(num_relations)],
        train=triples[2 * tenth :],
        valid=triples[:tenth],
        test=triples[tenth : 2 * tenth],
    )


@pytest.fixture
def make_cyclic_graph() -> Callable[..., KnowledgeGraph]:
    """:func:`cyclic_graph` (relations that are exact rotations of a cycle of entities)."""
    return cyclic_graph


@pytest.fixture
def make_random_graph() -> Callable[..., KnowledgeGraph]:
    """:func:`random_graph` (uniformly random triples)."""
    return random_graph


@pytest.fixture
def dataset_dir(tmp_path: Path) -> Callable[..., Path]:
    """``dataset_dir(train, valid, test, name=..., **files)`` writes a dataset under ``tmp_path``."""

    def make(
        train: Sequence[Triple], valid: Sequence[Triple], test: Sequence[Triple], name: str = "tiny", **files
    ) -> Path:
        return write_dataset(tmp_path / name, train, valid, test, **files)

    return make


@pytest.fixture
def preserve_rng() -> Iterator[None]:
    """Undo changes to the global generators (restoring a training checkpoint restores the RNG states)."""
    with preserved_global_state():
        yield
