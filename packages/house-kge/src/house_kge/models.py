"""HousE (and its variants) and RotatE: parameters, relation operators, and scores in both directions.

Entities are ``(m, k)`` arrays of m blocks of k dimensions; every operator acts block-wise. For a relation r:

- HousE-r:  f(h, r, t) = γ − Σ_b ‖Rot_r(h)_b − t_b‖
- HousE:    f = γ − Σ_b ‖Rot_r(P_h h)_b − (P_t t)_b‖
- HousE-r+: f = γ − Σ_b ‖Rot_r(h + w_r)_b − t_b‖
- HousE+:   f = γ − Σ_b ‖Rot_r(P_h h + w_r)_b − (P_t t)_b‖

Rot_r is a product of an even number of Householder reflections (det +1), P_h and P_t are chains of Householder
projections with τ = min(k_dir · |k_scale|, threshold). Unit vectors are re-normalised in every forward pass. Their
order follows the official code: the first ``projections`` vectors serve P_t, the last ``projections`` serve P_h
(applied from the last one), and the middle ones the rotation (applied from the last one).

Head prediction uses ‖Rotᵀ(P_t t) − w − P_h h‖, equal to the tail form because Rot is orthogonal.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from house_kge.householder import reflection_chain
from house_kge.scoring import distance_to_all, distance_to_candidates, projected_candidates
from papers_common import InputError, Pretrained

Variant = Literal["house-r", "house", "house-r+", "house+"]
Direction = Literal["tail", "head"]
VARIANTS: tuple[str, ...] = ("house-r", "house", "house-r+", "house+")


@dataclass(frozen=True)
class HousEConfig:
    """Sizes and hyperparameters of a HousE model (the official flag is in brackets).

    Attributes:
        num_entities, num_relations: vocabulary sizes.
        dim: d, the entity dimension [hidden_dim]; must be a multiple of ``k``.
        k: block size [house_dim].
        variant: ``house-r``, ``house``, ``house-r+`` or ``house+``.
        reflections: reflections per rotation [house_num]; None: k for even k, k − 1 for odd k (the official
            run script's override: an even count, enough for any rotation of R^k).
        projections: Householder projections per side [housd_num] (``house`` and ``house+`` only).
        threshold: upper clamp of τ [thred].
        gamma: margin γ.
    """

    num_entities: int
    num_relations: int
    dim: int = 400
    k: int = 8
    variant: Variant = "house"
    reflections: int | None = None
    projections: int = 1
    threshold: float = 0.5
    gamma: float = 12.0

    def __post_init__(self) -> None:
        for name in ("num_entities", "num_relations", "dim", "k"):
            if getattr(self, name) < 1:
                raise InputError(f"HousEConfig.{name} must be at least 1, got {getattr(self, name)}")
        if self.variant not in VARIANTS:
            raise InputError(f"unknown HousE variant {self.variant!r}; choose one of {', '.join(VARIANTS)}")
        if self.dim % self.k:
            raise InputError(
                f"the dimension {self.dim} is not a multiple of the block size k={self.k} "
                f"(the official code silently drops {self.dim % self.k} dimensions); use e.g. dim={self.dim - self.dim % self.k}"
            )
        if self.reflections is not None and self.reflections < 0:
            raise InputError(f"HousEConfig.reflections must be non-negative, got {self.reflections}")
        if self.projections < 0:
            raise InputError(f"HousEConfig.projections must be non-negative, got {self.projections}")

    @property
    def blocks(self) -> int:
        """m = d / k."""
        return self.dim // self.k

    @property
    def rotation_size(self) -> int:
        """hn, reflections per rotation."""
        if self.reflections is not None:
            return self.reflections
        return self.k if self.k % 2 == 0 else self.k - 1

    @property
    def projection_size(self) -> int:
        """dn, projections per side (0 for the -r variants)."""
        return self.projections if self.variant in ("house", "house+") else 0

    @property
    def translated(self) -> bool:
        return self.variant.endswith("+")


@dataclass
class Operators:
    """One batch of relations' operators, each ``(B, m, ...)``.

    ``query`` maps the known entity to x; ``units``/``tau`` are the projection chain applied to candidates.
    """

    rotation: torch.Tensor  # (B, m, k, k)
    head_units: torch.Tensor  # (B, m, dn, k), applied first to last
    head_tau: torch.Tensor  # (B, m, dn)
    tail_units: torch.Tensor
    tail_tau: torch.Tensor
    translation: torch.Tensor | None  # (B, m, k)


class BlockModel(nn.Module):
    """Shared scoring of block models: subclasses provide the entity table and the relation operators."""

    gamma: float
    entity: nn.Parameter  # (E, m, k)

    def operators(self, relations: torch.Tensor) -> Operators:
        raise NotImplementedError

    def batch_operators(self, relations: torch.Tensor) -> Operators:
        """:meth:`operators` for a batch, built once per distinct relation and gathered back to ``(B, ...)``."""
        distinct, inverse = torch.unique(relations, return_inverse=True)
        ops = self.operators(distinct)
        return Operators(
            *(None if value is None else value[inverse] for value in (
                ops.rotation, ops.head_units, ops.head_tau, ops.tail_units, ops.tail_tau, ops.translation))
        )  # fmt: skip

    def lookup(self, ids: torch.Tensor) -> torch.Tensor:
        """Entity embeddings ``(*ids.shape, m, k)`` (an embedding lookup, whose backward is a fast scatter-add)."""
        table = self.entity.flatten(1)
        return nn.functional.embedding(ids, table).unflatten(-1, self.entity.shape[1:])

    def _query(self, known: torch.Tensor, ops: Operators, direction: Direction) -> torch.Tensor:
        """x for each query: Rot(P_h h + w) when predicting tails, Rotᵀ(P_t t) − w when predicting heads."""
        e = self.lookup(known)  # (B, m, k)
        if direction == "tail":
            projected = projected_candidates(e, ops.head_units, ops.head_tau)
            if ops.translation is not None:
                projected = projected + ops.translation
            return torch.einsum("bmij,bmj->bmi", ops.rotation, projected)
        projected = projected_candidates(e, ops.tail_units, ops.tail_tau)
        x = torch.einsum("bmji,bmj->bmi", ops.rotation, projected)  # Rotᵀ
        return x - ops.translation if ops.translation is not None else x

    @staticmethod
    def _candidate_chain(ops: Operators, direction: Direction) -> tuple[torch.Tensor, torch.Tensor]:
        return (ops.tail_units, ops.tail_tau) if direction == "tail" else (ops.head_units, ops.head_tau)

    def score_candidates(
        self, known: torch.Tensor, relations: torch.Tensor, candidates: torch.Tensor, direction: Direction
    ) -> torch.Tensor:
        """Scores ``(B, N)`` of N candidate tails (``direction="tail"``) or heads for each query (known, r).

        Args:
            known: ``(B,)`` entity ids (heads when predicting tails); relations: ``(B,)``;
            candidates: ``(B, N)`` entity ids.
        """
        ops = self.batch_operators(relations)
        x = self._query(known, ops, direction)
        units, tau = self._candidate_chain(ops, direction)
        return self.gamma - distance_to_candidates(x, self.entity, candidates, units, tau)

    def score_all(self, known: torch.Tensor, relations: torch.Tensor, direction: Direction) -> torch.Tensor:
        """Scores ``(B, E)`` of every entity as the missing tail (or head): 1-N scoring."""
        ops = self.batch_operators(relations)
        x = self._query(known, ops, direction)
        units, tau = self._candidate_chain(ops, direction)
        return self.gamma - distance_to_all(x, self.entity, units, tau)

    def score_triples(self, triples: torch.Tensor) -> torch.Tensor:
        """f(h, r, t) ``(B,)`` for ``(B, 3)`` id triples."""
        return self.score_candidates(triples[:, 0], triples[:, 1], triples[:, 2:3], "tail").squeeze(1)

    def entity_norm(self, ids: torch.Tensor | None = None) -> torch.Tensor:
        """Mean Frobenius norm of the ``(m, k)`` embeddings of ``ids`` (all entities when None: the official
        regulariser, which touches the whole table every step)."""
        table = self.entity if ids is None else self.entity[ids]
        return table.flatten(1).norm(dim=1).mean()


class HousE(BlockModel, Pretrained):
    """HousE and its variants (see the module docstring); parameters and initialisation as the official code."""

    config_class = HousEConfig
    config_key = "model"

    def __init__(self, config: HousEConfig) -> None:
        super().__init__()
        self.config = config
        self.gamma = config.gamma
        m, k = config.blocks, config.k
        dn, hn = config.projection_size, config.rotation_size
        bound = (config.gamma + 2.0) / (m * math.sqrt(k))  # ρ = (γ + ε)/(m √k), ε = 2
        self.entity = nn.Parameter(torch.empty(config.num_entities, m, k).uniform_(-bound, bound))
        self.units = nn.Parameter(
            torch.empty(config.num_relations, m, hn + 2 * dn, k).uniform_(-bound, bound)
        )
        direction = torch.empty(config.num_relations, 1, dn).uniform_(-0.01, 0.01)
        self.k_dir_head = nn.Parameter(direction.clone())
        self.k_dir_tail = nn.Parameter(-direction)  # k_dir_tail := −k_dir_head at initialisation
        self.k_scale_head = nn.Parameter(torch.empty(config.num_relations, m, dn).uniform_(-1, 1))
        self.k_scale_tail = nn.Parameter(torch.empty(config.num_relations, m, dn).uniform_(-1, 1))
        self.translation = (
            nn.Parameter(torch.empty(config.num_relations, m, k).uniform_(-bound, bound))
            if config.translated
            else None
        )

    def operators(self, relations: torch.Tensor) -> Operators:
        dn = self.config.projection_size
        units = nn.functional.normalize(self.units[relations], dim=-1)  # (B, m, n, k)
        n = units.shape[2]
        threshold = self.config.threshold
        tau_head = (self.k_dir_head[relations] * self.k_scale_head[relations].abs()).clamp(max=threshold)
        tau_tail = (self.k_dir_tail[relations] * self.k_scale_tail[relations].abs()).clamp(max=threshold)
        rotation = reflection_chain(units[:, :, dn : n - dn].flip(2))  # u_{n-dn-1} first, u_dn last
        return Operators(
            rotation=rotation,
            head_units=units[:, :, n - dn :].flip(2),  # u_{n-1} first
            head_tau=tau_head,
            tail_units=units[:, :, :dn],
            tail_tau=tau_tail,
            translation=None if self.translation is None else self.translation[relations],
        )


@dataclass(frozen=True)
class RotatEConfig:
    """RotatE (Sun et al., 2019) as in its official toolkit: ``dim`` complex dimensions, margin γ."""

    num_entities: int
    num_relations: int
    dim: int = 200
    gamma: float = 12.0

    def __post_init__(self) -> None:
        for name in ("num_entities", "num_relations", "dim"):
            if getattr(self, name) < 1:
                raise InputError(f"RotatEConfig.{name} must be at least 1, got {getattr(self, name)}")


class RotatE(BlockModel, Pretrained):
    """f = γ − Σ_b ‖h_b ∘ e^{iθ_b} − t_b‖ with complex numbers as 2-dim blocks; θ = r / (ρ/π), ρ = (γ + 2)/dim."""

    config_class = RotatEConfig
    config_key = "model"

    def __init__(self, config: RotatEConfig) -> None:
        super().__init__()
        self.config = config
        self.gamma = config.gamma
        self.bound = (config.gamma + 2.0) / config.dim
        self.entity = nn.Parameter(
            torch.empty(config.num_entities, config.dim, 2).uniform_(-self.bound, self.bound)
        )
        self.relation = nn.Parameter(
            torch.empty(config.num_relations, config.dim).uniform_(-self.bound, self.bound)
        )

    def operators(self, relations: torch.Tensor) -> Operators:
        phase = self.relation[relations] / (self.bound / math.pi)  # (B, m)
        cos, sin = phase.cos(), phase.sin()
        rotation = torch.stack(
            [torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2
        )  # (B, m, 2, 2)
        empty_units = rotation.new_zeros(*phase.shape, 0, 2)
        empty_tau = rotation.new_zeros(*phase.shape, 0)
        return Operators(rotation, empty_units, empty_tau, empty_units, empty_tau, None)


Model = HousE | RotatE
