"""Build a model and its training run from flat settings (shared by the command line and ``reproduce``)."""

from __future__ import annotations

from dataclasses import dataclass

from papers_common import InputError
from urpe.model import Position, TransformerConfig, TransformerModel
from urpe.relative_position import Mode
from urpe.tasks import SyntheticTask
from urpe.text import VOCAB_SIZE


@dataclass(frozen=True)
class ModelSize:
    """Width and depth of the experiment models."""

    d_model: int = 64
    num_heads: int = 4
    num_layers: int = 3
    ffn_dim: int = 256
    dropout: float = 0.0
    rel_mode: Mode = "unique"
    num_buckets: int = 32
    max_distance: int = 128

    def __post_init__(self) -> None:
        if not 0.0 <= self.dropout <= 1.0:  # also refuses NaN
            raise InputError(f"dropout must be a probability in [0, 1], got {self.dropout}")


def synthetic_model(task: SyntheticTask, position: Position, size: ModelSize) -> TransformerModel:
    """An encoder for ``task`` (untied input/output layers, as in the paper's synthetic runs)."""
    return TransformerModel(
        TransformerConfig(
            vocab_size=task.vocab,
            num_classes=task.num_classes,
            max_len=task.seq_len,
            position=position,
            causal=False,
            **_size(size),
        )
    )


def language_model(seq_len: int, position: Position, size: ModelSize) -> TransformerModel:
    """A causal byte-level language model."""
    return TransformerModel(
        TransformerConfig(
            vocab_size=VOCAB_SIZE, max_len=seq_len, position=position, causal=True, **_size(size)
        )
    )


def _size(size: ModelSize) -> dict[str, object]:
    return {
        "d_model": size.d_model,
        "num_heads": size.num_heads,
        "num_layers": size.num_layers,
        "ffn_dim": size.ffn_dim,
        "dropout": size.dropout,
        "attention_dropout": size.dropout,
        "rel_mode": size.rel_mode,
        "num_buckets": size.num_buckets,
        "max_distance": size.max_distance,
    }
