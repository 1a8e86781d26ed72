"""The chemical–protein interaction model: a chemical encoder, a protein encoder and the attentive bilinear head.

- Chemical: a GIN (Xu et al., 2019) in the pretrain-gnns form (Hu et al., 2020) — per layer
  h_v ← MLP(Σ over u in N(v) and v itself of (h_u + e_uv)), BatchNorm, ReLU (not after the last), dropout; JK = last — with
  scatter-sum aggregation over a whole batch of molecules (no per-molecule loop); or an MLP over the Morgan
  fingerprint (one "position").
- Protein: residue embeddings (plus learned position embeddings, as the paper's MSA-distilled sequences keep
  their family alignment's positions) through residual 1-D convolutions (a CNN, one of the paper's
  protein-encoder options), one state per residue.
- Head (the paper's cross attention, our reading of it): A = tanh(C U Pᵀ) for chemical states C (n × d_c) and
  protein states P (L × d_p); each side's attention is a softmax over its positions of A summed over the other
  side's; the weighted sums are concatenated (d_c + d_p) → 128 → 64 (BatchNorm, ReLU, dropout 0.1) → 64 → 2
  (dropout 0.2): two-class logits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from papers_common import InputError, Pretrained
from portal_learning.featurize import (
    ATOMIC_NUMBERS,
    BOND_DIRECTIONS,
    BOND_TYPES,
    CHIRALITY,
    RESIDUE_VOCAB,
    GraphBatch,
    batch_graphs,
    mol_graph,
    residue_tokens,
)

CHEMICAL_ENCODERS = ("gin", "fingerprint")


@dataclass(frozen=True)
class CPIConfig:
    """Sizes of the interaction model (defaults: the paper's GIN 5 × 300 and head; a small protein CNN)."""

    chemical: str = "gin"
    gin_layers: int = 5
    gin_hidden: int = 300
    gin_dropout: float = 0.5
    fingerprint_bits: int = 2048
    protein_embedding: int = 64
    protein_channels: int = 256
    protein_layers: int = 3
    protein_kernel: int = 9
    max_length: int = 512
    protein_positions: bool = True
    head_dropout: float = 0.1
    output_dropout: float = 0.2

    def check(self) -> None:
        if self.chemical not in CHEMICAL_ENCODERS:
            raise InputError(
                f"--chemical must be one of {', '.join(CHEMICAL_ENCODERS)}, got {self.chemical!r}"
            )
        for name, value in (("--gin-layers", self.gin_layers), ("--gin-hidden", self.gin_hidden),
                            ("--protein-channels", self.protein_channels), ("--protein-layers", self.protein_layers),
                            ("--max-length", self.max_length)):  # fmt: skip
            if value < 1:
                raise InputError(f"{name} must be at least 1, got {value}")
        if self.protein_kernel < 1 or self.protein_kernel % 2 == 0:
            raise InputError(f"--protein-kernel must be odd and positive, got {self.protein_kernel}")


class GIN(nn.Module):
    """Graph isomorphism network over a :class:`GraphBatch`: ``(N, hidden)`` atom states."""

    def __init__(self, layers: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.atom_type = nn.Embedding(ATOMIC_NUMBERS, hidden)
        self.chirality = nn.Embedding(CHIRALITY, hidden)
        self.bond_type = nn.ModuleList(nn.Embedding(BOND_TYPES, hidden) for _ in range(layers))
        self.bond_direction = nn.ModuleList(nn.Embedding(BOND_DIRECTIONS, hidden) for _ in range(layers))
        self.mlps = nn.ModuleList(
            nn.Sequential(nn.Linear(hidden, 2 * hidden), nn.ReLU(), nn.Linear(2 * hidden, hidden))
            for _ in range(layers)
        )
        self.norms = nn.ModuleList(nn.BatchNorm1d(hidden) for _ in range(layers))
        self.dropout = nn.Dropout(dropout)

    def forward(self, graphs: GraphBatch) -> torch.Tensor:
        h = self.atom_type(graphs.atoms[:, 0]) + self.chirality(graphs.atoms[:, 1])
        source, target = graphs.edges
        for k, (mlp, norm) in enumerate(zip(self.mlps, self.norms, strict=True)):
            messages = (
                h[source] + self.bond_type[k](graphs.bonds[:, 0]) + self.bond_direction[k](graphs.bonds[:, 1])
            )
            h = norm(mlp(torch.zeros_like(h).index_add_(0, target, messages)))
            if k < len(self.mlps) - 1:
                h = torch.relu(h)
            h = self.dropout(h)
        return h


def dense_atoms(states: torch.Tensor, batch: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(N, d)`` atom states → ``(B, n_max, d)`` per molecule, zero-padded, and the ``(B, n_max)`` atom mask."""
    counts = torch.bincount(batch, minlength=size)
    starts = torch.cumsum(counts, 0) - counts
    position = torch.arange(len(batch), device=batch.device) - starts[batch]
    dense = states.new_zeros(size, int(counts.max()), states.shape[1])
    dense[batch, position] = states
    mask = torch.zeros(size, dense.shape[1], dtype=torch.bool, device=batch.device)
    mask[batch, position] = True
    return dense, mask


class ProteinCNN(nn.Module):
    """Residue (and, with ``positions``, position) embeddings through residual 1-D convolutions: ``(B, L)`` tokens
    → ``(B, L, channels)``."""

    def __init__(self, embedding: int, channels: int, layers: int, kernel: int, positions: int = 0) -> None:
        super().__init__()
        self.embed = nn.Embedding(RESIDUE_VOCAB, embedding, padding_idx=0)
        self.positions = nn.Embedding(positions, embedding) if positions else None
        self.project = nn.Conv1d(embedding, channels, 1)
        self.convs = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel, padding=kernel // 2) for _ in range(layers)
        )
        self.norms = nn.ModuleList(nn.BatchNorm1d(channels) for _ in range(layers))

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        keep = mask[:, None, :].float()
        x = self.embed(tokens)
        if self.positions is not None:
            x = x + self.positions(torch.arange(tokens.shape[1], device=tokens.device))
        h = self.project(x.transpose(1, 2)) * keep
        for conv, norm in zip(self.convs, self.norms, strict=True):
            h = (h + torch.relu(norm(conv(h)))) * keep
        return h.transpose(1, 2)


def _masked_softmax(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)


def chemical_encoder(config: CPIConfig) -> nn.Module:
    """The chemical encoder of ``config``: a :class:`GIN` or the fingerprint MLP (bits → hidden → hidden)."""
    if config.chemical == "gin":
        return GIN(config.gin_layers, config.gin_hidden, config.gin_dropout)
    return nn.Sequential(nn.Linear(config.fingerprint_bits, config.gin_hidden), nn.ReLU(),
                         nn.Linear(config.gin_hidden, config.gin_hidden))  # fmt: skip


def protein_encoder(config: CPIConfig) -> ProteinCNN:
    """The protein encoder of ``config`` (position embeddings over ``max_length`` when ``protein_positions``)."""
    return ProteinCNN(config.protein_embedding, config.protein_channels, config.protein_layers,
                      config.protein_kernel, config.max_length if config.protein_positions else 0)  # fmt: skip


def train_mode(model: nn.Module) -> None:
    """``model.train()``, except that a BatchNorm whose parameters are all frozen stays in evaluation mode, so that
    its running statistics stay as loaded too."""
    model.train()
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            parameters = list(module.parameters())
            if parameters and not any(p.requires_grad for p in parameters):
                module.eval()


class CPIModel(nn.Module, Pretrained):
    """Two-class logits for (molecule, protein) pairs; see the module docstring for the architecture."""

    config_class = CPIConfig

    def __init__(self, config: CPIConfig | None = None) -> None:
        super().__init__()
        self.config = config or CPIConfig()
        self.config.check()
        c = self.config
        self.chemical = chemical_encoder(c)
        self.protein = protein_encoder(c)
        self.bilinear = nn.Parameter(torch.randn(c.gin_hidden, c.protein_channels) / np.sqrt(c.gin_hidden))
        width = c.gin_hidden + c.protein_channels
        self.head = nn.Sequential(
            nn.Linear(width, 128), nn.BatchNorm1d(128), nn.ReLU(), nn.Dropout(c.head_dropout),
            nn.Linear(128, 64), nn.BatchNorm1d(64), nn.ReLU(), nn.Dropout(c.head_dropout),
            nn.Linear(64, 64), nn.ReLU(), nn.Dropout(c.output_dropout), nn.Linear(64, 2),
        )  # fmt: skip

    def chemical_states(self, molecules: GraphBatch | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, n, d_c)`` chemical states and their mask (atoms for the GIN, one position for fingerprints)."""
        if isinstance(molecules, GraphBatch):
            if self.config.chemical != "gin":
                raise InputError("this model encodes fingerprints; pass a (B, bits) tensor")
            return dense_atoms(self.chemical(molecules), molecules.batch, molecules.size)
        states = self.chemical(molecules.to(self.bilinear.dtype))[:, None, :]
        return states, torch.ones(states.shape[:2], dtype=torch.bool, device=states.device)

    def forward(
        self, molecules: GraphBatch | torch.Tensor, tokens: torch.Tensor, residue_mask: torch.Tensor
    ) -> torch.Tensor:
        """``(B, 2)`` logits for molecules (a :class:`GraphBatch` or ``(B, bits)`` fingerprints) and ``(B, L)``
        residue tokens with their mask."""
        chem, chem_mask = self.chemical_states(molecules)
        prot = self.protein(tokens, residue_mask)
        scores = torch.tanh(torch.einsum("bnc,cp,blp->bnl", chem, self.bilinear, prot))  # (B, n, L)
        scores = scores * chem_mask[:, :, None] * residue_mask[:, None, :]
        chem_weights = _masked_softmax(scores.sum(2), chem_mask)  # (B, n)
        prot_weights = _masked_softmax(scores.sum(1), residue_mask)  # (B, L)
        pooled = torch.cat([torch.einsum("bn,bnc->bc", chem_weights, chem),
                            torch.einsum("bl,blp->bp", prot_weights, prot)], dim=1)  # fmt: skip
        return self.head(pooled)

    def inputs(self, smiles: Sequence[str], sequences: Sequence[str]) -> tuple:
        """Featurise pairs for :meth:`forward` (on the model's device)."""
        device = self.bilinear.device
        if self.config.chemical == "gin":
            molecules: GraphBatch | torch.Tensor = batch_graphs([mol_graph(s) for s in smiles]).to(device)
        else:
            from portal_learning.synthetic import morgan_fingerprints

            molecules = torch.from_numpy(
                morgan_fingerprints(list(smiles), bits=self.config.fingerprint_bits)
            ).to(device)
        tokens, mask = residue_tokens(sequences, self.config.max_length)
        return molecules, tokens.to(device), mask.to(device)

    @torch.no_grad()
    def predict(
        self, smiles: Sequence[str], sequences: Sequence[str], *, batch_size: int = 256
    ) -> np.ndarray:
        """Probabilities of interaction, ``(n,)``, in evaluation mode."""
        if len(smiles) != len(sequences):
            raise InputError(f"{len(smiles)} molecules but {len(sequences)} sequences")
        was_training = self.training
        self.eval()
        out = []
        for start in range(0, len(smiles), batch_size):
            stop = start + batch_size
            logits = self(*self.inputs(smiles[start:stop], sequences[start:stop]))
            out.append(torch.softmax(logits, dim=1)[:, 1].cpu())
        self.train(was_training)
        return torch.cat(out).numpy() if out else np.zeros(0)
