"""Plain-text corpora for pretraining: documents, a seeded train/valid split, packed token files, endless batches.

The flow is ``corpus_files → read_documents → build_corpus → PackedDataset → SequenceStream``:

- :func:`read_documents` streams one document per file (or per non-empty line) of UTF-8 text files, skipping
  empty and undecodable files with a :class:`CorpusWarning` (an :class:`~papers_common.InputError` when
  ``strict``) and keeping only the body of Project Gutenberg books;
- :func:`build_corpus` tokenises them with a fast Hugging Face tokenizer and appends the ids to ``train.bin`` and
  ``valid.bin`` (raw little-endian ``uint16``, or ``uint32`` for vocabularies over 65,536 tokens), documents
  separated by one ``[SEP]``; a document's split follows a stable hash of its name (:func:`is_valid_document`), and
  ``corpus.json`` (:class:`CorpusInfo`) records the counts, the split and the tokenizer that made the ids;
- :class:`PackedDataset` memory-maps a split and cuts it into ``[CLS] + L−2 tokens + [SEP]`` sequences packed
  across document boundaries (RoBERTa's FULL-SENTENCES packing, Liu et al. 2019, §4.2; METRO §5 pretrains on such
  512-token sequences);
- :class:`SequenceStream` draws seeded, resumable, rank-sharded batches from it for as many epochs as training
  needs.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch

from papers_common import InputError, atomic_path, progress, write_json

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

Mode = Literal["file", "line"]
Split = Literal["train", "valid"]
SPLITS: tuple[Split, ...] = ("train", "valid")
CORPUS_JSON = "corpus.json"
LOGGER = logging.getLogger(__name__)
GUTENBERG_START = "*** START OF"
GUTENBERG_END = "*** END OF"
PIECE_CHARS = 1_000_000
"""In ``mode="file"``, a document is streamed in pieces of about this many characters, cut at line ends."""


class CorpusWarning(UserWarning):
    """A corpus file was skipped (empty, or not UTF-8); the message names it and says why."""


def corpus_files(
    paths: Sequence[str | Path], *, pattern: str = "*.txt", exclude: Sequence[str] = ()
) -> list[Path]:
    """The text files named in ``paths``: files as given, directories searched recursively for ``pattern``.

    Returns the files sorted and de-duplicated, without those whose file name is in ``exclude``
    (e.g. ``"METADATA.txt"``). A path that does not exist, or no file at all, is an :class:`InputError`.
    """
    found: set[Path] = set()
    for given in paths:
        path = Path(given)
        if path.is_dir():
            found.update(p for p in path.rglob(pattern) if p.is_file())
        elif path.is_file():
            found.add(path)
        else:
            raise InputError(f"{path}: no such file or directory")
    files = sorted(p for p in found if p.name not in set(exclude))
    if not files:
        shown = ", ".join(str(p) for p in paths) or "(no paths)"
        raise InputError(f"no corpus files matching {pattern!r} in {shown}")
    return files


@dataclass(frozen=True)
class Document:
    """One pretraining document: ``text`` from the file ``name`` (``"dir/file.txt"``, or ``"file.txt:LINE"``).

    ``name`` is the path relative to the deepest folder holding all files read together, so that it is the same
    on every machine and two ``wiki_00`` files in different folders stay apart; it decides the document's split.
    """

    name: str
    text: str


class _NotUtf8(Exception):
    def __init__(self, offset: int) -> None:
        self.offset = offset


def _lines(path: Path) -> Iterator[str]:
    """The lines of a UTF-8 file, streamed (a leading byte-order mark dropped); raises ``_NotUtf8(offset)``."""
    offset = 0
    with path.open("rb") as handle:
        for raw in handle:
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise _NotUtf8(offset + error.start) from None
            yield line[1:] if offset == 0 and line.startswith("\ufeff") else line
            offset += len(raw)


def _body(path: Path, strip_gutenberg: bool) -> tuple[int, int | None, bool]:
    """First pass over a file: the line range ``[start, stop)`` to keep and whether it holds any text.

    With ``strip_gutenberg``, the range lies strictly between the first ``*** START OF`` line and the next
    ``*** END OF`` line (whichever are present). Raises ``_NotUtf8`` for a file that is not UTF-8 anywhere.
    """
    start, stop, started, has_text = 0, None, False, False
    for number, line in enumerate(_lines(path)):  # read to the end: every byte must be UTF-8
        if stop is not None:
            continue
        if strip_gutenberg and not started and line.startswith(GUTENBERG_START):
            start, started, has_text = number + 1, True, False
        elif strip_gutenberg and line.startswith(GUTENBERG_END):
            stop = number
        elif line.strip():
            has_text = True
    return start, stop, has_text


def _names(files: Sequence[Path]) -> list[str]:
    """Each file's path relative to the deepest folder that holds all of them (its bare name for one file)."""
    resolved = [p.resolve() for p in files]
    root = Path(os.path.commonpath([p.parent for p in resolved])) if resolved else Path()
    return [p.relative_to(root).as_posix() for p in resolved]


