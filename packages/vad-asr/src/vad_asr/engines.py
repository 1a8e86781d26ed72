"""Speech recognisers behind one protocol: a chunk of 16 kHz audio in, words with chunk-relative times out.

- :class:`PocketSphinxEngine`: CMU PocketSphinx with the US English acoustic model, language model and dictionary
  that ship in its wheel (offline, no download).
- :class:`HuggingFaceEngine`: a local ``transformers`` checkpoint folder, CTC (``AutoModelForCTC``: greedy decoding,
  word times from the frames of their characters) or sequence-to-sequence (``AutoModelForSpeechSeq2Seq``: words
  spread evenly over the chunk, as such models give no times).

Any object with ``transcribe(samples, sample_rate) -> list[Word]`` is an engine; :func:`transcribe_long
<vad_asr.longform.transcribe_long>` shifts its words to recording time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from papers_common import InputError, pick_device
from vad_asr.words import Word

ENGINES = ("pocketsphinx", "hf", "ctc")


@runtime_checkable
class Engine(Protocol):
    """An ASR engine: ``(n,)`` float32 mono samples at ``sample_rate`` → words, times in seconds from the chunk start."""

    def transcribe(self, samples: np.ndarray, sample_rate: int) -> list[Word]: ...


def _pcm16(samples: np.ndarray) -> bytes:
    return (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


class PocketSphinxEngine:
    """PocketSphinx 5 (``pocketsphinx.Decoder``) with its bundled en-us model; 100 frames per second.

    Fillers (``<s>``, ``</s>``, ``<sil>``, ``[NOISE]``...) are dropped and alternative pronunciations
    (``word(2)``) are reported as the word. The feature front end is reset before every chunk: PocketSphinx
    otherwise carries feature state from one utterance into the next, so a chunk's words would depend on which
    chunks were decoded before it (measured: the same sentence read as "the weather was going" after silence and
    "when i was going" after 3 s of noise; OI-50's chunking-induced error rate 0.5858 or 0.5774 on one corpus
    depending on the order of the runs).
    """

    FRAME_RATE = 100

    def __init__(self, sample_rate: int = 16_000) -> None:
        import pocketsphinx

        self.sample_rate = sample_rate
        self._decoder = pocketsphinx.Decoder(samprate=sample_rate, loglevel="FATAL")

    def transcribe(self, samples: np.ndarray, sample_rate: int) -> list[Word]:
        if sample_rate != self.sample_rate:
            raise InputError(f"PocketSphinx was set up for {self.sample_rate} Hz audio, got {sample_rate} Hz")
        if len(samples) == 0:
            return []
        decoder = self._decoder
        decoder.reinit_feat()
        decoder.start_utt()
        decoder.process_raw(_pcm16(samples), full_utt=True)
        decoder.end_utt()
        words = []
        for segment in decoder.seg():
            text = segment.word
            if text.startswith(("<", "[")) or not text:
                continue
            text = text.split("(", 1)[0]
            words.append(
                Word(text, segment.start_frame / self.FRAME_RATE, (segment.end_frame + 1) / self.FRAME_RATE)
            )
        return words


class HuggingFaceEngine:
    """A local Hugging Face speech checkpoint (no download: ``local_files_only``).

    Args:
        model_dir: a folder written by ``save_pretrained`` holding the model and its processor (feature extractor
            and tokenizer).
        device: ``"cpu"`` or a CUDA device.
    """

    def __init__(self, model_dir: str | Path, device: str = "cpu") -> None:
        import torch

        try:
            from transformers import AutoConfig, AutoModelForCTC, AutoModelForSpeechSeq2Seq, AutoProcessor
        except ImportError:
            raise InputError("--engine hf needs transformers: pip install 'vad-asr[transformers]'") from None

        folder = Path(model_dir)
        if not (folder / "config.json").is_file():
            raise InputError(f"--model {folder}: not a Hugging Face model folder (no config.json)")
        try:
            config = AutoConfig.from_pretrained(folder, local_files_only=True)
            self.processor = AutoProcessor.from_pretrained(folder, local_files_only=True)
            architectures = config.architectures or []
            self.is_ctc = any(a.endswith("ForCTC") for a in architectures)
            loader = AutoModelForCTC if self.is_ctc else AutoModelForSpeechSeq2Seq
            self.model = loader.from_pretrained(folder, local_files_only=True).to(device).eval()
        except (OSError, ValueError, KeyError) as error:
            raise InputError(f"--model {folder}: cannot load it ({str(error).splitlines()[0]})") from None
        self.device = torch.device(device)
        self.sample_rate = int(getattr(self.processor.feature_extractor, "sampling_rate", 16_000))

    def transcribe(self, samples: np.ndarray, sample_rate: int) -> list[Word]:
        import torch

        if sample_rate != self.sample_rate:
            raise InputError(f"the model expects {self.sample_rate} Hz audio, got {sample_rate} Hz")
        if len(samples) == 0:
            return []
        inputs = self.processor(samples, sampling_rate=sample_rate, return_tensors="pt").to(self.device)
        with torch.no_grad():
            if self.is_ctc:
                logits = self.model(**inputs).logits[0]
                return self._ctc_words(logits.argmax(-1).cpu().numpy(), len(samples) / sample_rate)
            ids = self.model.generate(**inputs)
        text = self.processor.batch_decode(ids, skip_special_tokens=True)[0]
        return spread_words(text.split(), 0.0, len(samples) / sample_rate)

    def _ctc_words(self, ids: np.ndarray, duration: float) -> list[Word]:
        """Greedy CTC over the tokenizer's pieces; its word delimiter and special tokens end a word."""
        from vad_asr.ctc import best_path_words

        tokenizer = self.processor.tokenizer
        delimiter = getattr(tokenizer, "word_delimiter_token", "|") or "|"
        special = set(tokenizer.all_special_tokens) | {delimiter}

        def piece(token: int) -> str | None:
            text = tokenizer.convert_ids_to_tokens(token)
            return None if text in special else text

        return best_path_words(ids.tolist(), piece, blank=tokenizer.pad_token_id,
                               seconds_per_frame=duration / max(len(ids), 1))  # fmt: skip


