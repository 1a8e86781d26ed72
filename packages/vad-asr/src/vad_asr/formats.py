"""Writing recognised words in the field's formats: JSON, NIST CTM and SubRip (SRT)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Literal

from vad_asr.words import Word

Format = Literal["json", "ctm", "srt"]
FORMATS: tuple[Format, ...] = ("json", "ctm", "srt")


def to_ctm(words: Sequence[Word], recording: str, channel: str = "1") -> str:
    """One ``recording channel start duration word`` line per word (NIST CTM, seconds to 0.01)."""
    return "".join(
        f"{recording} {channel} {w.start:.2f} {max(w.end - w.start, 0.0):.2f} {w.text}\n" for w in words
    )


def _timestamp(seconds: float) -> str:
    millis = round(max(seconds, 0.0) * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d},{millis:03d}"


def to_srt(words: Sequence[Word], *, max_words: int = 12, max_gap_s: float = 1.0) -> str:
    """Subtitles of at most ``max_words`` words, a new one after a pause longer than ``max_gap_s``."""
    cues: list[list[Word]] = []
    for word in words:
        if not cues or len(cues[-1]) >= max_words or word.start - cues[-1][-1].end > max_gap_s:
            cues.append([])
        cues[-1].append(word)
    return "".join(f"{k}\n{_timestamp(c[0].start)} --> {_timestamp(c[-1].end)}\n{' '.join(w.text for w in c)}\n\n"
                   for k, c in enumerate(cues, 1))  # fmt: skip


def render(transcript: dict[str, Any], words: Sequence[Word], fmt: Format, recording: str) -> str:
    """The transcript in ``fmt``; JSON carries the windows, compute and settings too."""
    if fmt == "ctm":
        return to_ctm(words, recording)
    if fmt == "srt":
        return to_srt(words)
    return json.dumps(transcript, indent=2) + "\n"
