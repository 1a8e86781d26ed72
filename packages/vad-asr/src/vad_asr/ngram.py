"""A word bigram language model with a lexicon, for CTC beam decoding.

Estimated from running text with interpolated absolute discounting (Ney et al., 1994) and stored as an ARPA file —
the field's standard n-gram format (KenLM, SRILM), so a model trained elsewhere loads too (its first two orders are
used; ``<s>``/``</s>`` are read but the decoder, which sees windows cut mid-sentence, never conditions on them).

    P(w)     = c(w) / N · (1 − P(<unk>)),   P(<unk>) = n₁ / N            (n₁: words seen once, Good–Turing)
    P(w | v) = max(c(v, w) − D, 0) / c(v) + D · N₁₊(v ·) / c(v) · P(w)    (stored bigrams: c(v, w) ≥ min count)
    P(w | v) = b(v) · P(w) otherwise,  b(v) = (1 − Σ_stored P(w | v)) / (1 − Σ_stored P(w))

Words are normalised like the CTC model's transcripts (lower case, letters and apostrophes).
"""

from __future__ import annotations

import gzip
import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from papers_common import InputError, atomic_path

UNK = "<unk>"
SENTENCE_MARKS = ("<s>", "</s>")
DISCOUNT = 0.75
LN10 = math.log(10.0)


def text_words(text: str) -> list[str]:
    """The words of ``text`` in the CTC model's alphabet (lower case, letters and apostrophes)."""
    return [w.strip("'") for w in re.sub(r"[^a-z' ]+", " ", text.lower()).split() if w.strip("'")]


