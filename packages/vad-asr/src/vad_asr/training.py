"""Training the CTC model on espeak-ng speech made on the fly.

Every step draws a batch of utterances (1–3 sentences of the training text, joined by short pauses, 2–15 s) and
speaks them with the voices and speed range of the synthetic corpora (:class:`~vad_asr.corpus.SynthesisSettings`),
with a little white noise at a random level. The draws of step ``s`` (sentences, voice, speed, pauses, noise)
follow from ``(seed, s)`` alone, so a run resumed from a checkpoint draws the batches it would have drawn; espeak-ng
itself varies its output by a few samples from call to call, so the audio, and the weights, match only closely. Optimiser: AdamW with linear warm-up and
cosine decay; checkpoints are written atomically every ``save_every`` steps and the run resumes from the newest.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from papers_common import (
    InputError,
    latest_checkpoint,
    load_checkpoint,
    progress,
    save_checkpoint,
    write_json,
)
from vad_asr.corpus import VOICES
from vad_asr.ctc import LM_FILE, CTCConfig, CTCEngine, CTCModel, decode_ids, encode_text
from vad_asr.features import SAMPLE_RATE
from vad_asr.ngram import WordLM
from vad_asr.synthesis import Synthesizer

LOG_FILE = "train_log.jsonl"


@dataclass(frozen=True)
class TrainConfig:
    """Settings of a CTC training run.

    Attributes:
        steps, batch_size, lr, warmup, weight_decay, clip_norm: optimisation.
        max_seconds: longest utterance; utterances join up to three sentences while they fit.
        voices, speeds: espeak-ng voices and words-per-minute range (those of the corpora by default).
        noise_db: range of the white noise level in dBFS, drawn per utterance.
        valid_sentences: sentences held out to report character error rate during training.
        save_every, log_every: steps between checkpoints and between log lines.
        seed: every random draw.
    """

    steps: int = 2000
    batch_size: int = 8
    lr: float = 2e-3
    warmup: int = 200
    weight_decay: float = 0.01
    clip_norm: float = 5.0
    max_seconds: float = 15.0
    voices: tuple[str, ...] = VOICES
    speeds: tuple[int, int] = (140, 190)
    noise_db: tuple[float, float] = (-70.0, -40.0)
    valid_sentences: int = 32
    save_every: int = 200
    log_every: int = 20
    seed: int = 0

    def check(self) -> None:
        for name in ("steps", "batch_size", "save_every", "log_every"):
            if getattr(self, name) < 1:
                raise InputError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise InputError(f"--lr must be positive, got {self.lr}")
        if not self.max_seconds >= 2.0:
            raise InputError(f"--max-seconds must be at least 2, got {self.max_seconds}")


@dataclass(frozen=True)
class TrainResult:
    """Where a run ended: steps done, the last loss, held-out CER and the folder of the final model."""

    steps: int
    loss: float
    valid_cer: float
    model_dir: Path
    seconds: float


def character_error_rate(reference: str, hypothesis: str) -> float:
    """Character edit distance / reference length (of the normalised texts)."""
    from rapidfuzz.distance import Levenshtein

    ref, hyp = decode_ids(encode_text(reference)), decode_ids(encode_text(hypothesis))
    return Levenshtein.distance(ref, hyp) / max(len(ref), 1)


class SpeechBatches:
    """Batches of synthesised utterances for step ``s``, a pure function of ``(seed, s)``."""

    def __init__(self, sentences: Sequence[str], config: TrainConfig) -> None:
        usable = [s for s in sentences if encode_text(s)]
        if len(usable) < 2:
            raise InputError("the training text needs at least 2 sentences with letters")
        self.sentences = usable
        self.config = config
        self.synthesizer = Synthesizer()

    def utterance(self, rng: random.Random) -> tuple[np.ndarray, str]:
        config = self.config
        voice, speed = rng.choice(config.voices), rng.randint(*config.speeds)
        pieces, texts = [], []
        for _ in range(rng.randint(1, 3)):
            text = rng.choice(self.sentences)
            spoken = self.synthesizer.speak(text, voice=voice, speed=speed).samples
            loud = np.flatnonzero(np.abs(spoken) > 1e-3)
            spoken = spoken[loud[0] : loud[-1] + 1] if len(loud) else spoken
            length = sum(len(p) for p in pieces) + len(spoken)
            if pieces and length > config.max_seconds * SAMPLE_RATE:
                break
            if pieces:
                pieces.append(np.zeros(round(rng.uniform(0.05, 0.4) * SAMPLE_RATE), dtype=np.float32))
            pieces.append(spoken[: round(config.max_seconds * SAMPLE_RATE)])
            texts.append(text)
        lead, tail = (
            np.zeros(round(rng.uniform(0.0, 0.3) * SAMPLE_RATE), dtype=np.float32) for _ in range(2)
        )
        audio = np.concatenate([lead, *pieces, tail])
        level = 10 ** (rng.uniform(*config.noise_db) / 20)
        noise = np.random.default_rng(rng.getrandbits(32)).standard_normal(len(audio)).astype(np.float32)
        return np.clip(audio + level * noise, -1.0, 1.0), " ".join(texts)

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(waveforms (B, n), lengths (B,), targets (Σ label lengths,), target lengths (B,))``."""
        rng = random.Random(self.config.seed * 1_000_003 + step)
        items = [self.utterance(rng) for _ in range(self.config.batch_size)]
        return collate(items)


