"""METRO models as Hugging Face ``PreTrainedModel`` subclasses (Bajaj et al., 2022).

``MetroModel`` is the main Transformer encoder (BERT-shaped, with T5 relative position buckets and Post-LN with
scaled initialisation by default). ``MetroForPreTraining`` adds the shallow auxiliary generator, which shares the
main model's embedding module, and the heads and losses of :mod:`metro_lm.objectives`. The fine-tuning heads load
the main model out of a pretraining checkpoint (its weights sit under the ``metro.`` prefix); the generator is
dropped. ``MetroForMaskedLM`` loads the generator alone (or, for an ``"mlm"`` checkpoint, the main model with its
LM head) to fill in masked tokens.

Shapes: B batch, L sequence length, H hidden size, V vocabulary, n the number of masked positions in the batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForMaskedLM,
    AutoModelForPreTraining,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    PreTrainedModel,
)
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.modeling_outputs import (
    BaseModelOutput,
    MaskedLMOutput,
    SequenceClassifierOutput,
    TokenClassifierOutput,
)
from transformers.utils import ModelOutput

from metro_lm.configuration import MetroConfig
from metro_lm.masking import corrupt_for_mlm, maskable_positions, select_masked_positions
from metro_lm.objectives import (
    corrective_lm_weights,
    crop_sequences,
    masked_lm_loss,
    replaced_token_detection_loss,
    replaced_token_labels,
    sample_tokens,
    sequence_contrastive_loss,
)
from metro_lm.positions import RelativePositionBias
from metro_lm.randomness import Noise

SAMPLE_STREAM, CROP_STREAM = 5, 6


class ResidualProjection(nn.Linear):
    """The last linear map of a residual branch (attention output, FFN output), the target of the scaled init.

    Args:
        num_layers: depth N of the stack it belongs to; its std is ``initializer_range / sqrt(2N)``.
    """

    def __init__(self, in_features: int, out_features: int, *, num_layers: int) -> None:
        super().__init__(in_features, out_features)
        self.num_layers = num_layers


class MetroEmbeddings(nn.Module):
    """Token (+ absolute position) + segment embeddings, then LayerNorm; shared by the generator and main model.

    Dropout is applied by each encoder stack with its own rate, so the generator can run dropout-free.
    """

    def __init__(self, config: MetroConfig) -> None:
        super().__init__()
        self.max_length = config.max_position_embeddings
        self.word_embeddings = nn.Embedding(
            config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id
        )
        self.position_embeddings = (
            nn.Embedding(config.max_position_embeddings, config.hidden_size)
            if config.position_embedding == "absolute"
            else None
        )
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, L)`` ids → ``(B, L, H)`` embeddings."""
        length = input_ids.shape[1]
        if length > self.max_length:
            raise ValueError(
                f"a sequence of {length} tokens is longer than max_position_embeddings={self.max_length}; "
                "shorten it or use a model configured for longer sequences"
            )
        hidden = self.word_embeddings(input_ids)
        if self.position_embeddings is not None:
            hidden = hidden + self.position_embeddings(torch.arange(length, device=input_ids.device))
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        return self.LayerNorm(hidden + self.token_type_embeddings(token_type_ids))


