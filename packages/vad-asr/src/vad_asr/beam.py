"""CTC prefix beam search with a lexicon and a word bigram model (shallow fusion).

Each hypothesis is a character prefix — its finished words and the word in progress — with the log-probabilities
of the CTC paths ending in a blank (``p_b``) and in a character (``p_nb``) (Graves, 2012; Hannun et al., 2014).
Its rank is

    ln(p_b + p_nb) + Σ_words [α · ln P(w | previous word) + β] + (κ if the word in progress is no lexicon prefix)

where a word outside the lexicon scores ``α · ln P(<unk> | previous) + β + κ`` (κ < 0: ``unknown_offset``), so
the lexicon steers the search without forbidding names it has never seen. Frames whose blank probability is at
least ``blank_skip`` only extend every hypothesis by a blank, and characters below ``min_log_prob`` are never
tried; both keep the search linear in the speech, not the silence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from papers_common import InputError
from vad_asr.ngram import WordLM
from vad_asr.words import Word

NEG_INF = -math.inf


@dataclass(frozen=True)
class BeamSettings:
    """Beam search settings (defaults chosen on 60 *Hamlet* sentences with a word model built without *Hamlet*).

    Attributes:
        width: hypotheses kept per frame.
        lm_weight: α, the weight of the word model's natural-log probabilities.
        word_bonus: β, added per word (balances the model's preference for fewer words).
        unknown_offset: κ, added for a word (or word in progress) outside the lexicon.
        min_log_prob: characters with a lower log-probability in a frame are not tried.
        blank_skip: frames with a blank probability at least this only extend by a blank.
    """

    width: int = 16
    lm_weight: float = 0.5
    word_bonus: float = 1.5
    unknown_offset: float = -10.0
    min_log_prob: float = -8.0
    blank_skip: float = 0.999

    def check(self) -> None:
        if self.width < 1:
            raise InputError(f"--beam-width must be at least 1, got {self.width}")
        for name, value in (("--lm-weight", self.lm_weight), ("--word-bonus", self.word_bonus)):
            if not math.isfinite(value):
                raise InputError(f"{name} must be a finite number, got {value}")
        if not self.lm_weight >= 0:
            raise InputError(f"--lm-weight must be at least 0, got {self.lm_weight}")
        if not (self.unknown_offset <= 0 and math.isfinite(self.unknown_offset)):
            raise InputError(f"--unknown-offset must be a finite number at most 0, got {self.unknown_offset}")
        if not 0 < self.blank_skip <= 1:
            raise InputError(f"blank_skip must lie in (0, 1], got {self.blank_skip}")


@dataclass(frozen=True)
class _Hypothesis:
    words: tuple[str, ...]
    partial: str
    times: tuple[tuple[int, int], ...]  # (first, last) frame of every finished word, then of the partial one
    lm: float  # Σ α·ln P + β over the finished words
    last: int  # id of the last character of the prefix (0: none yet)


def _logaddexp(a: float, b: float) -> float:
    if a == NEG_INF:
        return b
    if b == NEG_INF:
        return a
    m = max(a, b)
    return m + math.log(math.exp(a - m) + math.exp(b - m))


def _add(table: dict, hyp: _Hypothesis, p_b: float, p_nb: float) -> None:
    """Add path probabilities to the hypothesis of ``hyp``'s prefix in ``table`` (keeping the stronger timing)."""
    key = (hyp.words, hyp.partial)
    entry = table.get(key)
    if entry is None:
        table[key] = [hyp, p_b, p_nb]
        return
    if p_nb > entry[2] and p_nb > entry[1]:
        entry[0] = hyp
    entry[1], entry[2] = _logaddexp(entry[1], p_b), _logaddexp(entry[2], p_nb)


def beam_search_words(
    log_probs: np.ndarray,
    lm: WordLM,
    alphabet: str,
    *,
    seconds_per_frame: float,
    settings: BeamSettings | None = None,
    blank: int = 0,
) -> list[Word]:
    """Decode ``(T, 1 + len(alphabet))`` CTC log-probabilities into timed words.

    Args:
        log_probs: per-frame natural-log probabilities; column ``blank`` is the blank, column ``k + 1`` is
            ``alphabet[k]`` (the space separates words).
        lm: the word model and lexicon.
        alphabet: the characters of the columns after the blank.
        seconds_per_frame: frame duration; a word spans its first to last character frame.
        settings: :class:`BeamSettings` (defaults when ``None``).
    Returns:
        The best hypothesis's words with times in seconds from the start of ``log_probs``.
    """
    s = settings or BeamSettings()
    s.check()
    if log_probs.ndim != 2 or log_probs.shape[1] != len(alphabet) + 1:
        raise InputError(f"log-probabilities must be (T, {len(alphabet) + 1}), got {log_probs.shape}")
    space = alphabet.index(" ") + 1
    word_cache: dict[tuple[str, str | None], float] = {}

    def word_score(word: str, previous: str | None) -> float:
        key = (word, previous)
        if key not in word_cache:
            token = word.strip("'")
            value = s.lm_weight * lm.log_prob(token, previous) + s.word_bonus
            word_cache[key] = value if token in lm else value + s.unknown_offset
        return word_cache[key]

    def penalty(partial: str) -> float:
        token = partial.strip("'")
        return 0.0 if not token or token in lm.prefixes else s.unknown_offset

    # key (words, partial) -> [hypothesis, p_b, p_nb]
    beams: dict[tuple[tuple[str, ...], str], list] = {
        ((), ""): [_Hypothesis((), "", (), 0.0, 0), 0.0, NEG_INF]
    }
    log_skip = math.log(s.blank_skip)
    for t in range(log_probs.shape[0]):
        frame = log_probs[t]
        lp_blank = float(frame[blank])
        if lp_blank >= log_skip:
            for entry in beams.values():
                entry[1], entry[2] = _logaddexp(entry[1], entry[2]) + lp_blank, NEG_INF
            continue
        candidates = [int(k) for k in np.flatnonzero(frame >= s.min_log_prob) if k != blank]
        following: dict[tuple[tuple[str, ...], str], list] = {}

        for hyp, p_b, p_nb in beams.values():
            total = _logaddexp(p_b, p_nb)
            _add(following, hyp, total + lp_blank, NEG_INF)
            for k in candidates:
                lp = float(frame[k])
                if k == hyp.last:
                    # the same character again: without a blank between it repeats (same prefix) ...
                    if p_nb > NEG_INF:
                        if hyp.partial and k != space:
                            first, _ = hyp.times[-1]
                            _add(
                                following,
                                replace(hyp, times=(*hyp.times[:-1], (first, t))),
                                NEG_INF,
                                p_nb + lp,
                            )
                        else:
                            _add(following, hyp, NEG_INF, p_nb + lp)
                    extend = p_b + lp  # ... after a blank it is a new character
                else:
                    extend = total + lp
                if extend == NEG_INF:
                    continue
                if k == space:
                    if not hyp.partial:
                        _add(following, replace(hyp, last=k), NEG_INF, extend)
                        continue
                    previous = hyp.words[-1].strip("'") if hyp.words else None
                    _add(following, _Hypothesis((*hyp.words, hyp.partial), "", hyp.times,
                                    hyp.lm + word_score(hyp.partial, previous), k), NEG_INF, extend)  # fmt: skip
                else:
                    char = alphabet[k - 1]
                    times = (
                        (*hyp.times, (t, t)) if not hyp.partial else (*hyp.times[:-1], (hyp.times[-1][0], t))
                    )
                    _add(
                        following,
                        _Hypothesis(hyp.words, hyp.partial + char, times, hyp.lm, k),
                        NEG_INF,
                        extend,
                    )

        ranked = sorted(
            following.items(),
            key=lambda item: _logaddexp(item[1][1], item[1][2]) + item[1][0].lm + penalty(item[1][0].partial),
            reverse=True,
        )
        beams = dict(ranked[: s.width])

    # "… word" and "… word " are one transcript: their probabilities add up before the best is chosen
    finals: dict[tuple[str, ...], tuple[float, float, _Hypothesis]] = {}
    for hyp, p_b, p_nb in beams.values():
        texts = (*hyp.words, hyp.partial) if hyp.partial else hyp.words
        lm_total = hyp.lm
        if hyp.partial:
            lm_total += word_score(hyp.partial, hyp.words[-1].strip("'") if hyp.words else None)
        p = _logaddexp(p_b, p_nb)
        if texts in finals:
            q, _, kept = finals[texts]
            finals[texts] = (_logaddexp(p, q), lm_total, hyp if p > q else kept)
        else:
            finals[texts] = (p, lm_total, hyp)
    texts, (_, _, best) = max(finals.items(), key=lambda item: item[1][0] + item[1][1])
    return [
        Word(text, first * seconds_per_frame, (last + 1) * seconds_per_frame)
        for text, (first, last) in zip(texts, best.times, strict=True)
    ]
