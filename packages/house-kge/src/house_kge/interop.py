"""PyKEEN interoperability: HousE as a PyKEEN interaction and model, and weight conversion both ways.

Needs the optional extra: ``pip install 'house-kge[pykeen]'``. ``import house_kge`` never imports PyKEEN; only this
module does.

- :class:`HousEInteraction` is a :class:`pykeen.nn.modules.Interaction` computing, for broadcast batches,

  f(h, r, t) = γ − Σ_b ‖Rot_r(P_h h + w_r)_b − (P_t t)_b‖  (Li et al., ICML 2022, §3; spec §3 "Scores"),

  with exactly the conventions of :meth:`house_kge.HousE.operators`: unit vectors re-normalised in every forward
  pass; the first dn vectors serve P_t, the middle hn the rotation and the last dn P_h (the last two groups applied
  from their last vector); τ = min(k_dir · |k_scale|, threshold) with no lower clamp. ``house-r`` drops P_h, P_t and
  w_r, ``house`` drops w_r, ``house-r+`` drops P_h and P_t.
- :class:`HousEModel` is a :class:`pykeen.models.ERModel` with the interaction, house-kge's initialisation and the
  self-adversarial loss (:class:`pykeen.losses.NSSALoss` with margin 0, since the score already contains γ), usable
  as ``pipeline(model=HousEModel, model_kwargs=dict(dim=..., k=..., variant=...), dataset="nations")``.
- :func:`to_house` and :func:`from_house` copy weights between :class:`HousEModel` and :class:`house_kge.HousE`,
  so a model trained with either library can be evaluated (or trained further) with the other.

Representation layout (one PyKEEN :class:`~pykeen.nn.representation.Embedding` each; m = d / k blocks, n = hn + 2·dn
unit vectors per block, dn projections per side, 0 for the ``-r`` variants), with the matching
:class:`house_kge.HousE` parameter (per relation):

- ``units`` ``(m, n, k)``: ``units`` ``(m, n, k)``;
- ``k_dir_head``, ``k_dir_tail`` ``(dn,)``: ``k_dir_head``, ``k_dir_tail`` ``(1, dn)`` (shared by the blocks);
- ``k_scale_head``, ``k_scale_tail`` ``(m, dn)``: ``k_scale_head``, ``k_scale_tail`` ``(m, dn)``;
- ``translation`` ``(m, k)``: ``translation`` ``(m, k)``.

The four k_dir/k_scale representations exist only for ``house`` and ``house+`` with dn ≥ 1, ``translation`` only for
the ``+`` variants, in this order after ``units``; entities are a single ``(m, k)`` representation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

try:
    from pykeen.losses import NSSALoss
    from pykeen.models import ERModel
    from pykeen.nn.modules import Interaction
    from pykeen.nn.representation import Embedding, Representation
    from pykeen.triples import KGInfo
    from pykeen.utils import NoRandomSeedNecessary
except ImportError as error:  # pragma: no cover - exercised in a subprocess without pykeen
    raise ImportError(
        "house_kge.interop needs PyKEEN, an optional dependency: pip install 'house-kge[pykeen]'"
    ) from error

from house_kge.householder import householder_project, householder_reflect, projection_chain, reflection_chain
from house_kge.models import VARIANTS, HousE, HousEConfig, Operators, Variant
from house_kge.scoring import distance_to_all
from papers_common import InputError

__all__ = ["Chains", "HousEInteraction", "HousEModel", "from_house", "to_house"]

#: PyKEEN's symbolic shapes (one character per axis): m blocks, n unit vectors, k block size, p = dn projections.
_SYMBOLIC_SHAPES: Mapping[str, str] = {
    "units": "mnk",
    "k_dir_head": "p",
    "k_dir_tail": "p",
    "k_scale_head": "mp",
    "k_scale_tail": "mp",
    "translation": "mk",
}
_PROJECTION_NAMES = ("k_dir_head", "k_dir_tail", "k_scale_head", "k_scale_tail")


def _relation_layout(projected: bool, translated: bool) -> tuple[str, ...]:
    """Names of the relation representations, in the order PyKEEN passes them as ``r``."""
    return ("units", *(_PROJECTION_NAMES if projected else ()), *(("translation",) if translated else ()))


def _project(x: torch.Tensor, units: Sequence[torch.Tensor], tau: Sequence[torch.Tensor]) -> torch.Tensor:
    """The chain Proj_{u_{n−1},τ_{n−1}} ∘ ⋯ ∘ Proj_{u_0,τ_0}(x), one rank-one update per vector (n is small).

    ``x``: ``(*bx, m, k)``; ``units``: n vectors ``(*br, m, k)``; ``tau``: n ``(*br, m)``; the batch shapes broadcast.
    """
    for u, scale in zip(units, tau, strict=True):
        x = householder_project(x, u, scale)
    return x


def _broadcast_numel(*shapes: Sequence[int]) -> int:
    return math.prod(torch.broadcast_shapes(*(torch.Size(s) for s in shapes)))


@dataclass
class Chains:
    """One relation batch's normalised unit vectors ``units`` ``(*br, m, n, k)``, dn = ``projections`` per side.

    By role, each in the order applied: the rotation's hn = n − 2·dn vectors (Rot_r = Ref of the last ∘ ⋯ ∘ Ref of
    the first: u_{n−dn−1} first, u_dn last), P_h's (u_{n−1} first) with ``head_tau`` ``(*br, m, dn)``, P_t's (u_0
    first) with ``tail_tau``; ``translation`` ``(*br, m, k)`` or None. The ``*_units`` methods give ``(*br, m, ·, k)``
    tensors, :meth:`vectors` the same vectors one by one, ``(*br, m, k)`` each.
    """

    units: torch.Tensor
    projections: int
    head_tau: torch.Tensor
    tail_tau: torch.Tensor
    translation: torch.Tensor | None

    def rotation_units(self) -> torch.Tensor:
        n, dn = self.units.shape[-2], self.projections
        return self.units[..., dn : n - dn, :].flip(-2)

    def head_units(self) -> torch.Tensor:
        return self.units[..., self.units.shape[-2] - self.projections :, :].flip(-2)

    def tail_units(self) -> torch.Tensor:
        return self.units[..., : self.projections, :]

    def vectors(self) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
        """(rotation, head, tail) vectors in the order applied, each contiguous, from one copy and ``unbind``: its
        backward writes one gradient tensor, where indexing each vector would zero-fill a full-sized one per vector."""
        vectors = self.units.movedim(-2, 0).contiguous().unbind(0)  # contiguous vectors: fast elementwise ops
        n, dn = len(vectors), self.projections
        return (
            list(vectors[dn : n - dn])[::-1],
            list(vectors[n - dn :])[::-1],
            list(vectors[:dn]),
        )

    def operators(self) -> Operators:
        """The same operators with the rotation composed into ``(*br, m, k, k)`` matrices."""
        return Operators(
            rotation=reflection_chain(self.rotation_units()),
            head_units=self.head_units(),
            head_tau=self.head_tau,
            tail_units=self.tail_units(),
            tail_tau=self.tail_tau,
            translation=self.translation,
        )


class HousEInteraction(Interaction[torch.Tensor, tuple[torch.Tensor, ...], torch.Tensor]):
    r"""The HousE interaction (Li et al., ICML 2022, §3) with PyKEEN's broadcasting contract.

    .. math::

        f(h, r, t) = \gamma - \sum_b \| \mathrm{Rot}_r(P_{h,r} h + w_r)_b - (P_{t,r} t)_b \|_2

    Rot_r = Ref_{u_dn} ∘ ⋯ ∘ Ref_{u_{n−dn−1}} is a product of hn Householder reflections Ref_u(x) = x − 2(uᵀx)u,
    P_{h,r} = Proj_{u_{n−dn}} ∘ ⋯ ∘ Proj_{u_{n−1}} and P_{t,r} = Proj_{u_{dn−1}} ∘ ⋯ ∘ Proj_{u_0} are chains of
    Householder projections Proj_{u,τ}(x) = x − τ(uᵀx)u with τ = min(k_dir · |k_scale|, threshold), and w_r is the
    translation of the ``+`` variants (see the module docstring for which variant uses what).

    Entity representations have shape ``(m, k)``; the relation representations are listed, in order, by
    :attr:`relation_names` (shapes in the module docstring). ``forward`` takes ``h``: ``(*bh, m, k)``, ``r``: the
    relation tensors, each ``(*br, *shape)`` with the same ``br`` (a bare tensor for ``house-r``, whose only
    representation is the unit vectors), and ``t``: ``(*bt, m, k)``, where ``bh``, ``br`` and ``bt`` broadcast; it
    returns the scores, shape ``broadcast(bh, br, bt)``. The sizes hn and dn are read from the tensors.

    PyKEEN's 1-N patterns (``h``, ``r``: ``(B, 1, ...)``, ``t``: ``(1, E, m, k)``, as in ``score_t``, and the mirror
    image for ``score_h``) go through :func:`house_kge.scoring.distance_to_all`, as
    :meth:`house_kge.HousE.score_all` does, without forming a ``(B, E, m, k)`` tensor; every other pattern projects
    both sides with rank-one updates and rotates whichever side is cheaper (‖Rot a − b‖ = ‖a − Rotᵀ b‖): by hn
    rank-one reflections when there are at most k vectors per relation row (sLCWA's ``score_hrt``, one relation per
    triple), else by the composed k × k matrices.

    Args:
        variant: ``house-r``, ``house``, ``house-r+`` or ``house+``.
        threshold: the upper clamp of τ (unused by the ``-r`` variants).
        gamma: the margin γ, part of the score as in :class:`house_kge.HousE`.
        projections: dn; only whether it is 0 matters here (``house`` with dn = 0 has the layout of ``house-r``).
    """

    entity_shape: Sequence[str] = ("mk",)

    def __init__(
        self, variant: Variant = "house", threshold: float = 0.5, gamma: float = 12.0, projections: int = 1
    ) -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise InputError(f"unknown HousE variant {variant!r}; choose one of {', '.join(VARIANTS)}")
        if projections < 0:
            raise InputError(f"projections must be non-negative, got {projections}")
        self.variant = variant
        self.threshold = float(threshold)
        self.gamma = float(gamma)
        self.projected = variant in ("house", "house+") and projections > 0
        self.translated = variant.endswith("+")
        self.relation_names: tuple[str, ...] = _relation_layout(self.projected, self.translated)
        self.relation_shape = tuple(_SYMBOLIC_SHAPES[name] for name in self.relation_names)

    def extra_repr(self) -> str:
        return f"variant={self.variant!r}, threshold={self.threshold}, gamma={self.gamma}"

    def chains(self, r: torch.Tensor | Sequence[torch.Tensor]) -> Chains:
        """The relation batch ``br``'s normalised unit vectors by role, each chain in the order it is applied.

        Unit vectors are re-normalised here, as :meth:`house_kge.HousE.operators` does; see :class:`Chains`.
        """
        tensors = (r,) if isinstance(r, torch.Tensor) else tuple(r)
        if len(tensors) != len(self.relation_names):
            raise ValueError(
                f"{self.variant} expects {len(self.relation_names)} relation representations "
                f"({', '.join(self.relation_names)}), got {len(tensors)}"
            )
        named = dict(zip(self.relation_names, tensors, strict=True))
        units = nn.functional.normalize(named["units"], dim=-1)  # (*br, m, n, k)
        n = units.shape[-2]
        if self.projected:
            dn = named["k_dir_head"].shape[-1]
            tau_head = (named["k_dir_head"].unsqueeze(-2) * named["k_scale_head"].abs()).clamp(
                max=self.threshold
            )
            tau_tail = (named["k_dir_tail"].unsqueeze(-2) * named["k_scale_tail"].abs()).clamp(
                max=self.threshold
            )
        else:
            dn = 0
            tau_head = tau_tail = units.new_zeros(*units.shape[:-2], 0)
        if n < 2 * dn:
            raise ValueError(f"{n} unit vectors per block cannot hold 2 × {dn} projections")
        return Chains(
            units=units,
            projections=dn,
            head_tau=tau_head,
            tail_tau=tau_tail,
            translation=named.get("translation"),
        )

    def operators(self, r: torch.Tensor | Sequence[torch.Tensor]) -> Operators:
        """The relation operators with batch shape ``br``, as :meth:`house_kge.HousE.operators` builds them.

        Returns an :class:`house_kge.Operators` whose fields have shapes ``rotation`` ``(*br, m, k, k)``,
        ``head_units``/``tail_units`` ``(*br, m, dn, k)`` (in the order they are applied), ``head_tau``/``tail_tau``
        ``(*br, m, dn)`` and ``translation`` ``(*br, m, k)`` or None.
        """
        return self.chains(r).operators()

    def forward(
        self, h: torch.Tensor, r: torch.Tensor | Sequence[torch.Tensor], t: torch.Tensor
    ) -> torch.Tensor:
        """Scores ``broadcast(bh, br, bt)`` for ``h`` ``(*bh, m, k)``, relation tensors ``(*br, ...)``, ``t`` ``(*bt, m, k)``."""
        chains = self.chains(r)
        scores = self._one_to_all(h, chains, t)
        if scores is not None:
            return scores
        rotation, head, tail = chains.vectors()
        a = _project(h, head, chains.head_tau.unbind(-1))  # P_h h
        if chains.translation is not None:
            a = a + chains.translation
        b = _project(t, tail, chains.tail_tau.unbind(-1))  # P_t t
        relation_blocks = chains.units.shape[:-2]  # (*br, m)
        rotate_a = _broadcast_numel(a.shape[:-1], relation_blocks) <= _broadcast_numel(
            b.shape[:-1], relation_blocks
        )
        rotated = _broadcast_numel(a.shape[:-1] if rotate_a else b.shape[:-1], relation_blocks)
        if rotated <= a.shape[-1] * math.prod(relation_blocks):
            # about one vector per relation row (PyKEEN's score_hrt): hn rank-one reflections per vector cost
            # less than composing a k × k matrix per row
            if rotate_a:
                for u in rotation:
                    a = householder_reflect(a, u)
            else:  # Rotᵀ b: the same reflections in reverse order
                for u in reversed(rotation):
                    b = householder_reflect(b, u)
            difference = a - b
        elif rotate_a:
            difference = torch.einsum("...ij,...j->...i", reflection_chain(chains.rotation_units()), a) - b
        else:
            difference = a - torch.einsum("...ji,...j->...i", reflection_chain(chains.rotation_units()), b)
        return self.gamma - torch.linalg.vector_norm(difference, dim=-1).sum(-1)

    def _one_to_all(self, h: torch.Tensor, chains: Chains, t: torch.Tensor) -> torch.Tensor | None:
        """``(B, E)`` scores through :func:`distance_to_all` for PyKEEN's 1-N patterns, else None.

        Tail prediction: ``h`` ``(B, 1, m, k)``, relations ``(B, 1, ...)`` (or ``(1, 1, ...)``), ``t`` ``(1, E, m, k)``;
        head prediction is the mirror image (``h`` ``(1, E, m, k)``, ``t`` ``(B, 1, m, k)``).
        """
        if h.ndim != 4 or t.ndim != 4:
            return None
        if t.shape[0] == 1 and h.shape[1] == 1:
            direction, known, candidates = "tail", h[:, 0], t[0]
        elif h.shape[0] == 1 and t.shape[1] == 1:
            direction, known, candidates = "head", t[:, 0], h[0]
        else:
            return None
        batch = known.shape[0]
        fields = {
            "rotation_units": (chains.rotation_units(), 3),
            "head_units": (chains.head_units(), 3),
            "head_tau": (chains.head_tau, 2),
            "tail_units": (chains.tail_units(), 3),
            "tail_tau": (chains.tail_tau, 2),
        }
        if chains.translation is not None:
            fields["translation"] = (chains.translation, 2)
        selected: dict[str, torch.Tensor] = {}
        for name, (tensor, trailing) in fields.items():
            if tensor.ndim != 2 + trailing or tensor.shape[1] != 1 or tensor.shape[0] not in (1, batch):
                return None
            selected[name] = tensor.expand(batch, *tensor.shape[1:])[:, 0]
        rotation, translation = reflection_chain(selected["rotation_units"]), selected.get("translation")
        if direction == "tail":  # x = Rot(P_h h + w), candidates projected by P_t
            x = torch.einsum(
                "bmij,bmj->bmi", projection_chain(selected["head_units"], selected["head_tau"]), known
            )
            if translation is not None:
                x = x + translation
            x = torch.einsum("bmij,bmj->bmi", rotation, x)
            units, tau = selected["tail_units"], selected["tail_tau"]
        else:  # x = Rotᵀ(P_t t) − w, candidates projected by P_h
            x = torch.einsum(
                "bmij,bmj->bmi", projection_chain(selected["tail_units"], selected["tail_tau"]), known
            )
            x = torch.einsum("bmji,bmj->bmi", rotation, x)
            if translation is not None:
                x = x - translation
            units, tau = selected["head_units"], selected["head_tau"]
        return self.gamma - distance_to_all(x, candidates, units, tau)


def _uniform(bound_low: float, bound_high: float) -> dict[str, Any]:
    return dict(initializer=nn.init.uniform_, initializer_kwargs=dict(a=bound_low, b=bound_high))


def _weight(representation: Representation) -> nn.Parameter:
    """The ``(max_id, prod(shape))`` table behind a PyKEEN :class:`~pykeen.nn.representation.Embedding`."""
    if not isinstance(representation, Embedding):
        raise TypeError(f"expected a pykeen Embedding, got {type(representation).__name__}")
    return representation._embeddings.weight


class HousEModel(ERModel[torch.Tensor, tuple[torch.Tensor, ...], torch.Tensor]):
    """HousE (and its variants) as a PyKEEN model: :class:`HousEInteraction` on PyKEEN embeddings.

    Parameters and initialisation follow :class:`house_kge.HousE` (the official code): entities ``(m, k)`` and unit
    vectors ``(m, n, k)`` U(−ρ, ρ) with ρ = (γ + 2)/(m √k); k_dir_head ``(dn,)`` U(−0.01, 0.01) and k_dir_tail :=
    −k_dir_head (re-applied by every ``reset_parameters_``), then trained independently; k_scale ``(m, dn)`` U(−1, 1);
    translation ``(m, k)`` U(−ρ, ρ). The sizes are validated by :class:`house_kge.HousEConfig` (kept as
    :attr:`house_config`), so hn defaults to k (even k) or k − 1 (odd k), and dim must be a multiple of k.

    The default loss is PyKEEN's self-adversarial :class:`~pykeen.losses.NSSALoss` with margin 0 and temperature 1:
    the scores already contain γ, so this is RotatE's loss (spec §3 "Loss") without the subsampling weights.

    Args:
        triples_factory: the PyKEEN triples factory (or :class:`~pykeen.triples.KGInfo`).
        dim: d, the entity dimension; a multiple of ``k``.
        k: the block size.
        variant: ``house-r``, ``house``, ``house-r+`` or ``house+``.
        reflections: hn; None for the official default.
        projections: dn, projections per side (``house`` and ``house+`` only).
        threshold: the upper clamp of τ.
        gamma: the margin γ (part of the score).
        dtype: the parameters' dtype (PyKEEN's default dtype when None).
        kwargs: passed on to :class:`pykeen.models.ERModel` (``loss``, ``random_seed``, ...).
    ---
    citation:
        author: Li
        year: 2022
        link: https://arxiv.org/abs/2202.07919
        arxiv: 2202.07919
        github: anrep/HousE
    """

    hpo_default: ClassVar[Mapping[str, Any]] = dict(
        dim=dict(type=int, low=16, high=256, q=16),
        gamma=dict(type=float, low=1.0, high=24.0),
    )
    loss_default = NSSALoss
    loss_default_kwargs: ClassVar[Mapping[str, Any] | None] = dict(
        margin=0.0, adversarial_temperature=1.0, reduction="mean"
    )

    interaction: HousEInteraction

    def __init__(
        self,
        *,
        triples_factory: KGInfo,
        dim: int = 400,
        k: int = 8,
        variant: Variant = "house",
        reflections: int | None = None,
        projections: int = 1,
        threshold: float = 0.5,
        gamma: float = 12.0,
        dtype: torch.dtype | None = None,
        **kwargs: Any,
    ) -> None:
        config = HousEConfig(
            num_entities=triples_factory.num_entities,
            num_relations=triples_factory.num_relations,
            dim=dim,
            k=k,
            variant=variant,
            reflections=reflections,
            projections=projections,
            threshold=threshold,
            gamma=gamma,
        )
        m, dn = config.blocks, config.projection_size
        n = config.rotation_size + 2 * dn
        bound = (config.gamma + 2.0) / (m * math.sqrt(k))  # ρ = (γ + ε)/(m √k), ε = 2
        interaction = HousEInteraction(variant=variant, threshold=threshold, gamma=gamma, projections=dn)
        relation_kwargs = {
            "units": dict(shape=(m, n, k), **_uniform(-bound, bound)),
            "k_dir_head": dict(shape=(dn,), **_uniform(-0.01, 0.01)),
            "k_dir_tail": dict(shape=(dn,), **_uniform(-0.01, 0.01)),  # replaced by −k_dir_head on reset
            "k_scale_head": dict(shape=(m, dn), **_uniform(-1.0, 1.0)),
            "k_scale_tail": dict(shape=(m, dn), **_uniform(-1.0, 1.0)),
            "translation": dict(shape=(m, k), **_uniform(-bound, bound)),
        }
        super().__init__(
            triples_factory=triples_factory,
            interaction=interaction,
            entity_representations_kwargs=dict(shape=(m, k), dtype=dtype, **_uniform(-bound, bound)),
            relation_representations_kwargs=[
                dict(relation_kwargs[name], dtype=dtype) for name in interaction.relation_names
            ],
            **kwargs,
        )
        self.house_config = config

    def relation_weight(self, name: str) -> nn.Parameter:
        """The ``(num_relations, prod(shape))`` table of the relation representation ``name`` (module docstring)."""
        return _weight(self.relation_representations[self.interaction.relation_names.index(name)])

    def entity_weight(self) -> nn.Parameter:
        """The ``(num_entities, m·k)`` entity table."""
        return _weight(self.entity_representations[0])

    def _reset_parameters_(self) -> None:
        super()._reset_parameters_()
        if self.interaction.projected:  # k_dir_tail := −k_dir_head at initialisation (official code)
            with torch.no_grad():
                self.relation_weight("k_dir_tail").copy_(-self.relation_weight("k_dir_head"))


def _pairs(pykeen_model: HousEModel, house: HousE) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(PyKEEN table, house_kge parameter) pairs holding the same numbers (reshaped)."""
    pairs = [(pykeen_model.entity_weight(), house.entity)]
    for name in pykeen_model.interaction.relation_names:
        parameter = getattr(house, name)
        if parameter is None or parameter.numel() == 0:
            raise RuntimeError(f"house_kge.HousE has no {name} to match PyKEEN's")  # unreachable: same config
        pairs.append((pykeen_model.relation_weight(name), parameter))
    return pairs


