"""OGB-LSC PCQM4Mv2 from its raw files, streamed in chunks: ``data.csv.gz`` and the official ``split_dict.pt``.

The raw layout (as OGB and PyG download it)::

    <root>/pcqm4m-v2/raw/data.csv.gz    columns idx, smiles, homolumogap (3,746,620 molecules)
    <root>/pcqm4m-v2/split_dict.pt      {"train", "valid", "test-dev", "test-challenge"} → index array

``root`` may be the folder above ``pcqm4m-v2``, ``pcqm4m-v2`` itself, or a folder holding both files directly.

The CSV is read with :mod:`gzip` and :mod:`csv` one line at a time, and molecules are featurised and preprocessed
(:mod:`graphormer2.datasets`) ``chunk`` at a time, so that the 3.7 M molecules never sit in memory at once: each
chunk is a :class:`PCQM4Mv2Part` holding a :class:`~graphormer2.datasets.MoleculeDataset`, the ``idx`` of its
molecules, and the time and memory it took (enough to report preprocessing cost per 100 k molecules). The HOMO–LUMO
gaps of ``test-dev`` and ``test-challenge`` are hidden (empty cells in the file): those targets are NaN.

``split_dict.pt`` is read only with ``torch.load(weights_only=True)``, which unpickles tensors and plain containers
and nothing else; integer NumPy arrays (in which OGB may store the indices) are allowed as well, through an
allowlist of NumPy's array and integer dtype constructors. Any other object in the file is refused.
"""

from __future__ import annotations

import csv
import gzip
import itertools
import os
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from graphormer2.collate import MULTI_HOP_MAX_DIST
from graphormer2.datasets import MAX_NODES, MoleculeDataset, _build, _check_settings, _parse_value, _Record
from graphormer2.features import parse_smiles
from papers_common import InputError, UnsafeCheckpointError

#: The split names of ``split_dict.pt``.
SPLITS = ("train", "valid", "test-dev", "test-challenge")
#: The target column (eV).
TARGET = "homolumogap"
_COLUMNS = ("idx", "smiles", TARGET)


@dataclass(frozen=True)
class PCQM4Mv2Files:
    """Where the two raw files of one PCQM4Mv2 copy are (``split_dict`` need not exist to read all rows)."""

    data: Path
    split_dict: Path


@dataclass(frozen=True)
class PCQM4Mv2Part:
    """Preprocessed PCQM4Mv2 molecules (one chunk, or a whole split subset) and what they cost.

    Attributes:
        dataset: the kept molecules; one target, ``homolumogap`` (NaN in the test splits).
        index: int64 ``(M,)``, the PCQM4Mv2 ``idx`` of each molecule of ``dataset``, in file order.
        rows: CSV records read for it (kept and skipped).
        seconds: wall-clock seconds to read, parse, featurise and preprocess them.
        nbytes: bytes held by the dataset's packed tensors.
    """

    dataset: MoleculeDataset
    index: torch.Tensor
    rows: int
    seconds: float
    nbytes: int

    def per_100k(self) -> tuple[float, float]:
        """Seconds and MiB of preprocessed tensors per 100 000 records read."""
        scale = 100_000 / max(self.rows, 1)
        return self.seconds * scale, self.nbytes * scale / 2**20


def pcqm4mv2_files(root: str | os.PathLike[str]) -> PCQM4Mv2Files:
    """Find ``data.csv.gz`` and ``split_dict.pt`` under ``root`` (module docstring).

    Raises:
        InputError: no ``data.csv.gz`` in any of the layouts; the message lists the paths looked at.
    """
    base = Path(root)
    tried = []
    for folder in (base / "pcqm4m-v2", base):
        for data in (folder / "raw" / "data.csv.gz", folder / "data.csv.gz"):
            if data.is_file():
                return PCQM4Mv2Files(data=data, split_dict=folder / "split_dict.pt")
            tried.append(str(data))
    raise InputError(f"{base}: no PCQM4Mv2 data.csv.gz (looked for {', '.join(tried)})")


