"""Long-form test sets: synthetic recordings made with espeak-ng, and LibriSpeech chapters joined end to end.

A corpus is a folder of recordings, each ``NAME.wav`` (16 kHz mono 16-bit) beside ``NAME.json``::

    {"audio": "NAME.wav", "sample_rate": 16000, "duration_s": ...,
     "segments": [{"text": ..., "start": ..., "end": ..., ...}],   # sentences / utterances, in order
     "words": [{"text": ..., "start": ..., "end": ...}]}           # every reference word with its time

and ``corpus.json`` listing the recordings and how they were made. The segments are the oracle segmentation that the
chunking-induced error rate decodes one by one (:mod:`vad_asr.evaluation`).

Synthetic recordings (VADOI §4's long-form sets, made offline): sentences of the given text spoken by varied
espeak-ng voices and speeds, joined by pauses drawn from 0.1–1.5 s, with a share of short pauses (below VADOI's
s_min) so that some windows find no pause to cut at, and optional white noise at a given level. Audio is written
as it is made, so a recording of any length never sits in memory.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from papers_common import InputError, atomic_path, progress, write_json
from vad_asr.audio import TARGET_RATE, AudioFile
from vad_asr.engines import spread_words
from vad_asr.words import Word

CORPUS_FILE = "corpus.json"
VOICES = ("en-us", "en", "en-gb-x-rp", "en-029", "en-gb-scotland", "en-us+f3", "en+m3", "en-us+f2")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_SPEAKABLE = re.compile(r"^[A-Za-z][A-Za-z' ,;:.!?-]*$")


@dataclass(frozen=True)
class SynthesisSettings:
    """How a synthetic corpus is made.

    Attributes:
        minutes: total length of speech and pauses to make.
        recording_minutes: length of each recording (``None``: one recording of ``minutes``).
        voices: espeak-ng voices drawn from, one per sentence.
        speeds: lowest and highest speaking rate, words per minute.
        pauses: shortest and longest pause between sentences, seconds.
        short_pause_fraction: share of pauses drawn from ``short_pauses`` instead (below VADOI's s_min = 0.3 s).
        short_pauses: their range, seconds.
        noise_db: white noise level in dBFS (``None``: none).
        min_words, max_words: sentences of this many words are used.
        seed: the random choices (sentence order, voice, speed, pause, noise).
    """

    minutes: float = 30.0
    recording_minutes: float | None = None
    voices: tuple[str, ...] = VOICES
    speeds: tuple[int, int] = (140, 190)
    pauses: tuple[float, float] = (0.1, 1.5)
    short_pause_fraction: float = 0.3
    short_pauses: tuple[float, float] = (0.05, 0.25)
    noise_db: float | None = None
    min_words: int = 4
    max_words: int = 40
    seed: int = 0

    def check(self) -> None:
        if not self.minutes > 0:
            raise InputError(f"--minutes must be positive, got {self.minutes}")
        if self.recording_minutes is not None and not self.recording_minutes > 0:
            raise InputError(f"--recording-minutes must be positive, got {self.recording_minutes}")
        if not 40 <= self.speeds[0] <= self.speeds[1] <= 500:
            raise InputError(
                f"speeds must satisfy 40 <= low <= high <= 500 words per minute, got {self.speeds}"
            )
        if not 0 <= self.pauses[0] <= self.pauses[1] or not 0 <= self.short_pauses[0] <= self.short_pauses[1]:
            raise InputError(
                f"pause ranges must be 0 <= low <= high, got {self.pauses} and {self.short_pauses}"
            )
        if self.noise_db is not None and not self.noise_db <= 0.0:
            raise InputError(f"--noise-db is a level below full scale, at most 0 dBFS, got {self.noise_db}")
        if not 0.0 <= self.short_pause_fraction <= 1.0:
            raise InputError(f"the short-pause share must lie in [0, 1], got {self.short_pause_fraction}")
        if not self.voices:
            raise InputError("at least one voice is needed")


def text_sentences(texts: Iterable[str], *, min_words: int = 4, max_words: int = 40) -> list[str]:
    """Sentences a synthesiser reads as written: letters and punctuation only (no digits, which espeak-ng would
    expand into words the reference does not have), ``min_words``..``max_words`` words, white space normalised."""
    found = []
    for text in texts:
        for piece in _SENTENCE_END.split(" ".join(text.split())):
            sentence = piece.strip()
            if _SPEAKABLE.match(sentence) and min_words <= len(sentence.split()) <= max_words:
                found.append(sentence)
    return found


def read_texts(text_dir: str | Path) -> list[str]:
    """The ``.txt`` files of a folder (``METADATA.txt`` and unreadable files left out), sorted by name."""
    folder = Path(text_dir)
    if not folder.is_dir():
        raise InputError(f"--text-dir {folder}: not a folder")
    texts = []
    for path in sorted(folder.rglob("*.txt")):
        if path.name == "METADATA.txt":
            continue
        try:
            texts.append(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            continue
    if not texts:
        raise InputError(f"--text-dir {folder}: no UTF-8 .txt files")
    return texts


@dataclass
class Recording:
    """One recording's reference, as stored in ``NAME.json``."""

    audio: str
    duration_s: float
    segments: list[dict[str, Any]]
    words: list[Word]
    sample_rate: int = TARGET_RATE
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"audio": self.audio, "sample_rate": self.sample_rate, "duration_s": self.duration_s,
                "segments": self.segments, "words": [asdict(w) for w in self.words], **self.extra}  # fmt: skip

    @classmethod
    def load(cls, path: Path) -> Recording:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            words = [Word(str(w["text"]), float(w["start"]), float(w["end"])) for w in data["words"]]
            return cls(str(data["audio"]), float(data["duration_s"]), list(data["segments"]), words,
                       int(data.get("sample_rate", TARGET_RATE)))  # fmt: skip
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise InputError(f"{path}: not a vad-asr reference file ({error})") from None

    @property
    def text(self) -> str:
        return " ".join(w.text for w in self.words)