def to_house(model: HousEModel) -> HousE:
    """A :class:`house_kge.HousE` with the weights (copied) of a PyKEEN :class:`HousEModel`.

    The result has the model's dtype and device, and scores every triple as the PyKEEN model does. Models trained with
    inverse triples (``create_inverse_triples=True``) are refused: PyKEEN interleaves their relation ids, which
    house-kge does not know about.
    """
    if not isinstance(model, HousEModel):
        raise TypeError(f"to_house expects a HousEModel, got {type(model).__name__}")
    if model.use_inverse_triples:
        raise InputError(
            "to_house cannot convert a model trained with inverse triples (create_inverse_triples=True)"
        )
    reference = model.entity_weight()
    with torch.random.fork_rng(devices=[]):  # HousE's own initialisation is overwritten: leave the RNG alone
        house = HousE(model.house_config)
    house = house.to(device=reference.device, dtype=reference.dtype)
    with torch.no_grad():
        for table, parameter in _pairs(model, house):
            parameter.copy_(table.reshape(parameter.shape))
    return house


def from_house(house: HousE, triples_factory: KGInfo | None = None, **kwargs: Any) -> HousEModel:
    """A PyKEEN :class:`HousEModel` with the weights (copied) of a :class:`house_kge.HousE`.

    Args:
        house: the house-kge model; the result gets its config, dtype and device.
        triples_factory: PyKEEN's view of the graph (e.g. the dataset's training factory, for its labels); by default
            a bare :class:`~pykeen.triples.KGInfo` with the model's entity and relation counts. It must not use inverse
            triples, and its counts must match the model's.
        kwargs: passed on to :class:`HousEModel` (``loss``, ``loss_kwargs``, ...).
    """
    config = house.config
    if triples_factory is None:
        triples_factory = KGInfo(
            num_entities=config.num_entities,
            num_relations=config.num_relations,
            create_inverse_triples=False,
        )
    if triples_factory.create_inverse_triples:
        raise InputError("from_house needs a triples factory without inverse triples")
    counts = (triples_factory.num_entities, triples_factory.num_relations)
    if counts != (config.num_entities, config.num_relations):
        raise InputError(
            f"the triples factory has {counts[0]} entities and {counts[1]} relations, the HousE model "
            f"{config.num_entities} and {config.num_relations}"
        )
    reference = house.entity
    kwargs.setdefault("random_seed", NoRandomSeedNecessary)  # the weights are overwritten below
    with torch.random.fork_rng(devices=[]):
        model = HousEModel(
            triples_factory=triples_factory,
            dim=config.dim,
            k=config.k,
            variant=config.variant,
            reflections=config.reflections,
            projections=config.projections,
            threshold=config.threshold,
            gamma=config.gamma,
            dtype=reference.dtype,
            **kwargs,
        )
    model = model.to(reference.device)
    with torch.no_grad():
        for table, parameter in _pairs(model, house):
            table.copy_(parameter.reshape(table.shape))
    return model
