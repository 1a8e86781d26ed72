"""HousE variants and RotatE against independent references of the official algorithms."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from pathlib import Path

import pytest
import torch
from house_kge import VARIANTS, HousE, HousEConfig, RotatE, RotatEConfig

from papers_common import InputError

F64 = torch.float64
OFFICIAL_NAMES = {"house-r": "HousE_r", "house": "HousE", "house-r+": "HousE_r_plus", "house+": "HousE_plus"}


def official_scores(model: HousE, fixed: torch.Tensor, candidates: torch.Tensor, mode: str) -> torch.Tensor:
    """The official KGEModel forward in 'tail-batch' / 'head-batch' mode, one reflection or projection at a time.

    ``fixed``: ``(B, 3)`` triples (their head is kept in tail-batch mode, their tail in head-batch mode);
    ``candidates``: ``(B, N)`` entity ids. The official relation embedding ``(R, m, n·k)`` chunked into n vectors
    of size k is ``model.units`` ``(R, m, n, k)``; vector i is ``units[..., i, :]``.
    """
    config = model.config
    n = model.units.shape[2]
    dn = config.projection_size if config.variant in ("house", "house+") else 0
    relations = fixed[:, 1]
    # norm_embedding: every chunk normalised; k = k_dir·|k_scale|, entries above the threshold set to it
    vectors = torch.nn.functional.normalize(model.units, p=2, dim=-1)[relations].unsqueeze(1)  # (B,1,m,n,k)
    k_head = model.k_dir_head * model.k_scale_head.abs()
    k_head = torch.where(k_head > config.threshold, torch.full_like(k_head, config.threshold), k_head)
    k_tail = model.k_dir_tail * model.k_scale_tail.abs()
    k_tail = torch.where(k_tail > config.threshold, torch.full_like(k_tail, config.threshold), k_tail)
    k_head, k_tail = k_head[relations].unsqueeze(1), k_tail[relations].unsqueeze(1)  # (B, 1, m, dn)
    weight = model.translation[relations].unsqueeze(1) if model.translation is not None else None

    def step(x: torch.Tensor, i: int, tau: torch.Tensor | float) -> torch.Tensor:
        u = vectors[:, :, :, i]
        return x - tau * (u * x).sum(dim=-1, keepdim=True) * u

    translated = config.variant.endswith("+")
    if mode == "tail-batch":
        head = model.entity[fixed[:, 0]].unsqueeze(1)
        tail = model.entity[candidates]
        for i in range(dn):
            head = step(head, n - 1 - i, k_head[:, :, :, i].unsqueeze(3))
        if translated:
            head = head + weight
        for i in range(dn, n - dn):
            head = step(head, n - 1 - i, 2.0)
        for i in range(dn):
            tail = step(tail, i, k_tail[:, :, :, i].unsqueeze(3))
        difference = head - tail
    else:
        tail = model.entity[fixed[:, 2]].unsqueeze(1)
        head = model.entity[candidates]
        for i in range(dn):
            tail = step(tail, i, k_tail[:, :, :, i].unsqueeze(3))
        for i in range(dn, n - dn):
            tail = step(tail, i, 2.0)
        if translated:
            tail = tail - weight
        for i in range(dn):
            head = step(head, n - 1 - i, k_head[:, :, :, i].unsqueeze(3))
        difference = tail - head
    return config.gamma - difference.norm(p=2, dim=3).sum(dim=2)


def randomised_house(variant: str, k: int = 4, projections: int = 2, seed: int = 0, **kwargs) -> HousE:
    """A float64 HousE whose parameters are spread out: τ values negative, small, and above the threshold."""
    torch.manual_seed(seed)
    config = HousEConfig(
        num_entities=11,
        num_relations=4,
        dim=3 * k,
        k=k,
        variant=variant,
        projections=projections,
        threshold=0.6,
        gamma=5.0,
        **kwargs,
    )
    model = HousE(config).double()
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator, dtype=F64))
        model.k_dir_head.mul_(2.0)
        model.k_dir_tail.mul_(2.0)
    return model


def random_queries(model, batch: int = 6, count: int = 5, seed: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    e, r = model.config.num_entities, model.config.num_relations
    triples = torch.stack(
        [
            torch.randint(e, (batch,), generator=generator),
            torch.randint(r, (batch,), generator=generator),
            torch.randint(e, (batch,), generator=generator),
        ],
        dim=1,
    )
    return triples, torch.randint(e, (batch, count), generator=generator)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("k", [4, 5])
@pytest.mark.parametrize("direction", ["tail", "head"])
def test_scores_equal_the_official_algorithm(variant: str, k: int, direction: str) -> None:
    model = randomised_house(variant, k=k)
    if model.config.projection_size:  # the threshold clamp is exercised, and τ takes negative values
        raw = model.k_dir_head * model.k_scale_head.abs()
        assert (raw > model.config.threshold).any()
        assert (raw < 0).any()
    triples, candidates = random_queries(model)
    expected = official_scores(model, triples, candidates, f"{direction}-batch")
    known = triples[:, 0] if direction == "tail" else triples[:, 2]
    with torch.no_grad():
        scores = model.score_candidates(known, triples[:, 1], candidates, direction)
        every = model.score_all(known, triples[:, 1], direction)
    torch.testing.assert_close(scores, expected, rtol=0, atol=1e-10)
    all_ids = torch.arange(model.config.num_entities).expand(len(triples), -1)
    torch.testing.assert_close(
        every, official_scores(model, triples, all_ids, f"{direction}-batch"), rtol=0, atol=1e-10
    )


@pytest.mark.parametrize("variant", VARIANTS)
def test_head_and_tail_batch_agree_with_score_triples(variant: str) -> None:
    model = randomised_house(variant, k=6, projections=1, seed=4)
    triples, _ = random_queries(model, batch=10)
    with torch.no_grad():
        single = model.score_triples(triples)
        tail = model.score_candidates(triples[:, 0], triples[:, 1], triples[:, 2:3], "tail").squeeze(1)
        head = model.score_candidates(triples[:, 2], triples[:, 1], triples[:, :1], "head").squeeze(1)
        tail_all = model.score_all(triples[:, 0], triples[:, 1], "tail").gather(1, triples[:, 2:3]).squeeze(1)
        head_all = model.score_all(triples[:, 2], triples[:, 1], "head").gather(1, triples[:, :1]).squeeze(1)
    assert single.shape == (10,)
    for other in (tail, head, tail_all, head_all):
        torch.testing.assert_close(other, single, rtol=0, atol=1e-10)
    torch.testing.assert_close(single, official_scores(model, triples, triples[:, 2:3], "tail-batch")[:, 0])


def test_unit_vectors_are_renormalised_in_every_forward() -> None:
    model = randomised_house("house+", seed=5)
    triples, candidates = random_queries(model)
    with torch.no_grad():
        before = model.score_candidates(triples[:, 0], triples[:, 1], candidates, "tail")
        model.units.mul_(7.5)
        after = model.score_candidates(triples[:, 0], triples[:, 1], candidates, "tail")
    torch.testing.assert_close(after, before, rtol=0, atol=1e-12)


def complex_rotate_scores(model: RotatE, triples: torch.Tensor, candidates: torch.Tensor, direction: str):
    """RotatE's score γ − Σ |h·e^{iθ} − t| with complex numbers; θ = r / ((γ + 2)/d / π) as in the toolkit."""
    entity = torch.complex(model.entity[..., 0], model.entity[..., 1])
    embedding_range = (model.config.gamma + 2.0) / model.config.dim
    phase = model.relation[triples[:, 1]] / (embedding_range / math.pi)
    rotation = torch.polar(torch.ones_like(phase), phase).unsqueeze(1)  # (B, 1, d)
    if direction == "tail":
        difference = entity[triples[:, 0]].unsqueeze(1) * rotation - entity[candidates]
    else:
        difference = entity[triples[:, 2]].unsqueeze(1) * rotation.conj() - entity[candidates]
    return model.config.gamma - difference.abs().sum(-1)


