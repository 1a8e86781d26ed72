"""Knowledge graphs on disk: ``train.txt``/``valid.txt``/``test.txt`` of ``head<TAB>relation<TAB>tail`` lines.

This is the layout of WN18RR, FB15k-237, YAGO3-10 and Countries in the RotatE toolkit. ``entities.dict`` and
``relations.dict`` (``id<TAB>name``) fix the id order when present; otherwise ids follow first appearance in
train, valid, test. Every entity of the vocabulary gets an embedding, and by default every valid/test triple is
kept, also those whose entities never occur in training (the official protocol: WN18RR ranks all 3,134 test
triples). Named datasets: ``countries_S1``, ``countries_S2``, ``countries_S3`` shipped in this package
(``house_kge/datasets``), ``nations``, ``umls``, ``kinships`` from the files bundled in the ``pykeen`` wheel
(optional dependency), or any of them from ``--data-dir``.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Literal, get_args

import numpy as np
import torch

from papers_common import InputError, write_bytes

LOGGER = logging.getLogger(__name__)

SPLITS = ("train", "valid", "test")
PYKEEN_DATASETS = {"nations": "nations", "umls": "umls", "kinships": "kinships"}
SHIPPED_DATASETS = ("countries_S1", "countries_S2", "countries_S3")
"""Datasets inside this package (``house_kge/datasets/<name>``; source and licence in its README.md)."""

Unseen = Literal["keep", "drop", "error"]
UNSEEN_CHOICES: tuple[str, ...] = get_args(Unseen)


@dataclass
class KnowledgeGraph:
    """Id triples ``(n, 3)`` (int64: head, relation, tail) per split, with the id ↔ name maps.

    Attributes:
        unseen: per split, the number of valid/test triples with an entity or relation that never occurs in
            training (kept and ranked with ``unseen="keep"``, the default).
        skipped: per split, the number of those triples dropped (``unseen="drop"``).
        regions: entity ids of the Countries region candidates (``regions.list``), if present.
    """

    name: str
    entities: list[str]
    relations: list[str]
    train: torch.Tensor
    valid: torch.Tensor
    test: torch.Tensor
    skipped: dict[str, int] = field(default_factory=dict)
    regions: torch.Tensor | None = None
    unseen: dict[str, int] = field(default_factory=dict)

    @property
    def num_entities(self) -> int:
        return len(self.entities)

    @property
    def num_relations(self) -> int:
        return len(self.relations)

    def all_triples(self) -> torch.Tensor:
        """Every known true triple (train, valid, test), for filtered ranking."""
        return torch.cat([self.train, self.valid, self.test])

    def entity_id(self, name: str) -> int:
        try:
            return self.entities.index(name)
        except ValueError:
            raise InputError(f"{self.name}: unknown entity {name!r}") from None

    def relation_id(self, name: str) -> int:
        try:
            return self.relations.index(name)
        except ValueError:
            raise InputError(f"{self.name}: unknown relation {name!r}") from None

    def describe(self) -> dict[str, object]:
        return {
            "name": self.name,
            "entities": self.num_entities,
            "relations": self.num_relations,
            **{split: int(getattr(self, split).shape[0]) for split in SPLITS},
            "unseen": self.unseen,
            "skipped": self.skipped,
        }


def read_text(path: Path) -> str:
    """The UTF-8 text of ``path``; bytes that are not UTF-8 are an error naming the file, line and column."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        column = error.start - (data.rfind(b"\n", 0, error.start) + 1) + 1
        raise InputError(
            f"{path}:{line}: not UTF-8 text (byte 0x{data[error.start]:02x} at column {column}); save the file "
            "as UTF-8"
        ) from None