def spread_words(texts: list[str], start: float, end: float) -> list[Word]:
    """Words without times laid evenly over ``[start, end)`` (weights: their lengths in characters)."""
    if not texts:
        return []
    weights = np.array([len(t) + 1 for t in texts], dtype=float)
    edges = start + (end - start) * np.concatenate([[0.0], np.cumsum(weights)]) / weights.sum()
    return [Word(t, float(a), float(b)) for t, a, b in zip(texts, edges[:-1], edges[1:], strict=True)]


def make_engine(
    name: str,
    *,
    model: str | Path | None = None,
    device: str = "cpu",
    decoder: str | None = None,
    lm: str | Path | None = None,
    beam_width: int | None = None,
) -> Engine:
    """An engine by name: ``pocketsphinx``, ``hf`` (``model``: a local checkpoint folder) or ``ctc`` (``model``: a
    folder written by ``vad-asr train-ctc``; ``None``: the model that ships in the package).

    ``decoder`` (``beam``, the default, or ``greedy``), ``lm`` (an ARPA word model; default: the model folder's
    ``lm.arpa.gz``) and ``beam_width`` apply to ``ctc`` only."""
    if name not in ENGINES:
        raise InputError(f"engine must be one of {', '.join(ENGINES)}, got {name!r}")
    if name != "ctc":
        for flag, value in (("--decoder", decoder), ("--lm", lm), ("--beam-width", beam_width)):
            if value is not None:
                raise InputError(f"{flag} applies to --engine ctc only")
    if name == "pocketsphinx":
        return PocketSphinxEngine()
    device = str(pick_device(device))  # a bad or missing device is named here, before any model loads
    if name == "ctc":
        from vad_asr.beam import BeamSettings
        from vad_asr.ctc import CTCEngine

        decoding = {"decoder": decoder or "beam", "lm": lm,
                    "beam": BeamSettings() if beam_width is None else BeamSettings(width=beam_width)}  # fmt: skip
        if model is None:
            return CTCEngine.shipped(device=device, **decoding)
        return CTCEngine(model, device=device, **decoding)
    if name == "hf":
        if model is None:
            raise InputError("--engine hf needs --model DIR, a local Hugging Face checkpoint folder")
        return HuggingFaceEngine(model, device=device)
    raise InputError(f"engine must be one of {', '.join(ENGINES)}, got {name!r}")