def read_documents(
    files: Sequence[str | Path],
    *,
    mode: Mode = "file",
    strict: bool = False,
    strip_gutenberg: bool = True,
    on_skip: Callable[[str, str], None] | None = None,
) -> Iterator[Document]:
    """Stream the documents of ``files``, one file at a time: a whole file (``mode="file"``) or each non-empty
    line (``mode="line"``), stripped of surrounding white space.

    No file is read into memory whole: in ``mode="file"`` a document longer than :data:`PIECE_CHARS` characters
    arrives as several consecutive :class:`Document` pieces with the same name, cut at line ends (join them for
    the whole text); :func:`build_corpus` writes them as one document.

    A file that is empty (or white space only, after Gutenberg stripping) or is not UTF-8 is skipped with a
    :class:`CorpusWarning` naming it (and the byte offset of the first bad byte), or raises an
    :class:`InputError` when ``strict``; ``on_skip(name, reason)`` is told of each skipped file. With
    ``strip_gutenberg``, a file with Project Gutenberg markers (lines starting ``*** START OF`` / ``*** END OF``)
    gives only the text between them; files without markers are read whole.
    """
    if mode not in ("file", "line"):
        raise InputError(f"mode must be 'file' or 'line', got {mode!r}")
    paths = [Path(f) for f in files]
    for path in paths:
        if not path.is_file():
            raise InputError(f"{path}: no such file")
    return _stream_documents(
        paths, mode=mode, strict=strict, strip_gutenberg=strip_gutenberg, on_skip=on_skip
    )


def _stream_documents(
    paths: list[Path],
    *,
    mode: Mode,
    strict: bool,
    strip_gutenberg: bool,
    on_skip: Callable[[str, str], None] | None,
) -> Iterator[Document]:
    for path, name in zip(paths, _names(paths), strict=True):
        try:
            start, stop, has_text = _body(path, strip_gutenberg)
        except _NotUtf8 as error:
            reason = f"not UTF-8 (invalid byte at offset {error.offset})"
        else:
            marked = start > 0 or stop is not None
            reason = None if has_text else "empty between its Gutenberg markers" if marked else "empty"
        if reason is not None:
            if strict:
                raise InputError(f"{path}: {reason}")
            warnings.warn(f"{path}: skipped, {reason}", CorpusWarning, stacklevel=2)
            if on_skip is not None:
                on_skip(name, reason)
            continue
        body = itertools.islice(_lines(path), start, stop)
        if mode == "file":
            yield from (Document(name, piece) for piece in _pieces(body))
        else:
            for number, line in enumerate(body, start + 1):
                if line.strip():
                    yield Document(f"{name}:{number}", line.strip())


def _pieces(lines: Iterator[str]) -> Iterator[str]:
    """The text of ``lines`` stripped of leading and trailing white space, in consecutive pieces of about
    :data:`PIECE_CHARS` characters cut at line ends (their concatenation is the whole text, stripped)."""

    def chunks() -> Iterator[str]:
        buffer: list[str] = []
        size = 0
        for line in lines:
            buffer.append(line)
            size += len(line)
            if size >= PIECE_CHARS:
                yield "".join(buffer)
                buffer, size = [], 0
        yield "".join(buffer)

    # The last piece with text and any blank ones after it: the end of the text is stripped from them.
    held: list[str] = []
    for chunk in chunks():
        if not held:
            chunk = chunk.lstrip()
            if not chunk:
                continue
        if chunk.strip():
            yield from held
            held = [chunk]
        else:
            held.append(chunk)
    last = "".join(held).rstrip()
    if last:
        yield last


