"""The paper's four-way out-of-cluster split (Portal 3, stress model selection).

Families — given, or found by clustering the sequences — are shuffled with a seed and dealt out whole:

- **OOD-test** and **OOD-dev**: disjoint sets of held-out families (no pair of theirs is seen in training);
- **OOD-train**: the remaining families, minus
- **IID-dev**: a random share of the training families' pairs (the in-distribution dev set a standard pipeline
  selects on).

Families whose pairs are all of one class cannot be scored by ROC-AUC and are left out with a warning. The split is
a pure function of the records, the fractions and the seed, and is saved as JSON beside a run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from papers_common import InputError, write_json
from portal_learning.records import Interaction

LOG = logging.getLogger(__name__)
SPLITS = ("ood_train", "iid_dev", "ood_dev", "ood_test")
KMER = 3


@dataclass(frozen=True)
class SplitSettings:
    """Shares of the families (OOD-dev, OOD-test) and of the training families' pairs (IID-dev)."""

    ood_dev: float = 0.15
    ood_test: float = 0.15
    iid_dev: float = 0.1
    seed: int = 0
    cluster_identity: float = 0.5

    def check(self) -> None:
        for name, value in (
            ("--ood-dev", self.ood_dev),
            ("--ood-test", self.ood_test),
            ("--iid-dev", self.iid_dev),
        ):
            if not 0.0 < value < 1.0:
                raise InputError(f"{name} must lie in (0, 1), got {value}")
        if self.ood_dev + self.ood_test >= 1.0:
            raise InputError(
                f"--ood-dev + --ood-test must leave families to train on, got {self.ood_dev + self.ood_test}"
            )
        if not 0.0 < self.cluster_identity <= 1.0:
            raise InputError(f"--cluster-identity must lie in (0, 1], got {self.cluster_identity}")


@dataclass
class Split:
    """Row indices of the records in each part, and which families went where."""

    ood_train: list[int]
    iid_dev: list[int]
    ood_dev: list[int]
    ood_test: list[int]
    families: dict[str, str]
    excluded: list[str] = field(default_factory=list)
    settings: dict = field(default_factory=dict)
    records_digest: str = ""

    def part(self, name: str) -> list[int]:
        if name not in SPLITS:
            raise InputError(f"split must be one of {', '.join(SPLITS)}, got {name!r}")
        return getattr(self, name)

    def save(self, path: str | Path) -> Path:
        return write_json(path, asdict(self))

    @classmethod
    def load(cls, path: str | Path) -> Split:
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(**data)
        except (OSError, ValueError, TypeError) as error:
            raise InputError(f"{path}: not a portal-learning split file ({error})") from None

    @classmethod
    def load_for(cls, path: str | Path, records: Sequence[Interaction], data: str | Path) -> Split:
        """:meth:`load`, checking that the split was made for ``records`` (read from the file ``data``)."""
        split = cls.load(path)
        if split.records_digest != records_digest(records):
            raise InputError(f"{path}: made for other records than {data}; run portal-learning split again")
        return split


def records_digest(records: Sequence[Interaction]) -> str:
    """A short hash of the records (so a saved split is never applied to other data)."""
    h = hashlib.sha256()
    for r in records:
        h.update(f"{r.smiles}\t{r.protein}\t{r.family}\t{r.label}\n".encode())
    return h.hexdigest()[:16]


def _kmers(sequence: str) -> frozenset[str]:
    return frozenset(sequence[i : i + KMER] for i in range(max(1, len(sequence) - KMER + 1)))


def cluster_sequences(sequences: Sequence[str], identity: float = 0.5) -> list[str]:
    """Cluster ids (``cluster0``, ``cluster1``...) for sequences, by single linkage over 3-mer Jaccard similarity.

    Two sequences are linked when the Jaccard similarity of their 3-mer sets reaches ``identity`` (a fast stand-in
    for alignment identity); clusters are the connected components, numbered by first appearance.
    """
    unique = list(dict.fromkeys(sequences))
    sets = [_kmers(s) for s in unique]
    parent = list(range(len(unique)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(unique)):
        for j in range(i + 1, len(unique)):
            inter = len(sets[i] & sets[j])
            if inter and inter / len(sets[i] | sets[j]) >= identity:
                parent[root(j)] = root(i)
    names: dict[int, str] = {}
    label = {}
    for i, s in enumerate(unique):
        r = root(i)
        names.setdefault(r, f"cluster{len(names)}")
        label[s] = names[r]
    return [label[s] for s in sequences]


def family_ids(records: Sequence[Interaction], identity: float = 0.5) -> list[str]:
    """The records' families, clustering the sequences when any record has none."""
    if all(r.family is not None for r in records):
        return [r.family for r in records]  # type: ignore[misc]
    return cluster_sequences([r.sequence for r in records], identity)


def four_way_split(records: Sequence[Interaction], settings: SplitSettings | None = None) -> Split:
    """Deal the families out to OOD-test, OOD-dev and OOD-train, and hold out IID-dev pairs of the training ones."""
    settings = settings or SplitSettings()
    settings.check()
    if not records:
        raise InputError("no records to split")
    families = family_ids(records, settings.cluster_identity)
    classes: dict[str, set[int]] = defaultdict(set)
    for family, r in zip(families, records, strict=True):
        classes[family].add(r.label)
    excluded = sorted(f for f, c in classes.items() if len(c) < 2)
    if excluded:
        LOG.warning("%d famil%s with one class left out: %s", len(excluded), "y" if len(excluded) == 1 else "ies",
                    ", ".join(excluded[:10]) + (" ..." if len(excluded) > 10 else ""))  # fmt: skip
    usable = sorted(f for f in classes if f not in excluded)
    if len(usable) < 3:
        raise InputError(f"{len(usable)} families with both classes; the four-way split needs at least 3")
    order = usable[:]
    random.Random(settings.seed).shuffle(order)
    n_test = max(1, round(settings.ood_test * len(order)))
    n_dev = max(1, round(settings.ood_dev * len(order)))
    if n_test + n_dev >= len(order):
        raise InputError(
            f"{len(order)} families cannot give {n_test} OOD-test, {n_dev} OOD-dev and any to train"
        )
    where = {f: "ood_test" for f in order[:n_test]}
    where.update({f: "ood_dev" for f in order[n_test : n_test + n_dev]})
    where.update({f: "ood_train" for f in order[n_test + n_dev :]})
    parts: dict[str, list[int]] = {name: [] for name in SPLITS}
    for i, family in enumerate(families):
        if family in where:
            parts[where[family]].append(i)
    train = np.array(parts["ood_train"])
    rng = np.random.default_rng(settings.seed)
    held = np.zeros(len(train), dtype=bool)
    held[rng.permutation(len(train))[: round(settings.iid_dev * len(train))]] = True
    parts["iid_dev"] = sorted(train[held].tolist())
    parts["ood_train"] = sorted(train[~held].tolist())
    for name in SPLITS:
        if not parts[name]:
            raise InputError(
                f"the {name.replace('_', '-')} split is empty; use more families or larger shares"
            )
    counts = Counter(where.values())
    LOG.info("split: %d OOD-train / %d OOD-dev / %d OOD-test families", counts["ood_train"], counts["ood_dev"],
             counts["ood_test"])  # fmt: skip
    return Split(parts["ood_train"], parts["iid_dev"], parts["ood_dev"], parts["ood_test"], where, excluded,
                 asdict(settings), records_digest(records))  # fmt: skip
