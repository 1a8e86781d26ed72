"""Corpora: files, documents, the seeded split, token files, packed sequences and resumable sharded batches."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from metro_lm import data
from metro_lm.data import (
    CorpusInfo,
    CorpusWarning,
    PackedDataset,
    SequenceStream,
    _document_hash,
    attention_mask,
    build_corpus,
    corpus_files,
    is_valid_document,
    read_documents,
    token_dtype,
    vocab_fingerprint,
)
from metro_lm.tokenizer import train_tokenizer
from papers_common import InputError

CLS, SEP, PAD = 2, 3, 0


def sentences(rng: random.Random, n: int) -> list[str]:
    words = ["".join(rng.choice("abcdefghijklmnop") for _ in range(rng.randint(2, 7))) for _ in range(200)]
    return [" ".join(rng.choices(words, k=rng.randint(4, 12))).capitalize() + "." for _ in range(n)]


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("corpus")
    rng = random.Random(0)
    return [write(folder / f"part{i}.txt", "\n".join(sentences(rng, 60)) + "\n") for i in range(4)]


@pytest.fixture(scope="module")
def tokenizer(corpus):
    return train_tokenizer(corpus, vocab_size=300, kind="bpe")


def encode(tokenizer, text: str) -> list[int]:
    """The ids build_corpus stores: no [CLS]/[SEP] around the text, and a literal "[MASK]" in it is plain text."""
    return tokenizer(text, add_special_tokens=False, split_special_tokens=True)["input_ids"]


# files and documents


def test_corpus_files_finds_sorts_and_filters(tmp_path):
    a = write(tmp_path / "b" / "a.txt", "x")
    c = write(tmp_path / "b" / "deep" / "c.txt", "x")
    write(tmp_path / "b" / "METADATA.txt", "x")
    write(tmp_path / "b" / "notes.md", "x")
    d = write(tmp_path / "d.txt", "x")
    found = corpus_files([d, tmp_path / "b", a], exclude=["METADATA.txt"])
    assert found == sorted([a, c, d])
    assert corpus_files([tmp_path / "b"], pattern="*.md") == [tmp_path / "b" / "notes.md"]
    with pytest.raises(InputError, match=r"missing\.txt: no such file"):
        corpus_files([a, tmp_path / "missing.txt"])
    with pytest.raises(InputError, match=r"no corpus files matching '\*\.csv'"):
        corpus_files([tmp_path], pattern="*.csv")


def test_documents_per_file_and_per_line(tmp_path):
    a = write(tmp_path / "a.txt", "\ufeffFirst line.\n\n  Second line.  \n")
    b = write(tmp_path / "sub" / "b.txt", "Only line")
    docs = list(read_documents([a, b]))
    assert [(d.name, d.text) for d in docs] == [
        ("a.txt", "First line.\n\n  Second line."),
        ("sub/b.txt", "Only line"),
    ]
    lines = list(read_documents([a, b], mode="line"))
    assert [(d.name, d.text) for d in lines] == [
        ("a.txt:1", "First line."),
        ("a.txt:3", "Second line."),
        ("sub/b.txt:1", "Only line"),
    ]
    assert [d.name for d in read_documents([b])] == ["b.txt"]
    with pytest.raises(InputError, match=r"gone\.txt: no such file"):
        list(read_documents([tmp_path / "gone.txt"]))


def test_empty_and_undecodable_files_are_skipped_with_a_warning_or_refused(tmp_path):
    good = write(tmp_path / "good.txt", "Some text.")
    empty = write(tmp_path / "empty.txt", "")
    blank = write(tmp_path / "blank.txt", " \n\t\n")
    latin1 = write(tmp_path / "latin1.txt", b"hello\nw\xe9rld\n")
    skipped: list[tuple[str, str]] = []
    with pytest.warns(CorpusWarning) as caught:
        docs = list(read_documents([good, empty, blank, latin1], on_skip=lambda *s: skipped.append(s)))
    assert [d.name for d in docs] == ["good.txt"]
    messages = [str(w.message) for w in caught]
    assert any("empty.txt" in m and "empty" in m for m in messages)
    assert any("blank.txt" in m for m in messages)
    assert any("latin1.txt" in m and "offset 7" in m for m in messages)
    assert skipped == [
        ("empty.txt", "empty"),
        ("blank.txt", "empty"),
        ("latin1.txt", "not UTF-8 (invalid byte at offset 7)"),
    ]
    for bad in (empty, latin1):
        with pytest.raises(InputError, match=bad.name):
            list(read_documents([good, bad], strict=True))


def test_gutenberg_boilerplate_is_stripped(tmp_path):
    book = write(
        tmp_path / "book.txt",
        "The Project Gutenberg eBook of X\nLicence words.\n*** START OF THE PROJECT GUTENBERG EBOOK X ***\n"
        "Chapter one.\nIt begins.\n*** END OF THE PROJECT GUTENBERG EBOOK X ***\nMore licence.\n",
    )
    plain = write(tmp_path / "plain.txt", "No markers.\n*** not a marker\n")
    assert [d.text for d in read_documents([book, plain])] == [
        "Chapter one.\nIt begins.",
        "No markers.\n*** not a marker",
    ]
    assert [d.name for d in read_documents([book], mode="line")] == ["book.txt:4", "book.txt:5"]
    assert "Licence words." in next(read_documents([book], strip_gutenberg=False)).text
    hollow = write(tmp_path / "hollow.txt", "front\n*** START OF IT\n\n*** END OF IT\nback\n")
    with pytest.warns(CorpusWarning, match="hollow.txt: skipped, empty between its Gutenberg markers"):
        assert list(read_documents([hollow])) == []


# the split


def test_split_is_deterministic_stable_and_of_the_asked_size():
    names = [f"doc{i}.txt" for i in range(1000)]
    first = [is_valid_document(n, 0.2, seed=0) for n in names]
    assert first == [is_valid_document(n, 0.2, seed=0) for n in names]
    assert 150 <= sum(first) <= 250
    assert first != [is_valid_document(n, 0.2, seed=1) for n in names]
    # fixed values: the split must not change between Python processes, versions or platforms
    assert [is_valid_document(f"doc{i}.txt", 0.5) for i in range(12)] == GOLDEN_SPLIT
    assert not any(is_valid_document(n, 0.0) for n in names[:50])
    assert all(is_valid_document(n, 1.0) for n in names[:50])
    with pytest.raises(InputError, match="valid_fraction"):
        is_valid_document("x", 1.5)


GOLDEN_SPLIT = [True, False, False, False, False, False, False, True, True, False, True, True]


def test_token_dtype_fits_the_vocabulary():
    assert token_dtype(300) == np.dtype("<u2")
    assert token_dtype(65536) == np.dtype("<u2")  # ids 0..65535
    assert token_dtype(65537) == np.dtype("<u4")
    assert token_dtype(128_000) == np.dtype("<u4")


# building a corpus


@pytest.mark.parametrize("piece_chars", [1, 5, 40])
def test_a_long_file_streams_in_pieces_that_join_to_the_stripped_text(tmp_path, monkeypatch, piece_chars):
    rng = random.Random(piece_chars)
    text = "".join(rng.choice(["\n", "  \n", "word one\n", " lead\n", "tail  \n"]) for _ in range(80))
    path = write(tmp_path / "long.txt", "\n \n" + text + "last line  \n\n  \n")
    monkeypatch.setattr(data, "PIECE_CHARS", piece_chars)
    pieces = list(read_documents([path]))
    assert {d.name for d in pieces} == {"long.txt"}
    assert len(pieces) > 1
    assert all(len(d.text) < piece_chars + 12 for d in pieces[:-1])  # cut at the first line end past the size
    assert "".join(d.text for d in pieces) == path.read_text().strip()


def test_pieces_of_a_document_are_stored_as_one_document(tmp_path, monkeypatch, corpus, tokenizer):
    whole = build_corpus(corpus, tokenizer, tmp_path / "whole", valid_fraction=0.3)
    monkeypatch.setattr(data, "PIECE_CHARS", 200)
    pieces = build_corpus(corpus, tokenizer, tmp_path / "pieces", valid_fraction=0.3)
    assert pieces.documents == whole.documents == {"train": 3, "valid": 1}
    for split in ("train", "valid"):
        a = np.fromfile(tmp_path / "whole" / f"{split}.bin", dtype="<u2")
        b = np.fromfile(tmp_path / "pieces" / f"{split}.bin", dtype="<u2")
        assert (b == SEP).sum() == (a == SEP).sum() == pieces.documents[split] - 1
        assert b.tolist() == a.tolist()  # cuts fall at line ends, where the byte-level BPE splits anyway


def test_build_corpus_writes_the_tokenizers_ids_joined_by_sep(tmp_path, corpus, tokenizer):
    special = write(tmp_path / "special.txt", "A literal [MASK] and [SEP] stay text.\n")
    files = [*corpus, special]
    info = build_corpus(
        files, tokenizer, tmp_path / "out", mode="line", valid_fraction=0.2, seed=3, batch_docs=7
    )
    docs = list(read_documents(files, mode="line"))
    expected = {"train": [], "valid": []}
    for doc in docs:
        expected["valid" if is_valid_document(doc.name, 0.2, seed=3) else "train"].append(doc)
    assert info.split_fallback is None
    assert info.valid_documents == tuple(d.name for d in expected["valid"])
    assert info.dtype == "uint16"
    assert info.vocab_size == len(tokenizer)
    assert info.special_tokens == {"pad": 0, "cls": 2, "sep": 3, "mask": 4, "unk": 1}
    assert info.vocab_fingerprint == vocab_fingerprint(tokenizer)
    for split, split_docs in expected.items():
        ids = [encode(tokenizer, d.text) for d in split_docs]
        assert info.documents[split] == len(split_docs) > 0
        assert info.tokens[split] == sum(map(len, ids)) + len(ids) - 1
        joined = [t for i, doc_ids in enumerate(ids) for t in ([SEP] if i else []) + doc_ids]
        stored = np.fromfile(tmp_path / "out" / f"{split}.bin", dtype="<u2")
        assert stored.tolist() == joined
    stored = [np.fromfile(tmp_path / "out" / f"{split}.bin", dtype="<u2") for split in ("train", "valid")]
    assert 4 not in np.concatenate(stored)  # the literal "[MASK]" of special.txt is text, not the mask token
    assert CorpusInfo.load(tmp_path / "out") == info
    assert json.loads((tmp_path / "out" / "corpus.json").read_text())["tokens"] == info.tokens


def test_large_vocabularies_are_stored_as_uint32(tmp_path, corpus, tokenizer, monkeypatch):
    small = build_corpus(corpus, tokenizer, tmp_path / "u16", valid_fraction=0.3)
    monkeypatch.setattr(data, "token_dtype", lambda vocab_size: np.dtype("<u4"))  # as for a 128K vocabulary
    large = build_corpus(corpus, tokenizer, tmp_path / "u32", valid_fraction=0.3)
    assert (small.dtype, large.dtype) == ("uint16", "uint32")
    assert large.tokens == small.tokens
    assert (tmp_path / "u32" / "train.bin").stat().st_size == 4 * large.tokens["train"]
    rows = [PackedDataset.from_corpus(tmp_path / name, "train", 24).batch([0, 3]) for name in ("u16", "u32")]
    assert torch.equal(*rows)


def test_build_corpus_records_skipped_files(tmp_path, corpus, tokenizer):
    empty = write(tmp_path / "in" / "empty.txt", "")
    with pytest.warns(CorpusWarning, match="empty.txt"):
        info = build_corpus([*corpus, empty], tokenizer, tmp_path / "out", valid_fraction=0.3)
    assert [s["reason"] for s in info.skipped if s["name"].endswith("/empty.txt")] == ["empty"]
    assert info.documents["train"] + info.documents["valid"] == len(corpus)


@pytest.mark.parametrize(("fraction", "empty"), [(1e-12, "valid"), (1 - 1e-12, "train")])
def test_tiny_corpus_moves_one_document_into_an_empty_split(tmp_path, tokenizer, fraction, empty):
    rng = random.Random(1)
    files = [write(tmp_path / "in" / f"{i}.txt", " ".join(sentences(rng, 3))) for i in range(3)]
    full = "train" if empty == "valid" else "valid"
    texts = {f.name: f.read_text() for f in files}
    positions = set()
    for seed in range(20):
        out = tmp_path / f"out{seed}"
        info = build_corpus(files, tokenizer, out, valid_fraction=fraction, seed=seed)
        keys = {name: _document_hash(name, seed) for name in texts}
        moved = min(keys, key=keys.get) if empty == "valid" else max(keys, key=keys.get)
        positions.add(list(texts).index(moved))
        kept = [name for name in texts if name != moved]
        assert info.documents == {empty: 1, full: 2}
        assert moved in info.split_fallback
        assert info.valid_documents == ((moved,) if empty == "valid" else tuple(kept))
        assert np.fromfile(out / f"{empty}.bin", dtype="<u2").tolist() == encode(tokenizer, texts[moved])
        rest = [*encode(tokenizer, texts[kept[0]]), SEP, *encode(tokenizer, texts[kept[1]])]
        assert np.fromfile(out / f"{full}.bin", dtype="<u2").tolist() == rest
        assert info.tokens == {empty: len(encode(tokenizer, texts[moved])), full: len(rest)}
        assert CorpusInfo.load(out) == info
    assert positions == {0, 1, 2}  # the moved document was first, in the middle and last in its split


def test_a_failed_build_leaves_no_corpus(tmp_path, corpus, tokenizer):
    out = tmp_path / "out"
    build_corpus(corpus, tokenizer, out)
    bad = write(tmp_path / "bad.txt", b"\xff\xfe")
    with pytest.raises(InputError, match=r"bad\.txt"):
        build_corpus([*corpus, bad], tokenizer, out, strict=True)
    assert not (out / "corpus.json").exists()  # the old description is gone with the build it described
    assert sorted(p.name for p in out.iterdir()) == ["train.bin", "valid.bin"]  # no temporary files left
    with pytest.raises(InputError, match=r"corpus\.json: no such file"):
        PackedDataset.from_corpus(out, "train", 16)
    with pytest.raises(InputError, match="at least two"):
        build_corpus(corpus[:1], tokenizer, tmp_path / "one")


def test_corpus_info_refuses_bad_files_and_other_tokenizers(tmp_path, corpus, tokenizer):
    info = build_corpus(corpus, tokenizer, tmp_path / "out")
    info.check_tokenizer(tokenizer)
    other = train_tokenizer(corpus, vocab_size=290, kind="bpe")
    with pytest.raises(InputError, match="another tokenizer"):
        info.check_tokenizer(other)
    (tmp_path / "bad").mkdir()
    write(tmp_path / "bad" / "corpus.json", "{not json")
    with pytest.raises(InputError, match=r"bad/corpus.json: not a readable"):
        CorpusInfo.load(tmp_path / "bad")
    write(tmp_path / "bad" / "corpus.json", '{"dtype": "uint16"}')
    with pytest.raises(InputError, match="needs the fields"):
        CorpusInfo.load(tmp_path / "bad")
    with (tmp_path / "out" / "valid.bin").open("ab") as handle:
        handle.write(b"\x00\x00")
    with pytest.raises(InputError, match=r"corpus\.json says"):
        PackedDataset.from_corpus(tmp_path / "out", "valid", 16)


# packed sequences


def packed(tmp_path: Path, tokens: np.ndarray, seq_len: int, dtype: str = "<u2") -> PackedDataset:
    """A dataset over ``tokens``, written to a file of its own (a memory map must not see its file rewritten)."""
    path = tmp_path / f"ids{len(list(tmp_path.glob('ids*.bin')))}.bin"
    tokens.astype(dtype).tofile(path)
    return PackedDataset(path, seq_len=seq_len, cls_id=CLS, sep_id=SEP, pad_id=PAD, dtype=dtype)


def test_packed_sequences_are_cls_chunk_sep_and_the_last_is_padded(tmp_path):
    data = packed(tmp_path, np.arange(10, 20), seq_len=6)
    assert len(data) == 3
    assert data.batch([0, 1, 2]).tolist() == [
        [CLS, 10, 11, 12, 13, SEP],
        [CLS, 14, 15, 16, 17, SEP],
        [CLS, 18, 19, SEP, PAD, PAD],
    ]
    assert data.batch(np.array([2, 0])).dtype == torch.int64
    assert data.batch(np.array([2, 0]))[0].tolist() == data[2].tolist()
    exact = packed(tmp_path, np.arange(10, 18), seq_len=6)
    assert len(exact) == 2
    assert exact[1].tolist() == [CLS, 14, 15, 16, 17, SEP]
    shortest = packed(tmp_path, np.arange(10, 13), seq_len=3)
    assert shortest.batch([0, 1, 2]).tolist() == [[CLS, 10, SEP], [CLS, 11, SEP], [CLS, 12, SEP]]
    with pytest.raises(IndexError):
        data.batch([3])


def test_packed_sequences_of_a_large_vocabulary(tmp_path):
    data = packed(tmp_path, np.array([70_000, 100_000, 127_999]), seq_len=4, dtype="<u4")
    assert data.batch([0, 1]).tolist() == [[CLS, 70_000, 100_000, SEP], [CLS, 127_999, SEP, PAD]]


def test_packed_dataset_errors_are_clear(tmp_path):
    with pytest.raises(InputError, match="seq_len must be >= 3"):
        packed(tmp_path, np.arange(10), seq_len=2)
    with pytest.raises(InputError, match="the split is empty"):
        packed(tmp_path, np.arange(0), seq_len=8)


def test_packed_dataset_from_a_built_corpus(tmp_path, corpus, tokenizer):
    info = build_corpus(corpus, tokenizer, tmp_path / "out", valid_fraction=0.3)
    for split in ("train", "valid"):
        data = PackedDataset.from_corpus(tmp_path / "out", split, 32)
        rows = data.batch(np.arange(len(data)))
        assert len(data) == -(-info.tokens[split] // 30)
        assert (rows[:, 0] == CLS).all()
        stored = np.fromfile(tmp_path / "out" / f"{split}.bin", dtype="<u2")
        assert rows[:, 1:-1].reshape(-1)[: info.tokens[split]].tolist() == stored.tolist()
    with pytest.raises(InputError, match="split must be"):
        PackedDataset.from_corpus(tmp_path / "out", "test", 32)  # type: ignore[arg-type]


def test_attention_mask_marks_padding():
    ids = torch.tensor([[CLS, 7, SEP, PAD], [CLS, 7, 8, SEP]])
    assert attention_mask(ids, PAD).tolist() == [[1, 1, 1, 0], [1, 1, 1, 1]]
    assert attention_mask(ids, PAD).dtype == torch.int64


# endless batches


@pytest.fixture
def ten(tmp_path) -> PackedDataset:
    """Ten sequences of length 4 whose first token is 100 + the sequence index."""
    return packed(tmp_path, np.arange(100, 120), seq_len=4)


def first_tokens(batch: torch.Tensor) -> list[int]:
    return (batch[:, 1] - 100).div(2, rounding_mode="floor").tolist()


def test_stream_walks_seeded_epoch_permutations_end_to_end(ten):
    stream = SequenceStream(ten, global_batch_size=4, seed=5)
    drawn = np.concatenate([stream.next_global_indices() for _ in range(5)])
    epochs = [np.random.default_rng([5, e]).permutation(10) for e in range(2)]
    assert drawn.tolist() == np.concatenate(epochs).tolist()
    assert stream.position == 5
    assert stream.state_dict() == {
        "epoch": 2,
        "offset": 0,
        "seed": 5,
        "global_batch_size": 4,
        "num_sequences": 10,
    }
    fresh = SequenceStream(ten, global_batch_size=4, seed=5)
    assert first_tokens(fresh.next_batch()) == epochs[0][:4].tolist()


def test_stream_resumes_exactly(ten):
    stream = SequenceStream(ten, global_batch_size=3, seed=1)
    for _ in range(4):
        stream.next_batch()
    state = stream.state_dict()
    resumed = SequenceStream(ten, global_batch_size=3, seed=1)
    resumed.load_state_dict(state)
    assert resumed.position == stream.position == 4
    for _ in range(6):
        assert torch.equal(resumed.next_batch(), stream.next_batch())
    with pytest.raises(InputError, match="another seed 1"):
        SequenceStream(ten, global_batch_size=3, seed=2).load_state_dict(state)
    with pytest.raises(InputError, match="lacks offset"):
        resumed.load_state_dict({"epoch": 0, "seed": 1, "global_batch_size": 3, "num_sequences": 10})


@pytest.mark.parametrize("world_size", [2, 4])
def test_rank_shares_concatenate_to_the_single_process_batch(ten, world_size):
    single = SequenceStream(ten, global_batch_size=8, seed=3)
    ranks = [
        SequenceStream(ten, global_batch_size=8, seed=3, rank=r, world_size=world_size)
        for r in range(world_size)
    ]
    for _ in range(5):
        shares = [r.next_batch() for r in ranks]
        assert all(s.shape == (8 // world_size, 4) for s in shares)
        assert torch.equal(torch.cat(shares), single.next_batch())
    with pytest.raises(InputError, match="not divisible by the world size 3"):
        SequenceStream(ten, global_batch_size=8, world_size=3, rank=0)


def test_batches_are_full_when_the_dataset_is_smaller_than_one(tmp_path):
    three = packed(tmp_path, np.arange(100, 106), seq_len=4)
    stream = SequenceStream(three, global_batch_size=8, seed=0)
    assert stream.next_batch().shape == (8, 4)
    assert stream.state_dict()["epoch"] == 2  # two whole epochs and two sequences of the third
    drawn = np.concatenate([stream.next_global_indices() for _ in range(2)])
    assert drawn.size == 16
    assert stream.position == 3
    assert stream.state_dict() == {
        "epoch": 8,
        "offset": 0,
        "seed": 0,
        "global_batch_size": 8,
        "num_sequences": 3,
    }
    epochs = np.concatenate([np.random.default_rng([0, e]).permutation(3) for e in range(8)])
    assert drawn.tolist() == epochs[8:].tolist()
