"""Filtered ranks against a per-triple Python reference, metrics, and Countries AUC-PR."""

from __future__ import annotations

import pytest
import torch
from house_kge import (
    AnswerIndex,
    HousE,
    HousEConfig,
    RotatE,
    RotatEConfig,
    countries_auc_pr,
    evaluate,
    filtered_ranks,
    rank_metrics,
)
from sklearn.metrics import average_precision_score

F64 = torch.float64
E, R = 10, 3


def tiny_graph(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``(test, all_true)`` id triples; several test queries share other true answers."""
    generator = torch.Generator().manual_seed(seed)
    known = torch.stack(
        [
            torch.randint(E, (45,), generator=generator),
            torch.randint(R, (45,), generator=generator),
            torch.randint(E, (45,), generator=generator),
        ],
        dim=1,
    )
    crowded = torch.tensor([[0, 0, t] for t in range(1, 8)] + [[h, 1, 9] for h in range(2, 9)])
    all_true = torch.unique(torch.cat([known, crowded]), dim=0)
    test = torch.cat([all_true[torch.randperm(len(all_true), generator=generator)[:12]], crowded[[0, 7]]])
    return test, all_true


def reference_ranks(model, triples: torch.Tensor, all_true: torch.Tensor) -> dict[str, list[float]]:
    """Per triple and direction: score every entity, drop the other true answers, count better and tied scores."""
    true = {tuple(row) for row in all_true.tolist()}
    realistic, optimistic = [], []
    for direction in ("tail", "head"):
        for h, r, t in triples.tolist():
            if direction == "tail":
                candidates = [(h, r, e) for e in range(E)]
                target = t
            else:
                candidates = [(e, r, t) for e in range(E)]
                target = h
            with torch.no_grad():
                scores = model.score_triples(torch.tensor(candidates)).tolist()
            kept = [scores[e] for e in range(E) if e == target or candidates[e] not in true]
            better = sum(s > scores[target] for s in kept)
            not_worse = sum(s >= scores[target] for s in kept)
            optimistic.append(better + 1.0)
            realistic.append((better + 1 + not_worse) / 2)  # mean of the optimistic and pessimistic ranks
    return {"realistic": realistic, "optimistic": optimistic}


@pytest.mark.parametrize("variant", ["house", "house+"])
@pytest.mark.parametrize("batch_size", [1, 5, 64])
def test_filtered_ranks_equal_the_reference(variant: str, batch_size: int) -> None:
    torch.manual_seed(1)
    model = HousE(HousEConfig(E, R, dim=8, k=4, variant=variant, projections=1, gamma=2.0)).double()
    with torch.no_grad():
        model.k_dir_head.uniform_(-1, 1)
        model.k_dir_tail.uniform_(-1, 1)
    test, all_true = tiny_graph()
    ranks = filtered_ranks(model, test, AnswerIndex(all_true, E, R), batch_size=batch_size)
    expected = reference_ranks(model, test, all_true)
    assert ranks["realistic"].shape == (2 * len(test),)
    assert ranks["realistic"].tolist() == expected["realistic"]
    assert ranks["optimistic"].tolist() == expected["optimistic"]
    # filtering matters on this graph: the unfiltered rank of the crowded queries would be worse
    assert max(expected["realistic"]) > 1


def test_all_equal_scores_give_the_middle_rank() -> None:
    """Zero entity embeddings: every candidate ties, so the realistic rank is (1 + #candidates)/2."""
    model = HousE(HousEConfig(E, R, dim=8, k=4, variant="house", projections=1)).double()
    with torch.no_grad():
        model.entity.zero_()
    test, all_true = tiny_graph(seed=2)
    index = AnswerIndex(all_true, E, R)
    ranks = filtered_ranks(model, test, index, batch_size=4)
    expected = []
    true = {tuple(row) for row in all_true.tolist()}
    for direction in ("tail", "head"):
        for h, r, t in test.tolist():
            others = sum(
                ((h, r, e) if direction == "tail" else (e, r, t)) in true
                for e in range(E)
                if e != (t if direction == "tail" else h)
            )
            expected.append((1 + (E - others)) / 2)
    assert ranks["realistic"].tolist() == expected
    assert ranks["optimistic"].tolist() == [1.0] * (2 * len(test))
    assert ranks["realistic"].tolist() == reference_ranks(model, test, all_true)["realistic"]
    assert rank_metrics(ranks)["mrr_optimistic"] == 1.0


def test_partial_ties_by_hand() -> None:
    """RotatE with phase 0 (identity) and entities on a grid, so that distances tie exactly.

    Entities: 0 (0,0), 1 (1,0), 2 (−1,0), 3 (0,1), 4 (0,−1), 5 (2,0), 6 (0.5,0), 7–9 far away.
    Tail query (0, r, ?) with answer 1: better 0 (d 0) and 6 (d 0.5); ties 2, 3, 4 (d 1); (0, r, 3) is also true
    and filtered: optimistic 3, pessimistic 5, realistic 4.
    Head query (?, r, 1) with answer 0: better 1 (d 0) and 6 (d 0.5); tie 5 (d 1): optimistic 3, realistic 3.5.
    """
    model = RotatE(RotatEConfig(num_entities=E, num_relations=1, dim=1, gamma=0.0)).double()
    points = [(0, 0), (1, 0), (-1, 0), (0, 1), (0, -1), (2, 0), (0.5, 0), (9, 9), (-9, 9), (9, -9)]
    with torch.no_grad():
        model.entity.copy_(torch.tensor(points, dtype=F64).unsqueeze(1))
        model.relation.zero_()
    test = torch.tensor([[0, 0, 1]])
    index = AnswerIndex(torch.tensor([[0, 0, 1], [0, 0, 3]]), E, 1)
    ranks = filtered_ranks(model, test, index)
    assert ranks["optimistic"].tolist() == [3.0, 3.0]
    assert ranks["realistic"].tolist() == [4.0, 3.5]


def test_rank_metrics_by_hand() -> None:
    ranks = {
        "realistic": torch.tensor([1.0, 2.0, 4.0, 10.0, 11.0, 3.5], dtype=F64),
        "optimistic": torch.tensor([1.0, 1.0, 4.0, 10.0, 11.0, 2.0], dtype=F64),
    }
    metrics = rank_metrics(ranks)
    assert metrics["mrr"] == pytest.approx((1 + 1 / 2 + 1 / 4 + 1 / 10 + 1 / 11 + 1 / 3.5) / 6)
    assert metrics["mr"] == pytest.approx((1 + 2 + 4 + 10 + 11 + 3.5) / 6)
    assert metrics["hits@1"] == pytest.approx(1 / 6)
    assert metrics["hits@3"] == pytest.approx(2 / 6)
    assert metrics["hits@10"] == pytest.approx(5 / 6)
    assert metrics["mrr_optimistic"] == pytest.approx((1 + 1 + 1 / 4 + 1 / 10 + 1 / 11 + 1 / 2) / 6)
    assert metrics["hits@10_optimistic"] == pytest.approx(5 / 6)


def test_evaluate_combines_ranks_and_metrics_and_keeps_the_mode() -> None:
    torch.manual_seed(3)
    model = HousE(HousEConfig(E, R, dim=8, k=2, variant="house-r")).double()
    test, all_true = tiny_graph(seed=4)
    index = AnswerIndex(all_true, E, R)
    model.train()
    metrics = evaluate(model, test, index, batch_size=3)
    assert model.training
    assert metrics == rank_metrics(filtered_ranks(model, test, index))
    reference = reference_ranks(model, test, all_true)["realistic"]
    assert metrics["mrr"] == pytest.approx(sum(1 / r for r in reference) / len(reference), rel=1e-12)


def hand_average_precision(labels: list[bool], scores: list[float]) -> float:
    """Σ_n (R_n − R_{n−1}) P_n over thresholds at each score, highest first (no tied scores here)."""
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    positives = sum(labels)
    hits, total = 0, 0.0
    for position, i in enumerate(order, start=1):
        if labels[i]:
            hits += 1
            total += hits / position / positives
    return total


def test_countries_auc_pr_pools_the_region_candidates() -> None:
    torch.manual_seed(5)
    model = HousE(HousEConfig(E, 2, dim=8, k=4, variant="house", projections=1, gamma=1.0)).double()
    regions = torch.tensor([5, 6, 7, 8, 9])
    test = torch.tensor([[0, 1, 5], [1, 1, 7], [2, 1, 7], [3, 1, 9], [4, 1, 6]])
    labels, scores = [], []
    for country, relation, region in test.tolist():
        for candidate in regions.tolist():
            labels.append(candidate == region)
            with torch.no_grad():
                scores.append(model.score_triples(torch.tensor([[country, relation, candidate]])).item())
    expected = hand_average_precision(labels, scores)
    assert expected == pytest.approx(average_precision_score(labels, scores), abs=1e-12)
    assert 0 < expected < 1
    assert countries_auc_pr(model, test, regions) == pytest.approx(expected, abs=1e-12)


def test_countries_auc_pr_is_one_for_a_perfect_model() -> None:
    """Regions placed so that each country's own region is the nearest: AUC-PR 1."""
    model = RotatE(RotatEConfig(num_entities=6, num_relations=1, dim=1, gamma=0.0)).double()
    points = [(1, 0), (0, 1), (-1, 0), (1.1, 0), (0, 1.1), (-1.1, 0)]  # countries 0–2, regions 3–5
    with torch.no_grad():
        model.entity.copy_(torch.tensor(points, dtype=F64).unsqueeze(1))
        model.relation.zero_()
    test = torch.tensor([[0, 0, 3], [1, 0, 4], [2, 0, 5]])
    assert countries_auc_pr(model, test, torch.tensor([3, 4, 5])) == pytest.approx(1.0)
    wrong = torch.tensor([[0, 0, 5], [1, 0, 3], [2, 0, 4]])
    assert countries_auc_pr(model, wrong, torch.tensor([3, 4, 5])) < 0.6