@pytest.mark.parametrize("direction", ["tail", "head"])
def test_rotate_equals_complex_rotation(direction: str) -> None:
    torch.manual_seed(6)
    model = RotatE(RotatEConfig(num_entities=9, num_relations=3, dim=7, gamma=4.0)).double()
    triples, candidates = random_queries(model, seed=7)
    known = triples[:, 0] if direction == "tail" else triples[:, 2]
    with torch.no_grad():
        scores = model.score_candidates(known, triples[:, 1], candidates, direction)
        every = model.score_all(known, triples[:, 1], direction)
    torch.testing.assert_close(
        scores, complex_rotate_scores(model, triples, candidates, direction), rtol=0, atol=1e-12
    )
    all_ids = torch.arange(9).expand(len(triples), -1)
    torch.testing.assert_close(
        every, complex_rotate_scores(model, triples, all_ids, direction), rtol=0, atol=1e-10
    )


def house_from_rotate(rotate: RotatE, order: str = "official") -> HousE:
    """HousE-r with k = 2 and two reflections carrying RotatE's parameters.

    Rot = Ref_{u_0} ∘ Ref_{u_1} (the last stored vector is applied first). Two reflections of the plane whose
    normals make the angles φ_0 and φ_1 rotate by 2(φ_0 − φ_1), so u_0 = (cos θ/2, sin θ/2), u_1 = (1, 0)
    rotates by θ.
    """
    config = rotate.config
    house = HousE(
        HousEConfig(
            config.num_entities,
            config.num_relations,
            dim=2 * config.dim,
            k=2,
            variant="house-r",
            reflections=2,
            gamma=config.gamma,
        )
    ).double()
    phase = rotate.relation / ((config.gamma + 2.0) / config.dim / math.pi)  # (R, m)
    half = torch.stack([torch.cos(phase / 2), torch.sin(phase / 2)], dim=-1)
    axis = torch.stack([torch.ones_like(phase), torch.zeros_like(phase)], dim=-1)
    vectors = [half, axis] if order == "official" else [axis, half]
    with torch.no_grad():
        house.entity.copy_(rotate.entity)
        house.units.copy_(torch.stack(vectors, dim=2))
    return house


