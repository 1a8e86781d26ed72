"""Filtered link-prediction metrics over all entities, and AUC-PR for the Countries protocol.

For a test triple (h, r, t), the tail query scores every entity as the tail, ignores every other known true tail
of (h, r) (train, valid and test), and ranks t; the head query likewise. Ties are resolved as the "realistic"
rank (mean of the optimistic rank 1 + #{s > s_t} and the pessimistic rank #{s ≥ s_t}), the PyKEEN convention;
the optimistic rank is reported too. MRR, MR and Hits@k average over both directions.
"""

from __future__ import annotations

import torch

from house_kge.models import BlockModel
from house_kge.sampling import AnswerIndex
from papers_common import progress


@torch.no_grad()
def filtered_ranks(
    model: BlockModel,
    triples: torch.Tensor,
    index: AnswerIndex,
    *,
    batch_size: int = 256,
    desc: str = "evaluate",
) -> dict[str, torch.Tensor]:
    """Realistic and optimistic filtered ranks ``(2n,)`` (tail queries then head queries) of ``triples`` ``(n, 3)``.

    Progress (one unit per batch of queries) is reported as ``desc`` through :func:`papers_common.progress`.
    """
    was_training = model.training
    model.eval()
    device = model.entity.device
    realistic, optimistic = [], []
    order = torch.argsort(triples[:, 1], stable=True)
    by_relation = triples[order]
    _, counts = torch.unique_consecutive(by_relation[:, 1], return_counts=True)
    # each batch holds one relation, whose entity-side terms the model then prepares once per batch
    chunks = [chunk for group in by_relation.split(counts.tolist()) for chunk in group.split(batch_size)]
    batches = [(direction, chunk) for direction in ("tail", "head") for chunk in chunks]
    for direction, chunk in progress(batches, desc=desc, unit="batch"):
        known = chunk[:, 0] if direction == "tail" else chunk[:, 2]
        target = chunk[:, 2] if direction == "tail" else chunk[:, 0]
        relation = chunk[:, 1]
        scores = model.score_all(known.to(device), relation.to(device), direction).cpu()
        target_score = scores.gather(1, target.unsqueeze(1))
        rows, entities = index.answers(known, relation, direction)
        scores[rows, entities] = float("-inf")  # filter every true answer...
        scores.scatter_(1, target.unsqueeze(1), target_score)  # ...but the one being ranked
        better = (scores > target_score).sum(1)
        not_worse = (scores >= target_score).sum(1)
        optimistic.append(better + 1)
        realistic.append((better + not_worse).double() / 2 + 0.5)
    model.train(was_training)
    restore = torch.cat([torch.argsort(order), torch.argsort(order) + len(order)])
    return {
        "realistic": torch.cat(realistic).double()[restore],
        "optimistic": torch.cat(optimistic).double()[restore],
    }


def rank_metrics(ranks: dict[str, torch.Tensor]) -> dict[str, float]:
    """MRR, MR, Hits@1/3/10 of the realistic ranks, and the optimistic MRR and Hits@10."""
    r = ranks["realistic"]
    o = ranks["optimistic"]
    metrics = {"mrr": float((1 / r).mean()), "mr": float(r.mean())}
    for k in (1, 3, 10):
        metrics[f"hits@{k}"] = float((r <= k).double().mean())
    metrics["mrr_optimistic"] = float((1 / o).mean())
    metrics["hits@10_optimistic"] = float((o <= 10).double().mean())
    return metrics


def evaluate(
    model: BlockModel,
    triples: torch.Tensor,
    index: AnswerIndex,
    *,
    batch_size: int = 256,
    desc: str = "evaluate",
) -> dict[str, float]:
    """Filtered MRR, MR and Hits@k of ``triples`` against all entities, both directions (progress as ``desc``)."""
    return rank_metrics(filtered_ranks(model, triples, index, batch_size=batch_size, desc=desc))


@torch.no_grad()
def countries_auc_pr(model: BlockModel, triples: torch.Tensor, regions: torch.Tensor) -> float:
    """AUC-PR (average precision) of the region candidates for (country, locatedin, ?) test queries.

    Every query scores the candidate regions as tails; the labels mark the true region; scores and labels are
    pooled over queries, as in the RotatE toolkit.
    """
    from sklearn.metrics import average_precision_score

    was_training = model.training
    model.eval()
    device = model.entity.device
    candidates = regions.unsqueeze(0).expand(triples.shape[0], -1)
    scores = model.score_candidates(
        triples[:, 0].to(device), triples[:, 1].to(device), candidates.to(device), "tail"
    )
    labels = candidates == triples[:, 2:3]
    model.train(was_training)
    return float(average_precision_score(labels.reshape(-1).numpy(), scores.cpu().reshape(-1).numpy()))
