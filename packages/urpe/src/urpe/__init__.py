"""urpe: Universal RPE-based attention (Luo et al., "Your Transformer May Not be as Powerful as You Expect", NeurIPS 2022).

``(softmax(QK^T / sqrt(d) + B) ⊙ C) V`` with a relative-position bias B and a learnable Toeplitz matrix C, as a
functional core (:func:`urpe_attention`), drop-in ``nn.MultiheadAttention`` replacements (:class:`URPEAttention`,
:class:`RPEAttention`), relative-position tables, and a small Transformer for the paper's experiments.
"""

from importlib.metadata import version

from urpe.attention import combine_masks, urpe_attention
from urpe.errors import SequenceTooLongError, ShapeError
from urpe.model import TransformerConfig, TransformerModel
from urpe.modules import RPEAttention, URPEAttention, replace_multihead_attention
from urpe.relative_position import RelativePositionTable, relative_offsets, t5_bucket
from urpe.tasks import SyntheticTask
from urpe.text import TextCorpus
from urpe.train import (
    Schedule,
    TrainedModel,
    evaluate_lm,
    evaluate_synthetic,
    load_trained,
    train_lm,
    train_synthetic,
)

__version__ = version("urpe")

__all__ = [
    "RPEAttention",
    "RelativePositionTable",
    "Schedule",
    "SequenceTooLongError",
    "ShapeError",
    "SyntheticTask",
    "TextCorpus",
    "TrainedModel",
    "TransformerConfig",
    "TransformerModel",
    "URPEAttention",
    "__version__",
    "combine_masks",
    "evaluate_lm",
    "evaluate_synthetic",
    "load_trained",
    "relative_offsets",
    "replace_multihead_attention",
    "t5_bucket",
    "train_lm",
    "train_synthetic",
    "urpe_attention",
]
