"""``MetroConfig``: everything that determines a METRO model, as a Hugging Face ``PretrainedConfig``.

Each part of the recipe of Bajaj et al. (2022, §4–5) is a switch, so the ablations (and plain ELECTRA or BERT-style
MLM with the same code) are configurations rather than code paths:

==========================  =================================================================================
``objective``               ``"metro"``: generator MLM + λ_RTD·RTD + λ_CLM·corrective LM; ``"electra"``:
                            generator MLM + λ_RTD·RTD; ``"mlm"``: the main model alone, trained by masked LM
``position_embedding``      ``"relative"`` (T5 buckets, a bias on the attention logits) or ``"absolute"``
``layer_norm``              ``"post"`` (the paper's choice) or ``"pre"``
``scaled_init``             residual output projections drawn with std ``initializer_range / sqrt(2N)``
``generator_layers``        depth of the auxiliary generator (same width; shares the main model's embeddings)
``generator_dropout``       dropout inside the generator; sampling always uses a dropout-free, no-grad pass
``mask_mode``               ``"mask"`` (every selected token becomes [MASK]) or ``"bert"`` (80/10/10)
==========================  =================================================================================
"""

from __future__ import annotations

from typing import Any

from transformers import PretrainedConfig

OBJECTIVES = ("metro", "electra", "mlm")
POSITION_EMBEDDINGS = ("relative", "absolute")
LAYER_NORMS = ("post", "pre")
MASK_MODES = ("mask", "bert")


