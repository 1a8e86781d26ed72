"""Molecule datasets for the 2D model: CSV and SDF files, SMILES lists and offline task sets (spec §6).

Every loader parses molecules with RDKit, featurises them as OGB's ``smiles2graph`` (:mod:`graphormer2.features`)
and preprocesses them once (:func:`graphormer2.collate.preprocess`: degrees, shortest paths, path edge ids).

Molecules that cannot be used are skipped, counted in ``dataset.skipped`` by reason, and listed in a rejects CSV
(``row,smiles,reason``; ``row`` is the record's 1-based number among the source's data records) when ``rejects`` is
given; with ``strict=True`` the first one raises :class:`papers_common.InputError` naming the file, line or record and the
reason. Reasons:

- ``invalid_smiles``: RDKit cannot parse or sanitise the SMILES;
- ``invalid_record``: RDKit cannot read an SDF record;
- ``no_atoms``: the molecule has no atoms (an empty SMILES);
- ``too_many_atoms``: more atoms than ``max_nodes`` (the official code drops these silently, spec §3.1).

With ``cache_dir`` the preprocessed tensors are stored (``torch.save`` of plain tensors, lists and dicts, read back
with ``torch.load(weights_only=True)``) under a key that hashes the source's bytes (or the in-memory SMILES and
targets) together with every setting that changes the result: columns, ``max_nodes``, ``multi_hop_max_dist``,
``limit``, :data:`~graphormer2.features.FEATURE_VERSION` and the RDKit version. A second load with the same key reads
the cache; any change writes a new entry. Writes are atomic.

Offline task sets come from files inside the RDKit wheel (``rdkit.RDConfig.RDDataDir``): :func:`tpsa_task`,
:func:`sdf_properties_task` and :func:`wiener_task`.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import math
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import rdkit
import torch
from rdkit import Chem, RDConfig, rdBase
from torch.utils.data import Dataset, Subset

from graphormer2.collate import MULTI_HOP_MAX_DIST, GraphItem, preprocess
from graphormer2.features import FEATURE_VERSION, mol_to_graph
from papers_common import InputError, atomic_open, atomic_path, progress

MAX_NODES = 128
CACHE_FORMAT = 1
LOGGER = logging.getLogger(__name__)
#: Target cells read as missing (NaN), compared case-insensitively after stripping blanks.
MISSING_VALUES = frozenset({"", "na", "nan", "n/a", "none", "null"})
#: The numeric properties present in every record of ``NCI/first_200.props.sdf`` (``P1`` is in 30 of 200 only).
SDF_PROPERTIES = (
    "AMW",
    "CLOGP",
    "DAYLIGHT_CLOGP",
    "NUM_HACCEPTORS",
    "NUM_HDONORS",
    "NUM_HETEROATOMS",
    "NUM_LIPINSKIHACCEPTORS",
    "NUM_LIPINSKIHDONORS",
    "NUM_RINGS",
    "NUM_ROTATABLEBONDS",
    "NUM_ROTATABLEBONDS_O",
)
_REASON_TEXT = {
    "invalid_smiles": "RDKit cannot parse this SMILES",
    "invalid_record": "RDKit cannot read this molecule record",
    "no_atoms": "the molecule has no atoms",
    "too_many_atoms": "the molecule has more atoms than max_nodes",
}


_STORED = ("num_nodes", "x", "in_degree", "spatial_pos", "attn_edge_type", "edge_input", "targets")


@dataclass(frozen=True)
class Rejected:
    """A skipped record: its 1-based ``row`` among the source's records, where it is, its SMILES and the reason."""

    row: int
    where: str
    smiles: str
    reason: str


@dataclass(frozen=True)
class _Record:
    row: int
    where: str
    smiles: str
    mol: Chem.Mol | None
    y: np.ndarray
    unreadable: str  # the reason when ``mol`` is None


