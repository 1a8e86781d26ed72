"""Recognised words with absolute times, the currency between engines, merges and evaluation."""

from __future__ import annotations

import re
from dataclasses import dataclass

_PUNCTUATION = re.compile(r"[^\w']+|^'+|'+$")


@dataclass(frozen=True)
class Word:
    """One recognised word.

    Attributes:
        text: the word as the engine wrote it.
        start, end: seconds from the start of the whole recording (not of the chunk).
    """

    text: str
    start: float
    end: float

    @property
    def mid(self) -> float:
        """The word's mid-time τ in seconds (VADOI §3: the time of an alignment column)."""
        return 0.5 * (self.start + self.end)

    def shifted(self, offset: float) -> Word:
        """The same word ``offset`` seconds later (chunk time → recording time)."""
        return Word(self.text, self.start + offset, self.end + offset)


def normalize_word(text: str) -> str:
    """Lower case without punctuation (apostrophes inside a word are kept: ``"Don't!"`` → ``"don't"``).

    Merges compare words in this form; WER is computed on it too.
    """
    return _PUNCTUATION.sub("", text.lower())


def normalize_text(text: str) -> list[str]:
    """The non-empty normalised words of a transcript."""
    return [w for w in (normalize_word(t) for t in text.split()) if w]
