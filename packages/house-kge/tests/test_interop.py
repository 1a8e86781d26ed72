"""house_kge.interop: the PyKEEN interaction and model score exactly as house_kge.HousE, in every broadcasting
pattern PyKEEN uses, and train in pykeen.pipeline; weights convert both ways.

PyKEEN is a test dependency of this module (the package's ``pykeen`` extra).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

# PyKEEN creates and fixes its data folder (PYKEEN_HOME, default ~/.data/pykeen) when it is first imported, so the
# variable must be set before the imports below.
os.environ.setdefault("PYKEEN_HOME", str(Path(tempfile.gettempdir()) / "house-kge-tests-pykeen-home"))

import pytest
import torch
from house_kge import VARIANTS, HousE, HousEConfig
from house_kge.interop import HousEInteraction, HousEModel, from_house, to_house
from pykeen.constants import PYKEEN_HOME
from pykeen.datasets import get_dataset
from pykeen.pipeline import pipeline
from pykeen.triples import KGInfo

from papers_common import InputError, preserved_global_state

F64 = torch.float64
NUM_ENTITIES, NUM_RELATIONS = 7, 3
# (k, projections): an even block with two projections per side, and an odd block (hn = k − 1 = 2) with one
SHAPES = [(4, 2), (3, 1)]
CASES = [(variant, k, dn) for variant in VARIANTS for k, dn in SHAPES]
CASE_IDS = [f"{variant}-k{k}-dn{dn}" for variant, k, dn in CASES]


def random_house(variant: str, k: int, projections: int, seed: int = 0) -> HousE:
    """A float64 HousE whose every parameter is random and O(1): τ = k_dir·|k_scale| is then often negative and
    often clamped at the threshold, unit vectors are far from normalised, translations are large."""
    config = HousEConfig(
        num_entities=NUM_ENTITIES,
        num_relations=NUM_RELATIONS,
        dim=3 * k,
        k=k,
        variant=variant,
        projections=projections,
        threshold=0.5,
        gamma=6.0,
    )
    with torch.random.fork_rng(devices=[]):
        house = HousE(config).to(F64)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in house.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator, dtype=F64))
    return house


def all_triples() -> torch.Tensor:
    """Every (h, r, t), ``(E·R·E, 3)`` in h-major order."""
    h, r, t = torch.meshgrid(
        torch.arange(NUM_ENTITIES), torch.arange(NUM_RELATIONS), torch.arange(NUM_ENTITIES), indexing="ij"
    )
    return torch.stack([h.flatten(), r.flatten(), t.flatten()], dim=1)


def reference_scores(house: HousE) -> torch.Tensor:
    """house_kge's f(h, r, t) for every triple, ``(E, R, E)``."""
    return house.score_triples(all_triples()).reshape(NUM_ENTITIES, NUM_RELATIONS, NUM_ENTITIES)


def representations(model: HousEModel) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """All entity representations ``(E, m, k)`` and all relation representations, each ``(R, *shape)``."""
    entities = model.entity_representations[0](indices=None)
    relations = [representation(indices=None) for representation in model.relation_representations]
    return entities, relations


@pytest.mark.parametrize(("variant", "k", "dn"), CASES, ids=CASE_IDS)
def test_operators_follow_house_conventions(variant: str, k: int, dn: int) -> None:
    """Same rotation, projection chains (order of unit vectors, τ) and translation as HousE.operators."""
    house = random_house(variant, k, dn)
    model = from_house(house)
    _, relations = representations(model)
    ops = model.interaction.operators(relations)
    expected = house.operators(torch.arange(NUM_RELATIONS))
    for name in ("rotation", "head_units", "head_tau", "tail_units", "tail_tau"):
        torch.testing.assert_close(getattr(ops, name), getattr(expected, name), rtol=0, atol=1e-14)
    if expected.translation is None:
        assert ops.translation is None
    else:
        torch.testing.assert_close(ops.translation, expected.translation, rtol=0, atol=0)
    if variant in ("house", "house+"):  # the random parameters exercise both ends of τ
        tau = torch.cat([ops.head_tau, ops.tail_tau])
        assert (tau == 0.5).any()
        assert (tau < 0).any()
        assert ops.head_units.shape[-2] == dn


@pytest.mark.parametrize(("variant", "k", "dn"), CASES, ids=CASE_IDS)
def test_score_hrt_equals_score_triples(variant: str, k: int, dn: int) -> None:
    house = random_house(variant, k, dn)
    model = from_house(house)
    triples = all_triples()
    scores = model.score_hrt(triples)
    assert scores.shape == (len(triples), 1)
    assert scores.dtype == F64
    torch.testing.assert_close(scores[:, 0], house.score_triples(triples), rtol=0, atol=1e-12)


