"""Shared fixtures: a tiny configuration and clean ids shaped like packed pretraining sequences."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# The models here are tiny: a second intra-op thread only adds synchronisation, which dominates when the cores
# are shared with other jobs. One thread here and in the processes the tests start (CLI runs, torchrun).
os.environ.setdefault("OMP_NUM_THREADS", "1")

from metro_lm import MetroConfig

torch.set_num_threads(1)

VOCAB = 200


def tiny_config(**overrides: object) -> MetroConfig:
    """A 2-layer, width-32 model; dropout off so that forward passes are comparable."""
    settings: dict[str, object] = {
        "vocab_size": VOCAB, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
        "intermediate_size": 64, "generator_layers": 1, "max_position_embeddings": 64,
        "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0,
    }  # fmt: skip
    settings.update(overrides)
    return MetroConfig(**settings)


def clean_ids(batch: int = 4, length: int = 24, *, seed: int = 0, pad_last: int = 0) -> torch.Tensor:
    """``[CLS] tokens [SEP]`` rows of random non-special ids; the last row right-padded by ``pad_last``."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, VOCAB, (batch, length), generator=generator)
    ids[:, 0], ids[:, -1] = 2, 3
    if pad_last:
        ids[-1, length - pad_last - 1] = 3
        ids[-1, length - pad_last :] = 0
    return ids


@pytest.fixture
def config() -> MetroConfig:
    return tiny_config()


def write_documents(folder: Path, *, files: int = 6, sentences: int = 40, seed: int = 0) -> Path:
    """``files`` documents of seeded sentences over a 60-word vocabulary, each built from a few fixed phrases so
    that words follow from their context; returns the folder."""
    rng = random.Random(seed)
    words = ["".join(rng.choice("abcdefghijklmnop") for _ in range(rng.randint(2, 6))) for _ in range(60)]
    phrases = [rng.choices(words, k=rng.randint(3, 5)) for _ in range(25)]
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        lines = [" ".join(w for p in rng.choices(phrases, k=rng.randint(2, 4)) for w in p).capitalize() + "."
                 for _ in range(sentences)]  # fmt: skip
        (folder / f"doc{i}.txt").write_text(" ".join(lines) + "\n", encoding="utf-8")
    return folder
