"""PCQM4Mv2 raw files (graphormer2.ogb) on a fake copy: split subsets, targets, chunked streaming, the safe
``split_dict.pt`` reader and missing files."""

from __future__ import annotations

import csv
import gzip
import math
import re
import zipfile
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
import torch
from graphormer2.collate import GraphItem
from graphormer2.datasets import from_smiles, rdkit_data_file
from graphormer2.ogb import load_pcqm4mv2, pcqm4mv2_files, read_pcqm4mv2, read_split_dict

from papers_common import InputError, UnsafeCheckpointError

torch.set_num_threads(1)

MOLECULES = 30
SPLIT = {"train": [0, 2, 3, 5, 8, 9, 10, 13, 14, 17, 18, 20, 21, 22, 25, 27, 29], "valid": [1, 4, 11, 23, 26]}
TEST = {"test-dev": [6, 7, 15, 24], "test-challenge": [12, 16, 19, 28]}


class Custom:
    """A class a weights-only unpickler must refuse."""


@pytest.fixture(scope="module")
def smiles() -> list[str]:
    lines = rdkit_data_file("NCI/first_5K.smi").read_text(encoding="utf-8").splitlines()
    return [line.split()[0] for line in lines[:MOLECULES]]


@pytest.fixture(scope="module")
def gaps() -> np.ndarray:
    """Random gaps, NaN for the test splits (hidden in the real file)."""
    values = np.random.default_rng(7).uniform(1.0, 10.0, MOLECULES).astype(np.float32)
    values[[i for indices in TEST.values() for i in indices]] = np.nan
    return values


def write_pcqm4mv2(folder: Path, smiles: list[str], gaps: np.ndarray, split: dict | None = None) -> Path:
    """The OGB layout: ``folder/pcqm4m-v2/raw/data.csv.gz`` and ``folder/pcqm4m-v2/split_dict.pt``."""
    dataset = folder / "pcqm4m-v2"
    (dataset / "raw").mkdir(parents=True)
    with gzip.open(dataset / "raw" / "data.csv.gz", "wt", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["idx", "smiles", "homolumogap"])
        # as pandas writes it: an empty cell for a hidden gap
        writer.writerows(
            [i, s, "" if math.isnan(g) else repr(float(g))]
            for i, (s, g) in enumerate(zip(smiles, gaps, strict=True))
        )
    split = (
        {name: torch.tensor(indices) for name, indices in {**SPLIT, **TEST}.items()}
        if split is None
        else split
    )
    torch.save(split, dataset / "split_dict.pt")
    return folder


@pytest.fixture
def root(tmp_path: Path, smiles: list[str], gaps: np.ndarray) -> Path:
    return write_pcqm4mv2(tmp_path, smiles, gaps)


def assert_items_equal(left: GraphItem, right: GraphItem) -> None:
    for field in fields(GraphItem):
        a, b = getattr(left, field.name), getattr(right, field.name)
        assert torch.equal(a, b) or (a.isnan().all() and b.isnan().all()), field.name


@pytest.mark.parametrize("name", [*SPLIT, *TEST])
def test_split_subset_is_exactly_the_listed_molecules(root: Path, smiles, gaps, name: str) -> None:
    indices = {**SPLIT, **TEST}[name]
    part = load_pcqm4mv2(root, name)
    assert part.index.tolist() == indices
    assert part.dataset.smiles == [smiles[i] for i in indices]
    assert part.dataset.target_names == ["homolumogap"]
    np.testing.assert_array_equal(part.dataset.targets[:, 0].numpy(), gaps[indices])
    if name in TEST:
        assert part.dataset.targets.isnan().all()
    reference = from_smiles([smiles[i] for i in indices], gaps[indices])
    for k in range(len(indices)):
        assert_items_equal(part.dataset[k], reference[k])


def test_chunks_of_seven_stream_the_same_items(root: Path) -> None:
    whole = load_pcqm4mv2(root, None, chunk=1000)
    assert whole.index.tolist() == list(range(MOLECULES))
    parts = list(read_pcqm4mv2(root, None, chunk=7))
    assert [len(part.dataset) for part in parts] == [7, 7, 7, 7, 2]
    assert [part.rows for part in parts] == [7, 7, 7, 7, 2]
    assert torch.cat([part.index for part in parts]).tolist() == whole.index.tolist()
    streamed = [part.dataset[k] for part in parts for k in range(len(part.dataset))]
    for k, item in enumerate(streamed):
        assert_items_equal(item, whole.dataset[k])
    assert sum(part.nbytes for part in parts) == whole.nbytes
    seconds, mebibytes = parts[0].per_100k()
    assert seconds > 0
    assert mebibytes == pytest.approx(parts[0].nbytes / 7 * 100_000 / 2**20)


def test_limit_and_the_dataset_folder_as_root(root: Path, smiles) -> None:
    parts = list(read_pcqm4mv2(root / "pcqm4m-v2", "train", limit=5, chunk=2))
    assert torch.cat([part.index for part in parts]).tolist() == SPLIT["train"][:5]
    assert [part.dataset.smiles for part in parts][-1] == [smiles[SPLIT["train"][4]]]