@pytest.mark.parametrize(("variant", "k", "dn"), CASES, ids=CASE_IDS)
def test_one_to_all_scores_equal_house(variant: str, k: int, dn: int) -> None:
    """score_t / score_h (PyKEEN's evaluation path) equal HousE.score_all in both directions, and the tail form."""
    house = random_house(variant, k, dn)
    model = from_house(house)
    reference = reference_scores(house)
    triples = all_triples()
    known, relation, other = triples[:, 0], triples[:, 1], triples[:, 2]

    tails = model.score_t(triples[:, :2])  # (B, E)
    torch.testing.assert_close(tails, house.score_all(known, relation, "tail"), rtol=0, atol=1e-12)
    torch.testing.assert_close(tails, reference[known, relation], rtol=0, atol=1e-10)
    torch.testing.assert_close(model.score_t(triples[:, :2], slice_size=3), tails, rtol=0, atol=1e-12)

    heads = model.score_h(triples[:, 1:])  # (B, E)
    torch.testing.assert_close(heads, house.score_all(other, relation, "head"), rtol=0, atol=1e-12)
    torch.testing.assert_close(heads, reference[:, relation, other].T, rtol=0, atol=1e-10)

    candidates = torch.tensor([[6, 0, 2]]).expand(len(triples), 3)  # explicit candidate ids: (B, N) tensors
    torch.testing.assert_close(
        model.score_t(triples[:, :2], tails=candidates),
        house.score_candidates(known, relation, candidates, "tail"),
    )
    torch.testing.assert_close(
        model.score_h(triples[:, 1:], heads=candidates),
        house.score_candidates(other, relation, candidates, "head"),
    )

    relations = model.score_r(triples[:, [0, 2]])  # (B, R)
    torch.testing.assert_close(relations, reference[known, :, other], rtol=0, atol=1e-12)


@pytest.mark.parametrize(("variant", "k", "dn"), CASES, ids=CASE_IDS)
def test_forward_broadcasts_like_pykeen(variant: str, k: int, dn: int) -> None:
    """forward(h, r, t) returns the broadcast batch shape for any broadcastable batch shapes."""
    house = random_house(variant, k, dn)
    model = from_house(house)
    interaction = model.interaction
    reference = reference_scores(house)
    entities, relations = representations(model)  # (E, m, k) and (R, ...)

    # three batch axes: h (E, 1, 1), r (1, R, 1), t (1, 1, E)
    scores = interaction(
        h=entities[:, None, None], r=[x[None, :, None] for x in relations], t=entities[None, None]
    )
    assert scores.shape == (NUM_ENTITIES, NUM_RELATIONS, NUM_ENTITIES)
    torch.testing.assert_close(scores, reference, rtol=0, atol=1e-12)

    # (B, 1) queries against (1, E) candidates: the 1-N path; with t expanded to (B, E): the general path
    h_ids = torch.tensor([0, 3, 3, 6])
    r_ids = torch.tensor([2, 0, 1, 1])
    r = [x[r_ids][:, None] for x in relations]
    one_to_all = interaction(h=entities[h_ids][:, None], r=r, t=entities[None])
    general = interaction(h=entities[h_ids][:, None], r=r, t=entities[None].expand(len(h_ids), -1, -1, -1))
    assert one_to_all.shape == general.shape == (len(h_ids), NUM_ENTITIES)
    torch.testing.assert_close(one_to_all, reference[h_ids, r_ids], rtol=0, atol=1e-10)
    torch.testing.assert_close(general, reference[h_ids, r_ids], rtol=0, atol=1e-12)

    # one relation for every query: relations (1, 1, ...) broadcast against (B, 1) heads and (1, E) tails
    r_one = [x[1:2][:, None] for x in relations]
    scores = interaction(h=entities[h_ids][:, None], r=r_one, t=entities[None])
    torch.testing.assert_close(scores, reference[h_ids, 1], rtol=0, atol=1e-10)

    # the head side large: h (1, E), r and t (B, 1), i.e. PyKEEN's score_h layout, general and 1-N paths
    t_ids = h_ids
    heads = interaction(h=entities[None], r=r, t=entities[t_ids][:, None])
    torch.testing.assert_close(heads, reference[:, r_ids, t_ids].T, rtol=0, atol=1e-10)
    heads = interaction(h=entities[None].expand(len(t_ids), -1, -1, -1), r=r, t=entities[t_ids][:, None])
    torch.testing.assert_close(heads, reference[:, r_ids, t_ids].T, rtol=0, atol=1e-12)

    # no batch axes at all: one triple
    score = interaction(h=entities[4], r=[x[2] for x in relations], t=entities[5])
    assert score.shape == ()
    torch.testing.assert_close(score, reference[4, 2, 5], rtol=0, atol=1e-12)

    # Interaction.score_t with slicing (the stateless interaction API)
    sliced = interaction.score_t(
        h=entities[h_ids], r=[x[r_ids] for x in relations], all_entities=entities, slice_size=2
    )
    torch.testing.assert_close(sliced, reference[h_ids, r_ids], rtol=0, atol=1e-10)