def _document_hash(name: str, seed: int) -> float:
    """A uniform number in [0, 1) from ``blake2b(f"{seed}:{name}")``: the same in every process and platform."""
    digest = hashlib.blake2b(f"{seed}:{name}".encode(), digest_size=8).digest()
    return (int.from_bytes(digest, "big") >> 11) / 2**53  # 53 bits: exact in a float, never rounded up to 1


def is_valid_document(name: str, valid_fraction: float, seed: int = 0) -> bool:
    """Whether the document ``name`` belongs to the validation split (a fraction ``valid_fraction`` of names).

    Decided by a stable hash of ``f"{seed}:{name}"``, so a document keeps its split when the corpus grows and
    across processes (unlike ``hash()``, which Python salts per process).
    """
    if not 0.0 <= valid_fraction <= 1.0:
        raise InputError(f"valid_fraction must be in [0, 1], got {valid_fraction}")
    return _document_hash(name, seed) < valid_fraction


def token_dtype(vocab_size: int) -> np.dtype:
    """The little-endian unsigned dtype that holds every id below ``vocab_size``: ``uint16`` up to 65,536 tokens,
    else ``uint32``."""
    if vocab_size < 1:
        raise InputError(f"vocab_size must be positive, got {vocab_size}")
    return np.dtype("<u2") if vocab_size <= 2**16 else np.dtype("<u4")


def vocab_fingerprint(tokenizer: PreTrainedTokenizerFast) -> str:
    """``sha256`` of the tokenizer's ``(token, id)`` pairs sorted by token: equal iff the vocabularies are."""
    pairs = sorted(tokenizer.get_vocab().items())
    return hashlib.sha256(json.dumps(pairs, ensure_ascii=False).encode()).hexdigest()


def special_token_ids(tokenizer: PreTrainedTokenizerFast) -> dict[str, int]:
    """The ids of the tokenizer's ``pad``, ``cls``, ``sep``, ``mask`` (and ``unk`` when it has one) tokens."""
    ids = {name: getattr(tokenizer, f"{name}_token_id") for name in ("pad", "cls", "sep", "mask", "unk")}
    missing = [name for name, value in ids.items() if value is None and name != "unk"]
    if missing:
        raise InputError(f"the tokenizer has no {', '.join(f'[{m.upper()}]' for m in missing)} token")
    return {name: int(value) for name, value in ids.items() if value is not None}


@dataclass(frozen=True)
class CorpusInfo:
    """What ``corpus.json`` records about a built corpus.

    Attributes:
        dtype: ``"uint16"`` or ``"uint32"``, the little-endian type of the ids in ``train.bin`` / ``valid.bin``.
        vocab_size: ``len(tokenizer)`` of the tokenizer that made the ids.
        tokens: ids per split, separators included.
        documents: documents per split.
        valid_documents: names of the documents in the validation split.
        skipped: ``{"name", "reason"}`` of each file or document left out.
        special_tokens: ids of ``pad``, ``cls``, ``sep``, ``mask`` (and ``unk``).
        vocab_fingerprint: :func:`vocab_fingerprint` of the tokenizer.
        split_fallback: what was moved between splits when the hash left one of them empty, else ``None``.
        mode, valid_fraction, seed, strip_gutenberg: the settings of :func:`build_corpus`.
    """

    dtype: str
    vocab_size: int
    tokens: dict[str, int]
    documents: dict[str, int]
    valid_documents: tuple[str, ...]
    skipped: tuple[dict[str, str], ...]
    special_tokens: dict[str, int]
    vocab_fingerprint: str
    split_fallback: str | None
    mode: str
    valid_fraction: float
    seed: int
    strip_gutenberg: bool

    @classmethod
    def load(cls, out_dir: str | Path) -> CorpusInfo:
        """Read ``out_dir/corpus.json``; a missing or malformed file is an :class:`InputError` naming it."""
        path = Path(out_dir) / CORPUS_JSON
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError(f"{path}: no such file; build the corpus first") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise InputError(f"{path}: not a readable corpus description ({error})") from None
        names = {f.name for f in fields(cls)}
        if not isinstance(raw, dict) or not names <= raw.keys():
            found = sorted(raw) if isinstance(raw, dict) else type(raw).__name__
            raise InputError(f"{path}: needs the fields {sorted(names)}; found {found}")
        try:
            info = cls(**{k: tuple(raw[k]) if k in ("valid_documents", "skipped") else raw[k] for k in names})
            counts = [int(info.tokens[s]) for s in SPLITS] + [int(info.documents[s]) for s in SPLITS]
            ids = [int(info.special_tokens[name]) for name in ("pad", "cls", "sep", "mask")]
        except (TypeError, KeyError, ValueError) as error:
            raise InputError(f"{path}: malformed field ({error!r})") from None
        if info.dtype not in ("uint16", "uint32") or min(counts) < 0 or min(ids) < 0:
            raise InputError(f"{path}: dtype must be uint16 or uint32, counts and special ids >= 0")
        return info

    def check_tokenizer(self, tokenizer: PreTrainedTokenizerFast) -> None:
        """Raise an :class:`InputError` unless ``tokenizer`` is the one this corpus was built with."""
        if vocab_fingerprint(tokenizer) != self.vocab_fingerprint or len(tokenizer) != self.vocab_size:
            raise InputError(
                f"the corpus was built with another tokenizer (vocabulary of {self.vocab_size} tokens, "
                f"fingerprint {self.vocab_fingerprint[:12]}; this one has {len(tokenizer)} tokens, "
                f"fingerprint {vocab_fingerprint(tokenizer)[:12]}); rebuild the corpus with this tokenizer"
            )