def test_flat_layout_and_numpy_indices(tmp_path: Path, smiles, gaps) -> None:
    """Files side by side, and a split_dict of NumPy arrays saved by NumPy 1 (``numpy.core`` module names)."""
    write_pcqm4mv2(tmp_path, smiles, gaps, split={"train": np.array([4, 1], dtype=np.int32)})
    flat = tmp_path / "flat"
    flat.mkdir()
    (tmp_path / "pcqm4m-v2" / "raw" / "data.csv.gz").rename(flat / "data.csv.gz")
    with (
        zipfile.ZipFile(tmp_path / "pcqm4m-v2" / "split_dict.pt") as source,
        zipfile.ZipFile(flat / "split_dict.pt", "w") as target,
    ):
        for info in source.infolist():
            data = source.read(info)
            if info.filename.endswith("data.pkl"):
                data = data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
            target.writestr(info, data)
    assert pcqm4mv2_files(flat).data == flat / "data.csv.gz"
    assert read_split_dict(flat / "split_dict.pt")["train"].tolist() == [4, 1]
    assert load_pcqm4mv2(flat, "train").index.tolist() == [1, 4]


def test_a_pickled_object_is_refused_naming_the_file(tmp_path: Path, smiles, gaps) -> None:
    write_pcqm4mv2(tmp_path, smiles, gaps, split={"train": torch.arange(3), "evil": Custom()})
    path = tmp_path / "pcqm4m-v2" / "split_dict.pt"
    with pytest.raises(
        UnsafeCheckpointError, match=rf"{re.escape(str(path))}: not a plain dict of index tensors.*Custom"
    ):
        next(read_pcqm4mv2(tmp_path, "train"))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"train": torch.tensor([0.5, 1.0])}, "split 'train' is not a 1-D integer index tensor"),
        ({"train": torch.tensor([-1, 2])}, "negative index"),
        ([torch.tensor([1])], "expected a dict of split name"),
    ],
)
def test_bad_split_dicts(tmp_path: Path, content, message: str) -> None:
    path = tmp_path / "split_dict.pt"
    torch.save(content, path)
    with pytest.raises(InputError, match=message):
        read_split_dict(path)


def test_missing_files_and_unknown_splits_name_the_path(tmp_path: Path, root: Path, smiles, gaps) -> None:
    with pytest.raises(InputError, match=rf"looked for {re.escape(str(tmp_path / 'nowhere'))}"):
        next(read_pcqm4mv2(tmp_path / "nowhere"))
    split_path = root / "pcqm4m-v2" / "split_dict.pt"
    with pytest.raises(InputError, match=r"no split 'test'; it has: train, valid, test-dev, test-challenge"):
        next(read_pcqm4mv2(root, "test"))
    split_path.unlink()
    with pytest.raises(InputError, match=rf"{re.escape(str(split_path))}: no such file"):
        next(read_pcqm4mv2(root, "train"))
    assert len(load_pcqm4mv2(root, None).dataset) == MOLECULES  # all rows need no split file


def test_split_indices_absent_from_the_csv_are_reported(tmp_path: Path, smiles, gaps) -> None:
    write_pcqm4mv2(tmp_path, smiles, gaps, split={"train": torch.tensor([3, 31, 40])})
    with pytest.raises(
        InputError, match=r"data\.csv\.gz: 2 indices of split 'train' are not in the file.*31"
    ):
        load_pcqm4mv2(tmp_path, "train")


def test_a_bad_gap_names_the_line(tmp_path: Path) -> None:
    folder = tmp_path / "pcqm4m-v2" / "raw"
    folder.mkdir(parents=True)
    with gzip.open(folder / "data.csv.gz", "wt", encoding="utf-8") as handle:
        handle.write("idx,smiles,homolumogap\n0,CCO,1.5\n1,CCN,high\n")
    with pytest.raises(InputError, match=r"data\.csv\.gz:3 \(idx 1\): 'homolumogap' is 'high'"):
        load_pcqm4mv2(tmp_path, None)
    (folder / "data.csv.gz").write_bytes(b"not gzip")
    with pytest.raises(InputError, match=r"data\.csv\.gz: cannot read the gzip CSV"):
        load_pcqm4mv2(tmp_path, None)


def test_skipped_molecules_leave_the_index_aligned(tmp_path: Path) -> None:
    folder = tmp_path / "raw"
    folder.mkdir()
    with gzip.open(folder / "data.csv.gz", "wt", encoding="utf-8") as handle:
        handle.write(
            "idx,smiles,homolumogap\n10,CCO,1.5\n11,not-a-smiles,2.0\n12,CCN,3.0\n13,,4.0\n14,C,5.0\n"
        )
    parts = list(read_pcqm4mv2(tmp_path, None, chunk=2))
    assert [part.index.tolist() for part in parts] == [[10], [12], [14]]
    assert [part.dataset.targets[:, 0].tolist() for part in parts] == [[1.5], [3.0], [5.0]]
    assert [(r.where.endswith("(idx 11)"), r.reason) for r in parts[0].dataset.rejected] == [
        (True, "invalid_smiles")
    ]
    assert parts[1].dataset.rejected[0].reason == "no_atoms"
    with pytest.raises(InputError, match=r"data\.csv\.gz:3 \(idx 11\).*invalid_smiles"):
        load_pcqm4mv2(tmp_path, None, strict=True)
