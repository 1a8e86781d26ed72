"""The pretraining losses of ELECTRA (Clark et al., 2020) and METRO (Bajaj et al., 2022), as pure tensor functions.

With M the masked positions, V the valid (non-padding) positions, x the original tokens, x̃ the corrupted ones
(generator samples at M) and z the main model's replaced-token logits:

- generator masked LM:  L_MLM = mean_{i∈M} −log p_G(x_i | x_masked)
- replaced token detection:  L_RTD = mean_{i∈V} BCE(z_i, 1[x̃_i ≠ x_i])  (a sample equal to x_i is "original")
- simplified corrective LM (METRO, as in the METRO-T0 code):  L_CLM = mean_{i∈M} sg(σ(z_i)) · −log p_D(x_i | x̃)
- sequence contrastive (COCO-LM, optional):  InfoNCE between the [CLS] states of x̃ and of a cropped x

and the total L = L_MLM + λ_RTD·L_RTD + λ_CLM·L_CLM (+ λ_SCL·L_SCL), λ_RTD = 50, λ_CLM = 1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def sample_tokens(logits: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
    """One draw from softmax(logits) per row by inverting its CDF at ``uniforms``; never differentiable.

    Args:
        logits: ``(n, V)``.
        uniforms: ``(n,)`` numbers in [0, 1).

    Returns:
        ``(n,)`` long token ids.
    """
    with torch.no_grad():
        cdf = torch.softmax(logits.detach().float(), dim=-1).cumsum(dim=-1)
        index = torch.searchsorted(cdf, (uniforms.float() * cdf[:, -1])[:, None], right=True)
        return index.squeeze(-1).clamp(max=logits.shape[-1] - 1)


def replaced_token_labels(corrupted_ids: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
    """RTD targets ``1[x̃_i ≠ x_i]`` as floats, shape of the inputs: a sampled original token counts as original."""
    return (corrupted_ids != input_ids).float()


def replaced_token_detection_loss(
    logits: torch.Tensor, labels: torch.Tensor, valid: torch.Tensor
) -> torch.Tensor:
    """L_RTD: binary cross-entropy averaged over the valid positions only.

    Args:
        logits: ``(batch, L)`` replaced-token logits z.
        labels: ``(batch, L)`` float targets from :func:`replaced_token_labels`.
        valid: ``(batch, L)`` bool, False at padding.
    """
    losses = F.binary_cross_entropy_with_logits(logits.float(), labels, reduction="none")
    return (losses * valid).sum() / valid.sum().clamp(min=1)


def masked_lm_loss(
    logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean (optionally weighted) token cross-entropy over the rows given.

    Args:
        logits: ``(n, V)`` at the masked positions.
        targets: ``(n,)`` original token ids.
        weights: ``(n,)`` per-token weights, used as constants (detached), or None for the plain mean.
    """
    losses = F.cross_entropy(logits.float(), targets, reduction="none")
    if weights is not None:
        losses = losses * weights.detach()
    return losses.sum() / max(len(targets), 1)


def corrective_lm_weights(rtd_logits_at_masked: torch.Tensor) -> torch.Tensor:
    """The simplified CLM weights sg(σ(z_i)) at the masked positions, ``(n,)``."""
    return torch.sigmoid(rtd_logits_at_masked.detach().float())


def sequence_contrastive_loss(
    first: torch.Tensor, second: torch.Tensor, temperature: float = 1.0
) -> torch.Tensor:
    """Symmetric InfoNCE over 2B views: each view's positive is its partner, the other 2B − 2 are negatives.

    Args:
        first, second: ``(B, H)`` sequence representations of the two views of each sequence.
        temperature: divides the cosine similarities.
    """
    views = F.normalize(torch.cat([first, second]).float(), dim=-1)
    similarity = views @ views.T / temperature
    similarity.fill_diagonal_(float("-inf"))
    batch = first.shape[0]
    partner = torch.cat([torch.arange(batch, 2 * batch), torch.arange(batch)]).to(first.device)
    return F.cross_entropy(similarity, partner)


def crop_sequences(
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    *,
    keep: float,
    cls_token_id: int,
    sep_token_id: int,
    pad_token_id: int,
    uniforms: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A random contiguous crop of each sequence's body, re-wrapped as ``[CLS] span [SEP]`` (COCO-LM's second view).

    Assumes each row is ``[CLS] body [SEP] [PAD]...``. The span keeps ``ceil(keep · len(body))`` tokens and starts
    at ``floor(u · (len(body) − span + 1))``, u from ``uniforms`` ``(batch,)``.

    Returns:
        ``(ids, mask)``, both ``(batch, L)``.
    """
    _batch, length = input_ids.shape
    body = attention_mask.sum(dim=1) - 2  # tokens between [CLS] and [SEP]
    span = torch.ceil(keep * body.float()).long().clamp(min=1)
    start = (uniforms * (body - span + 1)).long()
    position = torch.arange(length - 1, device=input_ids.device)
    source = (1 + start[:, None] + position[None, :]).clamp(max=length - 1)
    ids = torch.full_like(input_ids, pad_token_id)
    ids[:, 0] = cls_token_id
    inside = position[None, :] < span[:, None]
    ids[:, 1:] = torch.where(inside, input_ids.gather(1, source), pad_token_id)
    ids.scatter_(1, (span + 1)[:, None], sep_token_id)
    mask = (torch.arange(length, device=input_ids.device)[None, :] <= (span + 1)[:, None]).long()
    return ids, mask