@dataclass
class _Extreme:
    """The document a split would give up if the other split ended empty: its hash, name and id span."""

    key: float
    name: str
    start: int
    stop: int


class _SplitWriter:
    """Appends documents' ids to the open ``train`` and ``valid`` token files, joined by ``[SEP]``, and counts.

    Also keeps the fallback candidates: the train document with the smallest hash, the valid one with the largest.
    """

    def __init__(
        self, paths: dict[Split, Path], *, dtype: np.dtype, sep_id: int, valid_fraction: float, seed: int
    ) -> None:
        self.paths, self.dtype, self.valid_fraction, self.seed = paths, dtype, valid_fraction, seed
        self.sep = np.array([sep_id], dtype=dtype)
        self.handles = {split: path.open("wb") for split, path in paths.items()}
        self.tokens = dict.fromkeys(SPLITS, 0)
        self.documents = dict.fromkeys(SPLITS, 0)
        self.valid_names: list[str] = []
        self.extreme: dict[Split, _Extreme | None] = dict.fromkeys(SPLITS)
        self.last_name: str | None = None

    def add(self, name: str, ids: list[int]) -> None:
        """Append a document's ids, or continue the previous document when ``name`` is the one just added."""
        key = _document_hash(name, self.seed)
        split: Split = "valid" if key < self.valid_fraction else "train"
        handle = self.handles[split]
        if name == self.last_name:
            np.asarray(ids, dtype=self.dtype).tofile(handle)
            self.tokens[split] += len(ids)
            best = self.extreme[split]
            if best is not None and best.name == name:
                self.extreme[split] = replace(best, stop=self.tokens[split])
            return
        self.last_name = name
        if self.documents[split]:
            self.sep.tofile(handle)
            self.tokens[split] += 1
        start = self.tokens[split]
        np.asarray(ids, dtype=self.dtype).tofile(handle)
        self.tokens[split] += len(ids)
        self.documents[split] += 1
        if split == "valid":
            self.valid_names.append(name)
        best = self.extreme[split]
        if best is None or (key < best.key if split == "train" else key > best.key):
            self.extreme[split] = _Extreme(key, name, start, self.tokens[split])

    def close(self) -> None:
        for handle in self.handles.values():
            handle.close()

    def balance(self) -> str | None:
        """If one split is empty, move the other's candidate document into it; returns what was done."""
        for empty, full in (("valid", "train"), ("train", "valid")):
            moved = self.extreme[full]
            if self.documents[empty] or moved is None:
                continue
            source = np.memmap(self.paths[full], dtype=self.dtype, mode="r")
            source[moved.start : moved.stop].tofile(self.paths[empty])
            cut = (moved.start - 1, moved.stop) if moved.start > 0 else (0, moved.stop + 1)  # with its [SEP]
            rest = self.paths[full].with_name(self.paths[full].name + ".rest")
            with rest.open("wb") as handle:
                source[: cut[0]].tofile(handle)
                source[cut[1] :].tofile(handle)
            del source
            os.replace(rest, self.paths[full])
            length = moved.stop - moved.start
            self.tokens[full] -= length + 1
            self.tokens[empty] = length
            self.documents[full] -= 1
            self.documents[empty] = 1
            self.valid_names = (
                [moved.name] if empty == "valid" else [n for n in self.valid_names if n != moved.name]
            )
            return f"no document hashed into the {empty} split; moved {moved.name!r} ({length} tokens) from {full}"
        return None


