"""OC20 LMDB records (IS2RE and S2EF) read back into Graphormer-3D items, and the restricted unpickler.

The databases are written here, in the layouts of the real files: PyG 2.x ``Data`` (attributes under ``_store``)
and PyG 1.x ``Data`` (a flat ``__dict__``). The test's own stand-in classes are pickled under PyG's class names
(``torch_geometric.data.data.Data`` …), the names the reader maps, so the allow-list is exercised as in a real file
and no class of this module has to be allowed.
"""

from __future__ import annotations

import math
import os
import pickle
import warnings

import pytest

lmdb = pytest.importorskip("lmdb")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from graphormer2.atoms import collate_atoms  # noqa: E402
from graphormer2.model3d import Graphormer3D, Graphormer3DConfig  # noqa: E402
from graphormer2.oc20 import OC20Dataset, OC20Record, data_fields, read_oc20_lmdb, unpickle_record  # noqa: E402
from graphormer2.pbc import periodic_item  # noqa: E402

from papers_common import InputError  # noqa: E402

torch.set_num_threads(1)

PYG_DATA = ("torch_geometric.data.data", "Data")
PYG_STORAGE = ("torch_geometric.data.storage", "GlobalStorage")


class OldData:
    """A PyG 1.x ``Data``: attributes in a flat ``__dict__``."""

    def __init__(self, **fields) -> None:
        self.__dict__.update(fields)


class NewData:
    """A PyG 2.x ``Data``: attributes in ``_store._mapping``, the storage pointing back at its parent."""

    def __init__(self, **fields) -> None:
        self._store = NewStorage(fields, self)


class NewStorage:
    def __init__(self, mapping: dict, parent: NewData) -> None:
        self._mapping = mapping
        self._parent = parent


class Stranger:
    """A class of this module, which the reader must refuse when a record names it."""

    def __init__(self) -> None:
        self.pos = torch.zeros(1, 3)


class Shell:
    """Unpickling this would run a shell command that creates ``marker``."""

    def __init__(self, marker) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch '{self.marker}'",)


class Eval:
    def __init__(self, marker) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return eval, (f"__import__('pathlib').Path({self.marker!r}).touch()",)


class NestedStorage:
    """A 'tensor storage' whose nested pickle, which torch itself reads with weights_only=False, runs code."""

    def __init__(self, marker) -> None:
        self.inner = pickle.dumps(Shell(marker), protocol=2)

    def __reduce__(self):
        return torch.storage._load_from_bytes, (self.inner,)


def poison_defaults(marker) -> bytes:
    """A pickle that would set torch's ``_rebuild_tensor_v2.__defaults__`` to ``(7,)`` for the rest of the process
    (BUILD on an allowed global, with a slot state): plain ``pickle.loads`` does it."""
    name = b"__defaults__"
    return (
        b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\nN}X"
        + len(name).to_bytes(4, "little")
        + name
        + b"K\x07\x85s\x86b."
    )


def pickle_as_pyg(obj, protocol: int = 2) -> bytes:
    """``obj`` pickled with the test's stand-in classes renamed to PyG's (protocols 0–2 name classes in text)."""
    data = pickle.dumps(obj, protocol=protocol)
    for cls, (module, name) in ((OldData, PYG_DATA), (NewData, PYG_DATA), (NewStorage, PYG_STORAGE)):
        ours = f"c{cls.__module__}\n{cls.__qualname__}\n".encode()
        data = data.replace(ours, f"c{module}\n{name}\n".encode())
    assert __name__.encode() not in data or b"Stranger" in data
    return data


def write_lmdb(path, records: dict[bytes, bytes]) -> None:
    env = lmdb.open(str(path), subdir=False, map_size=1 << 24)
    with env.begin(write=True) as txn:
        for key, value in records.items():
            txn.put(key, value)
    env.close()


