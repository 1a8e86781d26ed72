"""Subword tokenizers for pretraining, trained with Hugging Face ``tokenizers`` and used as ``transformers`` ones.

METRO (Bajaj et al., 2022, §5) pretrains with a 64K-token cased vocabulary; :func:`train_tokenizer` trains any
size (up to 128K and beyond) of three kinds on the same documents :mod:`metro_lm.data` reads:

==============  ==========================================================================================
``"bpe"``       byte-level BPE (GPT-2 / RoBERTa): every byte is in the vocabulary, so no text is ever unknown
``"unigram"``   a unigram language model over ``▁``-marked pieces (SentencePiece / Kudo 2018); unknown: [UNK]
``"wordpiece"`` BERT's WordPiece with ``##`` continuation pieces and its pre-tokenizer; unknown: [UNK]
==============  ==========================================================================================

Every tokenizer NFKC-normalises its input (optionally lowercasing), has the special tokens
:data:`SPECIAL_TOKENS` at ids 0–4, and frames input as ``[CLS] a [SEP]`` or ``[CLS] a [SEP] b [SEP]`` with
``token_type_ids`` 0 for the first segment and 1 for the second.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from metro_lm.data import read_documents
from papers_common import InputError, progress

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

Kind = Literal["bpe", "unigram", "wordpiece"]
KINDS: tuple[Kind, ...] = ("bpe", "unigram", "wordpiece")
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
"""The special tokens, at ids 0, 1, 2, 3, 4 of every trained tokenizer."""
REQUIRED_TOKENS = ("pad", "cls", "sep", "mask")
"""The special tokens pretraining cannot do without."""
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")
BYTE_ALPHABET = 256


def train_tokenizer(
    files: Sequence[str | Path],
    *,
    vocab_size: int = 16000,
    kind: Kind = "bpe",
    lowercase: bool = False,
    min_frequency: int = 2,
    model_max_length: int = 512,
    strict: bool = False,
    out: str | Path | None = None,
) -> PreTrainedTokenizerFast:
    """Train a ``kind`` tokenizer of ``vocab_size`` tokens on the documents of ``files``, streamed.

    Args:
        files: UTF-8 text files, read as :func:`metro_lm.data.read_documents` reads them (one document per file,
            Gutenberg boilerplate stripped, empty or undecodable files skipped with a warning or, when ``strict``,
            an :class:`InputError`).
        vocab_size: tokens in the vocabulary, special tokens included (a small corpus may give fewer); byte-level
            BPE needs at least 256 + 5.
        kind: ``"bpe"``, ``"unigram"`` or ``"wordpiece"``.
        lowercase: lowercase after NFKC normalisation (an uncased vocabulary).
        min_frequency: how often a pair (BPE) or word (WordPiece) must occur to be merged; the unigram trainer
            has no such threshold and ignores it.
        model_max_length: the longest input the tokenizer reports as valid (``tokenizer.model_max_length``).
        out: when given, the folder the tokenizer is saved to (``save_pretrained``).

    Returns:
        a ``PreTrainedTokenizerFast`` with ``pad``, ``unk``, ``cls``, ``sep`` and ``mask`` tokens set.
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    if kind not in KINDS:
        raise InputError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}")
    smallest = len(SPECIAL_TOKENS) + (BYTE_ALPHABET if kind == "bpe" else 1)
    if vocab_size < smallest:
        what = "256 bytes and 5 special tokens" if kind == "bpe" else "more than the 5 special tokens"
        raise InputError(f"a {kind} vocabulary needs {what}: vocab_size >= {smallest}, got {vocab_size}")
    if min_frequency < 1 or model_max_length < 3:
        raise InputError(
            f"need min_frequency >= 1 and model_max_length >= 3; got {min_frequency}, {model_max_length}"
        )
    unk, cls, sep = SPECIAL_TOKENS[1:4]
    specials = list(SPECIAL_TOKENS)

    if kind == "bpe":
        tokenizer = Tokenizer(models.BPE())
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tokenizer.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=specials,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)  # fmt: skip
    elif kind == "unigram":
        tokenizer = Tokenizer(models.Unigram())
        tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
        tokenizer.decoder = decoders.Metaspace()
        trainer = trainers.UnigramTrainer(vocab_size=vocab_size, special_tokens=specials, unk_token=unk,
                                          show_progress=False)  # fmt: skip
    else:
        tokenizer = Tokenizer(models.WordPiece(unk_token=unk))
        tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tokenizer.decoder = decoders.WordPiece()
        trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                            special_tokens=specials, show_progress=False)  # fmt: skip
    tokenizer.normalizer = normalizers.Sequence(
        [normalizers.NFKC(), normalizers.Lowercase()] if lowercase else [normalizers.NFKC()]
    )

    documents = read_documents(files, mode="file", strict=strict)  # checks that the files exist, now
    counted = {"documents": 0}

    def texts() -> Iterator[str]:
        with progress(desc=f"training a {kind} tokenizer", unit="doc") as bar:
            for doc in documents:
                counted["documents"] += 1
                bar.update(1)
                yield doc.text

    tokenizer.train_from_iterator(texts(), trainer=trainer)
    if not counted["documents"]:
        raise InputError(f"none of the {len(files)} file(s) has text to train a tokenizer on")
    ids = [tokenizer.token_to_id(token) for token in SPECIAL_TOKENS]
    if ids != list(range(len(SPECIAL_TOKENS))):  # the trainers put them first, as SPECIAL_TOKENS promises
        raise RuntimeError(f"the {kind} trainer put the special tokens {SPECIAL_TOKENS} at ids {ids}")
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{cls} $A {sep}",
        pair=f"{cls} $A {sep} $B:1 {sep}:1",
        special_tokens=[(cls, ids[2]), (sep, ids[3])],
    )
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token=SPECIAL_TOKENS[0],
        unk_token=unk,
        cls_token=cls,
        sep_token=sep,
        mask_token=SPECIAL_TOKENS[4],
        model_max_length=model_max_length,
        model_input_names=["input_ids", "token_type_ids", "attention_mask"],
    )
    if out is not None:
        wrapped.save_pretrained(str(out))
    return wrapped


def load_tokenizer(path: str | Path) -> PreTrainedTokenizerFast:
    """The fast tokenizer saved in the local folder ``path`` (never downloaded), checked for the special tokens
    pretraining needs (``[PAD]``, ``[CLS]``, ``[SEP]``, ``[MASK]`` or their equivalents)."""
    from transformers import AutoTokenizer

    folder = Path(path)
    if not folder.is_dir():
        raise InputError(f"{folder}: no such tokenizer folder")
    if not any((folder / name).is_file() for name in TOKENIZER_FILES):
        raise InputError(f"{folder}: not a tokenizer folder (it has neither {' nor '.join(TOKENIZER_FILES)})")
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError, KeyError) as error:
        raise InputError(f"{folder}: cannot load the tokenizer ({error})") from None
    if not getattr(tokenizer, "is_fast", False):
        raise InputError(
            f"{folder}: a fast tokenizer (tokenizer.json) is needed; found {type(tokenizer).__name__}"
        )
    missing = [name for name in REQUIRED_TOKENS if getattr(tokenizer, f"{name}_token") is None]
    if missing:
        raise InputError(f"{folder}: the tokenizer has no {', '.join(f'{m}_token' for m in missing)}")
    return tokenizer