class MoleculeDataset(Dataset[GraphItem]):
    """Preprocessed molecules, stored packed (one tensor per field) and served as :class:`GraphItem` views.

    Attributes:
        smiles: the SMILES of every kept molecule (for SDF input, RDKit's canonical SMILES).
        targets: float32 ``(M, C)`` (NaN where a value is missing).
        target_names: the ``C`` target names.
        rejected: the skipped records, in source order.
        skipped: reason → number of skipped records.
        multi_hop_max_dist: ``L`` of every item's ``edge_input``.
    """

    def __init__(
        self,
        items: Sequence[GraphItem],
        smiles: Sequence[str],
        target_names: Sequence[str],
        *,
        rejected: Sequence[Rejected] = (),
        multi_hop_max_dist: int = MULTI_HOP_MAX_DIST,
    ) -> None:
        if not items or len(items) != len(smiles):
            raise ValueError(
                f"a dataset needs at least one item and one SMILES per item, got {len(items)} and {len(smiles)}"
            )
        self._store = {
            "num_nodes": torch.tensor([item.num_nodes for item in items], dtype=torch.long),
            "x": torch.cat([item.x for item in items]),
            "in_degree": torch.cat([item.in_degree for item in items]),
            "spatial_pos": torch.cat([item.spatial_pos.flatten() for item in items]),
            "attn_edge_type": torch.cat([item.attn_edge_type.flatten(0, 1) for item in items]),
            "edge_input": torch.cat([item.edge_input.flatten(0, 1) for item in items]),
            "targets": torch.stack([item.y for item in items]),
        }
        self.smiles = list(smiles)
        self.target_names = list(target_names)
        self.rejected = list(rejected)
        self.multi_hop_max_dist = multi_hop_max_dist
        self._index()

    def _index(self) -> None:
        sizes = self._store["num_nodes"]
        self._node_ptr = [0, *torch.cumsum(sizes, 0).tolist()]
        self._pair_ptr = [0, *torch.cumsum(sizes * sizes, 0).tolist()]

    @property
    def targets(self) -> torch.Tensor:
        return self._store["targets"]

    @property
    def skipped(self) -> dict[str, int]:
        return dict(Counter(r.reason for r in self.rejected))

    def __len__(self) -> int:
        return len(self.smiles)

    def __getitem__(self, index: int) -> GraphItem:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} molecules")
        index %= len(self)
        n = self._node_ptr[index + 1] - self._node_ptr[index]
        nodes = slice(self._node_ptr[index], self._node_ptr[index + 1])
        pairs = slice(self._pair_ptr[index], self._pair_ptr[index + 1])
        store = self._store
        return GraphItem(
            x=store["x"][nodes],
            in_degree=store["in_degree"][nodes],
            spatial_pos=store["spatial_pos"][pairs].view(n, n),
            attn_edge_type=store["attn_edge_type"][pairs].unflatten(0, (n, n)),
            edge_input=store["edge_input"][pairs].unflatten(0, (n, n)),
            y=store["targets"][index],
        )

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the packed tensors and metadata atomically (read back by :meth:`load`)."""
        state = {
            "format": CACHE_FORMAT,
            **self._store,
            "smiles": self.smiles,
            "target_names": self.target_names,
            "rejected": [[r.row, r.where, r.smiles, r.reason] for r in self.rejected],
            "multi_hop_max_dist": self.multi_hop_max_dist,
        }
        with atomic_path(path) as tmp:
            torch.save(state, tmp)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> MoleculeDataset:
        """Read a dataset written by :meth:`save` (``torch.load(weights_only=True)``: no code is unpickled)."""
        state = torch.load(path, weights_only=True)
        if state.get("format") != CACHE_FORMAT:
            raise InputError(f"{path}: not a graphormer2 dataset file of format {CACHE_FORMAT}")
        dataset = cls.__new__(cls)
        dataset._store = {key: state[key] for key in _STORED}
        dataset.smiles = state["smiles"]
        dataset.target_names = state["target_names"]
        dataset.rejected = [Rejected(*entry) for entry in state["rejected"]]
        dataset.multi_hop_max_dist = state["multi_hop_max_dist"]
        dataset._index()
        return dataset


def _check_settings(max_nodes: int, multi_hop_max_dist: int) -> None:
    if max_nodes < 1:
        raise InputError(f"max_nodes must be ≥ 1, got {max_nodes}")
    if multi_hop_max_dist < 1:
        raise InputError(f"multi_hop_max_dist must be ≥ 1, got {multi_hop_max_dist}")


def _cache_file(
    cache_dir: str | os.PathLike[str], stem: str, content_digest: str, settings: dict[str, Any]
) -> Path:
    key = {
        "content": content_digest,
        "format": CACHE_FORMAT,
        "features": FEATURE_VERSION,
        "rdkit": rdkit.__version__,
        **settings,
    }
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
    return Path(cache_dir) / f"{stem}-{digest}.pt"


def _reject_message(rejected: Rejected) -> str:
    return f"{rejected.where}: {_REASON_TEXT[rejected.reason]} ({rejected.reason}): {rejected.smiles!r}"


def _write_rejects(path: str | os.PathLike[str], rejected: Sequence[Rejected]) -> None:
    with atomic_open(path) as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["row", "smiles", "reason"])
        writer.writerows([r.row, r.smiles, r.reason] for r in rejected)


def _build(
    records: Iterable[_Record],
    *,
    source: str,
    target_names: Sequence[str],
    max_nodes: int,
    multi_hop_max_dist: int,
    strict: bool,
    total: int | None,
) -> MoleculeDataset:
    """Featurise and preprocess every usable record; skip (or, strictly, raise on) the others."""
    items, smiles, rejected = [], [], []
    count = 0
    with rdBase.BlockLogs():
        for record in progress(records, total=total, desc=f"preprocessing {source}", unit="mol"):
            count += 1
            mol = record.mol
            if mol is None:
                reason = record.unreadable
            elif mol.GetNumAtoms() == 0:
                reason = "no_atoms"
            elif mol.GetNumAtoms() > max_nodes:
                reason = "too_many_atoms"
            else:
                items.append(preprocess(mol_to_graph(mol), record.y, multi_hop_max_dist))
                smiles.append(record.smiles)
                continue
            skip = Rejected(record.row, record.where, record.smiles, reason)
            if strict:
                raise InputError(_reject_message(skip))
            rejected.append(skip)
    if count == 0:
        raise InputError(f"{source}: no molecules (the source is empty)")
    if not items:
        raise InputError(
            f"{source}: none of the {count} molecules can be used (skipped: {dict(Counter(r.reason for r in rejected))})"
        )
    return MoleculeDataset(
        items, smiles, target_names, rejected=rejected, multi_hop_max_dist=multi_hop_max_dist
    )


def _cached_build(
    build: Callable[[], MoleculeDataset],
    *,
    cache: Path | None,
    strict: bool,
    rejects: str | os.PathLike[str] | None,
) -> MoleculeDataset:
    """Read ``cache`` if it exists, else ``build()`` and store it; then apply ``strict`` and write ``rejects``."""
    if cache is not None and cache.is_file():
        LOGGER.info("reading preprocessed molecules from the cache %s", cache)
        dataset = MoleculeDataset.load(cache)
        if strict and dataset.rejected:
            raise InputError(_reject_message(dataset.rejected[0]))
    else:
        dataset = build()
        if cache is not None:
            LOGGER.info("caching %d preprocessed molecules in %s", len(dataset), cache)
            dataset.save(cache)
    if rejects is not None:
        _write_rejects(rejects, dataset.rejected)
    return dataset


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:
        raise InputError(f"{path}: cannot read the file ({err.strerror})") from err


def _parse_value(text: str, where: str, name: str) -> float:
    value = text.strip()
    if value.lower() in MISSING_VALUES:
        return math.nan
    try:
        return float(value)
    except ValueError:
        raise InputError(f"{where}: {name!r} is {text!r}, not a number") from None


def from_csv(
    path: str | os.PathLike[str],
    smiles_col: str,
    target_cols: Sequence[str],
    *,
    columns: Sequence[str] | None = None,
    max_nodes: int = MAX_NODES,
    multi_hop_max_dist: int = MULTI_HOP_MAX_DIST,
    strict: bool = False,
    rejects: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    limit: int | None = None,
) -> MoleculeDataset:
    """Molecules from a CSV of SMILES and targets (the PCQM4Mv2, ZINC and ogbg-mol* layout).

    Lines starting with ``#`` and blank lines are skipped; every record is one line (no quoted line breaks).

    Args:
        path: the CSV file (UTF-8).
        smiles_col: the SMILES column.
        target_cols: the target columns; empty cells (or NA, NaN, None, null) become NaN.
        columns: column names for a file without a header line (all its lines are data).
        max_nodes: molecules with more atoms are skipped (``too_many_atoms``).
        multi_hop_max_dist: ``L``, the path hops kept per pair.
        strict: raise on the first unusable molecule instead of skipping it.
        rejects: write the skipped rows to this CSV (``row,smiles,reason``).
        cache_dir: store/read the preprocessed dataset here (module docstring).
        limit: read only the first ``limit`` data rows.

    Raises:
        InputError: unreadable or empty file, a column missing from the header (the message lists the header), a
            target cell that is not a number, no usable molecule, or (``strict``) an unusable one.
    """
    file = Path(path)
    _check_settings(max_nodes, multi_hop_max_dist)
    data = _read_bytes(file)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise InputError(f"{file}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    lines = [
        (number, line)
        for number, line in enumerate(text.splitlines(), start=1)
        if line.strip() and not line.startswith("#")
    ]
    rows = zip((number for number, _ in lines), csv.reader(line for _, line in lines), strict=True)
    if columns is None:
        first = next(rows, None)
        if first is None:
            raise InputError(f"{file}: empty file (no header line)")
        header = [name.strip() for name in first[1]]
    else:
        header = list(columns)
    missing = [name for name in (smiles_col, *target_cols) if name not in header]
    if missing:
        raise InputError(f"{file}: no column {missing[0]!r}; the header has: {', '.join(header)}")
    smiles_at = header.index(smiles_col)
    target_at = [header.index(name) for name in target_cols]
    num_rows = len(lines) - (columns is None)
    total = num_rows if limit is None else min(limit, num_rows)

    def records() -> Iterator[_Record]:
        for row, (number, fields) in enumerate(rows, start=1):
            if limit is not None and row > limit:
                return
            fields = fields + [""] * (len(header) - len(fields))
            where = f"{file}:{number} (row {row})"
            smiles = fields[smiles_at].strip()
            y = np.array([_parse_value(fields[i], where, header[i]) for i in target_at], dtype=np.float32)
            yield _Record(row, where, smiles, Chem.MolFromSmiles(smiles), y, "invalid_smiles")

    settings = {
        "loader": "csv",
        "smiles_col": smiles_col,
        "target_cols": list(target_cols),
        "columns": None if columns is None else list(columns),
        "max_nodes": max_nodes,
        "multi_hop_max_dist": multi_hop_max_dist,
        "limit": limit,
    }
    cache = (
        None
        if cache_dir is None
        else _cache_file(cache_dir, file.stem, hashlib.sha256(data).hexdigest(), settings)
    )
    return _cached_build(
        lambda: _build(
            records(),
            source=str(file),
            target_names=target_cols,
            max_nodes=max_nodes,
            multi_hop_max_dist=multi_hop_max_dist,
            strict=strict,
            total=total,
        ),
        cache=cache,
        strict=strict,
        rejects=rejects,
    )


def from_sdf(
    path: str | os.PathLike[str],
    target_props: Sequence[str],
    *,
    max_nodes: int = MAX_NODES,
    multi_hop_max_dist: int = MULTI_HOP_MAX_DIST,
    strict: bool = False,
    rejects: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    limit: int | None = None,
) -> MoleculeDataset:
    """Molecules and numeric properties of an SDF file (used as 2D graphs; coordinates are ignored).

    Records RDKit cannot read are skipped (``invalid_record``); a property a record lacks (or holds as an empty or
    NA value) becomes NaN. Other arguments as :func:`from_csv`; ``limit`` counts records.

    Raises:
        InputError: unreadable file, no records, a requested property that no record has (the message lists the
            properties found), a property value that is not a number, no usable molecule, or (``strict``) an
            unusable one.
    """
    file = Path(path)
    _check_settings(max_nodes, multi_hop_max_dist)
    data = _read_bytes(file)
    supplier = Chem.SDMolSupplier()
    supplier.SetData(data.decode("utf-8", errors="replace"), sanitize=True, removeHs=True)
    with rdBase.BlockLogs():
        num_records = len(supplier)
    total = num_records if limit is None else min(limit, num_records)
    seen: set[str] = set()

    def records() -> Iterator[_Record]:
        for index in range(total):
            row = index + 1
            where = f"{file}: record {row}"
            mol = supplier[index]
            if mol is None:
                yield _Record(
                    row, where, "", None, np.full(len(target_props), np.nan, np.float32), "invalid_record"
                )
                continue
            props = mol.GetPropsAsDict(includePrivate=False, includeComputed=False, autoConvertStrings=False)
            seen.update(props)
            y = np.array(
                [_parse_value(str(props.get(name, "")), where, name) for name in target_props],
                dtype=np.float32,
            )
            yield _Record(row, where, Chem.MolToSmiles(mol), mol, y, "invalid_record")

    def build() -> MoleculeDataset:
        dataset = _build(
            records(),
            source=str(file),
            target_names=target_props,
            max_nodes=max_nodes,
            multi_hop_max_dist=multi_hop_max_dist,
            strict=strict,
            total=total,
        )
        absent = [name for name in target_props if name not in seen]
        if absent:
            raise InputError(
                f"{file}: no record has the property {absent[0]!r}; properties found: {', '.join(sorted(seen))}"
            )
        return dataset

    settings = {
        "loader": "sdf",
        "target_props": list(target_props),
        "max_nodes": max_nodes,
        "multi_hop_max_dist": multi_hop_max_dist,
        "limit": limit,
    }
    cache = (
        None
        if cache_dir is None
        else _cache_file(cache_dir, file.stem, hashlib.sha256(data).hexdigest(), settings)
    )
    return _cached_build(build, cache=cache, strict=strict, rejects=rejects)


def _target_table(
    targets: Sequence[float] | Sequence[Sequence[float]] | np.ndarray | torch.Tensor | None,
    target_names: Sequence[str] | None,
    count: int,
    what: str,
) -> tuple[np.ndarray, list[str]]:
    """In-memory targets as float32 ``(M, C)`` (``(M, 0)`` for none) and their ``C`` names, checked against M."""
    values = np.zeros((count, 0), np.float32) if targets is None else np.asarray(targets, dtype=np.float32)
    if values.ndim == 1:
        values = values[:, None]
    if values.ndim != 2 or values.shape[0] != count:
        raise InputError(f"targets must be (M,) or (M, C) with M = {count} {what}, got shape {values.shape}")
    names = [f"target{c}" for c in range(values.shape[1])] if target_names is None else list(target_names)
    if len(names) != values.shape[1]:
        raise InputError(f"target_names has {len(names)} names for {values.shape[1]} target columns")
    return values, names


def from_smiles(
    smiles: Sequence[str],
    targets: Sequence[float] | Sequence[Sequence[float]] | np.ndarray | torch.Tensor | None = None,
    *,
    target_names: Sequence[str] | None = None,
    max_nodes: int = MAX_NODES,
    multi_hop_max_dist: int = MULTI_HOP_MAX_DIST,
    strict: bool = False,
    rejects: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> MoleculeDataset:
    """Molecules from SMILES strings in memory.

    Args:
        smiles: ``M`` SMILES strings.
        targets: ``(M,)`` or ``(M, C)`` values (NaN = missing); ``None`` for no targets (``C = 0``, prediction).
        target_names: ``C`` names (default ``target0``, ``target1``, …).
        Other arguments as :func:`from_csv`; errors name the list position as ``smiles[i]``.
    """
    _check_settings(max_nodes, multi_hop_max_dist)
    smiles = [str(s) for s in smiles]
    values, names = _target_table(targets, target_names, len(smiles), "SMILES")

    def records() -> Iterator[_Record]:
        for index, text in enumerate(smiles):
            yield _Record(
                index + 1, f"smiles[{index}]", text, Chem.MolFromSmiles(text), values[index], "invalid_smiles"
            )

    cache = None
    if cache_dir is not None:
        digest = hashlib.sha256("\n".join(smiles).encode() + values.tobytes() + str(values.shape).encode())
        settings = {
            "loader": "smiles",
            "target_names": names,
            "max_nodes": max_nodes,
            "multi_hop_max_dist": multi_hop_max_dist,
        }
        cache = _cache_file(cache_dir, "smiles", digest.hexdigest(), settings)
    return _cached_build(
        lambda: _build(
            records(),
            source="smiles list",
            target_names=names,
            max_nodes=max_nodes,
            multi_hop_max_dist=multi_hop_max_dist,
            strict=strict,
            total=len(smiles),
        ),
        cache=cache,
        strict=strict,
        rejects=rejects,
    )


def from_mols(
    mols: Sequence[Chem.Mol | None],
    targets: Sequence[float] | Sequence[Sequence[float]] | np.ndarray | torch.Tensor | None = None,
    *,
    target_names: Sequence[str] | None = None,
    max_nodes: int = MAX_NODES,
    multi_hop_max_dist: int = MULTI_HOP_MAX_DIST,
    strict: bool = False,
    rejects: str | os.PathLike[str] | None = None,
) -> MoleculeDataset:
    """RDKit molecules in memory (``None`` entries, as a supplier yields for unreadable records, are skipped as
    ``invalid_record``); the dataset's SMILES are RDKit's canonical ones. Errors name the position as ``mols[i]``;
    other arguments as :func:`from_smiles` (no cache: the molecules have no source bytes to key it on).
    """
    _check_settings(max_nodes, multi_hop_max_dist)
    mols = list(mols)
    for index, mol in enumerate(mols):
        if mol is not None and not isinstance(mol, Chem.Mol):
            raise InputError(f"mols[{index}]: expected an RDKit Chem.Mol (or None), got {type(mol).__name__}")
    values, names = _target_table(targets, target_names, len(mols), "molecules")

    def records() -> Iterator[_Record]:
        for index, mol in enumerate(mols):
            text = "" if mol is None else Chem.MolToSmiles(mol)
            yield _Record(index + 1, f"mols[{index}]", text, mol, values[index], "invalid_record")

    build = partial(_build, records(), source="molecule list", target_names=names, max_nodes=max_nodes,
                    multi_hop_max_dist=multi_hop_max_dist, strict=strict, total=len(mols))  # fmt: skip
    return _cached_build(build, cache=None, strict=strict, rejects=rejects)


def rdkit_data_file(relative: str) -> Path:
    """A file shipped in the RDKit wheel's data directory (``rdkit.RDConfig.RDDataDir``)."""
    path = Path(RDConfig.RDDataDir) / relative
    if not path.is_file():
        raise InputError(f"{path}: not found in this RDKit installation ({rdkit.__version__})")
    return path


