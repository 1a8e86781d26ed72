"""Tokenizers: special ids, the [CLS]/[SEP] template, save and load, and named errors."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from transformers import PreTrainedTokenizerFast

from metro_lm.data import CorpusWarning
from metro_lm.tokenizer import KINDS, SPECIAL_TOKENS, load_tokenizer, train_tokenizer
from papers_common import InputError


def write_corpus(folder: Path, *, files: int = 3, lines: int = 80, seed: int = 0) -> list[Path]:
    """Seeded random-word sentences, ``lines`` per file."""
    rng = random.Random(seed)
    words = ["".join(rng.choice("abcdefghijklmnop") for _ in range(rng.randint(2, 7))) for _ in range(200)]
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(files):
        text = "\n".join(" ".join(rng.choices(words, k=10)).capitalize() + "." for _ in range(lines))
        paths.append(folder / f"part{i}.txt")
        paths[-1].write_text(text + "\n", encoding="utf-8")
    return paths


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return write_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="module", params=KINDS)
def trained(request: pytest.FixtureRequest, corpus: list[Path], tmp_path_factory: pytest.TempPathFactory):
    """A tokenizer of each kind and the folder it was saved to."""
    out = tmp_path_factory.mktemp(f"tok-{request.param}")
    return train_tokenizer(corpus, vocab_size=300, kind=request.param, model_max_length=128, out=out), out


def test_special_tokens_have_ids_0_to_4(trained):
    tok, _ = trained
    assert tok.convert_tokens_to_ids(list(SPECIAL_TOKENS)) == [0, 1, 2, 3, 4]
    ids = [getattr(tok, f"{name}_token_id") for name in ("pad", "unk", "cls", "sep", "mask")]
    assert ids == [0, 1, 2, 3, 4]
    assert 5 < len(tok) <= 300


def test_template_frames_single_texts_and_pairs(trained):
    tok, _ = trained
    single = tok("abc def.")
    assert single["input_ids"][0] == tok.cls_token_id
    assert single["input_ids"][-1] == tok.sep_token_id
    assert tok.sep_token_id not in single["input_ids"][1:-1]
    pair = tok("abc def.", "ghi")
    ids, types = pair["input_ids"], pair["token_type_ids"]
    first = ids.index(tok.sep_token_id)
    assert ids[0] == tok.cls_token_id
    assert ids[-1] == tok.sep_token_id
    assert types == [0] * (first + 1) + [1] * (len(ids) - first - 1)
    assert 1 in types
    assert tok("abc def.", add_special_tokens=False)["input_ids"] == single["input_ids"][1:-1]


def test_saved_tokenizer_loads_back_the_same(trained):
    tok, out = trained
    loaded = load_tokenizer(out)
    assert loaded.get_vocab() == tok.get_vocab()
    assert loaded.model_max_length == 128
    text = "Abc defg hij. Klmno p."
    assert loaded(text, "second")["input_ids"] == tok(text, "second")["input_ids"]
    assert loaded(text, "second")["token_type_ids"] == tok(text, "second")["token_type_ids"]
    assert loaded.mask_token == "[MASK]"
    assert loaded.decode(loaded(text, add_special_tokens=False)["input_ids"]).strip() != ""


def test_byte_level_bpe_knows_every_byte(corpus):
    tok = train_tokenizer(corpus, vocab_size=300, kind="bpe")
    ids = tok("Zürich ☃ 日本語 \t ~", add_special_tokens=False)["input_ids"]
    assert tok.unk_token_id not in ids
    assert tok.decode(ids) == "Zürich ☃ 日本語 \t ~"


def test_lowercase_and_nfkc_normalisation(corpus):
    tok = train_tokenizer(corpus, vocab_size=300, kind="wordpiece", lowercase=True)
    assert tok("ABC DEF")["input_ids"] == tok("abc def")["input_ids"]
    assert tok("ﬁ")["input_ids"] == tok("fi")["input_ids"]  # NFKC unfolds the ligature


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"vocab_size": 5, "kind": "wordpiece"}, "vocab_size >= 6"),
        ({"vocab_size": 200, "kind": "bpe"}, "256 bytes"),
        ({"kind": "sentencepiece"}, "kind must be one of"),
        ({"min_frequency": 0}, "min_frequency >= 1"),
    ],
)
def test_bad_settings_are_named(corpus, kwargs, message):
    with pytest.raises(InputError, match=message):
        train_tokenizer(corpus, **kwargs)


def test_empty_and_undecodable_files_are_skipped_or_refused(tmp_path, corpus):
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n", encoding="utf-8")
    with pytest.warns(CorpusWarning, match=r"empty\.txt"):
        tok = train_tokenizer([*corpus, empty], vocab_size=300, kind="unigram")
    assert tok.mask_token_id == 4
    with pytest.raises(InputError, match=r"empty\.txt"):
        train_tokenizer([*corpus, empty], vocab_size=300, strict=True)
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("café".encode("latin-1"))
    with (
        pytest.warns(CorpusWarning, match="latin1.txt"),
        pytest.raises(InputError, match="none of the 1 file"),
    ):
        train_tokenizer([latin1], vocab_size=300)


def test_load_tokenizer_names_what_is_wrong(tmp_path, corpus):
    missing = tmp_path / "no-such-tokenizer"
    with pytest.raises(InputError, match="no-such-tokenizer"):
        load_tokenizer(missing)
    (tmp_path / "bare").mkdir()
    with pytest.raises(InputError, match=r"bare: not a tokenizer folder"):
        load_tokenizer(tmp_path / "bare")
    tok = train_tokenizer(corpus, vocab_size=300)
    unmasked = PreTrainedTokenizerFast(
        tokenizer_object=tok.backend_tokenizer, pad_token="[PAD]", sep_token="[SEP]"
    )
    unmasked.save_pretrained(tmp_path / "unmasked")
    with pytest.raises(InputError, match=r"unmasked: the tokenizer has no cls_token, mask_token"):
        load_tokenizer(tmp_path / "unmasked")
