"""Speech from text with espeak-ng, with the time of every word (the reference of a synthetic corpus).

The espeak-ng library (``libespeak-ng``, installed with the ``espeak-ng`` program) is driven through ctypes in
synchronous mode: it returns 22,050 Hz 16-bit samples and a WORD event, with its position in the text and its
start in the audio, for each word it speaks. espeak-ng speaks some short function words together with the next
word ("the best" is one event); such words share that event's interval, split in proportion to their lengths.
Audio is resampled to 16 kHz with ``resample_poly(x, 320, 441)``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import re
from dataclasses import dataclass

import numpy as np

from papers_common import InputError
from vad_asr.audio import TARGET_RATE, resample
from vad_asr.words import Word

INSTALL_HINT = (
    "espeak-ng is not installed: `apt-get install espeak-ng` (Debian/Ubuntu), `dnf install espeak-ng` (Fedora) or "
    "`brew install espeak-ng` (macOS)"
)
_WORD_EVENT, _LIST_END = 1, 0
_SYNCHRONOUS = 2
_RATE, _PITCH = 1, 3
_CHARS_UTF8, _POSITION_CHARACTER = 1, 1
_TOKEN = re.compile(r"\S+")


class _Event(ctypes.Structure):
    """``espeak_EVENT`` of ``speak_lib.h``."""

    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint), ("text_position", ctypes.c_int),
                ("length", ctypes.c_int), ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", ctypes.c_char * 8)]  # fmt: skip


_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)


@dataclass(frozen=True)
class Utterance:
    """Synthesised speech: ``(n,)`` float32 samples at 16 kHz and the words with times from its start."""

    samples: np.ndarray
    words: list[Word]

    @property
    def duration(self) -> float:
        return len(self.samples) / TARGET_RATE


class Synthesizer:
    """espeak-ng in this process (one instance is enough; the library keeps global state).

    Raises:
        InputError: espeak-ng is not installed (the message says how to install it).
    """

    _library: ctypes.CDLL | None = None
    _rate = 0

    def __init__(self) -> None:
        cls = type(self)
        if cls._library is None:
            name = ctypes.util.find_library("espeak-ng")
            if name is None:
                raise InputError(INSTALL_HINT)
            try:
                library = ctypes.CDLL(name)
            except OSError:
                raise InputError(INSTALL_HINT) from None
            rate = library.espeak_Initialize(_SYNCHRONOUS, 0, None, 0)
            if rate <= 0:
                raise InputError(f"espeak-ng did not start (its data folder may be missing); {INSTALL_HINT}")
            cls._library, cls._rate = library, rate
        self._chunks: list[np.ndarray] = []
        self._events: list[tuple[int, int, int]] = []
        self._callback = _CALLBACK(self._collect)  # kept alive as long as the library may call it

    def _collect(
        self, wav: ctypes.POINTER(ctypes.c_short), count: int, events: ctypes.POINTER(_Event)
    ) -> int:  # type: ignore[valid-type]
        if count > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(count,)).copy())
        k = 0
        while events[k].type != _LIST_END:
            event = events[k]
            if event.type == _WORD_EVENT:
                self._events.append((event.text_position, event.length, event.audio_position))
            k += 1
        return 0

    def speak(self, text: str, *, voice: str = "en-us", speed: int = 165, pitch: int = 50) -> Utterance:
        """``text`` spoken by ``voice`` (an espeak-ng voice name such as ``en-us``, ``en-gb``, ``en-us+f3``) at
        ``speed`` words per minute and ``pitch`` 0–99; every whitespace-separated token of ``text`` is a word."""
        library = type(self)._library
        assert library is not None
        self._chunks, self._events = [], []
        library.espeak_SetSynthCallback(self._callback)
        if library.espeak_SetVoiceByName(voice.encode()) != 0:
            raise InputError(f"espeak-ng has no voice {voice!r} (`espeak-ng --voices` lists them)")
        library.espeak_SetParameter(_RATE, int(speed), 0)
        library.espeak_SetParameter(_PITCH, int(pitch), 0)
        data = text.encode("utf-8")
        library.espeak_Synth(ctypes.c_char_p(data), ctypes.c_size_t(len(data) + 1), 0, _POSITION_CHARACTER, 0,
                             _CHARS_UTF8, None, None)  # fmt: skip
        library.espeak_Synchronize()
        native = np.concatenate(self._chunks) if self._chunks else np.zeros(0, dtype=np.int16)
        samples = resample(native.astype(np.float32) / 32768.0, type(self)._rate, TARGET_RATE)
        return Utterance(samples, _word_times(text, self._events, len(samples) / TARGET_RATE))


def _word_times(text: str, events: list[tuple[int, int, int]], duration: float) -> list[Word]:
    """Times of every token of ``text`` from espeak-ng's WORD events (1-based byte positions, start in ms).

    Tokens without an event are spoken with the next one that has an event ("the best"), and share its interval
    in proportion to their lengths; an interval ends where the next event starts, the last at ``duration``.
    """
    tokens = [(len(text[: m.start()].encode("utf-8")), m.group()) for m in _TOKEN.finditer(text)]
    if not tokens:
        return []
    starts: dict[int, float] = {}
    for position, _length, millis in events:
        byte = position - 1
        for k, (offset, token) in enumerate(tokens):
            if offset <= byte < offset + len(token.encode("utf-8")):
                starts.setdefault(k, millis / 1000.0)
                break
    known = sorted(starts)
    if not known:
        return _spread(tokens, 0.0, duration)
    words: list[Word] = []
    low = 0
    for n, k in enumerate(known):
        last = n + 1 == len(known)
        high = len(tokens) if last else k + 1
        end = duration if last else starts[known[n + 1]]
        words += _spread(tokens[low:high], starts[k], max(end, starts[k]))
        low = high
    return words


def _spread(tokens: list[tuple[int, str]], start: float, end: float) -> list[Word]:
    weights = np.array([len(t) for _, t in tokens], dtype=float)
    edges = start + (end - start) * np.concatenate([[0.0], np.cumsum(weights)]) / max(weights.sum(), 1.0)
    return [Word(t, float(a), float(b)) for (_, t), a, b in zip(tokens, edges[:-1], edges[1:], strict=True)]
