"""The in-package CTC recogniser: separable convolutions over log-mel features, characters out.

Architecture (:class:`CTCConfig` fixes it; the saved ``config.json`` rebuilds it):

    log-mel (B, 80, T) → Conv1d k5 s2 → GELU → Conv1d k5 s2 → GELU      (T/4: 40 ms per frame)
    → N × [depthwise Conv1d k15 → LayerNorm → pointwise C→2C → GELU → 2C→C, residual]
    → LayerNorm → Linear → (B, T/4, 29) log-probabilities over blank, space, apostrophe and a–z

Trained with CTC (Graves et al., 2006). :class:`CTCEngine` decodes by prefix beam search with the word bigram
model stored beside the weights (``lm.arpa.gz``, :mod:`vad_asr.beam`) or greedily (best path: collapse repeats,
drop blanks), and times each word from the frames of its first and last characters, so it plugs into
:func:`~vad_asr.longform.transcribe_long` like any engine.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from papers_common import InputError, atomic_path
from vad_asr.beam import BeamSettings, beam_search_words
from vad_asr.features import HOP, N_MELS, SAMPLE_RATE, LogMel, frame_count
from vad_asr.ngram import WordLM
from vad_asr.words import Word

ALPHABET = " 'abcdefghijklmnopqrstuvwxyz"  # index 0 is the CTC blank, so character k has id k + 1
BLANK = 0
SUBSAMPLING = 4
CONFIG_FILE, WEIGHTS_FILE, LM_FILE = "config.json", "model.safetensors", "lm.arpa.gz"
DECODERS = ("beam", "greedy")


def encode_text(text: str) -> list[int]:
    """Character ids of a transcript: lower case, letters, apostrophes and single spaces (other characters dropped)."""
    cleaned = " ".join(re.sub(r"[^a-z' ]+", " ", text.lower()).split())
    return [ALPHABET.index(c) + 1 for c in cleaned]


def decode_ids(ids: list[int]) -> str:
    return "".join(ALPHABET[i - 1] for i in ids if i != BLANK)


@dataclass(frozen=True)
class CTCConfig:
    """Sizes of the CTC model.

    Attributes:
        channels: width C of every block.
        blocks: number N of separable-convolution blocks.
        kernel: depthwise kernel (frames of 40 ms).
        dropout: on each block's output during training.
    """

    channels: int = 192
    blocks: int = 6
    kernel: int = 15
    dropout: float = 0.1

    def check(self) -> None:
        if self.channels < 1 or self.blocks < 0 or self.kernel < 1 or self.kernel % 2 == 0:
            raise InputError(f"bad CTC model sizes {asdict(self)} (kernel must be odd, channels positive)")
        if not 0.0 <= self.dropout < 1.0:
            raise InputError(f"dropout must lie in [0, 1), got {self.dropout}")


class _Block(nn.Module):
    def __init__(self, channels: int, kernel: int, dropout: float) -> None:
        super().__init__()
        self.depthwise = nn.Conv1d(channels, channels, kernel, padding=kernel // 2, groups=channels)
        self.norm = nn.LayerNorm(channels)
        self.expand = nn.Linear(channels, 2 * channels)
        self.project = nn.Linear(2 * channels, channels)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, T)`` → ``(B, C, T)``."""
        h = self.norm(self.depthwise(x).transpose(1, 2))
        h = self.project(nn.functional.gelu(self.expand(h)))
        return x + self.dropout(h).transpose(1, 2)