def test_interaction_rejects_wrong_layouts() -> None:
    with pytest.raises(InputError, match="unknown HousE variant"):
        HousEInteraction(variant="house++")
    interaction = HousEInteraction(variant="house+")
    assert interaction.relation_names == (
        "units",
        "k_dir_head",
        "k_dir_tail",
        "k_scale_head",
        "k_scale_tail",
        "translation",
    )
    with pytest.raises(ValueError, match="expects 6 relation representations"):
        interaction(h=torch.zeros(2, 4), r=[torch.zeros(2, 4, 4)], t=torch.zeros(2, 4))
    assert HousEInteraction(variant="house", projections=0).relation_names == ("units",)
    assert HousEInteraction(variant="house-r+").relation_names == ("units", "translation")


@pytest.mark.parametrize("variant", VARIANTS)
def test_model_initialisation_matches_house(variant: str) -> None:
    """Shapes and initial ranges of house_kge.HousE, and k_dir_tail = −k_dir_head after every reset."""
    k, dim, dn, gamma = 4, 24, 2, 6.0
    factory = KGInfo(num_entities=50, num_relations=4, create_inverse_triples=False)
    with preserved_global_state():
        model = HousEModel(
            triples_factory=factory, dim=dim, k=k, variant=variant, projections=dn, gamma=gamma, random_seed=0
        )
    m = dim // k
    bound = (gamma + 2.0) / (m * k**0.5)
    config = HousEConfig(
        num_entities=50, num_relations=4, dim=dim, k=k, variant=variant, projections=dn, gamma=gamma
    )
    assert model.house_config == config
    with preserved_global_state():
        house = HousE(config)
    assert model.entity_weight().shape == (50, m * k)
    for name in model.interaction.relation_names:
        assert model.relation_weight(name).shape[1] == getattr(house, name)[0].numel()

    def check_uniform(values: torch.Tensor, bound: float) -> None:
        assert values.abs().max() <= bound
        assert values.abs().max() > 0.8 * bound  # spread over the range, not a narrower initialiser

    check_uniform(model.entity_weight(), bound)
    check_uniform(model.relation_weight("units"), bound)
    projected = variant in ("house", "house+")
    assert len(model.relation_representations) == 1 + 4 * projected + variant.endswith("+")
    if projected:
        check_uniform(model.relation_weight("k_dir_head"), 0.01)
        check_uniform(model.relation_weight("k_scale_head"), 1.0)
        check_uniform(model.relation_weight("k_scale_tail"), 1.0)
        assert torch.equal(model.relation_weight("k_dir_tail"), -model.relation_weight("k_dir_head"))
        before = model.relation_weight("k_dir_head").clone()
        with preserved_global_state():
            model.reset_parameters_()
        assert not torch.equal(model.relation_weight("k_dir_head"), before)
        assert torch.equal(model.relation_weight("k_dir_tail"), -model.relation_weight("k_dir_head"))
    if variant.endswith("+"):
        check_uniform(model.relation_weight("translation"), bound)


@pytest.mark.parametrize("variant", VARIANTS)
def test_conversion_round_trips(variant: str) -> None:
    house = random_house(variant, 4, 2)
    rng = torch.get_rng_state()
    model = from_house(house)
    back = to_house(model)
    assert torch.equal(torch.get_rng_state(), rng)  # conversion leaves the global generator alone
    assert back.config == house.config
    assert back.state_dict().keys() == house.state_dict().keys()
    for name, value in house.state_dict().items():
        assert torch.equal(back.state_dict()[name], value), name
        assert back.state_dict()[name].dtype == F64

    # PyKEEN → house_kge → PyKEEN, from a freshly initialised PyKEEN model
    with preserved_global_state():
        model = HousEModel(
            triples_factory=KGInfo(NUM_ENTITIES, NUM_RELATIONS, False),
            dim=8,
            k=4,
            variant=variant,
            random_seed=1,
        )
    again = from_house(to_house(model))
    assert torch.equal(again.entity_weight(), model.entity_weight())
    for name in model.interaction.relation_names:
        assert torch.equal(again.relation_weight(name), model.relation_weight(name)), name
    triples = all_triples()
    torch.testing.assert_close(to_house(model).score_triples(triples), model.score_hrt(triples)[:, 0])


