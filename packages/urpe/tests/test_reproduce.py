"""The claims ``urpe reproduce`` builds, from given numbers (no training): each cites the paper."""

from __future__ import annotations

from urpe.reproduce import _language_model_claim, _synthetic_claims
from urpe.tasks import SyntheticTask


def test_every_claim_states_the_papers_figure_or_why_there_is_none() -> None:
    pi = SyntheticTask("position-identification", 16, 10)
    etp = SyntheticTask("even-token", 16, 10)
    accuracy = {
        pi.name: {"none": 0.06, "absolute": 1.0, "rpe": 0.06, "urpe": 1.0},
        etp.name: {"rpe": 0.48, "urpe": 1.0},
    }
    claims = [
        *_synthetic_claims(pi, etp, accuracy, {"rpe": 2e-7, "urpe": 0.33}),
        _language_model_claim({"rpe": 6.3, "urpe": 5.9}),
    ]
    ids = ["pi-urpe", "pi-rpe", "pi-absolute", "pi-none", "etp-urpe", "rowsum-rpe", "rowsum-urpe"]
    assert [c.id for c in claims] == [*ids, "lm-perplexity"]
    assert all(c.holds for c in claims)
    for c in claims:
        assert c.paper_source, c.id
        assert c.paper_cell() != "—"
        assert c.paper_value is None or c.paper_cell().endswith(f"({c.paper_source})")