@dataclass
class WordLM:
    """Natural-log unigram and bigram probabilities (``ln P``) with bigram back-off weights (``ln b``).

    ``prefixes`` holds every prefix of every word (the lexicon as a prefix set), so the beam can tell a partial
    word that may still become a known word from one that cannot.
    """

    unigram: dict[str, float]
    bigram: dict[tuple[str, str], float]
    backoff: dict[str, float]
    prefixes: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        if UNK not in self.unigram:
            raise InputError(f"a word language model needs a {UNK} unigram")
        self.prefixes = frozenset(w[:k] for w in self.unigram if w not in (UNK, *SENTENCE_MARKS)
                                  for k in range(1, len(w) + 1))  # fmt: skip

    def __contains__(self, word: str) -> bool:
        return word in self.unigram and word not in (UNK, *SENTENCE_MARKS)

    def log_prob(self, word: str, previous: str | None) -> float:
        """``ln P(word | previous)`` (``previous`` ``None``: the unigram); unknown words score as ``<unk>``."""
        if word not in self:
            word = UNK
        if previous is not None:
            if previous not in self.unigram:
                previous = UNK
            stored = self.bigram.get((previous, word))
            if stored is not None:
                return stored
            return self.backoff.get(previous, 0.0) + self.unigram[word]
        return self.unigram[word]

    @classmethod
    def from_words(
        cls, words: Iterable[str], *, min_bigram_count: int = 2, min_word_count: int = 1
    ) -> WordLM:
        """Estimate the model from running words (already normalised, e.g. by :func:`text_words`)."""
        if min_bigram_count < 1 or min_word_count < 1:
            raise InputError("minimum counts must be at least 1")
        unigrams: Counter[str] = Counter()
        bigrams: Counter[tuple[str, str]] = Counter()
        previous = None
        for word in words:
            unigrams[word] += 1
            if previous is not None:
                bigrams[(previous, word)] += 1
            previous = word
        total = sum(unigrams.values())
        if total == 0:
            raise InputError("no words to build a language model from")
        kept = {w: c for w, c in unigrams.items() if c >= min_word_count}
        singletons = sum(1 for c in unigrams.values() if c == 1)
        p_unk = max(singletons, 1) / total + sum(c for w, c in unigrams.items() if w not in kept) / total
        p_unk = min(p_unk, 0.5)
        scale = (1.0 - p_unk) / sum(kept.values())
        p_uni = {w: c * scale for w, c in kept.items()}
        p_uni[UNK] = p_unk
        context_count: Counter[str] = Counter()
        followers: Counter[str] = Counter()
        for (v, _), c in bigrams.items():
            context_count[v] += c
            followers[v] += 1
        bigram: dict[tuple[str, str], float] = {}
        mass: Counter[str] = Counter()
        lower_mass: Counter[str] = Counter()
        for (v, w), c in bigrams.items():
            if c < min_bigram_count or v not in kept or w not in kept:
                continue
            p = (c - DISCOUNT) / context_count[v] + DISCOUNT * followers[v] / context_count[v] * p_uni[w]
            bigram[(v, w)] = math.log(p)
            mass[v] += p
            lower_mass[v] += p_uni[w]
        backoff = {v: math.log(max(1.0 - mass[v], 1e-12) / max(1.0 - lower_mass[v], 1e-12)) for v in mass}
        return cls({w: math.log(p) for w, p in p_uni.items()}, bigram, backoff)

    @classmethod
    def from_texts(cls, texts: Iterable[str], **counts: int) -> WordLM:
        """Estimate the model from raw texts (each normalised by :func:`text_words`)."""
        return cls.from_words((w for text in texts for w in text_words(text)), **counts)

    def save_arpa(self, path: str | Path) -> Path:
        """Write the model as an ARPA file (gzip-compressed when the name ends in ``.gz``), atomically."""
        path = Path(path)
        lines = [
            "",
            "\\data\\",
            f"ngram 1={len(self.unigram)}",
            f"ngram 2={len(self.bigram)}",
            "",
            "\\1-grams:",
        ]
        for word, lp in self.unigram.items():
            bow = self.backoff.get(word)
            lines.append(f"{lp / LN10:.6f}\t{word}" + (f"\t{bow / LN10:.6f}" if bow is not None else ""))
        lines += ["", "\\2-grams:"]
        lines += [f"{lp / LN10:.6f}\t{v} {w}" for (v, w), lp in self.bigram.items()]
        lines += ["", "\\end\\", ""]
        data = "\n".join(lines).encode()
        with atomic_path(path) as tmp:
            tmp.write_bytes(gzip.compress(data, mtime=0) if path.name.endswith(".gz") else data)
        return path

    @classmethod
    def load_arpa(cls, path: str | Path) -> WordLM:
        """Read an ARPA file (plain or ``.gz``); orders above 2 are skipped. Malformed lines are named."""
        path = Path(path)
        if not path.is_file():
            raise InputError(f"language model {path} is not a file")
        try:
            raw = path.read_bytes()
            text = (gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw).decode("utf-8")
        except (OSError, EOFError, UnicodeDecodeError, gzip.BadGzipFile) as error:
            raise InputError(f"language model {path} cannot be read: {error}") from None
        unigram: dict[str, float] = {}
        bigram: dict[tuple[str, str], float] = {}
        backoff: dict[str, float] = {}
        order = 0
        for number, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if not line:
                continue
            if line.startswith("\\"):
                heading = re.fullmatch(r"\\(\d+)-grams:", line)
                order = int(heading.group(1)) if heading else 0
                continue
            if order not in (1, 2):
                continue
            parts = line.split()
            try:
                lp = float(parts[0]) * LN10
                gram = parts[1 : 1 + order]
                if len(gram) != order or len(parts) > order + 2:
                    raise ValueError
                bow = float(parts[1 + order]) * LN10 if len(parts) == order + 2 else None
            except (ValueError, IndexError):
                raise InputError(f"{path}:{number}: not an ARPA {order}-gram line: {line[:60]!r}") from None
            if order == 1:
                unigram[gram[0]] = lp
                if bow is not None:
                    backoff[gram[0]] = bow
            else:
                bigram[(gram[0], gram[1])] = lp
        if not unigram:
            raise InputError(f"{path} holds no ARPA unigrams (\\1-grams: section)")
        if UNK not in unigram:
            unigram[UNK] = min(unigram.values())
        return cls(unigram, bigram, backoff)