def build_corpus(
    files: Sequence[str | Path],
    tokenizer: PreTrainedTokenizerFast,
    out_dir: str | Path,
    *,
    mode: Mode = "file",
    valid_fraction: float = 0.05,
    seed: int = 0,
    strict: bool = False,
    strip_gutenberg: bool = True,
    batch_docs: int = 64,
) -> CorpusInfo:
    """Tokenise the documents of ``files`` into ``out_dir/{train,valid}.bin`` and describe them in ``corpus.json``.

    Documents are streamed (:func:`read_documents`), tokenised ``batch_docs`` at a time by the tokenizer's Rust
    backend without special tokens (a literal ``"[MASK]"`` in the text is ordinary text, not the mask id), and
    appended to their split's file, separated by one ``[SEP]`` id. A document is in ``valid`` when
    :func:`is_valid_document`; if that leaves ``valid`` empty (a tiny corpus) the train document with the smallest
    hash moves there, and if it leaves ``train`` empty the valid document with the largest hash moves back, as
    ``split_fallback`` records. Every file is written under a temporary name and renamed when complete, and
    ``corpus.json`` last (an older one is removed first), so a killed build never leaves a corpus that loads.
    """
    from tokenizers import Tokenizer

    if not 0.0 < valid_fraction < 1.0:
        raise InputError(f"valid_fraction must be strictly between 0 and 1, got {valid_fraction}")
    if batch_docs < 1:
        raise InputError(f"batch_docs must be >= 1, got {batch_docs}")
    if not getattr(tokenizer, "is_fast", False):
        raise InputError("build_corpus needs a fast (Rust-backed) tokenizer with a tokenizer.json")
    specials = special_token_ids(tokenizer)
    dtype = token_dtype(len(tokenizer))
    backend = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())  # a copy, to change its settings
    backend.no_truncation()
    backend.no_padding()
    backend.encode_special_tokens = True
    skipped: list[dict[str, str]] = []

    def on_skip(name: str, reason: str) -> None:
        skipped.append({"name": name, "reason": reason})

    docs = read_documents(files, mode=mode, strict=strict, strip_gutenberg=strip_gutenberg, on_skip=on_skip)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / CORPUS_JSON).unlink(missing_ok=True)
    with (
        atomic_path(out / "train.bin") as train_tmp,
        atomic_path(out / "valid.bin") as valid_tmp,
        progress(desc=f"tokenising into {out}", unit="doc") as bar,
    ):
        writer = _SplitWriter({"train": train_tmp, "valid": valid_tmp}, dtype=dtype, sep_id=specials["sep"],
                              valid_fraction=valid_fraction, seed=seed)  # fmt: skip

        def tokenise(batch: list[Document]) -> None:
            encodings = backend.encode_batch([d.text for d in batch], add_special_tokens=False)
            for doc, encoding in zip(batch, encodings, strict=True):
                if encoding.ids:
                    writer.add(doc.name, encoding.ids)
                elif doc.name != writer.last_name:  # a later piece of a document may be white space alone
                    on_skip(doc.name, "no tokens")
            bar.update(len(batch))

        try:
            batch: list[Document] = []
            for doc in docs:
                batch.append(doc)
                if len(batch) == batch_docs:
                    tokenise(batch)
                    batch = []
            tokenise(batch)
        finally:
            writer.close()
        total = sum(writer.documents.values())
        if total < 2:
            raise InputError(
                f"{total} usable document(s) in {len(files)} file(s); a train and a valid split need at least two "
                "(to split one big file, use mode='line')"
            )
        fallback = writer.balance()
    if fallback is not None:
        LOGGER.warning("%s: %s", out, fallback)

    info = CorpusInfo(
        dtype=dtype.name,
        vocab_size=len(tokenizer),
        tokens=writer.tokens,
        documents=writer.documents,
        valid_documents=tuple(writer.valid_names),
        skipped=tuple(skipped),
        special_tokens=specials,
        vocab_fingerprint=vocab_fingerprint(tokenizer),
        split_fallback=fallback,
        mode=mode,
        valid_fraction=valid_fraction,
        seed=seed,
        strip_gutenberg=strip_gutenberg,
    )
    write_json(out / CORPUS_JSON, asdict(info))
    return info