def read_triples(path: Path) -> list[tuple[str, str, str]]:
    """Label triples from a tab-separated file; a line without exactly three fields is an error naming it."""
    triples = []
    for number, line in enumerate(read_text(path).split("\n"), start=1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 3 or not all(f.strip() for f in fields):
            raise InputError(
                f"{path}:{number}: expected head<TAB>relation<TAB>tail, found {len(fields)} field(s): {line[:80]!r}"
            )
        triples.append((fields[0].strip(), fields[1].strip(), fields[2].strip()))
    if not triples:
        raise InputError(f"{path}: no triples in this file")
    return triples


def read_dictionary(path: Path) -> list[str]:
    """Names ordered by id from an ``id<TAB>name`` file; ids must be 0..n−1."""
    entries: dict[int, str] = {}
    for number, line in enumerate(read_text(path).split("\n"), start=1):
        if not line.strip():
            continue
        fields = line.rstrip("\r").split("\t")
        if len(fields) != 2 or not fields[0].strip().isdigit():
            raise InputError(f"{path}:{number}: expected id<TAB>name, found {line.strip()[:80]!r}")
        entries[int(fields[0])] = fields[1].strip()
    if sorted(entries) != list(range(len(entries))):
        raise InputError(f"{path}: ids must be 0..{len(entries) - 1} without gaps")
    return [entries[i] for i in range(len(entries))]


def load_directory(
    directory: str | os.PathLike[str], *, name: str | None = None, unseen: Unseen = "keep"
) -> KnowledgeGraph:
    """Read a dataset directory (see the module docstring).

    Args:
        directory: holds train.txt, valid.txt, test.txt (and optionally entities.dict, relations.dict,
            regions.list).
        unseen: what becomes of valid/test triples with an entity or relation that never occurs in training:
            ``keep`` them (the official protocol; their embeddings are trained only as sampled negatives),
            ``drop`` them (counted in ``skipped``), or raise an ``error`` naming the first one. Either way they
            are counted in ``unseen``.
    """
    if unseen not in UNSEEN_CHOICES:
        raise InputError(f"unseen must be one of {', '.join(UNSEEN_CHOICES)}, got {unseen!r}")
    root = Path(directory)
    if not root.is_dir():
        raise InputError(f"{root}: no such dataset directory")
    LOGGER.info("reading %s ...", root)
    labelled = {}
    for split in SPLITS:
        path = root / f"{split}.txt"
        if not path.is_file():
            raise InputError(f"{root}: missing {split}.txt")
        labelled[split] = read_triples(path)
    if (root / "entities.dict").is_file() and (root / "relations.dict").is_file():
        entities = read_dictionary(root / "entities.dict")
        relations = read_dictionary(root / "relations.dict")
    else:
        entities = list(dict.fromkeys(e for split in SPLITS for h, _, t in labelled[split] for e in (h, t)))
        relations = list(dict.fromkeys(r for split in SPLITS for _, r, _ in labelled[split]))
    entity_ids = {e: i for i, e in enumerate(entities)}
    relation_ids = {r: i for i, r in enumerate(relations)}
    seen_entities = {e for h, _, t in labelled["train"] for e in (h, t)}
    seen_relations = {r for _, r, _ in labelled["train"]}
    splits, unseen_counts, skipped = {}, {}, {}
    for split in SPLITS:
        rows = []
        novel = 0
        for number, (h, r, t) in enumerate(labelled[split], start=1):
            in_vocabulary = h in entity_ids and t in entity_ids and r in relation_ids
            if not in_vocabulary and (split == "train" or unseen != "drop"):
                raise InputError(
                    f"{root / f'{split}.txt'}: triple {number} ({h}, {r}, {t}) has an entity or relation not in "
                    "entities.dict/relations.dict, so no embedding to rank"
                    + ("" if split == "train" else " (--unseen drop skips it)")
                )
            if split != "train" and not (h in seen_entities and t in seen_entities and r in seen_relations):
                if unseen == "error":
                    raise InputError(
                        f"{root / f'{split}.txt'}: triple {number} ({h}, {r}, {t}) has an entity or relation that "
                        "never occurs in train.txt (--unseen keep ranks it, --unseen drop skips it)"
                    )
                novel += 1
                if unseen == "drop":
                    continue
            rows.append((entity_ids[h], relation_ids[r], entity_ids[t]))
        splits[split] = torch.tensor(rows, dtype=torch.long).reshape(-1, 3)
        if novel:
            unseen_counts[split] = novel
            if unseen == "drop":
                skipped[split] = novel
    regions = None
    if (root / "regions.list").is_file():
        names = [line.strip() for line in read_text(root / "regions.list").splitlines() if line.strip()]
        missing = [n for n in names if n not in entity_ids]
        if missing:
            raise InputError(f"{root / 'regions.list'}: unknown entities {missing}")
        regions = torch.tensor([entity_ids[n] for n in names], dtype=torch.long)
    graph = KnowledgeGraph(
        name or root.name,
        entities,
        relations,
        splits["train"],
        splits["valid"],
        splits["test"],
        skipped,
        regions,
        unseen_counts,
    )
    LOGGER.info(
        "read %s: %d entities, %d relations, %s train/valid/test triples",
        root, graph.num_entities, graph.num_relations, "/".join(str(len(splits[s])) for s in SPLITS),
    )  # fmt: skip
    return graph


DOWNLOADS = {"wn18rr": "wn18rr", "fb15k-237": "FB15k-237"}
"""Datasets fetched on first use: name -> folder of the RotatE toolkit's ``data/`` (the layout this package reads)."""

DOWNLOAD_URL = "https://raw.githubusercontent.com/DeepGraphLearning/KnowledgeGraphEmbedding/master/data"
DOWNLOAD_FILES = ("train.txt", "valid.txt", "test.txt", "entities.dict", "relations.dict")


def cache_root() -> Path:
    """Where downloaded datasets live: ``$HOUSE_KGE_CACHE``, else ``$XDG_CACHE_HOME/house-kge``, else
    ``~/.cache/house-kge``."""
    if os.environ.get("HOUSE_KGE_CACHE"):
        return Path(os.environ["HOUSE_KGE_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "house-kge"


def download_dataset(name: str, *, base_url: str | None = None, root: Path | None = None) -> Path:
    """Fetch ``name`` (wn18rr, fb15k-237) from the RotatE toolkit's repository into the cache once; its folder.

    Each file is written atomically, so an interrupted download leaves no partial file; the folder counts as
    complete once every file is there. ``base_url`` (default: ``$HOUSE_KGE_DATA_URL`` or :data:`DOWNLOAD_URL`)
    points at a mirror holding ``<folder>/<file>``.
    """
    from urllib.error import URLError
    from urllib.request import urlopen

    target = (root or cache_root()) / name
    base = (base_url or os.environ.get("HOUSE_KGE_DATA_URL") or DOWNLOAD_URL).rstrip("/")
    for file in DOWNLOAD_FILES:
        if (target / file).is_file():
            continue
        url = f"{base}/{DOWNLOADS[name]}/{file}"
        LOGGER.info("downloading %s", url)
        try:
            with urlopen(url, timeout=60) as response:
                content = response.read()
        except (URLError, OSError) as error:
            raise InputError(
                f"could not download {url} ({error}); download the {name} files yourself and pass --data-dir "
                f"DIR with DIR/{name}/train.txt, valid.txt, test.txt"
            ) from None
        target.mkdir(parents=True, exist_ok=True)
        write_bytes(target / file, content)
    return target


def shipped_dataset(name: str) -> Path:
    """The folder of a dataset shipped in this package (:data:`SHIPPED_DATASETS`, any letter case)."""
    folder = {n.lower(): n for n in SHIPPED_DATASETS}.get(name.lower())
    if folder is None:
        raise InputError(f"{name!r} is not shipped with house-kge (shipped: {', '.join(SHIPPED_DATASETS)})")
    return Path(str(files("house_kge") / "datasets" / folder))


def load_dataset(
    name: str, *, data_dir: str | os.PathLike[str] | None = None, unseen: Unseen = "keep"
) -> KnowledgeGraph:
    """A dataset by name: ``<data_dir>/<name>`` when ``data_dir`` is given (or ``name`` is itself a directory),
    else Countries S1–S3 shipped in this package, else wn18rr / fb15k-237 downloaded into the cache on first use
    (:func:`download_dataset`), else the copy bundled with PyKEEN (nations, umls, kinships). ``unseen`` as in
    :func:`load_directory`."""
    if data_dir is not None:
        return load_directory(Path(data_dir) / name, name=name, unseen=unseen)
    if Path(name).is_dir():
        return load_directory(name, unseen=unseen)
    if name.lower() in {n.lower() for n in SHIPPED_DATASETS}:
        return load_directory(shipped_dataset(name), unseen=unseen)
    if name in DOWNLOADS:
        return load_directory(download_dataset(name), name=name, unseen=unseen)
    if name not in PYKEEN_DATASETS:
        raise InputError(
            f"unknown dataset {name!r}: give --data-dir DIR holding {name}/train.txt, or a directory path, or one of "
            f"{', '.join([*SHIPPED_DATASETS, *DOWNLOADS, *PYKEEN_DATASETS])} (the first three shipped with "
            "house-kge, the next two downloaded on first use, the last three bundled with the optional pykeen "
            "dependency)"
        )
    try:
        root = files(f"pykeen.datasets.{PYKEEN_DATASETS[name]}")
    except ModuleNotFoundError:
        raise InputError(
            f"dataset {name!r} is read from the pykeen wheel: pip install 'house-kge[pykeen]', or give --data-dir"
        ) from None
    return load_directory(Path(str(root)), name=name, unseen=unseen)


def subsampling_weights(triples: torch.Tensor, num_relations: int) -> torch.Tensor:
    """``(n,)`` w = sqrt(1 / (c(h, r) + c(t, r⁻¹))), counts over ``triples`` starting at 4 (the RotatE toolkit)."""
    h, r, t = (triples[:, i].numpy() for i in range(3))
    head_keys = h * (2 * num_relations) + r
    tail_keys = t * (2 * num_relations) + num_relations + r
    keys = np.concatenate([head_keys, tail_keys])
    _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    count = counts[inverse] + 3  # the toolkit starts each count at 4
    n = len(h)
    return torch.from_numpy(np.sqrt(1.0 / (count[:n] + count[n:]))).float()
