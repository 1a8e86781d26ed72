"""Graphormer-3D for IS2RE-direct (spec §3.3; official ``models/graphormer_3d.py``, ``criterions/mae_deltapos.py``).

For a system of atoms a_i (types), t_i (tags) at positions p_i:

- pairs: d_ij = ‖p_j − p_i‖, Δ_ij = (p_j − p_i)/(d_ij + 1e-5), pair type e_ij = a_i·T + a_j (T = ``atom_types``
  over atomic numbers, 128 by default: every element, Pt and Au of OC20's catalysts included);
- Gaussian basis: s_ij = mul[e_ij]·d_ij + bias[e_ij], ψ_ijk = N(s_ij; μ_k, |σ_k| + 1e-5) for k = 1 … K;
- attention bias (shared by every layer and by the Δpos head): b_ij = MLP_{K→K→H}(ψ_ij), −∞ on padded keys;
- node input ("3D centrality"): h_i = Emb(a_i) + Emb(t_i) + W·Σ_j ψ_ij over the non-padded j;
- trunk: Pre-LN Transformer layers, the stack of ``layers`` applied ``blocks`` times with the same weights, final LN;
- energy: E = Σ_{i real, t_i > 0} MLP_{D→D→1}(Drop(h_i))·s(t_i), with a learned per-tag scale s (init N(0, 0.01));
- Δpos: separate q/k/v; P = softmax(qkᵀ/√d + b); for each axis c, o_ic = Σ_j P_ij Δ_ij^c v_j, then a Linear(D, 1).

Both outputs are in standardised units (:class:`graphormer2.atoms.Standardisation`): the criterion compares them
with standardised targets, and :meth:`Graphormer3D.predict` converts back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from graphormer2.atoms import ATOM_TYPES, OC20_STANDARDISATION, AtomsBatch, Standardisation
from papers_common import InputError, Pretrained

DeltaposProjection = Literal["per_axis", "shared"]


@dataclass(frozen=True)
class Graphormer3DConfig:
    """Graphormer-3D hyperparameters; defaults are the official OC20 run (``examples/oc20/oc20.sh``).

    Attributes:
        layers: distinct Pre-LN layers [--layers]. blocks: times the stack is applied, weights shared [--blocks].
        embed_dim: D [--embed-dim]. ffn_embed_dim: FFN width [--ffn-embed-dim]. attention_heads: H.
        num_kernel: K Gaussian kernels. atom_types: T, the type vocabulary indexed by atomic number (0 = padding;
            128 covers every element; the official code maps OC20's 56 elements to 64 compact ids); pair types T².
        dropout: after attention and FFN; attention_dropout: on attention probabilities (trunk);
        activation_dropout: after the FFN's GELU; input_dropout: on the node input;
        head_dropout: before the energy MLP and on the Δpos head's attention (0.1, fixed in the official code).
        node_loss_weight, min_node_loss_weight: λ of the Δpos loss decays linearly from the first to the second.
        energy_mean, energy_std, deltapos_mean, deltapos_std: target standardisation (OC20 defaults, eV and Å).
        ewt_threshold: |error| below which an energy counts as "within threshold" (EwT; 0.02 eV for OC20).
        deltapos_projection: ``"per_axis"`` (official: one Linear(D, 1) with bias per axis, which makes the head
            depend on the frame: fine for slabs, whose z axis is the surface normal) or ``"shared"`` (one
            Linear(D, 1) without bias for all axes: the head is exactly rotation-equivariant, right for molecules).
    """

    layers: int = 12
    blocks: int = 4
    embed_dim: int = 768
    ffn_embed_dim: int = 768
    attention_heads: int = 48
    num_kernel: int = 128
    atom_types: int = ATOM_TYPES
    dropout: float = 0.0
    attention_dropout: float = 0.1
    activation_dropout: float = 0.0
    input_dropout: float = 0.0
    head_dropout: float = 0.1
    node_loss_weight: float = 15.0
    min_node_loss_weight: float = 1.0
    energy_mean: float = OC20_STANDARDISATION.energy_mean
    energy_std: float = OC20_STANDARDISATION.energy_std
    deltapos_mean: tuple[float, float, float] = OC20_STANDARDISATION.deltapos_mean
    deltapos_std: tuple[float, float, float] = OC20_STANDARDISATION.deltapos_std
    ewt_threshold: float = 0.02
    deltapos_projection: DeltaposProjection = "per_axis"

    def __post_init__(self) -> None:
        # JSON (from_pretrained) gives lists; keep the config hashable and equal to the saved one
        object.__setattr__(self, "deltapos_mean", tuple(float(v) for v in self.deltapos_mean))
        object.__setattr__(self, "deltapos_std", tuple(float(v) for v in self.deltapos_std))
        for name in ("layers", "blocks", "embed_dim", "ffn_embed_dim", "attention_heads", "num_kernel"):
            if getattr(self, name) < 1:
                raise InputError(f"Graphormer3DConfig.{name} must be at least 1, got {getattr(self, name)}")
        if self.embed_dim % self.attention_heads:
            raise InputError(
                f"Graphormer3DConfig: embed_dim {self.embed_dim} is not divisible by "
                f"attention_heads {self.attention_heads}"
            )
        if self.atom_types < 2:
            raise InputError(f"Graphormer3DConfig.atom_types must be at least 2, got {self.atom_types}")
        for name in ("dropout", "attention_dropout", "activation_dropout", "input_dropout", "head_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise InputError(f"Graphormer3DConfig.{name} must be in [0, 1), got {getattr(self, name)}")
        if self.min_node_loss_weight < 0 or self.node_loss_weight < 0:
            raise InputError("Graphormer3DConfig: node loss weights must be non-negative")
        if self.deltapos_projection not in ("per_axis", "shared"):
            raise InputError(
                f"Graphormer3DConfig.deltapos_projection must be 'per_axis' or 'shared', "
                f"got {self.deltapos_projection!r}"
            )
        _ = self.standardisation  # raises InputError on non-positive standard deviations

    @property
    def standardisation(self) -> Standardisation:
        """The target standardisation held by this config."""
        return Standardisation(self.energy_mean, self.energy_std, self.deltapos_mean, self.deltapos_std)

    def with_standardisation(self, standardisation: Standardisation) -> Graphormer3DConfig:
        """A copy whose standardisation constants are ``standardisation``'s (e.g. fitted on a training split)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update({f.name: getattr(standardisation, f.name) for f in fields(standardisation)})
        return Graphormer3DConfig(**values)


def gaussian_pdf(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """Normal density N(x; μ, σ) = exp(−(x − μ)²/(2σ²)) / (√(2π)·σ), broadcast over the inputs."""
    return torch.exp(-0.5 * ((x - mean) / std).square()) / (math.sqrt(2 * math.pi) * std)


class GaussianBasis(nn.Module):
    """ψ_ijk = N(mul[e_ij]·d_ij + bias[e_ij]; μ_k, |σ_k| + 1e-5) (spec §3.3), μ, σ ~ U(0, 3), mul 1, bias 0."""

    def __init__(self, num_kernel: int, pair_types: int) -> None:
        super().__init__()
        self.means = nn.Parameter(torch.empty(num_kernel).uniform_(0, 3))
        self.stds = nn.Parameter(torch.empty(num_kernel).uniform_(0, 3))
        self.mul = nn.Embedding(pair_types, 1)
        self.bias = nn.Embedding(pair_types, 1)
        nn.init.ones_(self.mul.weight)
        nn.init.zeros_(self.bias.weight)

    def forward(self, dist: torch.Tensor, pair_type: torch.Tensor) -> torch.Tensor:
        """``dist`` float ``(B, N, N)``, ``pair_type`` long ``(B, N, N)`` → ψ float ``(B, N, N, K)``."""
        scaled = self.mul(pair_type) * dist.unsqueeze(-1) + self.bias(pair_type)  # (B, N, N, 1)
        return gaussian_pdf(scaled, self.means, self.stds.abs() + 1e-5)


class GeluMLP(nn.Sequential):
    """Linear(in, hidden) → GELU → Linear(hidden, out); hidden defaults to in (the official ``NonLinear``)."""

    def __init__(self, in_features: int, out_features: int, hidden: int | None = None) -> None:
        hidden = in_features if hidden is None else hidden
        super().__init__(nn.Linear(in_features, hidden), nn.GELU(), nn.Linear(hidden, out_features))


class PreLNLayer(nn.Module):
    """x ← x + Drop(MHA(LN(x), bias)); x ← x + Drop(FFN(LN(x))), FFN = fc2(Drop(GELU(fc1(·)))) (spec §3.3)."""

    def __init__(self, config: Graphormer3DConfig) -> None:
        super().__init__()
        d = config.embed_dim
        self.heads = config.attention_heads
        self.dropout = config.dropout
        self.attention_dropout = config.attention_dropout
        self.activation_dropout = config.activation_dropout
        self.attention_norm = nn.LayerNorm(d)
        self.in_proj = nn.Linear(d, 3 * d)
        self.out_proj = nn.Linear(d, d)
        self.ffn_norm = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, config.ffn_embed_dim)
        self.fc2 = nn.Linear(config.ffn_embed_dim, d)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """``x`` ``(B, N, D)``, ``bias`` ``(B, H, N, N)`` (−∞ on padded keys) → ``(B, N, D)``."""
        q, k, v = (
            self.in_proj(self.attention_norm(x)).unflatten(-1, (3, self.heads, -1)).permute(2, 0, 3, 1, 4)
        )
        attention = F.scaled_dot_product_attention(
            q, k, v, attn_mask=bias, dropout_p=self.attention_dropout if self.training else 0.0
        )  # (B, H, N, d_head), q scaled by 1/√d_head
        x = x + F.dropout(self.out_proj(attention.transpose(1, 2).flatten(2)), self.dropout, self.training)
        hidden = F.dropout(F.gelu(self.fc1(self.ffn_norm(x))), self.activation_dropout, self.training)
        return x + F.dropout(self.fc2(hidden), self.dropout, self.training)


class DeltaposHead(nn.Module):
    """The equivariant node head: o_ic = Σ_j softmax(q_i·k_j/√d + b_ij) Δ_ij^c v_j per head, then Linear(D, 1).

    With ``projection="shared"`` one bias-free Linear serves the three axes, so rotating the positions by R rotates
    the output by R; ``"per_axis"`` is the official form (three Linear(D, 1) with bias).
    """

    def __init__(self, embed_dim: int, heads: int, dropout: float, projection: DeltaposProjection) -> None:
        super().__init__()
        self.heads = heads
        self.dropout = dropout
        self.q_proj = nn.Linear(embed_dim, embed_dim)
        self.k_proj = nn.Linear(embed_dim, embed_dim)
        self.v_proj = nn.Linear(embed_dim, embed_dim)
        self.projection = projection
        if projection == "shared":
            self.axis_proj = nn.Linear(embed_dim, 1, bias=False)
        else:
            self.axis_weight = nn.Parameter(torch.empty(3, embed_dim))
            self.axis_bias = nn.Parameter(torch.empty(3))
            bound = 1 / math.sqrt(embed_dim)  # nn.Linear's default initialisation, one row per axis
            nn.init.uniform_(self.axis_weight, -bound, bound)
            nn.init.uniform_(self.axis_bias, -bound, bound)

    def forward(self, x: torch.Tensor, bias: torch.Tensor, direction: torch.Tensor) -> torch.Tensor:
        """``x`` ``(B, N, D)``, ``bias`` ``(B, H, N, N)``, ``direction`` Δ ``(B, N, N, 3)`` → Δpos ``(B, N, 3)``."""
        q, k, v = (
            proj(x).unflatten(-1, (self.heads, -1)).transpose(1, 2)
            for proj in (self.q_proj, self.k_proj, self.v_proj)
        )
        scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]) + bias  # (B, H, N, N)
        probs = F.dropout(scores.softmax(dim=-1), self.dropout, self.training)
        out = torch.einsum("bhij,bijc,bhjd->bichd", probs, direction, v).flatten(-2)  # (B, N, 3, D)
        if self.projection == "shared":
            return self.axis_proj(out).squeeze(-1)
        return torch.einsum("bncd,cd->bnc", out, self.axis_weight) + self.axis_bias