@pytest.mark.parametrize("direction", ["tail", "head"])
def test_house_with_k_two_and_one_rotation_equals_rotate(direction: str) -> None:
    torch.manual_seed(8)
    rotate = RotatE(RotatEConfig(num_entities=12, num_relations=4, dim=5, gamma=3.0)).double()
    with torch.no_grad():  # phases all around the circle, not only the initial ±π
        rotate.relation.uniform_(-3 * rotate.bound, 3 * rotate.bound)
    house = house_from_rotate(rotate)
    assert house.config.rotation_size == 2
    triples, candidates = random_queries(rotate, batch=8, seed=9)
    known = triples[:, 0] if direction == "tail" else triples[:, 2]
    with torch.no_grad():
        expected = rotate.score_candidates(known, triples[:, 1], candidates, direction)
        torch.testing.assert_close(
            house.score_candidates(known, triples[:, 1], candidates, direction), expected, rtol=0, atol=1e-12
        )
        torch.testing.assert_close(
            house.score_all(known, triples[:, 1], direction),
            rotate.score_all(known, triples[:, 1], direction),
            rtol=0,
            atol=1e-10,
        )
        torch.testing.assert_close(
            house.operators(torch.arange(4)).rotation, rotate.operators(torch.arange(4)).rotation
        )
        # the other storage order rotates by −θ: a different model
        swapped = house_from_rotate(rotate, order="swapped")
        difference = swapped.score_candidates(known, triples[:, 1], candidates, direction) - expected
        assert difference.abs().max().item() > 1e-3


@pytest.mark.parametrize(("k", "expected"), [(2, 2), (3, 2), (4, 4), (5, 4), (8, 8), (13, 12), (20, 20)])
def test_default_reflections_are_k_for_even_and_k_minus_one_for_odd_k(k: int, expected: int) -> None:
    config = HousEConfig(num_entities=3, num_relations=2, dim=2 * k, k=k, variant="house-r")
    assert config.rotation_size == expected
    assert HousE(config).units.shape == (2, 2, expected, k)
    assert HousEConfig(3, 2, dim=2 * k, k=k, reflections=3).rotation_size == 3


@pytest.mark.parametrize(
    ("variant", "vectors"), [("house-r", 4), ("house", 8), ("house-r+", 4), ("house+", 8)]
)
def test_parameter_shapes(variant: str, vectors: int) -> None:
    model = HousE(HousEConfig(num_entities=7, num_relations=3, dim=12, k=4, variant=variant, projections=2))
    dn = 2 if variant in ("house", "house+") else 0
    assert model.entity.shape == (7, 3, 4)
    assert model.units.shape == (3, 3, vectors, 4)
    assert model.k_dir_head.shape == (3, 1, dn)
    assert model.k_scale_tail.shape == (3, 3, dn)
    assert (model.translation is not None) == variant.endswith("+")
    if model.translation is not None:
        assert model.translation.shape == (3, 3, 4)