def _integer_arrays_allowed() -> AbstractContextManager[object]:
    """``torch.serialization.safe_globals`` for integer NumPy arrays (both NumPy 1 and 2 module names)."""
    safe_globals = getattr(torch.serialization, "safe_globals", None)
    if safe_globals is None:  # torch < 2.5: tensors only
        return nullcontext()
    reconstruct = np.array(0).__reduce__()[0]
    return safe_globals(
        [
            (reconstruct, "numpy.core.multiarray._reconstruct"),
            (reconstruct, "numpy._core.multiarray._reconstruct"),
            np.ndarray,
            np.dtype,
            bytes,  # the (empty) data of an empty array, pickled as a call of bytes()
            *{type(np.dtype(code)) for code in np.typecodes["AllInteger"]},
        ]
    )


def read_split_dict(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """The official split: split name → int64 ``(K,)`` PCQM4Mv2 indices.

    Raises:
        InputError: the file is missing or unreadable, or not a dict of 1-D integer tensors/arrays.
        UnsafeCheckpointError: the pickle holds other Python objects (never unpickled).
    """
    file = Path(path)
    if not file.is_file():
        raise InputError(f"{file}: no such file (the official PCQM4Mv2 split_dict.pt)")
    try:
        with _integer_arrays_allowed():
            state = torch.load(file, map_location="cpu", weights_only=True)
    except (
        Exception
    ) as err:  # a refused global (UnpicklingError) or a corrupt archive (RuntimeError, KeyError, …)
        raise UnsafeCheckpointError(
            f"{file}: not a plain dict of index tensors; torch.load(weights_only=True) refused it and it is never "
            f"unpickled otherwise ({type(err).__name__}: {_refusal_reason(err)})"
        ) from None
    if not isinstance(state, dict) or not all(isinstance(name, str) for name in state):
        raise InputError(
            f"{file}: expected a dict of split name → index tensor, found {type(state).__name__}"
        )
    splits = {}
    for name, value in state.items():
        array = value.numpy() if isinstance(value, torch.Tensor) else value
        if not isinstance(array, np.ndarray) or array.ndim != 1 or array.dtype.kind not in "iu":
            raise InputError(f"{file}: split {name!r} is not a 1-D integer index tensor")
        if array.size and array.min() < 0:
            raise InputError(f"{file}: split {name!r} has a negative index ({array.min()})")
        splits[name] = array.astype(np.int64)
    return splits


def _refusal_reason(err: Exception) -> str:
    """The one line of a ``torch.load`` error that says what it refused (torch wraps it in a page of advice)."""
    text = str(err)
    _, found, rest = text.partition("WeightsUnpickler error:")
    lines = [line.strip() for line in (rest if found else text).splitlines() if line.strip()]
    return lines[0].split(" Please use")[0][:200] if lines else "unreadable archive"


def _rows(path: Path) -> Iterator[tuple[str, int, str, str]]:
    """``(where, idx, smiles, gap text)`` per record of the gzip CSV, read one line at a time."""
    try:
        with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
            reader = csv.reader(handle)
            header = [name.strip() for name in next(reader, [])]
            missing = [name for name in _COLUMNS if name not in header]
            if missing:
                raise InputError(f"{path}: no column {missing[0]!r}; the header has: {', '.join(header)}")
            idx_at, smiles_at, gap_at = (header.index(name) for name in _COLUMNS)
            for fields in reader:
                if not fields:
                    continue
                fields = fields + [""] * (len(header) - len(fields))
                where = f"{path}:{reader.line_num}"
                try:
                    idx = int(fields[idx_at])
                except ValueError:
                    raise InputError(f"{where}: idx is {fields[idx_at]!r}, not an integer") from None
                yield f"{where} (idx {idx})", idx, fields[smiles_at].strip(), fields[gap_at]
    except (OSError, EOFError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: cannot read the gzip CSV ({err})") from None


def read_pcqm4mv2(
    root: str | os.PathLike[str],
    split: str | None = "train",
    *,
    limit: int | None = None,
    chunk: int = 100_000,
    max_nodes: int = MAX_NODES,
    multi_hop_max_dist: int = MULTI_HOP_MAX_DIST,
    strict: bool = False,
) -> Iterator[PCQM4Mv2Part]:
    """Stream the molecules of one PCQM4Mv2 split as preprocessed chunks of ``chunk`` CSV records.

    Args:
        root: the dataset folder (module docstring).
        split: a key of ``split_dict.pt`` (:data:`SPLITS`), or ``None`` for every row of the CSV.
        limit: stop after this many records of the split.
        chunk: records per part (the last part may be shorter; skipped molecules make a part smaller).
        max_nodes, multi_hop_max_dist, strict: as :func:`graphormer2.from_csv`.

    Yields:
        :class:`PCQM4Mv2Part` per chunk, in file order.

    Raises:
        InputError: missing files, an unknown split, a malformed CSV, split indices missing from the CSV (at the
            end of a read without ``limit``), a chunk with no usable molecule, or (``strict``) an unusable one.
    """
    _check_settings(max_nodes, multi_hop_max_dist)
    if chunk < 1 or (limit is not None and limit < 1):
        raise InputError(f"chunk and limit must be ≥ 1, got chunk={chunk}, limit={limit}")
    files = pcqm4mv2_files(root)
    wanted = None
    if split is not None:
        splits = read_split_dict(files.split_dict)
        if split not in splits:
            raise InputError(f"{files.split_dict}: no split {split!r}; it has: {', '.join(splits)}")
        # a mask over idx: True until that idx has been read, so duplicates are read once and the rest reported
        wanted = np.zeros(int(splits[split].max(initial=-1)) + 1, dtype=bool)
        wanted[splits[split]] = True

    read: list[tuple[int, int]] = []  # (row, idx) of every record handed to the current chunk

    def records() -> Iterator[_Record]:
        rows = (r for r in _rows(files.data) if wanted is None or (0 <= r[1] < len(wanted) and wanted[r[1]]))
        for row, (where, idx, smiles, gap) in enumerate(itertools.islice(rows, limit), start=1):
            if wanted is not None:
                wanted[idx] = False
            read.append((row, idx))
            y = np.array([_parse_value(gap, where, TARGET)], dtype=np.float32)
            yield _Record(row, where, smiles, parse_smiles(smiles), y, "invalid_smiles")

    stream = records()
    while True:
        start = time.perf_counter()
        read.clear()
        first = next(stream, None)
        if first is None:
            break
        dataset = _build(
            itertools.chain([first], itertools.islice(stream, chunk - 1)),
            source=str(files.data),
            target_names=[TARGET],
            max_nodes=max_nodes,
            multi_hop_max_dist=multi_hop_max_dist,
            strict=strict,
            total=None,
        )
        skipped = {r.row for r in dataset.rejected}
        index = torch.tensor([idx for row, idx in read if row not in skipped], dtype=torch.long)
        yield PCQM4Mv2Part(dataset, index, len(read), time.perf_counter() - start, _nbytes(dataset))
    if wanted is not None and limit is None and wanted.any():
        absent = np.flatnonzero(wanted)
        raise InputError(
            f"{files.data}: {absent.size} indices of split {split!r} are not in the file (the first: {absent[0]})"
        )


def _nbytes(dataset: MoleculeDataset) -> int:
    """Bytes of a dataset's packed tensors: its items are views into them, so one item's storages are all of it."""
    item = dataset[0]
    tensors = (item.x, item.in_degree, item.spatial_pos, item.attn_edge_type, item.edge_input, item.y)
    return sum(t.untyped_storage().nbytes() for t in tensors)


def load_pcqm4mv2(
    root: str | os.PathLike[str],
    split: str | None = "train",
    *,
    limit: int | None = None,
    chunk: int = 100_000,
    max_nodes: int = MAX_NODES,
    multi_hop_max_dist: int = MULTI_HOP_MAX_DIST,
    strict: bool = False,
) -> PCQM4Mv2Part:
    """All molecules of one PCQM4Mv2 split (or its first ``limit``) as one :class:`PCQM4Mv2Part`, read in chunks
    by :func:`read_pcqm4mv2` (same arguments); the whole preprocessed subset is held in memory.
    """
    start = time.perf_counter()
    parts = list(
        read_pcqm4mv2(
            root,
            split,
            limit=limit,
            chunk=chunk,
            max_nodes=max_nodes,
            multi_hop_max_dist=multi_hop_max_dist,
            strict=strict,
        )
    )
    if not parts:
        raise InputError(f"{root}: no molecules of split {split!r} in data.csv.gz")
    dataset = MoleculeDataset(
        [part.dataset[i] for part in parts for i in range(len(part.dataset))],
        [smiles for part in parts for smiles in part.dataset.smiles],
        [TARGET],
        rejected=[r for part in parts for r in part.dataset.rejected],
        multi_hop_max_dist=multi_hop_max_dist,
    )
    return PCQM4Mv2Part(
        dataset,
        torch.cat([part.index for part in parts]),
        sum(part.rows for part in parts),
        time.perf_counter() - start,
        _nbytes(dataset),
    )