class MetroSelfAttention(nn.Module):
    """Multi-head self-attention softmax(QKᵀ/√d + bias)·V, the bias holding relative positions and padding."""

    def __init__(self, config: MetroConfig, *, dropout: float, num_layers: int) -> None:
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.dropout = dropout
        self.query_key_value = nn.Linear(config.hidden_size, 3 * config.hidden_size)
        self.output = ResidualProjection(config.hidden_size, config.hidden_size, num_layers=num_layers)

    def forward(self, hidden: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        """``(B, L, H)`` and a ``(B or 1, heads or 1, L, L)`` additive bias → ``(B, L, H)``."""
        batch, length, width = hidden.shape
        qkv = self.query_key_value(hidden).view(batch, length, 3, self.num_heads, width // self.num_heads)
        query, key, value = qkv.permute(2, 0, 3, 1, 4)  # each (B, heads, L, d)
        attended = F.scaled_dot_product_attention(
            query, key, value,
            attn_mask=None if bias is None else bias.to(query.dtype),
            dropout_p=self.dropout if self.training else 0.0,
        )  # fmt: skip
        return self.output(attended.transpose(1, 2).reshape(batch, length, width))


class MetroFeedForward(nn.Module):
    """Position-wise FFN: Linear(H, F) → activation → Linear(F, H)."""

    def __init__(self, config: MetroConfig, *, num_layers: int) -> None:
        super().__init__()
        self.intermediate = nn.Linear(config.hidden_size, config.intermediate_size)
        self.activation = ACT2FN[config.hidden_act]
        self.output = ResidualProjection(config.intermediate_size, config.hidden_size, num_layers=num_layers)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.output(self.activation(self.intermediate(hidden)))


class MetroLayer(nn.Module):
    """One Transformer block, Post-LN ``x ← LN(x + f(x))`` or Pre-LN ``x ← x + f(LN(x))``."""

    def __init__(
        self, config: MetroConfig, *, hidden_dropout: float, attention_dropout: float, num_layers: int
    ):
        super().__init__()
        self.pre_norm = config.layer_norm == "pre"
        self.attention = MetroSelfAttention(config, dropout=attention_dropout, num_layers=num_layers)
        self.attention_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.feed_forward = MetroFeedForward(config, num_layers=num_layers)
        self.output_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(hidden_dropout)

    def forward(self, hidden: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        if self.pre_norm:
            hidden = hidden + self.dropout(self.attention(self.attention_norm(hidden), bias))
            return hidden + self.dropout(self.feed_forward(self.output_norm(hidden)))
        hidden = self.attention_norm(hidden + self.dropout(self.attention(hidden, bias)))
        return self.output_norm(hidden + self.dropout(self.feed_forward(hidden)))


class MetroEncoder(nn.Module):
    """A stack of :class:`MetroLayer` with its own relative position bias (shared by its layers).

    Args:
        num_layers: depth of this stack (the main model's N or the generator's).
        hidden_dropout, attention_dropout: this stack's dropout rates (input dropout included).
    """

    def __init__(
        self, config: MetroConfig, *, num_layers: int, hidden_dropout: float, attention_dropout: float
    ):
        super().__init__()
        self.input_dropout = nn.Dropout(hidden_dropout)
        self.relative_position = (
            RelativePositionBias(
                config.num_attention_heads,
                num_buckets=config.relative_attention_num_buckets,
                max_distance=config.relative_attention_max_distance,
            )
            if config.position_embedding == "relative"
            else None
        )
        self.layer = nn.ModuleList(
            MetroLayer(
                config,
                hidden_dropout=hidden_dropout,
                attention_dropout=attention_dropout,
                num_layers=num_layers,
            )
            for _ in range(num_layers)
        )
        self.final_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps) if config.layer_norm == "pre" else None  # fmt: skip

    def forward(
        self, hidden: torch.Tensor, attention_mask: torch.Tensor | None, *, output_hidden_states: bool = False
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...] | None]:
        """``(B, L, H)`` embeddings and ``(B, L)`` 1/0 mask → last hidden states (and every layer's input)."""
        length = hidden.shape[1]
        bias = None if self.relative_position is None else self.relative_position(length)
        if attention_mask is not None:
            padding = (1.0 - attention_mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
            bias = padding if bias is None else bias + padding
        hidden = self.input_dropout(hidden)
        states = [hidden] if output_hidden_states else None
        for layer in self.layer:
            hidden = layer(hidden, bias)
            if states is not None:
                states.append(hidden)
        if self.final_norm is not None:
            hidden = self.final_norm(hidden)
            if states is not None:
                states[-1] = hidden
        return hidden, None if states is None else tuple(states)


class MetroLMHead(nn.Module):
    """Dense → activation → LayerNorm → logits against the (tied) token embedding matrix, plus a bias."""

    def __init__(self, config: MetroConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.activation = ACT2FN[config.hidden_act]
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, hidden: torch.Tensor, embedding_weight: torch.Tensor) -> torch.Tensor:
        """``(n, H)`` states and the ``(V, H)`` embedding matrix → ``(n, V)`` logits."""
        return F.linear(self.LayerNorm(self.activation(self.dense(hidden))), embedding_weight, self.bias)


class MetroRTDHead(nn.Module):
    """ELECTRA's discriminator head: Dense(H, H) → activation → Dense(H, 1), one logit per token."""

    def __init__(self, config: MetroConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.activation = ACT2FN[config.hidden_act]
        self.out = nn.Linear(config.hidden_size, 1)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """``(B, L, H)`` → ``(B, L)`` logits."""
        return self.out(self.activation(self.dense(hidden))).squeeze(-1)


class MetroPreTrainedModel(PreTrainedModel):
    """Weight initialisation and loading for every METRO model.

    All weight matrices and embeddings are drawn from N(0, σ²), σ = ``initializer_range``; with ``scaled_init``
    the residual output projections use σ/√(2N) instead, N the depth of their own stack (METRO §5: Post-LN
    stabilised by scaled initialisation). Biases start at 0, LayerNorms at (1, 0).
    """

    config_class = MetroConfig
    base_model_prefix = "metro"
    main_input_name = "input_ids"
    # A pretraining checkpoint's generator and pretraining heads are dropped on purpose by the other classes.
    _keys_to_ignore_on_load_unexpected: ClassVar[list[str]] = [
        r"^generator\.", r"^generator_head\.", r"^rtd_head\.", r"^lm_head\."
    ]  # fmt: skip

    def _init_weights(self, module: nn.Module) -> None:
        std = self.config.initializer_range
        if isinstance(module, ResidualProjection):
            scale = 1.0 / math.sqrt(2.0 * module.num_layers) if self.config.scaled_init else 1.0
            init.normal_(module.weight, mean=0.0, std=std * scale)
            init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            init.normal_(module.weight, mean=0.0, std=std)
        elif isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, MetroLMHead):
            init.zeros_(module.bias)


class MetroModel(MetroPreTrainedModel):
    """The main METRO encoder: embeddings and N layers, returning the last hidden states ``(B, L, H)``."""

    def __init__(self, config: MetroConfig) -> None:
        super().__init__(config)
        self.embeddings = MetroEmbeddings(config)
        self.encoder = MetroEncoder(
            config,
            num_layers=config.num_hidden_layers,
            hidden_dropout=config.hidden_dropout_prob,
            attention_dropout=config.attention_probs_dropout_prob,
        )
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embeddings.word_embeddings

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.embeddings.word_embeddings = value

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> BaseModelOutput | tuple[torch.Tensor, ...]:
        """Encode ``(B, L)`` token ids (``attention_mask`` 1 for tokens, 0 for padding; default: ids ≠ [PAD])."""
        if attention_mask is None:
            attention_mask = (input_ids != self.config.pad_token_id).long()
        hidden, states = self.encoder(
            self.embeddings(input_ids, token_type_ids),
            attention_mask,
            output_hidden_states=bool(output_hidden_states),
        )
        output = BaseModelOutput(last_hidden_state=hidden, hidden_states=states)
        return output if return_dict is not False else output.to_tuple()


@dataclass
class MetroForPreTrainingOutput(ModelOutput):
    """What one pretraining step computed.

    Attributes:
        loss: L = L_MLM + λ_RTD·L_RTD + λ_CLM·L_CLM (+ λ_SCL·L_SCL); for ``objective="mlm"`` the main model's MLM.
        mlm_loss: the generator's masked-LM loss (``"mlm"``: the main model's).
        rtd_loss, clm_loss, scl_loss: the other terms, None where the objective has none.
        rtd_logits: ``(B, L)`` replaced-token logits of the main model.
        rtd_labels: ``(B, L)`` float targets 1[x̃ ≠ x].
        masked_positions: ``(B, L)`` bool.
        corrupted_ids: ``(B, L)`` the main model's input x̃ (``"mlm"``: the masked input).
    """

    loss: torch.Tensor | None = None
    mlm_loss: torch.Tensor | None = None
    rtd_loss: torch.Tensor | None = None
    clm_loss: torch.Tensor | None = None
    scl_loss: torch.Tensor | None = None
    rtd_logits: torch.Tensor | None = None
    rtd_labels: torch.Tensor | None = None
    masked_positions: torch.Tensor | None = None
    corrupted_ids: torch.Tensor | None = None


class MetroForPreTraining(MetroPreTrainedModel):
    """Main model + shallow generator + heads; ``forward`` runs one whole pretraining step's computation.

    Given clean token ids it masks them (or uses ``masked_positions``), runs the generator, samples replacements
    from a dropout-free, gradient-free generator distribution, runs the main model on the corrupted text and
    returns the losses, so the Hugging Face ``Trainer`` can train it from ``input_ids`` alone.
    """

    def __init__(self, config: MetroConfig) -> None:
        super().__init__(config)
        self.metro = MetroModel(config)
        if config.objective != "mlm":
            self.generator = MetroEncoder(
                config,
                num_layers=config.generator_layers,
                hidden_dropout=config.generator_dropout,
                attention_dropout=config.generator_dropout,
            )
            self.generator_head = MetroLMHead(config)
            self.rtd_head = MetroRTDHead(config)
        if config.objective in ("metro", "mlm"):
            self.lm_head = MetroLMHead(config)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.metro.embeddings.word_embeddings

    def _generator_logits(
        self, masked_input: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor | None,
        masked_positions: torch.Tensor,
    ) -> torch.Tensor:  # fmt: skip
        """The generator's ``(n, V)`` logits at the masked positions."""
        hidden, _ = self.generator(self.metro.embeddings(masked_input, token_type_ids), attention_mask)
        return self.generator_head(hidden[masked_positions], self.metro.embeddings.word_embeddings.weight)

    def _sampling_logits(
        self, logits: torch.Tensor, masked_input: torch.Tensor, attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None, masked_positions: torch.Tensor,
    ) -> torch.Tensor:  # fmt: skip
        """Logits to sample from: the generator without dropout and without gradients (COCO-LM's eval mode)."""
        if not self.training or self.config.generator_dropout == 0.0:
            return logits.detach()
        with torch.no_grad():
            self.generator.eval()
            try:
                return self._generator_logits(masked_input, attention_mask, token_type_ids, masked_positions)
            finally:
                self.generator.train()

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        masked_positions: torch.Tensor | None = None,
        sequence_keys: torch.Tensor | None = None,
        return_dict: bool | None = None,
    ) -> MetroForPreTrainingOutput | tuple[torch.Tensor, ...]:
        """One pretraining forward pass on clean ``(B, L)`` ids.

        Args:
            input_ids: the original text x (special tokens and padding included).
            attention_mask: 1 for tokens, 0 for padding (default: ids ≠ [PAD]); padding is never masked, never
                scored by RTD.
            masked_positions: ``(B, L)`` bool positions to mask; default: ``mask_prob`` of the maskable tokens
                of each sequence.
            sequence_keys: ``(B,)`` int64 keys from which masking, replacement and sampling draws are derived
                (:mod:`metro_lm.randomness`); default: torch's global generator.
        """
        config = self.config
        noise = Noise(sequence_keys)
        if attention_mask is None:
            attention_mask = (input_ids != config.pad_token_id).long()
        if masked_positions is None:
            maskable = maskable_positions(input_ids, attention_mask, config.special_token_ids)
            masked_positions = select_masked_positions(maskable, config.mask_prob, noise=noise)
        elif masked_positions.shape != input_ids.shape:
            raise ValueError(f"masked_positions has shape {tuple(masked_positions.shape)}, input_ids "
                             f"{tuple(input_ids.shape)}")  # fmt: skip
        masked_positions = masked_positions.bool()
        masked_input = corrupt_for_mlm(
            input_ids, masked_positions, mask_token_id=config.mask_token_id, vocab_size=config.vocab_size,
            special_token_ids=config.special_token_ids, mode=config.mask_mode, noise=noise,
        )  # fmt: skip
        targets = input_ids[masked_positions]
        embedding_weight = self.metro.embeddings.word_embeddings.weight

        if config.objective == "mlm":
            hidden = self.metro(masked_input, attention_mask, token_type_ids).last_hidden_state
            mlm = masked_lm_loss(self.lm_head(hidden[masked_positions], embedding_weight), targets)
            output = MetroForPreTrainingOutput(
                loss=mlm, mlm_loss=mlm, masked_positions=masked_positions, corrupted_ids=masked_input
            )
            return output if return_dict is not False else output.to_tuple()

        generator_logits = self._generator_logits(
            masked_input, attention_mask, token_type_ids, masked_positions
        )
        mlm = masked_lm_loss(generator_logits, targets)
        rows, columns = masked_positions.nonzero(as_tuple=True)
        sampled = sample_tokens(
            self._sampling_logits(
                generator_logits, masked_input, attention_mask, token_type_ids, masked_positions
            ),
            noise.at(SAMPLE_STREAM, rows, columns),
        )
        corrupted = input_ids.masked_scatter(masked_positions, sampled.to(input_ids.dtype))
        labels = replaced_token_labels(corrupted, input_ids)
        hidden = self.metro(corrupted, attention_mask, token_type_ids).last_hidden_state
        rtd_logits = self.rtd_head(hidden)
        rtd = replaced_token_detection_loss(rtd_logits, labels, attention_mask.bool())
        loss = mlm + config.rtd_weight * rtd

        clm = None
        if config.objective == "metro":
            weights = corrective_lm_weights(rtd_logits[masked_positions])
            clm = masked_lm_loss(self.lm_head(hidden[masked_positions], embedding_weight), targets, weights)
            loss = loss + config.clm_weight * clm
        scl = None
        if config.scl_weight > 0:
            crop_ids, crop_mask = crop_sequences(
                input_ids, attention_mask, keep=config.scl_crop, cls_token_id=config.cls_token_id,
                sep_token_id=config.sep_token_id, pad_token_id=config.pad_token_id,
                uniforms=noise.rows(CROP_STREAM, (input_ids.shape[0],), input_ids.device),
            )  # fmt: skip
            cropped = self.metro(crop_ids, crop_mask).last_hidden_state[:, 0]
            scl = sequence_contrastive_loss(hidden[:, 0], cropped, config.scl_temperature)
            loss = loss + config.scl_weight * scl
        output = MetroForPreTrainingOutput(
            loss=loss, mlm_loss=mlm, rtd_loss=rtd, clm_loss=clm, scl_loss=scl, rtd_logits=rtd_logits,
            rtd_labels=labels, masked_positions=masked_positions, corrupted_ids=corrupted,
        )  # fmt: skip
        return output if return_dict is not False else output.to_tuple()


class MetroForSequenceClassification(MetroPreTrainedModel):
    """Main model + a [CLS] head (Dense → activation → dropout → Linear) for classification or regression.

    ``config.num_labels == 1`` is regression (MSE); otherwise single-label cross-entropy, or multi-label BCE when
    ``config.problem_type == "multi_label_classification"``.
    """

    def __init__(self, config: MetroConfig) -> None:
        super().__init__(config)
        self.num_labels = config.num_labels
        self.metro = MetroModel(config)
        dropout = (
            config.hidden_dropout_prob if config.classifier_dropout is None else config.classifier_dropout
        )
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.activation = ACT2FN[config.hidden_act]
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        return_dict: bool | None = None,
    ) -> SequenceClassifierOutput | tuple[torch.Tensor, ...]:
        """``(B, L)`` ids → ``(B, num_labels)`` logits (and the loss against ``labels`` when given)."""
        hidden = self.metro(input_ids, attention_mask, token_type_ids).last_hidden_state[:, 0]
        logits = self.classifier(self.dropout(self.activation(self.dense(self.dropout(hidden)))))
        loss = None
        if labels is not None:
            if self.num_labels == 1:
                loss = F.mse_loss(logits.squeeze(-1).float(), labels.float())
            elif self.config.problem_type == "multi_label_classification":
                loss = F.binary_cross_entropy_with_logits(logits.float(), labels.float())
            else:
                loss = F.cross_entropy(logits.float(), labels.long())
        output = SequenceClassifierOutput(loss=loss, logits=logits)
        return output if return_dict is not False else output.to_tuple()


