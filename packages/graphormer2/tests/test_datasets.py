"""Dataset loaders (graphormer2.datasets): CSV, SDF and in-memory SMILES, skipped molecules and rejects files,
strict mode, the preprocessing cache, the offline task sets and the split."""

from __future__ import annotations

import csv
import dataclasses
import math
from pathlib import Path

import graphormer2.datasets as datasets
import numpy as np
import pytest
import torch
from graphormer2.collate import GraphBatch, collate, preprocess
from graphormer2.datasets import from_csv, from_sdf, from_smiles, split
from graphormer2.features import smiles_to_graph
from rdkit import Chem
from torch.utils.data import DataLoader

from papers_common import InputError

torch.set_num_threads(1)

BIG = "C" * 12  # 12 atoms: over max_nodes=10 below
CSV_TEXT = f"""# a comment line
id,smiles,gap,logp
a,CCO,1.5,0.1
b,not-a-smiles,2.0,0.2
c,c1ccccc1,,NA
d,{BIG},3.0,0.3

e,CC(=O)O,4.0,nan
f,,5.0,0.5
"""


def write_csv(tmp_path: Path, text: str = CSV_TEXT, name: str = "mols.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def read_rejects(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def assert_items_equal(left: datasets.MoleculeDataset, right: datasets.MoleculeDataset) -> None:
    assert len(left) == len(right)
    assert left.smiles == right.smiles
    assert left.target_names == right.target_names
    assert torch.equal(left.targets.nan_to_num(-9), right.targets.nan_to_num(-9))
    for a, b in zip(left, right, strict=True):
        for field in dataclasses.fields(a):
            assert torch.equal(getattr(a, field.name).nan_to_num(-9), getattr(b, field.name).nan_to_num(-9))


def test_csv_skips_counts_and_reports(tmp_path: Path) -> None:
    rejects = tmp_path / "out" / "rejects.csv"
    dataset = from_csv(write_csv(tmp_path), "smiles", ["gap", "logp"], max_nodes=10, rejects=rejects)
    assert dataset.smiles == ["CCO", "c1ccccc1", "CC(=O)O"]
    assert dataset.target_names == ["gap", "logp"]
    np.testing.assert_allclose(dataset.targets.numpy(), [[1.5, 0.1], [np.nan, np.nan], [4.0, np.nan]])
    assert dataset.skipped == {"invalid_smiles": 1, "too_many_atoms": 1, "no_atoms": 1}
    assert read_rejects(rejects) == [
        {"row": "2", "smiles": "not-a-smiles", "reason": "invalid_smiles"},
        {"row": "4", "smiles": BIG, "reason": "too_many_atoms"},
        {"row": "6", "smiles": "", "reason": "no_atoms"},
    ]
    # each item is the single-molecule preprocessing of its SMILES and targets
    for item, smiles, y in zip(dataset, dataset.smiles, dataset.targets, strict=True):
        graph = smiles_to_graph(smiles)
        assert graph is not None
        expected = preprocess(graph, y)
        for field in dataclasses.fields(item):
            assert torch.equal(
                getattr(item, field.name).nan_to_num(-9), getattr(expected, field.name).nan_to_num(-9)
            )


def test_csv_strict_names_file_line_and_reason(tmp_path: Path) -> None:
    path = write_csv(tmp_path)
    with pytest.raises(InputError, match=r"mols\.csv:4 \(row 2\).*invalid_smiles.*not-a-smiles"):
        from_csv(path, "smiles", ["gap"], strict=True)
    only_big = write_csv(tmp_path, f"smiles,gap\nCC,1\n{BIG},2\n", name="big.csv")
    with pytest.raises(InputError, match=r"big\.csv:3 \(row 2\).*too_many_atoms"):
        from_csv(only_big, "smiles", ["gap"], max_nodes=10, strict=True)


def test_csv_bad_inputs(tmp_path: Path) -> None:
    path = write_csv(tmp_path)
    with pytest.raises(InputError, match=r"no column 'homo'.*id, smiles, gap, logp"):
        from_csv(path, "smiles", ["gap", "homo"])
    with pytest.raises(InputError, match="empty file"):
        from_csv(write_csv(tmp_path, "", name="empty.csv"), "smiles", ["gap"])
    with pytest.raises(InputError, match="no molecules"):
        from_csv(write_csv(tmp_path, "smiles,gap\n", name="header.csv"), "smiles", ["gap"])
    with pytest.raises(InputError, match=r"none of the 2 molecules.*invalid_smiles"):
        from_csv(write_csv(tmp_path, "smiles,gap\nC1CC,1\nXx,2\n", name="bad.csv"), "smiles", ["gap"])
    with pytest.raises(InputError, match=r"text\.csv:3 \(row 2\): 'gap' is 'high'"):
        from_csv(write_csv(tmp_path, "smiles,gap\nCC,1\nCO,high\n", name="text.csv"), "smiles", ["gap"])
    with pytest.raises(InputError, match="cannot read"):
        from_csv(tmp_path / "missing.csv", "smiles", ["gap"])
    with pytest.raises(InputError, match="max_nodes"):
        from_csv(path, "smiles", ["gap"], max_nodes=0)


def test_csv_without_header_and_limit(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "# TPSA-like\nCCO,20.2\nCCN,26.0\nCCC,0\n", name="plain.csv")
    dataset = from_csv(path, "smiles", ["tpsa"], columns=["smiles", "tpsa"], limit=2)
    assert dataset.smiles == ["CCO", "CCN"]
    np.testing.assert_allclose(dataset.targets.numpy(), [[20.2], [26.0]], rtol=1e-6)


def test_cache_round_trip_and_invalidation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_csv(tmp_path)
    cache = tmp_path / "cache"
    first = from_csv(path, "smiles", ["gap", "logp"], max_nodes=10, cache_dir=cache)
    files = sorted(cache.iterdir())
    assert len(files) == 1
    assert files[0].suffix == ".pt"

    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("preprocessing ran although the cache should have been read")

    monkeypatch.setattr(datasets, "preprocess", fail)
    rejects = tmp_path / "rejects.csv"
    second = from_csv(path, "smiles", ["gap", "logp"], max_nodes=10, cache_dir=cache, rejects=rejects)
    assert_items_equal(first, second)
    assert second.skipped == first.skipped
    assert len(read_rejects(rejects)) == 3
    with pytest.raises(InputError, match="invalid_smiles"):  # strict still applies to a cached dataset
        from_csv(path, "smiles", ["gap", "logp"], max_nodes=10, cache_dir=cache, strict=True)
    # any setting that changes the result, or a changed file, misses the cache
    for kwargs in (
        {"max_nodes": 11},
        {"max_nodes": 10, "multi_hop_max_dist": 3},
        {"max_nodes": 10, "limit": 4},
    ):
        with pytest.raises(AssertionError, match="cache should have been read"):
            from_csv(path, "smiles", ["gap", "logp"], cache_dir=cache, **kwargs)
    with pytest.raises(AssertionError, match="cache should have been read"):
        from_csv(path, "smiles", ["gap"], max_nodes=10, cache_dir=cache)
    path.write_text(CSV_TEXT + "g,CCCl,6.0,0.6\n", encoding="utf-8")
    with pytest.raises(AssertionError, match="cache should have been read"):
        from_csv(path, "smiles", ["gap", "logp"], max_nodes=10, cache_dir=cache)
    assert len(list(cache.iterdir())) == 1  # no partial files left behind


def test_saved_dataset_loads_without_unpickling_code(tmp_path: Path) -> None:
    dataset = from_smiles(["CCO", "c1ccccc1O"], [[1.0], [2.0]], target_names=["y"])
    dataset.save(tmp_path / "d.pt")
    state = torch.load(tmp_path / "d.pt", weights_only=True)
    assert state["smiles"] == ["CCO", "c1ccccc1O"]
    assert state["x"].dtype == torch.int16
    assert_items_equal(dataset, datasets.MoleculeDataset.load(tmp_path / "d.pt"))


def write_sdf(path: Path) -> Path:
    writer = Chem.SDWriter(str(path))
    for smiles, props in [
        ("CCO", {"E": "1.5", "Q": "a"}),
        ("c1ccccc1", {"E": "2.5"}),
        ("CC" * 6, {"E": "9"}),
    ]:
        mol = Chem.MolFromSmiles(smiles)
        for key, value in props.items():
            mol.SetProp(key, value)
        writer.write(mol)
    writer.close()
    broken = "broken\n  junk\n\n  2  1  0  0  0  0  0  0  0  0999 V2000\nM  END\n$$$$\n"
    path.write_text(path.read_text(encoding="utf-8") + broken, encoding="utf-8")
    return path


def test_sdf_properties_missing_values_and_broken_records(tmp_path: Path) -> None:
    path = write_sdf(tmp_path / "mols.sdf")
    rejects = tmp_path / "rejects.csv"
    dataset = from_sdf(path, ["E"], max_nodes=10, rejects=rejects)
    assert dataset.smiles == ["CCO", "c1ccccc1"]
    assert dataset.targets[:, 0].tolist() == [1.5, 2.5]
    assert dataset.skipped == {"too_many_atoms": 1, "invalid_record": 1}
    assert [r["row"] for r in read_rejects(rejects)] == ["3", "4"]
    with pytest.raises(InputError, match=r"mols\.sdf: record 4.*invalid_record"):
        from_sdf(path, ["E"], strict=True)
    with pytest.raises(InputError, match=r"no record has the property 'G'; properties found: E, Q"):
        from_sdf(path, ["E", "G"])
    with pytest.raises(InputError, match=r"record 1: 'Q' is 'a', not a number"):
        from_sdf(path, ["Q"])


def test_from_smiles_targets_and_errors() -> None:
    dataset = from_smiles(["CC", "C1CC", "CO"], [1.0, 2.0, 3.0])
    assert dataset.smiles == ["CC", "CO"]
    assert dataset.targets[:, 0].tolist() == [1.0, 3.0]
    assert dataset.target_names == ["target0"]
    assert dataset.skipped == {"invalid_smiles": 1}
    unlabelled = from_smiles(["CC", "CO"])
    assert unlabelled.targets.shape == (2, 0)
    with pytest.raises(InputError, match=r"smiles\[1\].*invalid_smiles"):
        from_smiles(["CC", "C1CC"], strict=True)
    with pytest.raises(InputError, match="targets must be"):
        from_smiles(["CC", "CO"], [1.0])
    with pytest.raises(InputError, match="target_names"):
        from_smiles(["CC"], [[1.0, 2.0]], target_names=["a"])


def test_from_smiles_cache_is_keyed_by_content(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = from_smiles(["CC", "CCO"], [1.0, 2.0], cache_dir=tmp_path)
    calls = []
    monkeypatch.setattr(datasets, "preprocess", lambda *a, **k: calls.append(1) or preprocess(*a, **k))
    assert_items_equal(first, from_smiles(["CC", "CCO"], [1.0, 2.0], cache_dir=tmp_path))
    assert calls == []
    from_smiles(["CC", "CCO"], [1.0, 3.0], cache_dir=tmp_path)  # other targets: another entry
    assert len(calls) == 2
    assert len(list(tmp_path.iterdir())) == 2


def test_dataset_feeds_a_dataloader() -> None:
    dataset = from_smiles(["CC", "CCO", "c1ccccc1", "CN", "O"], np.arange(10.0).reshape(5, 2))
    loader = DataLoader(dataset, batch_size=2, collate_fn=collate)
    batches = list(loader)
    assert [len(b) for b in batches] == [2, 2, 1]
    assert isinstance(batches[0], GraphBatch)
    assert torch.equal(torch.cat([b.y for b in batches]), dataset.targets)
    assert batches[1].x.shape == (2, 6, 9)


def test_split_is_deterministic_and_disjoint() -> None:
    dataset = from_smiles(["C" * k for k in range(1, 11)], np.arange(10.0))
    train, valid, test = split(dataset, seed=3)
    assert (len(train), len(valid), len(test)) == (8, 1, 1)
    assert sorted(train.indices + valid.indices + test.indices) == list(range(10))
    again = split(dataset, seed=3)
    assert [s.indices for s in again] == [train.indices, valid.indices, test.indices]
    assert split(dataset, seed=4)[0].indices != train.indices
    assert [len(s) for s in split(dataset, (0.5, 0.5, 0.0))] == [5, 5, 0]
    with pytest.raises(InputError, match="fractions"):
        split(dataset, (0.8, 0.3, 0.1))
    with pytest.raises(InputError, match="fractions"):
        split(dataset, (0.5, 0.5))


def test_tpsa_task_reads_the_headerless_rdkit_file() -> None:
    dataset = datasets.tpsa_task(limit=25)
    assert len(dataset) == 25
    assert dataset.target_names == ["tpsa"]
    assert dataset.smiles[0] == "CC1=CC(=O)C=CC1=O"
    assert math.isclose(float(dataset.targets[0, 0]), 34.14, rel_tol=1e-6)
    assert math.isclose(float(dataset.targets[2, 0]), 106.51, rel_tol=1e-6)


def test_sdf_properties_task() -> None:
    dataset = datasets.sdf_properties_task(limit=6)
    assert dataset.targets.shape == (6, len(datasets.SDF_PROPERTIES))
    assert not torch.isnan(dataset.targets).any()
    amw = dataset.target_names.index("AMW")
    assert math.isclose(float(dataset.targets[0, amw]), 122.12344, rel_tol=1e-6)


def test_wiener_task_agrees_with_the_stored_distances() -> None:
    """RDKit's Wiener index equals the sum of this package's φ over connected pairs (spatial_pos − 1)."""
    dataset = datasets.wiener_task(12)
    assert dataset.target_names == ["wiener"]
    assert len(dataset) == 12
    for item, wiener in zip(dataset, dataset.targets[:, 0].tolist(), strict=True):
        spd = item.spatial_pos.long() - 1
        assert spd[spd < 510].sum().item() / 2 == wiener
    assert datasets.wiener_index(Chem.MolFromSmiles("CCCC")) == 10.0  # 3·1 + 2·2 + 1·3
    assert datasets.wiener_index(Chem.MolFromSmiles("CC.C")) == 1.0
