"""The claims ``urpe reproduce`` builds, from given numbers (no training): each cites the paper, and comparisons of
two methods are decided over seeds."""

from __future__ import annotations

import math

import pytest

from papers_common import Claim
from urpe.reproduce import FULL, QUICK, _language_model_claim, _synthetic_claims
from urpe.tasks import SyntheticTask

PI = SyntheticTask("position-identification", 16, 10)
ETP = SyntheticTask("even-token", 16, 10)
SEEDS = [0, 1]
IDS = [
    "pi-urpe",
    "pi-urpe-vs-rpe",
    "pi-rpe",
    "pi-absolute",
    "pi-none",
    "etp-urpe",
    "etp-urpe-vs-rpe",
    "rowsum-rpe",
    "rowsum-urpe",
]
SEEDED = {"pi-urpe-vs-rpe", "etp-urpe-vs-rpe", "lm-perplexity"}


def accuracy(
    *, pi_urpe: list[float] | None = None, etp_urpe: list[float] | None = None
) -> dict[str, dict[str, list[float]]]:
    return {
        PI.name: {
            "none": [0.06, 0.07],
            "absolute": [1.0, 1.0],
            "rpe": [0.06, 0.07],
            "urpe": pi_urpe or [1.0, 0.99],
        },
        ETP.name: {"rpe": [0.48, 0.46], "urpe": etp_urpe or [1.0, 0.98]},
    }


def synthetic(**kwargs: list[float]) -> dict[str, Claim]:
    claims = _synthetic_claims(PI, ETP, SEEDS, accuracy(**kwargs), {"rpe": 2e-7, "urpe": 0.33})
    return {c.id: c for c in claims}


def test_every_claim_states_the_papers_figure_or_why_there_is_none() -> None:
    claims = [
        *_synthetic_claims(PI, ETP, SEEDS, accuracy(), {"rpe": 2e-7, "urpe": 0.33}),
        _language_model_claim([0, 1, 2], {"rpe": [6.3, 6.2, 6.25], "urpe": [5.9, 5.8, 5.85]}),
    ]
    assert [c.id for c in claims] == [*IDS, "lm-perplexity"]
    assert all(c.holds for c in claims)
    for c in claims:
        assert c.paper_source, c.id
        assert c.paper_cell() != "—"
        assert c.paper_value is None or c.paper_cell().endswith(f"({c.paper_source})")
        # exactly the two-method comparisons carry their per-seed values
        assert (c.spread is not None) == (c.id in SEEDED), c.id


def test_comparisons_keep_the_per_seed_values_and_their_spread() -> None:
    c = synthetic()["etp-urpe-vs-rpe"]
    assert c.spread is not None
    assert c.spread.seeds == (0, 1)
    assert c.spread.ours == (1.0, 0.98)
    assert c.spread.baseline == (0.48, 0.46)
    assert c.ours == pytest.approx(0.99)
    assert c.baseline is not None
    assert c.baseline.value == pytest.approx(0.47)
    assert c.spread.sd == pytest.approx(0.0)  # advantages 0.52 and 0.52
    assert c.ours_cell() == "0.99 ± 0.014 (2 seeds)"
    assert c.to_dict()["seeds"]["ours"] == [1.0, 0.98]


def test_a_gap_within_the_seed_noise_does_not_hold() -> None:
    # advantages 0.52 and 0.04: mean 0.28 is below the 0.3 margin
    assert not synthetic(etp_urpe=[1.0, 0.5])["etp-urpe-vs-rpe"].holds
    # advantages 0.52 and 0.34: mean 0.43 - 0.3 = 0.13 exceeds their sd 0.127, just
    assert synthetic(etp_urpe=[1.0, 0.8])["etp-urpe-vs-rpe"].holds
    # advantages 0.52 and 0.31: mean 0.415 - 0.3 = 0.115 is below their sd 0.148
    assert not synthetic(etp_urpe=[1.0, 0.77])["etp-urpe-vs-rpe"].holds
    # a run that gave no finite number fails the comparison
    assert not synthetic(pi_urpe=[1.0, math.nan])["pi-urpe-vs-rpe"].holds


def test_single_method_targets_are_decided_on_the_mean_over_seeds() -> None:
    assert synthetic(etp_urpe=[1.0, 0.92])["etp-urpe"].holds  # mean 0.96
    failing = synthetic(etp_urpe=[1.0, 0.88])["etp-urpe"]  # mean 0.94
    assert not failing.holds
    assert failing.ours == pytest.approx(0.94)
    assert not synthetic(pi_urpe=[1.0, 0.8])["pi-urpe"].holds  # mean 0.9


def test_lower_perplexity_is_better_and_needs_every_seed() -> None:
    seeds = [0, 1, 2]
    assert _language_model_claim(seeds, {"rpe": [6.3, 6.2, 6.25], "urpe": [5.9, 5.8, 5.85]}).holds
    assert not _language_model_claim(seeds, {"rpe": [5.9, 5.8, 5.85], "urpe": [6.3, 6.2, 6.25]}).holds
    # URPE better on average, but not beyond the spread of the per-seed differences
    assert not _language_model_claim(seeds, {"rpe": [6.3, 5.8, 6.0], "urpe": [5.9, 6.0, 5.95]}).holds


def test_quick_uses_two_seeds_and_full_three() -> None:
    assert QUICK.seeds(0) == [0, 1]
    assert FULL.seeds(5) == [5, 6, 7]