class CTCModel(nn.Module):
    """Waveforms ``(B, n)`` at 16 kHz → log-probabilities ``(B, T', 29)`` and their frame counts ``(B,)``."""

    def __init__(self, config: CTCConfig | None = None) -> None:
        super().__init__()
        config = config or CTCConfig()
        config.check()
        self.config = config
        c = config.channels
        self.features = LogMel()
        self.subsample = nn.Sequential(nn.Conv1d(N_MELS, c, 5, stride=2, padding=2), nn.GELU(),
                                       nn.Conv1d(c, c, 5, stride=2, padding=2), nn.GELU())  # fmt: skip
        self.blocks = nn.Sequential(*(_Block(c, config.kernel, config.dropout) for _ in range(config.blocks)))
        self.norm = nn.LayerNorm(c)
        self.output = nn.Linear(c, len(ALPHABET) + 1)

    def forward(
        self, waveforms: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if lengths is None:
            lengths = torch.full((waveforms.shape[0],), waveforms.shape[1], device=waveforms.device)
        x = self.blocks(self.subsample(self.features(waveforms, lengths)))
        logits = self.output(self.norm(x.transpose(1, 2)))
        frames = output_frames(lengths).clamp(max=logits.shape[1])
        return logits.log_softmax(-1), frames

    def save(self, folder: str | Path) -> Path:
        """Write ``config.json`` and ``model.safetensors`` (each atomically) into ``folder``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(folder / WEIGHTS_FILE) as tmp:
            save_file({k: v.contiguous() for k, v in self.state_dict().items()}, str(tmp))
        with atomic_path(folder / CONFIG_FILE) as tmp:
            Path(tmp).write_text(json.dumps({"architecture": "vad-asr-ctc", **asdict(self.config),
                                             "alphabet": ALPHABET, "sample_rate": SAMPLE_RATE}, indent=2))  # fmt: skip
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> CTCModel:
        """A model saved by :meth:`save` (weights read with safetensors only)."""
        folder = Path(folder)
        try:
            data = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
            if data.get("architecture") != "vad-asr-ctc" or data.get("alphabet") != ALPHABET:
                raise ValueError("not a vad-asr CTC model")
            config = CTCConfig(**{k: data[k] for k in ("channels", "blocks", "kernel", "dropout")})
            model = cls(config)
            model.load_state_dict(load_file(str(folder / WEIGHTS_FILE)))
        except (OSError, ValueError, KeyError, TypeError, RuntimeError, SafetensorError) as error:
            raise InputError(
                f"{folder}: not a readable vad-asr CTC model ({str(error).splitlines()[0]})"
            ) from None
        return model.eval()


def output_frames(lengths: torch.Tensor) -> torch.Tensor:
    """Output frames for waveforms of ``lengths`` samples (two stride-2 convolutions, padding 2, kernel 5)."""
    frames = frame_count(lengths)
    for _ in range(2):
        frames = (frames - 1) // 2 + 1
    return frames


SECONDS_PER_FRAME = HOP * SUBSAMPLING / SAMPLE_RATE  # 0.04


def best_path_words(
    ids: Sequence[int], piece: Callable[[int], str | None], *, blank: int, seconds_per_frame: float
) -> list[Word]:
    """Greedy CTC words from per-frame best token ids: repeats collapse, blanks drop, and a token whose ``piece``
    is ``None`` (a word delimiter or special token) ends the word. A word spans the frames of its first to its
    last token (repeats included), each ``seconds_per_frame`` long."""
    words: list[Word] = []
    letters: list[str] = []
    first = last = 0
    previous = blank

    def close() -> None:
        if letters:
            words.append(Word("".join(letters), first * seconds_per_frame, (last + 1) * seconds_per_frame))
            letters.clear()

    for frame, token in enumerate(ids):
        if token == blank:
            previous = token
            continue
        if token == previous:
            if letters:
                last = frame
            continue
        previous = token
        text = piece(token)
        if text is None:
            close()
            continue
        if not letters:
            first = frame
        letters.append(text)
        last = frame
    close()
    return words


def greedy_words(log_probs: np.ndarray) -> list[Word]:
    """Best-path decoding of ``(T, 29)`` log-probabilities into words timed from their characters' frames."""
    return best_path_words(log_probs.argmax(-1).tolist(), lambda k: None if k == 1 else ALPHABET[k - 1],
                           blank=BLANK, seconds_per_frame=SECONDS_PER_FRAME)  # fmt: skip


SHIPPED = Path(__file__).parent / "weights" / "ctc"
"""The model that ships in the package (its recipe beside it, ``recipe.json``)."""


class CTCEngine:
    """The in-package CTC model as an engine (CPU by default).

    Args:
        model: a :class:`CTCModel` or a model folder (``vad-asr train-ctc``'s ``model/``).
        decoder: ``"beam"`` (prefix beam search with a word bigram model) or ``"greedy"`` (best path).
        lm: the word model for ``"beam"``: a :class:`~vad_asr.ngram.WordLM`, an ARPA file, or ``None`` for the
            model folder's ``lm.arpa.gz`` (built from the training text by ``train-ctc``).
        beam: :class:`~vad_asr.beam.BeamSettings` (defaults when ``None``).
    """

    def __init__(
        self,
        model: CTCModel | str | Path,
        device: str = "cpu",
        *,
        decoder: str = "beam",
        lm: WordLM | str | Path | None = None,
        beam: BeamSettings | None = None,
    ) -> None:
        if decoder not in DECODERS:
            raise InputError(f"--decoder must be one of {', '.join(DECODERS)}, got {decoder!r}")
        self.beam = beam or BeamSettings()
        self.beam.check()
        self.model = (model if isinstance(model, CTCModel) else CTCModel.load(model)).to(device).eval()
        self.device = torch.device(device)
        self.lm: WordLM | None = None
        if decoder == "beam":
            if lm is None:
                if isinstance(model, CTCModel):
                    raise InputError("beam decoding needs a word model: pass lm (an ARPA file or WordLM)")
                lm = Path(model) / LM_FILE
                if not lm.is_file():
                    raise InputError(f"{model} holds no {LM_FILE}; pass --lm FILE.arpa or --decoder greedy")
            self.lm = lm if isinstance(lm, WordLM) else WordLM.load_arpa(lm)

    @classmethod
    def shipped(cls, device: str = "cpu", **decoding: Any) -> CTCEngine:
        """The model trained on espeak-ng speech that ships in the package, with its word model."""
        if not (SHIPPED / WEIGHTS_FILE).is_file():
            raise InputError(
                "this vad-asr build ships no CTC model; pass --model DIR (a vad-asr train-ctc folder)"
            )
        return cls(SHIPPED, device=device, **decoding)

    def decode(self, log_probs: np.ndarray) -> list[Word]:
        """Words from ``(T, 29)`` log-probabilities with this engine's decoder."""
        if self.lm is None:
            return greedy_words(log_probs)
        return beam_search_words(log_probs, self.lm, ALPHABET, seconds_per_frame=SECONDS_PER_FRAME,
                                 settings=self.beam)  # fmt: skip

    def log_probs(self, samples: np.ndarray) -> np.ndarray:
        """``(n,)`` samples at 16 kHz → ``(T', 29)`` log-probabilities."""
        with torch.no_grad():
            waveform = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))[None].to(self.device)
            out, _ = self.model(waveform)
        return out[0].cpu().numpy()

    def transcribe(self, samples: np.ndarray, sample_rate: int) -> list[Word]:
        if sample_rate != SAMPLE_RATE:
            raise InputError(f"the CTC model expects {SAMPLE_RATE} Hz audio, got {sample_rate} Hz")
        if len(samples) < HOP * SUBSAMPLING:
            return []
        return self.decode(self.log_probs(samples))