def tpsa_task(**kwargs: Any) -> MoleculeDataset:
    """Topological polar surface area of 4,999 NCI molecules (``NCI/first_5k.tpsa.csv``, spec §8.2).

    The file has a ``#`` comment line and no header: ``SMILES,TPSA`` per line (Daylight/Ertl values). Keyword
    arguments go to :func:`from_csv` (``cache_dir``, ``limit``, …); the target is named ``tpsa``.
    """
    return from_csv(
        rdkit_data_file("NCI/first_5k.tpsa.csv"), "smiles", ["tpsa"], columns=["smiles", "tpsa"], **kwargs
    )


def sdf_properties_task(props: Sequence[str] = SDF_PROPERTIES, **kwargs: Any) -> MoleculeDataset:
    """200 NCI molecules with their numeric SDF properties (``NCI/first_200.props.sdf``).

    ``props`` defaults to the 11 properties every record has (:data:`SDF_PROPERTIES`); ``P1`` is also numeric but
    present in 30 records only. Keyword arguments go to :func:`from_sdf`.
    """
    return from_sdf(rdkit_data_file("NCI/first_200.props.sdf"), props, **kwargs)


def wiener_index(mol: Chem.Mol) -> float:
    """Σ_{i<j} φ(i, j) over connected atom pairs, from RDKit's topological distance matrix (pairs in different
    fragments, at RDKit's 1e8 distance, are left out)."""
    dist = Chem.GetDistanceMatrix(mol)
    return float(dist[dist < mol.GetNumAtoms()].sum() / 2)