def collate(
    items: Sequence[tuple[np.ndarray, str]],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([len(a) for a, _ in items])
    waveforms = torch.zeros(len(items), int(lengths.max()))
    for k, (audio, _) in enumerate(items):
        waveforms[k, : len(audio)] = torch.from_numpy(audio)
    labels = [encode_text(t) for _, t in items]
    targets = torch.tensor([i for label in labels for i in label], dtype=torch.long)
    return waveforms, lengths, targets, torch.tensor([len(label) for label in labels])


def _schedule(step: int, config: TrainConfig) -> float:
    if step < config.warmup:
        return (step + 1) / config.warmup
    progress_ = (step - config.warmup) / max(1, config.steps - config.warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(progress_, 1.0)))


def evaluate_cer(model: CTCModel, items: Sequence[tuple[np.ndarray, str]]) -> float:
    """Mean character error rate of greedy decoding on ``(audio, text)`` items."""
    engine = CTCEngine(model, decoder="greedy")
    was_training = model.training
    model.eval()
    rates = [character_error_rate(text, " ".join(w.text for w in engine.transcribe(audio, SAMPLE_RATE)))
             for audio, text in items]  # fmt: skip
    model.train(was_training)
    return float(np.mean(rates)) if rates else math.nan


def train_ctc(
    sentences: Sequence[str],
    out: str | Path,
    *,
    model_config: CTCConfig | None = None,
    config: TrainConfig | None = None,
) -> TrainResult:
    """Train (or resume) a CTC model on ``sentences`` spoken by espeak-ng; the final model goes to ``out/model``
    with the word bigram model of its training sentences (``lm.arpa.gz``, for beam decoding).

    The first ``config.valid_sentences`` sentences after a seeded shuffle (at most a fifth of them) are held out
    and spoken once each, by seeded voices and speeds, to report CER.
    """
    model_config = model_config or CTCConfig()
    config = config or TrainConfig()
    config.check()
    model_config.check()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    order = list(sentences)
    random.Random(config.seed).shuffle(order)
    count = min(config.valid_sentences, len(order) // 5)  # at most a fifth of the text is held out
    held, train = order[:count], order[count:]
    batches = SpeechBatches(train, config)
    valid_rng = random.Random(config.seed + 7)
    valid = [(batches.synthesizer.speak(text, voice=valid_rng.choice(config.voices),
                                        speed=valid_rng.randint(*config.speeds)).samples, text)
             for text in held]  # fmt: skip
    resolved = {"model": asdict(model_config), "train": asdict(config), "sentences": len(sentences)}
    torch.manual_seed(config.seed)
    model = CTCModel(model_config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: _schedule(s, config))
    start = 0
    checkpoints = out / "checkpoints"
    found = latest_checkpoint(checkpoints)
    if found is not None:
        state = load_checkpoint(found)
        if state.config != json.loads(json.dumps(resolved)):
            raise InputError(f"{out}: holds a run with other settings; use a new --out or the same settings")
        state.restore(model, optimizer)
        scheduler.load_state_dict(state.extra["scheduler"])
        start = state.step
        log = out / LOG_FILE
        if log.is_file():  # lines written after the checkpoint are written again
            kept = [
                line
                for line in log.read_text(encoding="utf-8").splitlines()
                if json.loads(line)["step"] <= start
            ]
            log.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
    else:
        write_json(out / "config.json", resolved)
    loss_fn = torch.nn.CTCLoss(blank=0, zero_infinity=True)
    started = time.perf_counter()
    bar = progress(total=config.steps, initial=start, desc="train-ctc", unit="step")
    loss_value = math.nan
    model.train()
    for step in range(start, config.steps):
        waveforms, lengths, targets, target_lengths = batches.batch(step)
        log_probs, frames = model(waveforms, lengths)
        loss = loss_fn(log_probs.transpose(0, 1), targets, frames, target_lengths)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip_norm)
        optimizer.step()
        scheduler.step()
        loss_value = loss.item()
        done = step + 1
        bar.update(1)
        bar.set_postfix(loss=round(loss_value, 3))
        if done % config.log_every == 0 or done == config.steps:
            record: dict[str, Any] = {"step": done, "loss": loss_value, "lr": scheduler.get_last_lr()[0],
                                      "seconds": time.perf_counter() - started}  # fmt: skip
            if done % config.save_every == 0 or done == config.steps:
                record["valid_cer"] = evaluate_cer(model, valid)
            with (out / LOG_FILE).open("a", encoding="utf-8") as log:
                log.write(json.dumps(record) + "\n")
        if done % config.save_every == 0 and done < config.steps:
            save_checkpoint(checkpoints, done, model, optimizer=optimizer, config=resolved,
                            extra={"scheduler": scheduler.state_dict()}, keep=2)  # fmt: skip
    bar.close()
    model.eval()
    model_dir = model.save(out / "model")
    WordLM.from_texts(train).save_arpa(model_dir / LM_FILE)  # the word model of --decoder beam
    cer = evaluate_cer(model, valid)
    write_json(out / "summary.json", {"steps": config.steps, "loss": loss_value, "valid_cer": cer,
                                      "seconds": time.perf_counter() - started})  # fmt: skip
    return TrainResult(config.steps, loss_value, cer, model_dir, time.perf_counter() - started)