def system(seed: int, slab: int, adsorbate: int) -> dict:
    """OC20 fields of a slab + adsorbate in a 6 Å × 6 Å cell (float32 and OC20's dtypes)."""
    g = torch.Generator().manual_seed(seed)
    n = slab + adsorbate
    pos = torch.rand(n, 3, generator=g) * torch.tensor([6.0, 6.0, 2.0])
    pos[slab:, 2] += 4.0
    tags = torch.tensor([0] * (slab // 2) + [1] * (slab - slab // 2) + [2] * adsorbate)
    numbers = torch.cat(
        [torch.tensor([78.0, 29.0, 79.0])[torch.arange(slab) % 3], torch.tensor([6.0, 8.0, 1.0])[:adsorbate]]
    )
    return {
        "pos": pos,
        "cell": torch.tensor([[[6.0, 0.0, 0.0], [0.5, 6.0, 0.0], [0.0, 0.0, 25.0]]]),
        "atomic_numbers": numbers,
        "natoms": n,
        "tags": tags,
        "fixed": (tags == 0).float(),
        "sid": 1000 + seed,
        "y_init": 1.25 + seed,
        "y_relaxed": -0.5 - seed,
        "pos_relaxed": pos + 0.01 * torch.rand(n, 3, generator=g),
    }


SYSTEMS = [system(0, 4, 2), system(1, 5, 1), system(2, 6, 3)]


def new_layout(fields: dict) -> bytes:
    """Record 0: a real ``torch_geometric.data.Data`` when PyG is installed, else its layout rebuilt here."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            from torch_geometric.data import Data
    except ImportError:
        return pickle_as_pyg(NewData(**fields))
    return pickle.dumps(Data(**fields), protocol=pickle.HIGHEST_PROTOCOL)


def as_numpy(fields: dict) -> dict:
    return {k: v.numpy() if isinstance(v, torch.Tensor) else v for k, v in fields.items()}


@pytest.fixture
def is2re(tmp_path):
    """Three IS2RE records: PyG 2.x layout, PyG 1.x layout (protocol 0: copyreg and Python 2 names), and PyG 2.x
    layout holding NumPy arrays; plus the ``length`` key of some releases."""
    path = tmp_path / "is2re.lmdb"
    write_lmdb(
        path,
        {
            b"0": new_layout(SYSTEMS[0]),
            b"1": pickle_as_pyg(OldData(**SYSTEMS[1]), protocol=0),
            b"2": pickle_as_pyg(NewData(**as_numpy(SYSTEMS[2]))),
            b"length": pickle.dumps(3),
        },
    )
    return path


def tiny_model() -> Graphormer3D:
    torch.manual_seed(0)
    config = Graphormer3DConfig(layers=1, blocks=1, embed_dim=16, ffn_embed_dim=16, attention_heads=2,
                                num_kernel=8, attention_dropout=0.0, head_dropout=0.0)  # fmt: skip
    return Graphormer3D(config).eval()


def test_is2re_records_read_back_exactly_and_run_through_the_model(is2re) -> None:
    items = read_oc20_lmdb(is2re, trust_pickle=True)
    assert len(items) == 3
    with OC20Dataset(is2re, trust_pickle=True) as dataset:
        assert len(dataset) == 3
        for index, (fields, item) in enumerate(zip(SYSTEMS, items, strict=True)):
            record = dataset.record(index)
            n = fields["natoms"]
            assert record.name == f"{is2re}: record {index}"
            assert torch.equal(record.pos, fields["pos"])
            assert torch.equal(record.cell, fields["cell"][0])
            assert torch.equal(record.atomic_numbers, fields["atomic_numbers"].long())
            assert torch.equal(record.tags, fields["tags"])
            assert torch.equal(record.fixed, fields["tags"] == 0)
            assert torch.equal(record.pos_relaxed, fields["pos_relaxed"])
            assert record.energy == fields["y_relaxed"]
            assert record.energy_init == fields["y_init"]
            assert record.sid == fields["sid"]
            assert record.forces is None
            # the item: the n real atoms first, then the periodic images of periodic_item itself
            assert torch.equal(item.pos[:n], fields["pos"])
            assert torch.equal(item.atoms[:n], fields["atomic_numbers"].long())
            assert torch.equal(item.tags[:n], fields["tags"])
            assert int(item.real_mask.sum()) == n
            assert bool(item.real_mask[:n].all())
            assert item.energy == fields["y_relaxed"]
            assert torch.equal(item.deltapos[:n], fields["pos_relaxed"] - fields["pos"])
            assert item.name == record.name
            expected = periodic_item(fields["cell"][0], fields["pos"], fields["atomic_numbers"], fields["tags"],
                                     energy=fields["y_relaxed"], pos_relaxed=fields["pos_relaxed"])  # fmt: skip
            assert len(item.atoms) > n
            for name in ("atoms", "tags", "pos", "real_mask", "deltapos"):
                assert torch.equal(getattr(item, name), getattr(expected, name)), name
        assert torch.equal(dataset[-1].pos, items[-1].pos)
        with pytest.raises(IndexError):
            dataset[3]

    batch = collate_atoms(items)
    energy, deltapos = tiny_model()(batch.atoms, batch.tags, batch.pos, batch.real_mask)
    assert energy.shape == (3,)
    assert deltapos.shape == batch.pos.shape
    assert torch.isfinite(energy).all()
    assert torch.isfinite(deltapos).all()

    # keep_tags drops the sub-surface atoms before the images are added; limit reads the first records
    (top,) = read_oc20_lmdb(is2re, trust_pickle=True, keep_tags=(1, 2), limit=1)
    keep = SYSTEMS[0]["tags"] > 0
    assert torch.equal(top.pos[: int(keep.sum())], SYSTEMS[0]["pos"][keep])
    assert not (top.tags == 0).any()


def test_the_dataset_pickles_for_workers_and_reads_a_folder_of_files(is2re, tmp_path) -> None:
    folder = tmp_path / "split"
    folder.mkdir()
    write_lmdb(folder / "data.0001.lmdb", {b"0": new_layout(SYSTEMS[2])})
    write_lmdb(folder / "data.0000.lmdb", {b"0": new_layout(SYSTEMS[0]), b"1": new_layout(SYSTEMS[1])})
    dataset = OC20Dataset(folder, trust_pickle=True)
    dataset[0]  # opens an environment, which must not travel with the pickle
    copy = pickle.loads(pickle.dumps(dataset))
    assert len(copy) == 3
    for index, fields in enumerate(SYSTEMS):
        assert torch.equal(copy.record(index).pos, fields["pos"])
    assert copy.record(2).name == f"{folder / 'data.0001.lmdb'}: record 0"
    loader = torch.utils.data.DataLoader(copy, batch_size=2, collate_fn=collate_atoms)
    assert [len(batch) for batch in loader] == [2, 1]
    dataset.close()
    copy.close()


def test_s2ef_records_carry_energy_and_forces(tmp_path) -> None:
    path = tmp_path / "s2ef.lmdb"
    frames = []
    for seed in range(3):
        fields = system(seed, 4, 2)
        fields = {k: v for k, v in fields.items() if k not in ("y_init", "y_relaxed", "pos_relaxed")}
        fields.update(y=-3.5 + seed, force=torch.full((6, 3), 0.25 * seed), fid=seed)
        frames.append(fields)
    write_lmdb(path, {str(i).encode(): new_layout(fields) for i, fields in enumerate(frames)})
    with OC20Dataset(path, task="s2ef", trust_pickle=True) as dataset:
        for index, fields in enumerate(frames):
            record, item = dataset.record(index), dataset[index]
            assert record.energy == item.energy == fields["y"]
            assert torch.equal(record.forces, fields["force"])
            assert record.fid == index
            assert record.pos_relaxed is None
            assert not item.deltapos.any()  # no force head: energy only
    # an S2EF file is no IS2RE training data, unless read without targets
    with pytest.raises(
        InputError, match=r"s2ef\.lmdb: record 0: no y_relaxed, pos_relaxed \(an OC20 IS2RE record"
    ):
        read_oc20_lmdb(path, trust_pickle=True)
    unlabelled = read_oc20_lmdb(path, trust_pickle=True, targets=False)
    assert all(math.isnan(item.energy) for item in unlabelled)


def test_without_trust_pickle_nothing_is_unpickled(is2re, tmp_path) -> None:
    marker = tmp_path / "ran"
    path = tmp_path / "evil.lmdb"
    write_lmdb(path, {b"0": pickle.dumps(Shell(marker))})
    for target in (is2re, path):
        with pytest.raises(
            InputError, match=rf"^{target}: OC20 LMDB records are Python pickles.*--trust-pickle"
        ):
            OC20Dataset(target)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (Shell, r"refusing to unpickle (posix|nt)\.system: an OC20 record holds only"),
        (Eval, r"refusing to unpickle builtins\.eval"),
        (lambda marker: Stranger(), rf"refusing to unpickle {__name__}\.Stranger"),
        # torch reads a storage's nested pickle with weights_only=False; the reader with weights_only=True
        (NestedStorage, r"not a readable OC20 record \(UnpicklingError: Weights only load failed"),
        (
            poison_defaults,
            r"not a readable OC20 record \(UnpicklingError: _rebuild_tensor_v2 cannot be modified",
        ),
    ],
    ids=["os.system", "eval", "test-class", "nested-storage", "poison-defaults"],
)
def test_forbidden_globals_are_refused_and_never_run(tmp_path, payload, message) -> None:
    marker = tmp_path / "ran"
    path = tmp_path / "evil.lmdb"
    value = payload(marker)
    value = value if isinstance(value, bytes) else pickle.dumps(value, protocol=2)
    defaults = torch._utils._rebuild_tensor_v2.__defaults__
    write_lmdb(path, {b"0": new_layout(SYSTEMS[0]), b"1": value})
    with OC20Dataset(path, trust_pickle=True) as dataset:
        assert len(dataset[0].atoms) > 6  # a good record next to it still reads
        with pytest.raises(InputError, match=rf"^{path}: record 1: {message}"):
            dataset[1]
    assert not marker.exists()
    assert torch._utils._rebuild_tensor_v2.__defaults__ == defaults


def test_bad_paths_and_databases_name_the_file(tmp_path) -> None:
    with pytest.raises(InputError, match=r"missing\.lmdb: no such OC20 LMDB file or folder"):
        OC20Dataset(tmp_path / "missing.lmdb", trust_pickle=True)
    corrupt = tmp_path / "corrupt.lmdb"
    corrupt.write_bytes(b"not an lmdb environment at all " * 400)
    with pytest.raises(InputError, match=rf"^{corrupt}: not a readable LMDB database"):
        OC20Dataset(corrupt, trust_pickle=True)
    empty = tmp_path / "empty.lmdb"
    write_lmdb(empty, {})
    with pytest.raises(InputError, match=rf"^{empty}: the OC20 LMDB holds no records"):
        OC20Dataset(empty, trust_pickle=True)
    folder = tmp_path / "folder"
    folder.mkdir()
    with pytest.raises(InputError, match=r"folder: the folder holds no \*\.lmdb files"):
        OC20Dataset(folder, trust_pickle=True)
    with pytest.raises(InputError, match="task must be 'is2re' or 's2ef'"):
        OC20Dataset(empty, task="is2rs", trust_pickle=True)


def bad_record(tmp_path, fields: dict | bytes, *, extra: dict | None = None):
    path = tmp_path / "bad.lmdb"
    value = fields if isinstance(fields, bytes) else new_layout(fields)
    write_lmdb(path, {b"0": value, **(extra or {})})
    return path


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"tags": None}, r"record 0: no tags \(an OC20 IS2RE record needs pos, cell, atomic_numbers, tags"),
        ({"pos": torch.zeros(6, 2)}, r"record 0: pos has shape \(6, 2\), expected \(n, 3\)"),
        ({"cell": torch.eye(2)}, r"record 0: cell has shape \(2, 2\), expected \(1, 3, 3\) or \(3, 3\)"),
        ({"atomic_numbers": torch.ones(5)}, r"record 0: atomic_numbers has shape \(5,\), expected \(6,\)"),
        ({"atomic_numbers": torch.full((6,), 1.5)}, r"record 0: atomic_numbers must hold whole numbers"),
        (
            {"pos_relaxed": torch.zeros(6, 3, 1)},
            r"record 0: pos_relaxed has shape \(6, 3, 1\), expected \(6, 3\)",
        ),
        ({"natoms": 7}, r"record 0: natoms is 7 but pos has 6 atoms"),
        ({"y_relaxed": torch.zeros(2)}, r"record 0: y_relaxed must be one number"),
        ({"atomic_numbers": torch.full((6,), 130.0)}, r"record 0: atom 0 has atomic number 130"),
    ],
)
def test_bad_records_name_the_file_and_key(tmp_path, change, message) -> None:
    fields = {**SYSTEMS[0], **change}
    path = bad_record(tmp_path, {k: v for k, v in fields.items() if v is not None})
    with (
        OC20Dataset(path, trust_pickle=True) as dataset,
        pytest.raises(InputError, match=rf"^{path}: {message}"),
    ):
        dataset[0]


def test_broken_values_and_keys(tmp_path) -> None:
    path = bad_record(tmp_path, b"\x80\x04garbage")
    with pytest.raises(InputError, match=rf"^{path}: record 0: not a readable OC20 record"):
        read_oc20_lmdb(path, trust_pickle=True)
    path.unlink()
    path = bad_record(tmp_path, new_layout(SYSTEMS[0]), extra={b"length": pickle.dumps(2), b"7": b""})
    with (
        OC20Dataset(path, trust_pickle=True) as dataset,
        pytest.raises(InputError, match=r"record 1: no such key"),
    ):
        dataset[1]


def test_data_fields_reads_both_layouts_and_real_pyg_data() -> None:
    fields = {"pos": torch.arange(3.0).reshape(1, 3), "sid": 3}
    for data in (
        OldData(**fields, __num_nodes__=1),
        NewData(**fields),
        unpickle_record(pickle_as_pyg(NewData(**fields)), "x"),
        unpickle_record(pickle_as_pyg(OldData(**fields), protocol=1), "x"),
    ):
        found = data_fields(data)
        assert sorted(found) == ["pos", "sid"]
        assert torch.equal(found["pos"], fields["pos"])
        assert found["sid"] == 3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        pyg = pytest.importorskip("torch_geometric.data")
    data = pyg.Data(**SYSTEMS[1])
    record = OC20Record.from_data(data, name="memory")
    assert torch.equal(record.pos, SYSTEMS[1]["pos"])
    assert record.energy == SYSTEMS[1]["y_relaxed"]
    assert np.array_equal(data_fields(data)["tags"].numpy(), SYSTEMS[1]["tags"].numpy())