def wiener_task(n: int | None = None, **kwargs: Any) -> MoleculeDataset:
    """Wiener index of the first ``n`` (default all 4,999) NCI molecules of ``NCI/first_5K.smi`` (spec §8.1).

    A graph-distance target that 1-WL message passing cannot compute exactly but SPD attention bias can. Targets
    come from RDKit (:func:`wiener_index`), independently of this package's shortest paths. Keyword arguments go to
    :func:`from_smiles`; the target is named ``wiener``.
    """
    path = rdkit_data_file("NCI/first_5K.smi")
    lines = [line.split()[0] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    smiles = lines if n is None else lines[:n]
    with rdBase.BlockLogs():
        mols = [Chem.MolFromSmiles(s) for s in smiles]
    wiener = [math.nan if mol is None else wiener_index(mol) for mol in mols]
    return from_smiles(smiles, wiener, target_names=["wiener"], **kwargs)


def split(
    dataset: Dataset, fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0
) -> tuple[Subset, Subset, Subset]:
    """A deterministic random train/valid/test split: ``floor(f₀ M)`` and ``floor(f₁ M)`` items, the rest to test.

    Raises:
        InputError: not three non-negative fractions summing to 1.
    """
    if len(fractions) != 3 or min(fractions) < 0 or not math.isclose(sum(fractions), 1.0, abs_tol=1e-6):
        raise InputError(
            f"split fractions must be three non-negative numbers summing to 1, got {tuple(fractions)}"
        )
    size = len(dataset)
    order = torch.randperm(size, generator=torch.Generator().manual_seed(seed)).tolist()
    first, second = int(fractions[0] * size), int(fractions[1] * size)
    return (
        Subset(dataset, order[:first]),
        Subset(dataset, order[first : first + second]),
        Subset(dataset, order[first + second :]),
    )