class Graphormer3D(nn.Module, Pretrained):
    """Graphormer-3D (see the module docstring); ``forward(atoms, tags, pos, real_mask) -> (energy, deltapos)``."""

    config_class = Graphormer3DConfig
    config_key = "model"

    def __init__(self, config: Graphormer3DConfig) -> None:
        super().__init__()
        self.config = config
        d, k, heads = config.embed_dim, config.num_kernel, config.attention_heads
        self.atom_encoder = nn.Embedding(config.atom_types, d, padding_idx=0)
        self.tag_encoder = nn.Embedding(3, d)
        self.gaussian = GaussianBasis(k, config.atom_types**2)
        self.bias_proj = GeluMLP(k, heads)
        self.centrality_proj = nn.Linear(k, d)
        self.layers = nn.ModuleList(PreLNLayer(config) for _ in range(config.layers))
        self.final_norm = nn.LayerNorm(d)
        self.energy_head = GeluMLP(d, 1)
        self.tag_scale = nn.Embedding(3, 1)
        nn.init.normal_(self.tag_scale.weight, 0.0, 0.01)
        self.deltapos_head = DeltaposHead(d, heads, config.head_dropout, config.deltapos_projection)

    @property
    def standardisation(self) -> Standardisation:
        """The target standardisation the outputs are expressed in."""
        return self.config.standardisation

    def forward(
        self, atoms: torch.Tensor, tags: torch.Tensor, pos: torch.Tensor, real_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Standardised energy and Δpos for a padded batch.

        Args:
            atoms: long ``(B, N)`` atomic numbers below ``atom_types`` (0 = padding); tags: long ``(B, N)``;
            pos: float ``(B, N, 3)``; real_mask: bool ``(B, N)``, False for padding and periodic images.

        Returns:
            energy float ``(B,)`` (sum over real atoms with tag > 0) and Δpos float ``(B, N, 3)`` for every slot
            (only real atoms with tag > 0 are trained).

        Raises:
            InputError: an atomic number is not below ``atom_types`` (a model saved with a smaller vocabulary).
        """
        if atoms.numel() and int(atoms.max()) >= self.config.atom_types:
            raise InputError(
                f"Graphormer3D: atomic number {int(atoms.max())} is outside this model's vocabulary of atomic "
                f"numbers below {self.config.atom_types} (Graphormer3DConfig.atom_types)"
            )
        padding = atoms.eq(0)  # (B, N)
        offset = pos.unsqueeze(1) - pos.unsqueeze(2)  # (B, N, N, 3): p_j − p_i at [b, i, j]
        dist = offset.norm(dim=-1)  # (B, N, N)
        direction = offset / (dist.unsqueeze(-1) + 1e-5)
        pair_type = atoms.unsqueeze(2) * self.config.atom_types + atoms.unsqueeze(1)
        psi = self.gaussian(dist, pair_type)  # (B, N, N, K)
        centrality = psi.masked_fill(padding[:, None, :, None], 0.0).sum(dim=2)  # (B, N, K)
        h = self.atom_encoder(atoms) + self.tag_encoder(tags) + self.centrality_proj(centrality)
        h = F.dropout(h, self.config.input_dropout, self.training)
        bias = self.bias_proj(psi).permute(0, 3, 1, 2).masked_fill(padding[:, None, None, :], float("-inf"))
        for _ in range(self.config.blocks):
            for layer in self.layers:
                h = layer(h, bias)
        h = self.final_norm(h)
        per_atom = self.energy_head(F.dropout(h, self.config.head_dropout, self.training)).squeeze(-1)
        per_atom = per_atom * self.tag_scale(tags).squeeze(-1)  # (B, N)
        energy = (per_atom * (real_mask & (tags > 0))).sum(dim=-1)
        return energy, self.deltapos_head(h, bias, direction)

    @torch.no_grad()
    def predict(self, batch: AtomsBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """Energy ``(B,)`` and Δpos ``(B, N, 3)`` in target units (eval mode is the caller's choice)."""
        energy, deltapos = self(batch.atoms, batch.tags, batch.pos, batch.real_mask)
        standard = self.standardisation
        return standard.destandardise_energy(energy), standard.destandardise_deltapos(deltapos)

    def node_loss_weight(self, step: int, total_steps: int) -> float:
        """λ(step) = λ_max − (λ_max − λ_min)·step/total_steps, held at λ_min after ``total_steps``."""
        if total_steps < 1 or step < 0:
            raise InputError(
                f"node loss schedule: need step ≥ 0 and total_steps ≥ 1, got {step}/{total_steps}"
            )
        start, end = self.config.node_loss_weight, self.config.min_node_loss_weight
        return start - max(0.0, start - end) * min(step, total_steps) / total_steps

    def loss(
        self,
        batch: AtomsBatch,
        outputs: tuple[torch.Tensor, torch.Tensor],
        step: int,
        total_steps: int,
        *,
        node_loss: bool = True,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """The IS2RE criterion (official ``mae_deltapos``), averaged over the B systems.

        L = (1/B) Σ_b [ |ê_b − (e_b − μ_e)/σ_e|
                        + λ(step) · (1/n_b) Σ_{i ∈ T_b} (1/3) Σ_c |Δp̂_ic − (Δp_ic − μ_c)/σ_c| ]

        with T_b the real atoms of system b with tag > 0 and n_b = |T_b| (at least 1). ``node_loss=False``
        drops the second term (the energy head alone, the ablation of the auxiliary Δpos loss).

        Returns:
            the loss (scalar tensor) and detached parts: ``energy`` (standardised L1), ``energy_mae`` (target
            units), ``ewt`` (fraction of systems with |error| < ``ewt_threshold``), ``deltapos`` (standardised L1,
            reported even when not trained on) and ``node_loss_weight`` (λ, 0 when ``node_loss`` is False).
        """
        energy, deltapos = outputs
        standard = self.standardisation
        energy_error = (energy - standard.standardise_energy(batch.energy.to(energy))).abs()  # (B,)
        mask = batch.target_mask.to(deltapos)  # (B, N)
        target = standard.standardise_deltapos(batch.deltapos.to(deltapos))
        per_atom = (deltapos - target).abs().mean(dim=-1) * mask  # (B, N)
        node_error = per_atom.sum(dim=-1) / mask.sum(dim=-1).clamp(min=1)  # (B,)
        weight = self.node_loss_weight(step, total_steps) if node_loss else 0.0
        loss = energy_error.mean() + weight * node_error.mean() if node_loss else energy_error.mean()
        energy_error, node_error = energy_error.detach(), node_error.detach()
        parts = {
            "energy": energy_error.mean().item(),
            "energy_mae": energy_error.mean().item() * standard.energy_std,
            "ewt": (energy_error * standard.energy_std < self.config.ewt_threshold).double().mean().item(),
            "deltapos": node_error.mean().item(),
            "node_loss_weight": weight,
        }
        return loss, parts
