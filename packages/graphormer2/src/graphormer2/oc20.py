"""OC20 IS2RE and S2EF data from the Open Catalyst Project's LMDB files, as Graphormer-3D items (spec §3.3).

The format is that of fairchem's (formerly ocp's) ``LmdbDataset``: an LMDB environment, either one ``*.lmdb`` file
or a folder of them (read in sorted name order, one after the other; a folder holding ``data.mdb`` is one
environment too). Its keys are the ASCII integers ``b"0"``, ``b"1"`` … and, in some releases, ``b"length"`` with
the record count; each value is a pickled PyTorch Geometric ``Data`` object with

- ``pos`` float ``(n, 3)`` (Å), ``cell`` float ``(1, 3, 3)`` (lattice vectors as rows), ``atomic_numbers`` float
  ``(n,)`` (atomic numbers, used as they are: graphormer2 embeds every element by its atomic number),
  ``tags`` long ``(n,)`` (0 sub-surface slab, 1 surface slab, 2 adsorbate), ``natoms``, ``fixed`` ``(n,)``
  (1 = held fixed in the DFT relaxation), ``sid`` (system id; S2EF also has ``fid``, the frame);
- IS2RE: ``y_init``, ``y_relaxed`` (energies, eV) and ``pos_relaxed`` ``(n, 3)``;
- S2EF: ``y`` (energy, eV) and ``force`` ``(n, 3)`` (eV/Å).

Files written with PyG 1.x keep these attributes in the object's ``__dict__``; PyG 2.x keeps them in
``__dict__["_store"]`` (a storage object whose ``_mapping`` holds them): both are read.

Unpickling runs whatever code a pickle names, so nothing is read without ``trust_pickle=True`` (``--trust-pickle``
on a command line), and even then through :class:`RecordUnpickler`, which resolves only what an OC20 record needs:
PyG's ``Data`` and storage classes (replaced by a stand-in that keeps their state, so ``torch_geometric`` is neither
needed nor imported and no PyG code runs), tensor rebuilding (the storage bytes nested in a pickled tensor are read
with ``torch.load(weights_only=True)``), NumPy arrays and scalars, and plain containers and numbers. Anything else
(``os.system``, ``builtins.eval``, a class of some other package) is refused by name before it is called.

Targets: IS2RE items carry the relaxed energy and Δpos = ``pos_relaxed − pos`` (the criterion of
:meth:`graphormer2.model3d.Graphormer3D.loss`). Graphormer-3D has no force head, so S2EF items carry the energy
only, with Δpos 0 (train them with ``node_loss=False``); the forces are on :meth:`OC20Dataset.record`. The periodic
cell is handled by :func:`graphormer2.pbc.periodic_item` (in-plane images near the adsorbate).
"""

from __future__ import annotations

import _compat_pickle
import bisect
import importlib
import io
import math
import os
import pickle
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from graphormer2.atoms import TAGS, AtomsItem
from graphormer2.pbc import DEFAULT_CUTOFF, periodic_item
from papers_common import InputError

Task = Literal["is2re", "s2ef"]
TASKS = ("is2re", "s2ef")

#: The optional dependency that provides ``lmdb``.
OC20_EXTRA = "graphormer2[oc20]"

_LENGTH_KEY = b"length"
_REQUIRED = ("pos", "cell", "atomic_numbers", "tags")
_TARGETS = {"is2re": ("y_relaxed", "pos_relaxed"), "s2ef": ("y",)}


# --- restricted unpickling -------------------------------------------------------------------------------------


class PickledState:
    """What a pickled PyG ``Data`` or storage object becomes: its attribute state, and nothing else.

    No PyG code runs: ``__setstate__`` stores the pickled dictionary in ``__dict__`` as PyG 1.x's default pickling
    did, so a PyG 2.x ``Data`` keeps its attributes under ``_store`` (whose ``_mapping`` holds them).
    """

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2:  # (instance dict, slot dict)
            parts = [part for part in state if part is not None]
        else:
            parts = [state]
        for part in parts:
            if not isinstance(part, dict):
                raise pickle.UnpicklingError(
                    f"a PyG object's pickled state must be a dict, got {type(part).__name__}"
                )
            self.__dict__.update(part)

    def __repr__(self) -> str:
        return f"PickledState({sorted(self.__dict__)})"