class PackedDataset:
    """Fixed-length sequences cut from a token file, packed across document boundaries (RoBERTa-style).

    Sequence ``i`` is ``[CLS] + tokens[i·(L−2) : (i+1)·(L−2)] + [SEP]``; the last one may be shorter and is then
    right-padded with ``[PAD]`` to length L, its ``[SEP]`` right after its last token. The file is memory-mapped
    read-only, so a dataset costs no memory until sequences are gathered.

    Args:
        bin_path: raw little-endian ids (``train.bin`` or ``valid.bin`` of :func:`build_corpus`).
        seq_len: L, the length of every sequence (at least 3).
        cls_id, sep_id, pad_id: the ids of ``[CLS]``, ``[SEP]`` and ``[PAD]``.
        dtype: the ids' dtype (``"uint16"`` or ``"uint32"``).
    """

    def __init__(
        self,
        bin_path: str | Path,
        *,
        seq_len: int,
        cls_id: int,
        sep_id: int,
        pad_id: int,
        dtype: str | np.dtype,
    ) -> None:
        if seq_len < 3:
            raise InputError(f"seq_len must be >= 3 ([CLS], at least one token, [SEP]), got {seq_len}")
        self.path = Path(bin_path)
        self.seq_len = seq_len
        self.cls_id, self.sep_id, self.pad_id = cls_id, sep_id, pad_id
        self.dtype = np.dtype(dtype).newbyteorder("<")
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            raise InputError(f"{self.path}: no such token file") from None
        if size == 0:
            raise InputError(f"{self.path}: the split is empty (no tokens); give the corpus more documents")
        if size % self.dtype.itemsize:
            raise InputError(f"{self.path}: {size} bytes is not a whole number of {self.dtype.name} ids")
        self.tokens = np.memmap(self.path, dtype=self.dtype, mode="r")

    @classmethod
    def from_corpus(cls, corpus_dir: str | Path, split: Split, seq_len: int) -> PackedDataset:
        """The ``split`` of a corpus made by :func:`build_corpus`, with the ids and dtype its ``corpus.json`` gives."""
        if split not in SPLITS:
            raise InputError(f"split must be 'train' or 'valid', got {split!r}")
        info = CorpusInfo.load(corpus_dir)
        path = Path(corpus_dir) / f"{split}.bin"
        dataset = cls(path, seq_len=seq_len, cls_id=info.special_tokens["cls"], sep_id=info.special_tokens["sep"],
                      pad_id=info.special_tokens["pad"], dtype=info.dtype)  # fmt: skip
        if dataset.num_tokens != info.tokens[split]:
            raise InputError(
                f"{path}: holds {dataset.num_tokens} ids but corpus.json says {info.tokens[split]}; rebuild the corpus"
            )
        return dataset

    @property
    def num_tokens(self) -> int:
        """Ids in the token file."""
        return len(self.tokens)

    def __len__(self) -> int:
        return -(-self.num_tokens // (self.seq_len - 2))

    def __getitem__(self, index: int) -> torch.Tensor:
        """Sequence ``index`` as a ``(L,)`` int64 tensor."""
        return self.batch([index])[0]

    def batch(self, indices: np.ndarray | Sequence[int]) -> torch.Tensor:
        """Sequences ``indices`` as a ``(B, L)`` int64 tensor, gathered with one vectorised index."""
        index = np.asarray(indices, dtype=np.int64).reshape(-1)
        if index.size and (index.min() < 0 or index.max() >= len(self)):
            raise IndexError(
                f"sequence indices must be in [0, {len(self)}), got {index.min()}..{index.max()}"
            )
        body = self.seq_len - 2
        positions = index[:, None] * body + np.arange(body)  # (B, L-2)
        inside = positions < self.num_tokens
        out = np.full((index.size, self.seq_len), self.pad_id, dtype=np.int64)
        out[:, 0] = self.cls_id
        out[:, 1:-1] = np.where(inside, self.tokens[np.minimum(positions, self.num_tokens - 1)], self.pad_id)
        out[np.arange(index.size), 1 + inside.sum(axis=1)] = self.sep_id
        return torch.from_numpy(out)


class SequenceStream:
    """Endless, resumable batches of ``global_batch_size`` sequences, this rank's share of each.

    Epoch ``e`` visits the sequences in the order ``np.random.default_rng([seed, e]).permutation(len(dataset))``;
    global batches are consecutive slices of the epochs' orders joined end to end, so every batch is full (also
    when the dataset holds fewer sequences than one batch) and every sequence is seen once per epoch. Rank ``r``
    of ``world_size`` gets rows ``r·b : (r+1)·b`` (``b = global_batch_size / world_size``) of each global batch:
    the ranks' shares of one step, concatenated, are the single-process batch of that step.
    """

    def __init__(
        self,
        dataset: PackedDataset,
        *,
        global_batch_size: int,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if global_batch_size < 1 or world_size < 1 or not 0 <= rank < world_size:
            raise InputError(
                f"need global_batch_size >= 1, world_size >= 1 and 0 <= rank < world_size; "
                f"got {global_batch_size}, {world_size}, {rank}"
            )
        if global_batch_size % world_size:
            raise InputError(
                f"global_batch_size {global_batch_size} is not divisible by the world size {world_size}"
            )
        self.dataset = dataset
        self.global_batch_size = global_batch_size
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        self.offset = 0
        self._order: tuple[int, np.ndarray] | None = None

    @property
    def position(self) -> int:
        """Global batches drawn so far."""
        return (self.epoch * len(self.dataset) + self.offset) // self.global_batch_size

    def _permutation(self, epoch: int) -> np.ndarray:
        if self._order is None or self._order[0] != epoch:
            self._order = (epoch, np.random.default_rng([self.seed, epoch]).permutation(len(self.dataset)))
        return self._order[1]

    def next_global_indices(self) -> np.ndarray:
        """Advance by one global batch and return its ``(global_batch_size,)`` sequence indices."""
        parts, need, size = [], self.global_batch_size, len(self.dataset)
        while need:
            take = min(need, size - self.offset)
            parts.append(self._permutation(self.epoch)[self.offset : self.offset + take])
            need -= take
            self.offset += take
            if self.offset == size:
                self.epoch, self.offset = self.epoch + 1, 0
        return np.concatenate(parts)

    def next_batch(self) -> torch.Tensor:
        """This rank's ``(global_batch_size // world_size, L)`` int64 share of the next global batch."""
        share = self.global_batch_size // self.world_size
        indices = self.next_global_indices()
        return self.dataset.batch(indices[self.rank * share : (self.rank + 1) * share])

    def state_dict(self) -> dict[str, int]:
        """Where the stream stands: restoring it with :meth:`load_state_dict` replays the same next batches."""
        return {"epoch": self.epoch, "offset": self.offset, "seed": self.seed,
                "global_batch_size": self.global_batch_size, "num_sequences": len(self.dataset)}  # fmt: skip

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume from :meth:`state_dict`; a state from another seed, batch size or dataset is an InputError."""
        expected = {"seed": self.seed, "global_batch_size": self.global_batch_size,
                    "num_sequences": len(self.dataset)}  # fmt: skip
        missing = sorted({"epoch", "offset", *expected} - state.keys())
        if missing:
            raise InputError(f"stream state lacks {', '.join(missing)}")
        changed = [f"{k} {state[k]} (now {v})" for k, v in expected.items() if int(state[k]) != v]
        if changed:
            raise InputError(
                f"the stream state was saved with another {', '.join(changed)}; cannot resume it"
            )
        epoch, offset = int(state["epoch"]), int(state["offset"])
        if epoch < 0 or not 0 <= offset < len(self.dataset):
            raise InputError(
                f"stream state has epoch {epoch}, offset {offset}; the dataset has {len(self.dataset)}"
            )
        self.epoch, self.offset = epoch, offset


def attention_mask(input_ids: torch.Tensor, pad_id: int) -> torch.Tensor:
    """``(B, L)`` int64: 1 where ``input_ids`` is not ``pad_id``, 0 on padding."""
    return (input_ids != pad_id).long()