def test_dimension_not_divisible_by_k_is_an_input_error() -> None:
    with pytest.raises(InputError, match=re.escape("dimension 10")):
        HousEConfig(num_entities=5, num_relations=2, dim=10, k=4)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_entities": 0}, "num_entities"),
        ({"num_relations": 0}, "num_relations"),
        ({"k": 0}, "k must be at least 1"),
        ({"variant": "transe"}, "unknown HousE variant 'transe'"),
        ({"reflections": -1}, "reflections"),
        ({"projections": -1}, "projections"),
    ],
)
def test_bad_house_config_is_an_input_error(kwargs: dict, message: str) -> None:
    settings = {"num_entities": 5, "num_relations": 2, "dim": 8, "k": 4, **kwargs}
    with pytest.raises(InputError, match=re.escape(message)):
        HousEConfig(**settings)


def test_bad_rotate_config_is_an_input_error() -> None:
    with pytest.raises(InputError, match="dim"):
        RotatEConfig(num_entities=5, num_relations=2, dim=0)


def test_initialisation_ranges() -> None:
    torch.manual_seed(10)
    gamma, m, k = 6.0, 5, 4
    model = HousE(
        HousEConfig(
            num_entities=300, num_relations=40, dim=m * k, k=k, variant="house+", projections=2, gamma=gamma
        )
    )
    bound = (gamma + 2.0) / (m * math.sqrt(k))
    for table in (model.entity, model.units, model.translation):
        assert table.abs().max().item() <= bound
        assert table.abs().max().item() > 0.95 * bound  # uniform over the whole range, not a smaller one
    assert model.k_dir_head.abs().max().item() <= 0.01
    assert model.k_dir_head.abs().max().item() > 0.009
    torch.testing.assert_close(model.k_dir_tail, -model.k_dir_head, rtol=0, atol=0)
    for scale in (model.k_scale_head, model.k_scale_tail):
        assert scale.abs().max().item() <= 1.0
        assert scale.abs().max().item() > 0.95
    assert not torch.equal(model.k_scale_head, model.k_scale_tail)
    # at initialisation |τ| ≤ 0.01 < threshold: the projections start close to the identity
    ops = model.operators(torch.arange(40))
    assert ops.head_tau.abs().max().item() <= 0.01


def test_rotate_initialisation_ranges() -> None:
    torch.manual_seed(11)
    model = RotatE(RotatEConfig(num_entities=200, num_relations=30, dim=10, gamma=8.0))
    bound = (8.0 + 2.0) / 10
    assert model.entity.shape == (200, 10, 2)
    for table in (model.entity, model.relation):
        assert table.abs().max().item() <= bound
        assert table.abs().max().item() > 0.95 * bound


@pytest.mark.parametrize("variant", VARIANTS)
def test_save_and_load_pretrained_round_trip(variant: str, tmp_path: Path) -> None:
    torch.manual_seed(12)
    model = HousE(HousEConfig(num_entities=9, num_relations=3, dim=12, k=3, variant=variant, projections=1))
    with torch.no_grad():
        model.k_dir_head.uniform_(-1, 1)  # trained values differ from the initial ones
    assert model.save_pretrained(tmp_path / "model") == tmp_path / "model"
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == ["config.json", "model.safetensors"]
    stored = json.loads((tmp_path / "model" / "config.json").read_text(encoding="utf-8"))
    assert stored["architectures"] == ["HousE"]
    assert stored["variant"] == variant
    loaded = HousE.from_pretrained(tmp_path / "model")
    assert loaded.config == model.config
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name
    model.eval()
    loaded.eval()
    triples = torch.tensor([[0, 1, 2], [3, 2, 8], [5, 0, 5]])
    with torch.no_grad():
        assert torch.equal(loaded.score_triples(triples), model.score_triples(triples))
        assert torch.equal(
            loaded.score_all(triples[:, 2], triples[:, 1], "head"),
            model.score_all(triples[:, 2], triples[:, 1], "head"),
        )