class MetroConfig(PretrainedConfig):
    r"""Configuration of :class:`~metro_lm.MetroModel` and its heads.

    Args:
        vocab_size: tokens in the vocabulary (must equal the tokenizer's ``len``).
        hidden_size: width H of every layer, main model and generator alike.
        num_hidden_layers: depth N of the main model.
        num_attention_heads: heads per attention layer (must divide ``hidden_size``).
        intermediate_size: FFN width.
        hidden_act: FFN and head activation (a ``transformers.activations`` name).
        hidden_dropout_prob: dropout on embeddings and residual branches of the main model.
        attention_probs_dropout_prob: dropout on attention probabilities of the main model.
        max_position_embeddings: longest sequence the model accepts (absolute positions are learned up to it).
        type_vocab_size: segment ids (2: sentence pairs).
        initializer_range: std of the N(0, σ²) initialisation of every weight matrix and embedding.
        layer_norm_eps: LayerNorm ε.
        position_embedding: ``"relative"`` or ``"absolute"``.
        relative_attention_num_buckets: T5 buckets (bidirectional: half for each direction).
        relative_attention_max_distance: distance from which all offsets share the last bucket.
        layer_norm: ``"post"`` or ``"pre"``.
        scaled_init: scale the std of residual output projections by 1/sqrt(2N), N the depth of their stack.
        objective: ``"metro"``, ``"electra"`` or ``"mlm"``.
        generator_layers: depth of the auxiliary generator (ignored by ``"mlm"``).
        generator_dropout: dropout inside the generator's training pass (METRO-T0 uses 0); sampling reuses that
            pass when it is 0 and otherwise runs the generator again in eval mode.
        mask_prob: fraction of the non-special tokens of each sequence that is masked.
        mask_mode: ``"mask"`` or ``"bert"`` (80% [MASK], 10% random token, 10% unchanged).
        rtd_weight: λ_RTD.
        clm_weight: λ_CLM (``"metro"`` only).
        scl_weight: weight of the optional sequence contrastive term (0: off).
        scl_temperature: its softmax temperature.
        scl_crop: fraction of each sequence kept in the contrastive term's cropped view.
        classifier_dropout: dropout before classification heads (``None``: ``hidden_dropout_prob``).
        pad_token_id, cls_token_id, sep_token_id, mask_token_id: ids of [PAD], [CLS], [SEP] and [MASK].
        special_token_ids: ids that are never masked (pad, unk, cls, sep, mask by default).
    """

    model_type = "metro"

    def __init__(
        self,
        vocab_size: int = 16000,
        hidden_size: int = 256,
        num_hidden_layers: int = 12,
        num_attention_heads: int = 4,
        intermediate_size: int = 1024,
        hidden_act: str = "gelu",
        hidden_dropout_prob: float = 0.1,
        attention_probs_dropout_prob: float = 0.1,
        max_position_embeddings: int = 512,
        type_vocab_size: int = 2,
        initializer_range: float = 0.02,
        layer_norm_eps: float = 1e-5,
        position_embedding: str = "relative",
        relative_attention_num_buckets: int = 32,
        relative_attention_max_distance: int = 128,
        layer_norm: str = "post",
        scaled_init: bool = True,
        objective: str = "metro",
        generator_layers: int = 4,
        generator_dropout: float = 0.0,
        mask_prob: float = 0.15,
        mask_mode: str = "mask",
        rtd_weight: float = 50.0,
        clm_weight: float = 1.0,
        scl_weight: float = 0.0,
        scl_temperature: float = 1.0,
        scl_crop: float = 0.9,
        classifier_dropout: float | None = None,
        pad_token_id: int = 0,
        cls_token_id: int = 2,
        sep_token_id: int = 3,
        mask_token_id: int = 4,
        special_token_ids: list[int] | None = None,
        **kwargs: Any,
    ) -> None:
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.intermediate_size = intermediate_size
        self.hidden_act = hidden_act
        self.hidden_dropout_prob = hidden_dropout_prob
        self.attention_probs_dropout_prob = attention_probs_dropout_prob
        self.max_position_embeddings = max_position_embeddings
        self.type_vocab_size = type_vocab_size
        self.initializer_range = initializer_range
        self.layer_norm_eps = layer_norm_eps
        self.position_embedding = position_embedding
        self.relative_attention_num_buckets = relative_attention_num_buckets
        self.relative_attention_max_distance = relative_attention_max_distance
        self.layer_norm = layer_norm
        self.scaled_init = scaled_init
        self.objective = objective
        self.generator_layers = generator_layers
        self.generator_dropout = generator_dropout
        self.mask_prob = mask_prob
        self.mask_mode = mask_mode
        self.rtd_weight = rtd_weight
        self.clm_weight = clm_weight
        self.scl_weight = scl_weight
        self.scl_temperature = scl_temperature
        self.scl_crop = scl_crop
        self.classifier_dropout = classifier_dropout
        self.cls_token_id = cls_token_id
        self.sep_token_id = sep_token_id
        self.mask_token_id = mask_token_id
        self.special_token_ids = list(range(5)) if special_token_ids is None else list(special_token_ids)
        super().__init__(pad_token_id=pad_token_id, **kwargs)
        self.check()

    def check(self) -> None:
        """Raise ``ValueError`` naming the first inconsistent field."""
        choices = {"objective": OBJECTIVES, "position_embedding": POSITION_EMBEDDINGS,
                   "layer_norm": LAYER_NORMS, "mask_mode": MASK_MODES}  # fmt: skip
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"MetroConfig.{name} must be one of {allowed}, got {getattr(self, name)!r}")
        positive = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                    "max_position_embeddings", "relative_attention_num_buckets", "relative_attention_max_distance")  # fmt: skip
        for name in positive:
            if int(getattr(self, name)) < 1:
                raise ValueError(f"MetroConfig.{name} must be at least 1, got {getattr(self, name)}")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"MetroConfig.hidden_size ({self.hidden_size}) must be a multiple of num_attention_heads "
                f"({self.num_attention_heads})"
            )
        if self.objective != "mlm" and not 1 <= self.generator_layers <= self.num_hidden_layers:
            raise ValueError(
                f"MetroConfig.generator_layers must be between 1 and num_hidden_layers ({self.num_hidden_layers}): "
                f"the generator is the shallower auxiliary model; got {self.generator_layers}"
            )
        if not 0.0 < self.mask_prob < 1.0:
            raise ValueError(f"MetroConfig.mask_prob must lie in (0, 1), got {self.mask_prob}")
        if not 0.0 < self.scl_crop <= 1.0:
            raise ValueError(f"MetroConfig.scl_crop must lie in (0, 1], got {self.scl_crop}")
        for name in ("pad_token_id", "cls_token_id", "sep_token_id", "mask_token_id"):
            if not 0 <= int(getattr(self, name)) < self.vocab_size:
                raise ValueError(f"MetroConfig.{name} {getattr(self, name)} is outside the vocabulary")
        if any(not 0 <= i < self.vocab_size for i in self.special_token_ids):
            raise ValueError(f"MetroConfig.special_token_ids {self.special_token_ids} leave the vocabulary")