def _stand_in_class(cls: Any) -> type[PickledState]:
    if not (isinstance(cls, type) and issubclass(cls, PickledState)):
        raise pickle.UnpicklingError(f"only PyG objects may be rebuilt here, not {cls!r}")
    return cls


def _reconstructor(cls: Any, base: Any, state: Any) -> PickledState:
    """``copyreg._reconstructor`` (pickle protocols 0 and 1) for stand-in objects only."""
    if base is not object or state is not None:
        raise pickle.UnpicklingError("copyreg._reconstructor: only plain objects may be rebuilt")
    return object.__new__(_stand_in_class(cls))


def _newobj(cls: Any, *args: Any) -> PickledState:
    """``copyreg.__newobj__`` for stand-in objects only."""
    if args:
        raise pickle.UnpicklingError("copyreg.__newobj__: PyG objects are rebuilt without arguments")
    return object.__new__(_stand_in_class(cls))


def _latin1_encode(text: Any, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    """``_codecs.encode`` as protocol 2 uses it for bytes (``encode(str, "latin1")``), and no other codec."""
    if not isinstance(text, str) or encoding.replace("-", "").replace("_", "").lower() != "latin1":
        raise pickle.UnpicklingError(f"_codecs.encode: only latin1 text is decoded, not {encoding!r}")
    return text.encode("latin1", errors)


def _storage_from_bytes(data: Any) -> Any:
    """``torch.storage._load_from_bytes``, whose nested pickle torch reads with ``weights_only=False``: here with
    ``weights_only=True``, so the storage inside a tensor cannot smuggle code in either."""
    if not isinstance(data, bytes | bytearray):
        raise pickle.UnpicklingError("torch.storage._load_from_bytes: expected bytes")
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


class _Guarded:
    """A Python function as the unpickler hands it out: callable, but a pickle's BUILD cannot rewrite its
    attributes (``__defaults__`` …), which would change the function for the rest of the process."""

    __slots__ = ("function",)

    def __init__(self, function: Any) -> None:
        object.__setattr__(self, "function", function)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.function(*args, **kwargs)

    def __setattr__(self, name: str, value: Any) -> None:
        raise pickle.UnpicklingError(f"{self.function.__qualname__} cannot be modified")

    def __setstate__(self, state: Any) -> None:
        raise pickle.UnpicklingError(f"{self.function.__qualname__} cannot be modified")


class _NumpyGlobal:
    """``name`` in the first importable module of ``modules``, looked up when a pickle names it (NumPy 2 moved
    ``numpy.core`` to ``numpy._core``; old OC20 files name the former)."""

    def __init__(self, name: str, *modules: str) -> None:
        self.name, self.modules = name, modules

    def resolve(self) -> Any:
        for module in self.modules:
            try:
                return getattr(importlib.import_module(module), self.name)
            except (ImportError, AttributeError):
                continue
        raise pickle.UnpicklingError(f"NumPy has no {self.name} in {' or '.join(self.modules)}")


def _allowed_globals() -> dict[tuple[str, str], Any]:
    allowed: dict[tuple[str, str], Any] = {}
    for module in ("torch_geometric.data.data", "torch_geometric.data"):
        for name in ("Data", "BaseData", "DataEdgeAttr", "DataTensorAttr"):
            allowed[module, name] = PickledState
    for name in ("BaseStorage", "GlobalStorage", "NodeStorage", "EdgeStorage"):
        allowed["torch_geometric.data.storage", name] = PickledState
    for name in ("_rebuild_tensor", "_rebuild_tensor_v2"):
        allowed["torch._utils", name] = _Guarded(getattr(torch._utils, name))
    allowed["torch.storage", "_load_from_bytes"] = _Guarded(_storage_from_bytes)
    allowed["torch", "Size"] = torch.Size
    for name in ("float16", "half", "bfloat16", "float32", "float", "float64", "double", "complex64",
                 "complex128", "uint8", "int8", "int16", "short", "int32", "int", "int64", "long", "bool"):  # fmt: skip
        if isinstance(getattr(torch, name, None), torch.dtype):
            allowed["torch", name] = getattr(torch, name)
    for old, new in (
        ("numpy.core.multiarray", "numpy._core.multiarray"),
        ("numpy.core.numeric", "numpy._core.numeric"),
    ):
        names = ("_reconstruct", "scalar") if old.endswith("multiarray") else ("_frombuffer",)
        for name in names:
            resolver = _NumpyGlobal(name, new, old)
            allowed[old, name] = allowed[new, name] = resolver
    allowed["numpy", "ndarray"] = _NumpyGlobal("ndarray", "numpy")
    allowed["numpy", "dtype"] = _NumpyGlobal("dtype", "numpy")
    for name in ("dict", "list", "tuple", "set", "frozenset", "int", "float", "complex", "bool", "str", "bytes",
                 "bytearray", "slice", "range", "object"):  # fmt: skip
        allowed["builtins", name] = getattr(__import__("builtins"), name)
    allowed["collections", "OrderedDict"] = OrderedDict
    allowed["_codecs", "encode"] = _Guarded(_latin1_encode)
    allowed["copyreg", "_reconstructor"] = _Guarded(_reconstructor)
    allowed["copyreg", "__newobj__"] = _Guarded(_newobj)
    return allowed


ALLOWED_GLOBALS = _allowed_globals()
"""``(module, name)`` → what an OC20 record may name in its pickle; nothing else is imported or called."""


class RecordUnpickler(pickle.Unpickler):
    """A :class:`pickle.Unpickler` that resolves only :data:`ALLOWED_GLOBALS`.

    Anything else raises :class:`~papers_common.InputError` naming ``module.name`` and ``where``, before the
    global is imported or called.
    """

    def __init__(self, file: io.BytesIO, where: str) -> None:
        super().__init__(file)
        self.where = where

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in ALLOWED_GLOBALS:
            # protocols 0–2 name Python 2's modules (__builtin__, copy_reg): the compatibility names, checked below
            module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
            module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        found = ALLOWED_GLOBALS.get((module, name))
        if found is None:
            raise InputError(
                f"{self.where}: refusing to unpickle {module}.{name}: an OC20 record holds only PyG Data, "
                "tensors, NumPy arrays and plain containers (it was neither imported nor called)"
            )
        return found.resolve() if isinstance(found, _NumpyGlobal) else found


def unpickle_record(data: bytes, where: str) -> Any:
    """One record's bytes through :class:`RecordUnpickler`; any failure is an :class:`InputError` naming ``where``."""
    try:
        return RecordUnpickler(io.BytesIO(data), where).load()
    except InputError:
        raise
    except Exception as err:
        # a corrupt or refused pickle: UnpicklingError, EOFError, torch's weights-only refusal, a bad constructor
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InputError(f"{where}: not a readable OC20 record ({type(err).__name__}: {reason})") from None


# --- records ---------------------------------------------------------------------------------------------------


def data_fields(data: Any) -> dict[str, Any]:
    """The public attributes of a PyG ``Data`` object, old (PyG 1.x: flat ``__dict__``) or new (PyG 2.x:
    ``__dict__["_store"]``), of its unpickled stand-in, or of a plain dict; names starting with ``_`` are left out."""
    if isinstance(data, dict):
        state = data
    else:
        state = getattr(data, "__dict__", None)
        if not isinstance(state, dict):
            return {}
    fields = {key: value for key, value in state.items() if not key.startswith("_")}
    store = state.get("_store")
    if store is not None:
        inner = store if isinstance(store, dict) else getattr(store, "__dict__", {})
        mapping = inner.get("_mapping", inner)
        if isinstance(mapping, dict):
            fields.update({key: value for key, value in mapping.items() if not key.startswith("_")})
    return fields


def _tensor(fields: dict[str, Any], key: str, where: str) -> torch.Tensor:
    value = fields[key]
    if (
        isinstance(value, np.ndarray) and not value.flags.writeable
    ):  # NumPy's protocol-5 arrays may be read-only
        value = value.copy()
    try:
        tensor = torch.as_tensor(value)
    except (TypeError, ValueError, RuntimeError):
        raise InputError(f"{where}: {key} is not numeric ({type(value).__name__})") from None
    if tensor.is_complex():
        raise InputError(f"{where}: {key} has dtype {tensor.dtype}, expected real numbers")
    return tensor.detach().cpu()


def _shaped(fields: dict[str, Any], key: str, shape: tuple[int, ...], where: str) -> torch.Tensor:
    tensor = _tensor(fields, key, where)
    if tuple(tensor.shape) != shape:
        raise InputError(f"{where}: {key} has shape {tuple(tensor.shape)}, expected {shape}")
    return tensor


def _integral(tensor: torch.Tensor, key: str, where: str) -> torch.Tensor:
    if tensor.is_floating_point() and not bool((tensor == tensor.round()).all()):
        raise InputError(f"{where}: {key} must hold whole numbers, got {tensor.tolist()[:8]}")
    return tensor.to(torch.long)


def _number(fields: dict[str, Any], key: str, where: str) -> float:
    value = fields[key]
    try:
        number = torch.as_tensor(value)
    except (TypeError, ValueError, RuntimeError):
        number = None
    if number is None or number.numel() != 1 or number.dtype == torch.bool or number.is_complex():
        raise InputError(f"{where}: {key} must be one number, got {type(value).__name__} {value!r:.60}")
    return float(number.reshape(()))


def _identifier(value: Any) -> int | str | None:
    if isinstance(value, str | int):
        return value
    try:
        number = torch.as_tensor(value)
    except (TypeError, ValueError, RuntimeError):
        return None
    return int(number.reshape(())) if number.numel() == 1 and not number.is_floating_point() else None


@dataclass
class OC20Record:
    """One OC20 system as stored, before periodic images (tensors on the CPU, positions in the default dtype).

    Attributes:
        name: ``file: record key``, shown in error messages and carried by the item.
        pos: float ``(n, 3)`` initial (IS2RE) or current (S2EF) positions, Å. cell: float ``(3, 3)``, rows are
            lattice vectors. atomic_numbers: long ``(n,)``. tags: long ``(n,)``. fixed: bool ``(n,)`` or None.
        energy: the task's target (IS2RE ``y_relaxed``, S2EF ``y``, eV); NaN when read without targets.
        pos_relaxed: float ``(n, 3)`` (IS2RE) or None. forces: float ``(n, 3)`` (S2EF ``force``, eV/Å) or None.
        energy_init: IS2RE ``y_init`` or None. sid, fid: the system and frame ids, where stored.
    """

    name: str
    pos: torch.Tensor
    cell: torch.Tensor
    atomic_numbers: torch.Tensor
    tags: torch.Tensor
    fixed: torch.Tensor | None = None
    energy: float = math.nan
    pos_relaxed: torch.Tensor | None = None
    forces: torch.Tensor | None = None
    energy_init: float | None = None
    sid: int | str | None = None
    fid: int | str | None = None

    @classmethod
    def from_data(
        cls, data: Any, *, task: Task = "is2re", targets: bool = True, name: str = ""
    ) -> OC20Record:
        """A record from a PyG ``Data`` object (old or new layout, or its unpickled stand-in) with OC20's fields.

        Raises:
            InputError: a required field is missing (``pos``, ``cell``, ``atomic_numbers``, ``tags``, and with
                ``targets`` IS2RE's ``y_relaxed`` and ``pos_relaxed`` or S2EF's ``y``), not numeric or of the wrong
                shape, or ``natoms`` disagrees with ``pos``. The message names ``name``.
        """
        where = name or "OC20 record"
        task = _check_task(task)
        fields = data_fields(data)
        needed = _REQUIRED + (_TARGETS[task] if targets else ())
        missing = [key for key in needed if key not in fields or fields[key] is None]
        if missing:
            found = ", ".join(sorted(fields)) or "nothing"
            raise InputError(
                f"{where}: no {', '.join(missing)} (an OC20 {task.upper()} record needs {', '.join(needed)}; "
                f"found {found})"
            )
        dtype = torch.get_default_dtype()
        pos = _tensor(fields, "pos", where)
        if pos.dim() != 2 or pos.shape[1] != 3 or pos.shape[0] < 1:
            raise InputError(f"{where}: pos has shape {tuple(pos.shape)}, expected (n, 3) with n ≥ 1")
        n = pos.shape[0]
        cell = _tensor(fields, "cell", where)
        if tuple(cell.shape) not in ((1, 3, 3), (3, 3)):
            raise InputError(f"{where}: cell has shape {tuple(cell.shape)}, expected (1, 3, 3) or (3, 3)")
        atomic_numbers = _integral(_shaped(fields, "atomic_numbers", (n,), where), "atomic_numbers", where)
        tags = _integral(_shaped(fields, "tags", (n,), where), "tags", where)
        if fields.get("natoms") is not None and _number(fields, "natoms", where) != n:
            raise InputError(f"{where}: natoms is {_number(fields, 'natoms', where):g} but pos has {n} atoms")
        fixed = None
        if fields.get("fixed") is not None:
            fixed = _shaped(fields, "fixed", (n,), where).to(torch.bool)

        def optional_positions(key: str) -> torch.Tensor | None:
            return _shaped(fields, key, (n, 3), where).to(dtype) if fields.get(key) is not None else None

        energy_key = _TARGETS[task][0]
        has_energy = fields.get(energy_key) is not None
        return cls(
            name=name,
            pos=pos.to(dtype),
            cell=cell.reshape(3, 3).to(dtype),
            atomic_numbers=atomic_numbers,
            tags=tags,
            fixed=fixed,
            energy=_number(fields, energy_key, where) if has_energy else math.nan,
            pos_relaxed=optional_positions("pos_relaxed"),
            forces=optional_positions("force"),
            energy_init=_number(fields, "y_init", where) if fields.get("y_init") is not None else None,
            sid=_identifier(fields.get("sid")),
            fid=_identifier(fields.get("fid")),
        )

    def to_item(self, *, keep_tags: Iterable[int] = TAGS, cutoff: float = DEFAULT_CUTOFF) -> AtomsItem:
        """The Graphormer-3D item: the atoms whose tag is in ``keep_tags`` plus their in-plane periodic images
        (:func:`graphormer2.pbc.periodic_item`), the energy target and, where ``pos_relaxed`` is known, Δpos.

        Raises:
            InputError: no atom has a kept tag, or :func:`periodic_item` / :class:`AtomsItem` refuse the system
                (an atomic number outside 1 … 118, a tag outside 0 … 2, non-finite positions).
        """
        keep = _check_tags(keep_tags)
        mask = torch.isin(self.tags, torch.tensor(keep, dtype=torch.long))
        if not bool(mask.any()):
            raise InputError(f"{self.name or 'OC20 record'}: no atom has a tag in {keep}")
        return periodic_item(
            self.cell,
            self.pos[mask],
            self.atomic_numbers[mask],
            self.tags[mask],
            energy=self.energy,
            pos_relaxed=None if self.pos_relaxed is None else self.pos_relaxed[mask],
            cutoff=cutoff,
            name=self.name,
        )


def _check_task(task: str) -> Task:
    if task not in TASKS:
        raise InputError(f"task must be 'is2re' or 's2ef', got {task!r}")
    return task  # type: ignore[return-value]


def _check_tags(tags: Iterable[int]) -> tuple[int, ...]:
    keep = tuple(sorted({int(tag) for tag in tags}))
    if not keep or not set(keep) <= set(TAGS):
        raise InputError(f"keep_tags must be a non-empty subset of {TAGS}, got {keep}")
    return keep


# --- the dataset -----------------------------------------------------------------------------------------------


def _lmdb() -> Any:
    try:
        import lmdb
    except ImportError as err:
        raise InputError(
            f"reading OC20 LMDB files needs lmdb, which is not installed ({err}): pip install '{OC20_EXTRA}'"
        ) from None
    return lmdb


_OPEN: dict[tuple[str, bool], list[Any]] = {}
"""The LMDB environments open in this process, ``(file, subdir)`` → ``[environment, users]``: LMDB allows one
environment per file and process, so datasets reading the same file share it. A forked ``DataLoader`` worker
inherits it, as fairchem's workers do (read-only and without locks, the inherited memory map stays valid)."""


def _acquire(lmdb: Any, file: Path, subdir: bool) -> Any:
    key = (str(file.resolve()), subdir)
    if key not in _OPEN:
        try:
            env = lmdb.open(
                str(file), subdir=subdir, readonly=True, lock=False, readahead=False, meminit=False
            )
        except lmdb.Error as err:
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise InputError(f"{file}: not a readable LMDB database ({reason})") from None
        _OPEN[key] = [env, 0]
    _OPEN[key][1] += 1
    return _OPEN[key][0]


def _release(file: Path, subdir: bool) -> None:
    key = (str(file.resolve()), subdir)
    if key in _OPEN:
        _OPEN[key][1] -= 1
        if _OPEN[key][1] <= 0:
            _OPEN.pop(key)[0].close()


def _environments(path: Path) -> list[tuple[Path, bool]]:
    """``(path, subdir)`` of each LMDB environment under ``path``, in reading order."""
    if path.is_file():
        return [(path, False)]
    if not path.is_dir():
        raise InputError(f"{path}: no such OC20 LMDB file or folder")
    if (path / "data.mdb").is_file():
        return [(path, True)]
    files = sorted(p for p in path.glob("*.lmdb") if p.is_file())
    if not files:
        raise InputError(f"{path}: the folder holds no *.lmdb files")
    return [(file, False) for file in files]


class OC20Dataset(Dataset[AtomsItem]):
    """OC20 IS2RE or S2EF systems from LMDB files, one record unpickled per ``__getitem__`` (see the module).

    The environments are opened once to count the records, then again lazily when an item is read, and shared
    with any other dataset of this process reading the same file; :meth:`close` (or ``with``) lets them go. The
    dataset pickles without them, for ``DataLoader`` workers that spawn rather than fork.

    Args:
        path: a ``*.lmdb`` file, or a folder of them (sorted by name) or holding ``data.mdb``.
        task: ``"is2re"`` (target: ``y_relaxed`` and Δpos = ``pos_relaxed − pos``) or ``"s2ef"`` (target: ``y``;
            the item has Δpos 0, the forces are on :meth:`record`).
        trust_pickle: records are pickles; read them only when True (``--trust-pickle``), and then through
            :class:`RecordUnpickler`.
        targets: require the task's targets (False reads unlabelled records such as the test splits: energy NaN,
            Δpos 0).
        keep_tags: the atoms to keep (default all; ``(1, 2)`` drops the sub-surface slab, as some OC20 baselines
            do); periodic images are added after this selection.
        cutoff: Å, the image cutoff of :func:`graphormer2.pbc.periodic_item`.
        limit: read at most this many records (the first ones).

    Raises:
        InputError: ``path`` is missing or not an LMDB; ``trust_pickle`` is False; the database has no records;
            a bad argument; and, on reading, a record that is missing, refused by the unpickler or invalid
            (see :meth:`OC20Record.from_data`). Messages name the file and the record key.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        task: Task = "is2re",
        trust_pickle: bool = False,
        targets: bool = True,
        keep_tags: Iterable[int] = TAGS,
        cutoff: float = DEFAULT_CUTOFF,
        limit: int | None = None,
    ) -> None:
        self.path = Path(path)
        self.task = _check_task(task)
        self.targets = bool(targets)
        self.keep_tags = _check_tags(keep_tags)
        if not cutoff > 0:
            raise InputError(f"cutoff must be positive, got {cutoff}")
        self.cutoff = float(cutoff)
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise InputError(f"limit must be a positive integer or None, got {limit!r}")
        self._sources = _environments(self.path)
        if not trust_pickle:
            raise InputError(
                f"{self.path}: OC20 LMDB records are Python pickles, and unpickling an untrusted file can run "
                "arbitrary code; pass trust_pickle=True (--trust-pickle) only for files from a source you trust"
            )
        self._lmdb = _lmdb()
        self._envs: list[Any] = [None] * len(self._sources)
        lengths = []
        for index, (file, subdir) in enumerate(self._sources):
            env = _acquire(self._lmdb, file, subdir)
            try:
                lengths.append(self._count(index, env))
            finally:
                _release(file, subdir)
        self._lengths = lengths
        self._ends = [sum(lengths[: i + 1]) for i in range(len(lengths))]
        total = self._ends[-1] if self._ends else 0
        if total == 0:
            raise InputError(f"{self.path}: the OC20 LMDB holds no records")
        self._length = total if limit is None else min(total, limit)

    def _count(self, index: int, env: Any) -> int:
        file = self._sources[index][0]
        try:
            with env.begin() as txn:
                stored = txn.get(_LENGTH_KEY)
            entries = int(env.stat()["entries"])
        except self._lmdb.Error as err:
            raise InputError(f"{file}: not a readable LMDB database ({err})") from None
        if stored is None:
            return entries
        length = unpickle_record(stored, f"{file}: record 'length'")
        if isinstance(length, bool) or not isinstance(length, int) or not 0 <= length < entries:
            raise InputError(
                f"{file}: record 'length' is {length!r}, expected a record count below the {entries} entries"
            )
        return length

    def _environment(self, index: int) -> Any:
        if self._envs[index] is None:
            self._envs[index] = _acquire(self._lmdb, *self._sources[index])
        return self._envs[index]

    def __len__(self) -> int:
        return self._length

    def _locate(self, index: int) -> tuple[int, int]:
        if isinstance(index, bool) or not isinstance(index, int | np.integer):
            raise TypeError(f"OC20Dataset indices are integers, got {type(index).__name__}")
        index = int(index)  # samplers give NumPy integers
        if index < 0:
            index += self._length
        if not 0 <= index < self._length:
            raise IndexError(f"index out of range for {self._length} OC20 records")
        source = bisect.bisect_right(self._ends, index)
        return source, index - (self._ends[source - 1] if source else 0)

    def record(self, index: int) -> OC20Record:
        """Record ``index`` (over all files, in order) as stored: positions, cell, targets, forces, ids."""
        source, key = self._locate(index)
        file = self._sources[source][0]
        where = f"{file}: record {key}"
        env = self._environment(source)
        try:
            with env.begin() as txn:
                value = txn.get(str(key).encode("ascii"))
        except self._lmdb.Error as err:
            raise InputError(f"{where}: cannot be read ({err})") from None
        if value is None:
            raise InputError(f"{where}: no such key, though the file counts {self._lengths[source]} records")
        data = unpickle_record(value, where)
        return OC20Record.from_data(data, task=self.task, targets=self.targets, name=where)

    def __getitem__(self, index: int) -> AtomsItem:
        return self.record(index).to_item(keep_tags=self.keep_tags, cutoff=self.cutoff)

    def close(self) -> None:
        """Let go of the environments this dataset opened (closed when no other dataset uses them; a later read
        opens them again)."""
        for index, env in enumerate(self._envs):
            if env is not None:
                _release(*self._sources[index])
        self._envs = [None] * len(self._sources)

    def __enter__(self) -> OC20Dataset:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_envs"], state["_lmdb"] = [None] * len(self._sources), None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lmdb = _lmdb()


def read_oc20_lmdb(
    path: str | os.PathLike[str],
    *,
    task: Task = "is2re",
    trust_pickle: bool = False,
    targets: bool = True,
    keep_tags: Sequence[int] = TAGS,
    cutoff: float = DEFAULT_CUTOFF,
    limit: int | None = None,
) -> list[AtomsItem]:
    """Every record (or the first ``limit``) of an OC20 LMDB as items; the arguments are :class:`OC20Dataset`'s.

    Prefer :class:`OC20Dataset` for the full splits, which it reads one record at a time.
    """
    with OC20Dataset(
        path,
        task=task,
        trust_pickle=trust_pickle,
        targets=targets,
        keep_tags=keep_tags,
        cutoff=cutoff,
        limit=limit,
    ) as dataset:
        return [dataset[index] for index in range(len(dataset))]


__all__ = [
    "ALLOWED_GLOBALS",
    "OC20_EXTRA",
    "TASKS",
    "OC20Dataset",
    "OC20Record",
    "PickledState",
    "RecordUnpickler",
    "data_fields",
    "read_oc20_lmdb",
    "unpickle_record",
]
