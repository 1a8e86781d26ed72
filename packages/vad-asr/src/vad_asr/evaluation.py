"""Word error rates of long-form transcripts (jiwer), on normalised words."""

from __future__ import annotations

from collections.abc import Sequence

import jiwer

from vad_asr.words import Word, normalize_text


def word_error_rate(reference: str | Sequence[Word], hypothesis: str | Sequence[Word]) -> float:
    """(substitutions + deletions + insertions) / reference words, after lower-casing and stripping punctuation.

    An empty reference gives 0.0 for an empty hypothesis and 1.0 otherwise.
    """
    ref = normalize_text(reference if isinstance(reference, str) else " ".join(w.text for w in reference))
    hyp = normalize_text(hypothesis if isinstance(hypothesis, str) else " ".join(w.text for w in hypothesis))
    if not ref:
        return 0.0 if not hyp else 1.0
    if not hyp:
        return 1.0
    return float(jiwer.wer(" ".join(ref), " ".join(hyp)))