def test_conversion_errors() -> None:
    with preserved_global_state():
        inverse = HousEModel(triples_factory=KGInfo(5, 2, True), dim=8, k=4, random_seed=0)
    with pytest.raises(InputError, match="inverse triples"):
        to_house(inverse)
    house = random_house("house", 4, 1)
    with pytest.raises(InputError, match="8 entities"):
        from_house(house, triples_factory=KGInfo(8, NUM_RELATIONS, False))
    with pytest.raises(InputError, match="inverse triples"):
        from_house(house, triples_factory=KGInfo(NUM_ENTITIES, NUM_RELATIONS, True))
    with pytest.raises(InputError, match="multiple of the block size"):
        HousEModel(triples_factory=KGInfo(5, 2, False), dim=10, k=4, random_seed=0)
    with pytest.raises(TypeError, match="HousEModel"):
        to_house(house)  # type: ignore[arg-type]


def test_house_kge_does_not_import_pykeen_and_interop_says_how_to_install_it() -> None:
    code = (
        "import sys\n"
        "import house_kge\n"
        "assert 'pykeen' not in sys.modules, 'import house_kge imported pykeen'\n"
        "sys.modules['pykeen'] = None  # as if pykeen were not installed\n"
        "try:\n"
        "    import house_kge.interop\n"
        "except ImportError as error:\n"
        "    print(error)\n"
        "else:\n"
        "    raise SystemExit('house_kge.interop was imported without pykeen')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "pip install 'house-kge[pykeen]'" in result.stdout


def test_pipeline_trains_house_on_nations() -> None:
    """Two epochs of pykeen.pipeline (sLCWA, self-adversarial loss) on the Nations graph bundled with PyKEEN."""
    assert PYKEEN_HOME.resolve() == Path(os.environ["PYKEEN_HOME"]).resolve()  # nothing written under ~/.data
    with preserved_global_state():
        result = pipeline(
            model=HousEModel,
            model_kwargs=dict(dim=16, k=4, variant="house+", projections=1, threshold=0.5, gamma=6.0),
            dataset="nations",
            training_kwargs=dict(num_epochs=2, batch_size=256, use_tqdm=False),
            evaluation_kwargs=dict(batch_size=256, use_tqdm=False),
            random_seed=0,
            device="cpu",
        )
    assert len(result.losses) == 2
    assert all(torch.isfinite(torch.tensor(loss)) for loss in result.losses)
    for metric in ("mrr", "hits@1", "hits@10", "mean_rank"):
        value = result.get_metric(metric)
        assert torch.isfinite(torch.tensor(value)), metric
    assert 0 < result.get_metric("mrr") <= 1
    assert result.get_metric("hits@10") > 0

    # the trained model, converted, scores Nations' test triples identically in house_kge
    model = result.model
    triples = get_dataset(dataset="nations").testing.mapped_triples
    with torch.no_grad():
        torch.testing.assert_close(to_house(model).score_triples(triples), model.score_hrt(triples)[:, 0])


@pytest.mark.parametrize("variant", ["house-r", "house+"])
def test_gradients_equal_house(variant: str) -> None:
    """Training through PyKEEN (sLCWA's score_hrt, LCWA's score_t) back-propagates the same gradients as house_kge."""
    house = random_house(variant, 4, 2)
    model = from_house(house)
    triples = all_triples()[::5]
    weights = torch.linspace(-1.0, 1.0, len(triples) * NUM_ENTITIES, dtype=F64).reshape(len(triples), -1)
    for pykeen_loss, house_loss in (
        (lambda: model.score_hrt(triples)[:, 0].sum(), lambda: house.score_triples(triples).sum()),
        (
            lambda: (model.score_t(triples[:, :2]) * weights).sum(),
            lambda: (house.score_all(triples[:, 0], triples[:, 1], "tail") * weights).sum(),
        ),
    ):
        model.zero_grad()
        house.zero_grad()
        pykeen_loss().backward()
        house_loss().backward()
        pairs = [(model.entity_weight(), house.entity)]
        pairs += [
            (model.relation_weight(name), getattr(house, name)) for name in model.interaction.relation_names
        ]
        for table, parameter in pairs:
            torch.testing.assert_close(
                table.grad.reshape(parameter.shape), parameter.grad, rtol=1e-9, atol=1e-11
            )