class _Writer:
    """A 16 kHz mono 16-bit WAV written block by block, moved into place when complete."""

    def __init__(self, path: Path, rng: np.random.Generator, noise_db: float | None) -> None:
        self.path, self.rng, self.noise_db = path, rng, noise_db
        self._atomic = atomic_path(path)
        self._tmp = self._atomic.__enter__()
        self._file = sf.SoundFile(str(self._tmp), "w", samplerate=TARGET_RATE, channels=1, subtype="PCM_16",
                                  format="WAV")  # fmt: skip
        self.samples = 0

    def write(self, block: np.ndarray) -> None:
        if self.noise_db is not None:
            block = block + (10 ** (self.noise_db / 20) * self.rng.standard_normal(len(block))).astype(
                np.float32
            )
        self._file.write(np.clip(block, -1.0, 1.0))
        self.samples += len(block)

    def close(self) -> None:
        self._file.close()
        self._atomic.__exit__(None, None, None)


def synthesize_corpus(
    sentences: Sequence[str], out: str | Path, settings: SynthesisSettings = SynthesisSettings()
) -> list[Path]:
    """Write a synthetic long-form corpus under ``out``; returns the reference files.

    Sentences are taken in a seeded random order (repeating when the text is shorter than the corpus).
    """
    from vad_asr.synthesis import Synthesizer

    settings.check()
    if not sentences:
        raise InputError("no usable sentences (letters and punctuation only, 4-40 words) in the text")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    synthesizer = Synthesizer()
    rng = random.Random(settings.seed)
    noise = np.random.default_rng(settings.seed)
    total = settings.minutes * 60.0
    per_recording = total if settings.recording_minutes is None else settings.recording_minutes * 60.0
    order = _sentence_stream(sentences, rng)
    made: list[Path] = []
    done = 0.0
    bar = progress(total=round(total), desc="synthesise", unit="s")
    while done < total - 1e-6:
        name = f"recording{len(made):03d}"
        length = min(per_recording, total - done)
        writer = _Writer(out / f"{name}.wav", noise, settings.noise_db)
        segments: list[dict[str, Any]] = []
        words: list[Word] = []
        leading = rng.uniform(*settings.pauses)
        writer.write(np.zeros(round(leading * TARGET_RATE), dtype=np.float32))
        while writer.samples < length * TARGET_RATE:
            sentence = next(order)
            voice = rng.choice(settings.voices)
            speed = rng.randint(*settings.speeds)
            spoken = synthesizer.speak(sentence, voice=voice, speed=speed)
            first, last = _voiced_span(spoken.samples)
            start = writer.samples / TARGET_RATE
            shift = start - first / TARGET_RATE
            writer.write(spoken.samples[first:last])
            end = writer.samples / TARGET_RATE
            words += [
                Word(w.text, max(start, w.start + shift), min(end, max(w.end + shift, start)))
                for w in spoken.words
            ]
            segments.append({"text": sentence, "start": start, "end": end, "voice": voice, "speed": speed})
            short = rng.random() < settings.short_pause_fraction
            pause = rng.uniform(*(settings.short_pauses if short else settings.pauses))
            writer.write(np.zeros(round(pause * TARGET_RATE), dtype=np.float32))
            reached = round(done + writer.samples / TARGET_RATE)
            bar.update(max(0, min(reached, round(total)) - bar.n))
        writer.close()
        duration = writer.samples / TARGET_RATE
        recording = Recording(f"{name}.wav", duration, segments, words, extra={"synthesis": asdict(settings)})
        write_json(out / f"{name}.json", recording.to_json())
        made.append(out / f"{name}.json")
        done += duration
    bar.close()
    write_json(out / CORPUS_FILE, {"kind": "synthetic", "engine": "espeak-ng", "recordings": [p.name for p in made],
                                   "settings": asdict(settings)})  # fmt: skip
    return made


