"""``TextCorpus``: which files are read, next-byte windows, deterministic validation and clear input errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from papers_common import InputError
from urpe import TextCorpus


def test_reads_text_files_and_skips_catalogues(text_folder: Path) -> None:
    corpus = TextCorpus(text_folder)
    assert [p.relative_to(text_folder).as_posix() for p in corpus.files] == ["a.txt", "nested/b.txt"]
    a = (text_folder / "a.txt").read_bytes()
    b = (text_folder / "nested" / "b.txt").read_bytes()
    cut_a, cut_b = int(len(a) * 0.9), int(len(b) * 0.9)
    assert bytes(corpus.train.tolist()) == a[:cut_a] + b[:cut_b]
    assert bytes(corpus.valid.tolist()) == a[cut_a:] + b[cut_b:]
    assert corpus.train.dtype == torch.long
    described = corpus.describe()
    assert described["files"] == 2
    assert described["train_bytes"] == cut_a + cut_b
    assert described["valid_bytes"] == len(a) + len(b) - cut_a - cut_b


def test_sampled_windows_are_shifted_by_one_byte(text_folder: Path) -> None:
    corpus = TextCorpus(text_folder)
    inputs, targets = corpus.sample(8, 16, torch.Generator().manual_seed(0))
    assert inputs.shape == (8, 16)
    assert targets.shape == (8, 16)
    assert torch.equal(inputs[:, 1:], targets[:, :-1])
    stream = bytes(corpus.train.tolist())
    for row_in, row_out in zip(inputs.tolist(), targets.tolist(), strict=True):
        window = bytes([*row_in, row_out[-1]])
        assert window in stream
    again = corpus.sample(8, 16, torch.Generator().manual_seed(0))
    assert torch.equal(again[0], inputs)


def test_validation_batches_are_fixed_and_consecutive(text_folder: Path) -> None:
    corpus = TextCorpus(text_folder)
    first = list(corpus.validation_batches(3, 2, 8))
    second = list(corpus.validation_batches(3, 2, 8))
    assert len(first) == 3
    for (x1, y1), (x2, y2) in zip(first, second, strict=True):
        assert torch.equal(x1, x2)
        assert torch.equal(y1, y2)
        assert torch.equal(x1[:, 1:], y1[:, :-1])
    inputs = torch.cat([x for x, _ in first])
    # non-overlapping consecutive windows from the start of the validation stream
    assert torch.equal(inputs.reshape(-1), corpus.valid[: inputs.numel()])
    # never more windows than the text holds
    many = list(corpus.validation_batches(1000, 4, 8))
    assert sum(len(x) for x, _ in many) == (len(corpus.valid) - 1) // 8
    assert corpus.validation_batch_count(1000, 4, 8) == len(many)
    assert corpus.validation_batch_count(3, 2, 8) == 3


def test_settings_rebuild_the_same_split_from_a_copy(text_folder: Path, tmp_path: Path) -> None:
    (text_folder / "NOTES.txt").write_text("skipped as well\n" * 20, encoding="utf-8")
    corpus = TextCorpus(text_folder, valid_fraction=0.25, skip_prefixes=("metadata", "readme", "notes"))
    assert corpus.settings() == {
        "pattern": "*.txt",
        "valid_fraction": 0.25,
        "skip_prefixes": ["METADATA", "README", "NOTES"],
    }
    assert len(corpus.files) == 2
    copy = shutil.copytree(text_folder, tmp_path / "copy")
    again = TextCorpus(copy, **corpus.settings())
    assert torch.equal(again.train, corpus.train)
    assert torch.equal(again.valid, corpus.valid)


def test_missing_folder(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(InputError, match="nowhere") as info:
        TextCorpus(missing)
    assert "no such directory" in str(info.value)


def test_folder_without_text_files(tmp_path: Path) -> None:
    folder = tmp_path / "catalogue-only"
    folder.mkdir()
    (folder / "METADATA.txt").write_text("x" * 1000, encoding="utf-8")
    (folder / "data.csv").write_text("a,b\n" * 100, encoding="utf-8")
    with pytest.raises(InputError, match="catalogue-only") as info:
        TextCorpus(folder)
    assert "no files matching" in str(info.value)


def test_text_shorter_than_a_window(tmp_path: Path) -> None:
    (tmp_path / "tiny.txt").write_text("0123456789" * 5, encoding="utf-8")
    corpus = TextCorpus(tmp_path)
    with pytest.raises(InputError, match="shorter than one window"):
        corpus.sample(2, 64, torch.Generator().manual_seed(0))
    with pytest.raises(InputError, match="validation"):
        list(corpus.validation_batches(1, 1, 16))


def test_valid_fraction_must_be_a_fraction(text_folder: Path) -> None:
    with pytest.raises(InputError, match="valid_fraction"):
        TextCorpus(text_folder, valid_fraction=1.0)