def test_rotate_save_and_load_pretrained_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(13)
    model = RotatE(RotatEConfig(num_entities=6, num_relations=2, dim=4, gamma=2.0))
    model.save_pretrained(tmp_path / "rotate")
    assert sorted(p.name for p in (tmp_path / "rotate").iterdir()) == ["config.json", "model.safetensors"]
    loaded = RotatE.from_pretrained(tmp_path / "rotate" / "config.json")
    assert loaded.config == model.config
    model.eval()
    loaded.eval()
    triples = torch.tensor([[0, 1, 2], [3, 0, 5]])
    with torch.no_grad():
        assert torch.equal(loaded.score_triples(triples), model.score_triples(triples))
        assert torch.equal(loaded.score_all(triples[:, 0], triples[:, 1], "tail"), model.score_all(
            triples[:, 0], triples[:, 1], "tail"))  # fmt: skip
    with pytest.raises(InputError, match="holds a RotatE model, not a HousE"):
        HousE.from_pretrained(tmp_path / "rotate")


@pytest.mark.parametrize("name", ["house", "rotate"])
def test_training_checkpoints_still_load_with_from_pretrained(name: str, tmp_path: Path) -> None:
    """The checkpoint layout of ``save_checkpoint`` (step-*.json + .safetensors, the model config under "model"),
    which ``save_pretrained`` also wrote before 0.2.0 and training still writes."""
    from papers_common import save_checkpoint

    torch.manual_seed(17)
    if name == "house":
        model: HousE | RotatE = HousE(
            HousEConfig(num_entities=5, num_relations=2, dim=8, k=4, variant="house+")
        )
    else:
        model = RotatE(RotatEConfig(num_entities=5, num_relations=2, dim=3))
    cls = type(model)
    config = {"model": dataclasses.asdict(model.config), "train": {"steps": 3}}
    sidecar = save_checkpoint(tmp_path / "checkpoints", 3, model, config=config, rng=False)
    for path in (tmp_path / "checkpoints", sidecar, sidecar.with_suffix(".safetensors")):
        loaded = cls.from_pretrained(path)
        assert loaded.config == model.config
        for key, tensor in model.state_dict().items():
            assert torch.equal(loaded.state_dict()[key], tensor), (path, key)


@pytest.mark.parametrize(
    ("k", "reflections"), [(2, None), (3, None), (4, None), (5, None), (6, 2), (7, None)]
)
def test_rotation_matrices_are_orthogonal_with_determinant_one(k: int, reflections: int | None) -> None:
    torch.manual_seed(14 + k)
    model = HousE(
        HousEConfig(num_entities=4, num_relations=5, dim=3 * k, k=k, variant="house", reflections=reflections)
    ).double()
    rotation = model.operators(torch.arange(5)).rotation
    assert rotation.shape == (5, 3, k, k)
    eye = torch.eye(k, dtype=F64).expand_as(rotation)
    torch.testing.assert_close(rotation.transpose(-1, -2) @ rotation, eye, rtol=0, atol=1e-12)
    torch.testing.assert_close(torch.linalg.det(rotation), torch.ones(5, 3, dtype=F64), rtol=0, atol=1e-12)


def test_projection_tau_is_clamped_from_above_only() -> None:
    model = randomised_house("house", k=4, projections=3, seed=15)
    ops = model.operators(torch.arange(4))
    threshold = model.config.threshold
    raw_head = (model.k_dir_head * model.k_scale_head.abs())[torch.arange(4)]
    torch.testing.assert_close(ops.head_tau, raw_head.clamp(max=threshold), rtol=0, atol=0)
    assert ops.head_tau.max().item() == threshold
    assert ops.head_tau.min().item() < -threshold  # no lower clamp


def test_entity_norm_is_the_official_regulariser() -> None:
    """mean over entities of ‖E_e‖_F, computed as the toolkit does: a norm over k, then over blocks."""
    torch.manual_seed(16)
    model = HousE(HousEConfig(num_entities=7, num_relations=2, dim=12, k=3)).double()
    expected = model.entity.norm(p=2, dim=2).norm(p=2, dim=1).mean()
    torch.testing.assert_close(model.entity_norm(), expected, rtol=1e-14, atol=0)
    by_hand = sum(math.sqrt(sum(v * v for v in row)) for row in model.entity.flatten(1).tolist()) / 7
    assert model.entity_norm().item() == pytest.approx(by_hand, rel=1e-12)