def _sentence_stream(sentences: Sequence[str], rng: random.Random) -> Iterator[str]:
    while True:
        order = list(sentences)
        rng.shuffle(order)
        yield from order


def _voiced_span(samples: np.ndarray, threshold: float = 1e-3) -> tuple[int, int]:
    """``(first, last + 1)``: the span of samples louder than ``threshold`` (the whole array when silent)."""
    loud = np.flatnonzero(np.abs(samples) > threshold)
    if len(loud) == 0:
        return 0, len(samples)
    return int(loud[0]), int(loud[-1]) + 1


def load_corpus(folder: str | Path) -> list[tuple[Path, Recording]]:
    """The ``(audio path, reference)`` pairs of a corpus folder (every ``*.json`` beside a recording)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"--corpus {folder}: not a folder")
    pairs = []
    for path in sorted(folder.glob("*.json")):
        if path.name == CORPUS_FILE:
            continue
        recording = Recording.load(path)
        audio = folder / recording.audio
        if not audio.is_file():
            raise InputError(f"{path}: its recording {audio.name} is missing")
        pairs.append((audio, recording))
    if not pairs:
        raise InputError(f"--corpus {folder}: no recordings (NAME.wav with NAME.json)")
    return pairs


def build_librispeech(root: str | Path, out: str | Path, *, max_minutes: float | None = None) -> list[Path]:
    """Long-form recordings from a local LibriSpeech split: each chapter's utterances joined in order.

    ``root`` is a split folder (``LibriSpeech/test-clean``: ``SPEAKER/CHAPTER/SPEAKER-CHAPTER-UTT.flac`` with
    ``SPEAKER-CHAPTER.trans.txt``). Each chapter becomes one recording (resampled to 16 kHz if needed); its
    segments are the utterances with their times, and its words are spread over their utterance by length (the
    transcripts have no word times). ``max_minutes`` caps each recording.
    """
    root, out = Path(root), Path(out)
    transcripts = sorted(root.glob("*/*/*.trans.txt"))
    if not transcripts:
        raise InputError(f"--librispeech {root}: no SPEAKER/CHAPTER/*.trans.txt (a LibriSpeech split folder)")
    out.mkdir(parents=True, exist_ok=True)
    made = []
    for transcript in progress(transcripts, desc="chapters", unit="chapter"):
        name = transcript.name.removesuffix(".trans.txt")
        writer = _Writer(out / f"{name}.wav", np.random.default_rng(0), None)
        segments: list[dict[str, Any]] = []
        words: list[Word] = []
        for line_number, line in enumerate(transcript.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            utterance, _, text = line.partition(" ")
            flac = transcript.parent / f"{utterance}.flac"
            if not flac.is_file():
                raise InputError(f"{transcript}:{line_number}: {flac.name} is missing")
            if max_minutes is not None and writer.samples >= max_minutes * 60 * TARGET_RATE:
                break
            audio = AudioFile(flac)
            samples = audio.read(0, audio.num_samples)
            start = writer.samples / TARGET_RATE
            writer.write(samples)
            end = writer.samples / TARGET_RATE
            words += spread_words(text.split(), start, end)
            segments.append({"text": text, "start": start, "end": end, "utterance": utterance})
        writer.close()
        recording = Recording(f"{name}.wav", writer.samples / TARGET_RATE, segments, words,
                              extra={"source": "librispeech"})  # fmt: skip
        write_json(out / f"{name}.json", recording.to_json())
        made.append(out / f"{name}.json")
    write_json(
        out / CORPUS_FILE,
        {"kind": "librispeech", "source": str(root.name), "recordings": [p.name for p in made]},
    )
    return made