class MetroForTokenClassification(MetroPreTrainedModel):
    """Main model + a per-token linear head; labels of −100 (padding, sub-word continuations) are ignored."""

    def __init__(self, config: MetroConfig) -> None:
        super().__init__(config)
        self.num_labels = config.num_labels
        self.metro = MetroModel(config)
        dropout = (
            config.hidden_dropout_prob if config.classifier_dropout is None else config.classifier_dropout
        )
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        return_dict: bool | None = None,
    ) -> TokenClassifierOutput | tuple[torch.Tensor, ...]:
        """``(B, L)`` ids → ``(B, L, num_labels)`` logits (and the loss against ``labels`` when given)."""
        hidden = self.metro(input_ids, attention_mask, token_type_ids).last_hidden_state
        logits = self.classifier(self.dropout(hidden))
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten().long(), ignore_index=-100)
        output = TokenClassifierOutput(loss=loss, logits=logits)
        return output if return_dict is not False else output.to_tuple()


class MetroForMaskedLM(MetroPreTrainedModel):
    """The masked-token predictor of a METRO checkpoint, loadable on its own.

    For ``objective`` ``"metro"`` and ``"electra"`` this is the auxiliary generator: the shared embeddings
    (``metro.embeddings``), the ``generator_layers``-deep stack (``generator``) and its LM head
    (``generator_head``), exactly the modules and weight names of :class:`MetroForPreTraining`, whose main encoder
    and discriminator heads are skipped on loading. For ``"mlm"`` it is the main model with its LM head
    (``metro``, ``lm_head``). The LM heads decode against the token embedding matrix, so it is stored once.
    """

    _keys_to_ignore_on_load_unexpected: ClassVar[list[str]] = [
        r"^metro\.encoder\.",
        r"^rtd_head\.",
        r"^lm_head\.",
    ]

    def __init__(self, config: MetroConfig) -> None:
        super().__init__(config)
        self.uses_generator = config.objective != "mlm"
        if self.uses_generator:
            # Only the embeddings of the main model, under the same ``metro.embeddings.`` names.
            self.metro = nn.ModuleDict({"embeddings": MetroEmbeddings(config)})
            self.generator = MetroEncoder(
                config,
                num_layers=config.generator_layers,
                hidden_dropout=config.generator_dropout,
                attention_dropout=config.generator_dropout,
            )
            self.generator_head = MetroLMHead(config)
        else:
            self.metro = MetroModel(config)
            self.lm_head = MetroLMHead(config)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return (
            self.metro["embeddings"].word_embeddings
            if self.uses_generator
            else self.metro.get_input_embeddings()
        )

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        return_dict: bool | None = None,
    ) -> MaskedLMOutput | tuple[torch.Tensor, ...]:
        """``(B, L)`` ids holding [MASK] tokens → ``(B, L, V)`` logits over the vocabulary at every position.

        ``labels`` ``(B, L)``: the original ids where a loss is wanted, −100 elsewhere; the loss is the mean
        cross-entropy over the labelled positions.
        """
        if attention_mask is None:
            attention_mask = (input_ids != self.config.pad_token_id).long()
        embedding = self.get_input_embeddings()
        if self.uses_generator:
            hidden, _ = self.generator(self.metro["embeddings"](input_ids, token_type_ids), attention_mask)
            logits = self.generator_head(hidden, embedding.weight)
        else:
            hidden = self.metro(input_ids, attention_mask, token_type_ids).last_hidden_state
            logits = self.lm_head(hidden, embedding.weight)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten().long(), ignore_index=-100)
        output = MaskedLMOutput(loss=loss, logits=logits)
        return output if return_dict is not False else output.to_tuple()


def register_auto_classes() -> None:
    """Make ``AutoConfig`` / ``AutoModel*`` resolve ``model_type="metro"`` to these classes (idempotent)."""
    AutoConfig.register("metro", MetroConfig, exist_ok=True)
    AutoModel.register(MetroConfig, MetroModel, exist_ok=True)
    AutoModelForPreTraining.register(MetroConfig, MetroForPreTraining, exist_ok=True)
    AutoModelForMaskedLM.register(MetroConfig, MetroForMaskedLM, exist_ok=True)
    AutoModelForSequenceClassification.register(MetroConfig, MetroForSequenceClassification, exist_ok=True)
    AutoModelForTokenClassification.register(MetroConfig, MetroForTokenClassification, exist_ok=True)
