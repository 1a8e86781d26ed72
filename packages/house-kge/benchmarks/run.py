"""Training throughput and filtered-evaluation time: house_kge (RotatE, HousE) against PyKEEN's RotatE.

Workload (UMLS; the RotatE-toolkit recipe at the settings of the spec's performance comparison):

- **Training**: batch b = 512 positives, n = 128 uniform negatives per positive, self-adversarial loss with
  margin γ = 12 and temperature α = 1, Adam (lr 1e-3), 400 real numbers per entity. Ours: ``house_kge.RotatE``
  (200 complex dimensions) and ``house_kge.HousE`` (d = 400, k = 8, one projection per side), trained by
  ``house_kge.train``, whose alternating head-/tail-batch steps corrupt one side per positive. Anchor:
  ``pykeen.models.RotatE`` (embedding_dim 200, ``NSSALoss(margin=γ, adversarial_temperature=α)``) in the sLCWA
  training loop with ``BasicNegativeSampler(num_negs_per_pos=n)`` (unfiltered; each negative corrupts the head or
  the tail), the same b and Adam learning rate, full batches (``drop_last=True``). Ours is measured with
  unfiltered negatives (``filter_negatives=False``, like PyKEEN's basic sampler; the headline) and with the
  toolkit's filtered negatives. Throughput = positive triples per second over ``--steps`` optimizer steps timed
  after ``--warmup`` steps: ours from ``TrainResult.seconds`` of a second ``train`` call made after a warm-up call
  on the same model (set-up such as the answer index is outside the timed loop); PyKEEN's from the wall clock
  between the starts of batch ``warmup`` and batch ``warmup + steps`` (``pre_batch`` callback), so it includes the
  loop's own epoch overheads (data loader, constraints). The spec's protocol warms up 20 steps and times 200; the
  defaults here (full: 3 + 20, quick: 2 + 8) keep the whole full run near 5 minutes on 2 cores, where one step of
  these models costs 0.5-3 s; ``--warmup`` and ``--steps`` restore the spec's counts.
- **Evaluation**: filtered ranks of every UMLS test triple against all entities in both directions (train, valid
  and test filter). Ours: ``house_kge.evaluate`` with an ``AnswerIndex`` over all triples (index construction
  timed too); anchor: ``pykeen.evaluation.RankBasedEvaluator(filtered=True)`` with train and valid as
  ``additional_filter_triples``; the same query batch size (``--eval-batch-size``); untrained weights (timing
  only); median of the timed repeats (3; quick: 1) after an untimed warm-up call on the first 64 test triples.
- **WN18RR** (only from ``--data-dir``, folder ``wn18rr``): filtered evaluation of ours HousE at the paper's size
  (d = 800, k = 8, γ = 6) on the test split against the issue's target of 60 s. Evaluation cost is linear in the
  number of test triples (query batches against all 40,943 entities), so the quick mode times the first
  ``--wn18rr-triples`` triples and extrapolates to the whole split (said so in the workload); the full mode times
  the whole split.

Each measurement runs in a fresh Python process with ``torch.set_num_threads(--threads)``, ``PYKEEN_HOME`` in a
temporary directory (unless set) and ``HF_HUB_OFFLINE=1``. Ratios are ``ours / anchor`` (papers_common's convention):
for throughput (higher is better) a ratio above 1 means ours is faster, for seconds (lower is better) a ratio below
1 means ours is faster. Progress goes to stderr: ``measuring <label> ...`` and its time for each measurement, and a
``bench`` record (:func:`papers_common.progress`) of the measurements done. A measuring process's own output is
shown only when it fails, so stderr is quiet while one runs (20-45 s each on 2 cores; the full mode's whole WN18RR
split about a minute).

Note: PyKEEN's RotatE interaction is ‖h∘r − t‖₂ over the whole complex vector, the toolkit's (and ours) the sum of
the complex moduli Σ_b |h_b r_b − t_b|; the cost per score is the same.

    python packages/house-kge/benchmarks/run.py --out reports/house-kge [--quick] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import torch

from papers_common import (
    Anchor,
    Bench,
    Measurement,
    configure_logging,
    emit_result,
    machine_info,
    progress,
    run_isolated,
    write_bench,
)

BATCH, NEGATIVES, GAMMA, ALPHA, LR = 512, 128, 12.0, 1.0, 1e-3
ROTATE_DIM = 200  # complex dimensions (400 real), PyKEEN's default embedding_dim
HOUSE_DIM, HOUSE_K = 400, 8  # 400 real dimensions in 50 blocks of 8
WN18RR_DIM, WN18RR_GAMMA = 800, 6.0  # best_config.sh, HousE WN18RR
WN18RR_BATCH = 256  # queries per evaluation batch (each batch holds one relation)
TRAIN_TARGET, EVAL_TARGET, WN18RR_TARGET = 1.5, 1.0, 60.0


@dataclass(frozen=True)
class Request:
    """One measurement, run in its own process.

    ``task`` is ``train`` or ``eval``, ``library`` ``ours`` or ``pykeen``, ``model`` ``rotate`` or ``house``;
    ``dim`` is RotatE's complex dimension or HousE's real dimension; ``eval_triples`` = 0 evaluates the whole
    test split.
    """

    task: str
    library: str
    model: str
    dataset: str = "umls"
    data_dir: str | None = None
    dim: int = ROTATE_DIM
    k: int = HOUSE_K
    gamma: float = GAMMA
    filter_negatives: bool = False
    steps: int = 20
    warmup: int = 3
    eval_batch_size: int = 256
    eval_triples: int = 0
    eval_warmup: int = 64  # triples evaluated once, untimed, before the timed repeats
    repeats: int = 1
    threads: int = 2
    seed: int = 0

    @property
    def label(self) -> str:
        name = {"rotate": "RotatE", "house": f"HousE d={self.dim} k={self.k}"}[self.model]
        text = f"{self.library} {name}"
        if self.task == "train":
            text += " (filtered negatives)" if self.filter_negatives else ""
            return f"{text}, training"
        return f"{text}, {self.dataset} evaluation"


def load_graph(request: Request) -> Any:
    from house_kge import load_dataset

    return load_dataset(request.dataset, data_dir=request.data_dir)


def build_ours(request: Request, graph: Any) -> Any:
    from house_kge import HousE, HousEConfig, RotatE, RotatEConfig

    if request.model == "rotate":
        return RotatE(
            RotatEConfig(graph.num_entities, graph.num_relations, dim=request.dim, gamma=request.gamma)
        )
    config = HousEConfig(
        graph.num_entities,
        graph.num_relations,
        dim=request.dim,
        k=request.k,
        variant="house",
        projections=1,
        threshold=0.5,
        gamma=request.gamma,
    )
    return HousE(config)


def build_pykeen(request: Request, graph: Any) -> tuple[Any, Any]:
    """PyKEEN's RotatE on our id triples (the very same training data), on the CPU."""
    import logging
    import warnings

    logging.getLogger("pykeen").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    from pykeen.losses import NSSALoss
    from pykeen.models import RotatE
    from pykeen.triples import CoreTriplesFactory

    factory = CoreTriplesFactory.create(
        graph.train, num_entities=graph.num_entities, num_relations=graph.num_relations
    )
    model = RotatE(
        triples_factory=factory,
        embedding_dim=request.dim,
        loss=NSSALoss(margin=request.gamma, adversarial_temperature=ALPHA),
        random_seed=request.seed,
    ).to(torch.device("cpu"))
    return factory, model


def train_ours(request: Request) -> dict[str, Any]:
    from house_kge import TrainConfig, train

    graph = load_graph(request)
    model = build_ours(request, graph)
    common = {
        "batch_size": BATCH,
        "negatives": NEGATIVES,
        "alpha": ALPHA,
        "lr": LR,
        "filter_negatives": request.filter_negatives,
        "checkpoint_every": 0,
        "log_every": 10**9,
    }
    train(model, graph, TrainConfig(steps=request.warmup, **common), seed=request.seed)
    result = train(model, graph, TrainConfig(steps=request.steps, **common), seed=request.seed + 1)
    return {
        "seconds": result.seconds,
        "triples_per_second": result.triples_per_second,
        "steps": request.steps,
    }


class _Enough(Exception):
    """Raised by the timing callback to leave PyKEEN's training loop once every timed batch has begun."""


def train_pykeen(request: Request) -> dict[str, Any]:
    from pykeen.training import SLCWATrainingLoop
    from pykeen.training.callbacks import TrainingCallback

    graph = load_graph(request)
    factory, model = build_pykeen(request, graph)
    needed = request.warmup + request.steps + 1  # the start of batch warmup + steps ends the timed window

    class Clock(TrainingCallback):
        def __init__(self) -> None:
            super().__init__()
            self.starts: list[float] = []

        def pre_batch(self, **kwargs: Any) -> None:
            self.starts.append(time.perf_counter())
            if len(self.starts) >= needed:
                raise _Enough

    clock = Clock()
    loop = SLCWATrainingLoop(
        model=model,
        triples_factory=factory,
        optimizer="adam",
        optimizer_kwargs={"lr": LR},
        negative_sampler="basic",
        negative_sampler_kwargs={"num_negs_per_pos": NEGATIVES},
    )
    per_epoch = factory.num_triples // BATCH
    with contextlib.suppress(_Enough):
        loop.train(
            triples_factory=factory,
            num_epochs=math.ceil(needed / per_epoch) + 1,
            batch_size=BATCH,
            use_tqdm=False,
            drop_last=True,
            callbacks=clock,
        )
    starts = clock.starts
    if len(starts) < needed:
        raise RuntimeError(f"PyKEEN ran {len(starts)} batches, fewer than the {needed} needed")
    seconds = starts[request.warmup + request.steps] - starts[request.warmup]
    steps = [b - a for a, b in zip(starts[request.warmup :], starts[request.warmup + 1 :], strict=False)]
    return {
        "seconds": seconds,
        "triples_per_second": request.steps * BATCH / seconds,
        "median_step_seconds": statistics.median(steps),
        "steps": request.steps,
    }


def _test_triples(request: Request, graph: Any) -> torch.Tensor:
    return graph.test[: request.eval_triples] if request.eval_triples else graph.test


def eval_ours(request: Request) -> dict[str, Any]:
    from house_kge import AnswerIndex, evaluate

    graph = load_graph(request)
    model = build_ours(request, graph)
    triples = _test_triples(request, graph)
    index = AnswerIndex(graph.all_triples(), graph.num_entities, graph.num_relations)
    evaluate(model, graph.test[: request.eval_warmup], index, batch_size=request.eval_batch_size)  # warm-up
    times, metrics = [], {}
    for _ in range(request.repeats):
        start = time.perf_counter()
        index = AnswerIndex(graph.all_triples(), graph.num_entities, graph.num_relations)
        metrics = evaluate(model, triples, index, batch_size=request.eval_batch_size)
        times.append(time.perf_counter() - start)
    return {
        "seconds": statistics.median(times),
        "triples": int(triples.shape[0]),
        "test_triples": int(graph.test.shape[0]),
        "entities": graph.num_entities,
        "mrr": metrics["mrr"],
    }


def eval_pykeen(request: Request) -> dict[str, Any]:
    from pykeen.evaluation import RankBasedEvaluator

    graph = load_graph(request)
    _, model = build_pykeen(request, graph)
    triples = _test_triples(request, graph)
    evaluator = RankBasedEvaluator(filtered=True)

    def run(test: torch.Tensor) -> Any:
        return evaluator.evaluate(
            model,
            test,
            batch_size=request.eval_batch_size,
            use_tqdm=False,
            additional_filter_triples=[graph.train, graph.valid],
        )

    run(graph.test[: request.eval_warmup])  # warm-up
    times, result = [], None
    for _ in range(request.repeats):
        start = time.perf_counter()
        result = run(triples)
        times.append(time.perf_counter() - start)
    assert result is not None
    return {
        "seconds": statistics.median(times),
        "triples": int(triples.shape[0]),
        "test_triples": int(graph.test.shape[0]),
        "entities": graph.num_entities,
        "mrr": float(result.get_metric("both.realistic.inverse_harmonic_mean_rank")),
    }


def worker(request: Request) -> dict[str, Any]:
    """Run one request in this process (called in the child)."""
    torch.set_num_threads(request.threads)
    torch.manual_seed(request.seed)
    handlers = {
        ("train", "ours"): train_ours,
        ("train", "pykeen"): train_pykeen,
        ("eval", "ours"): eval_ours,
        ("eval", "pykeen"): eval_pykeen,
    }
    return handlers[(request.task, request.library)](request)


def measure(request: Request) -> dict[str, Any]:
    """Run one request in a fresh Python process (:func:`papers_common.run_isolated`)."""
    return run_isolated(__file__, asdict(request), request.label)


def umls_source(data_dir: Path | None) -> str | None:
    """The --data-dir when it holds umls/, else None (PyKEEN's bundled copy)."""
    return str(data_dir) if data_dir is not None and (data_dir / "umls" / "train.txt").is_file() else None


def package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def main(argv: list[str] | None = None) -> int:
    configure_logging()  # progress records to stderr (this script does not go through App.main)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="directory of bench.json")
    parser.add_argument("--quick", action="store_true", help="fewer timed steps, repeats and WN18RR triples")
    parser.add_argument(
        "--data-dir", type=Path, help="folder holding umls/ and wn18rr/ (RotatE-toolkit layout)"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, help="timed optimizer steps (default: 8 quick, 20 full)")
    parser.add_argument("--warmup", type=int, help="untimed steps before them (default: 2 quick, 3 full)")
    parser.add_argument("--eval-batch-size", type=int, default=256, help="UMLS queries per evaluation batch")
    parser.add_argument(
        "--wn18rr-triples",
        type=int,
        help="WN18RR test triples timed, then extrapolated (default: 256 quick; full: 0, all of them)",
    )
    # internal: run one Request, given as JSON, in this process and print its result
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        emit_result(worker(Request(**json.loads(args.worker))))
        return 0
    if args.out is None:
        parser.error("--out is required")
    steps = args.steps or (8 if args.quick else 20)
    warmup = args.warmup if args.warmup is not None else (2 if args.quick else 3)
    wn_triples = args.wn18rr_triples if args.wn18rr_triples is not None else (256 if args.quick else 0)
    repeats = 1 if args.quick else 3
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    scratch = None
    if not os.environ.get("PYKEEN_HOME"):
        scratch = tempfile.TemporaryDirectory(prefix="pykeen-home-")
        os.environ["PYKEEN_HOME"] = scratch.name
    began = time.perf_counter()

    umls = umls_source(args.data_dir)
    base = Request(
        "train",
        "ours",
        "rotate",
        data_dir=umls,
        steps=steps,
        warmup=warmup,
        threads=args.threads,
        eval_batch_size=args.eval_batch_size,
        repeats=repeats,
    )
    house = {"model": "house", "dim": HOUSE_DIM, "k": HOUSE_K}
    train_requests = {
        "pykeen": replace(base, library="pykeen"),
        "rotate": base,
        "rotate-filtered": replace(base, filter_negatives=True),
        "house": replace(base, **house),
        "house-filtered": replace(base, **house, filter_negatives=True),
    }
    eval_requests = {
        "pykeen": replace(base, task="eval", library="pykeen"),
        "rotate": replace(base, task="eval"),
        "house": replace(base, task="eval", **house),
    }
    wn_dir = args.data_dir / "wn18rr" if args.data_dir is not None else None
    wn_request = None
    if wn_dir is not None and (wn_dir / "train.txt").is_file():
        wn_request = replace(
            base,
            task="eval",
            model="house",
            dataset="wn18rr",
            data_dir=str(args.data_dir),
            dim=WN18RR_DIM,
            k=HOUSE_K,
            gamma=WN18RR_GAMMA,
            eval_batch_size=WN18RR_BATCH,
            eval_triples=wn_triples,
            eval_warmup=2,
            repeats=1,
        )
        wn_skip = ""
    else:
        wn_skip = (
            "no --data-dir given" if args.data_dir is None else f"{wn_dir} has no train.txt"
        ) + "; WN18RR is not bundled with PyKEEN"

    plan = [("train", key, request) for key, request in train_requests.items()]
    plan += [("eval", key, request) for key, request in eval_requests.items()]
    plan += [("wn18rr", "house", wn_request)] if wn_request is not None else []
    measured = {}
    for group, key, request in progress(plan, desc="bench", unit="measurement"):
        measured[group, key] = measure(request)
    trained = {key: measured["train", key] for key in train_requests}
    evaluated = {key: measured["eval", key] for key in eval_requests}
    wn = measured.get(("wn18rr", "house"))
    if scratch is not None:
        scratch.cleanup()

    machine = {**machine_info("cpu"), "threads": args.threads, "mode": "quick" if args.quick else "full"}
    pykeen_version = package_version("pykeen")
    anchor = Anchor("PyKEEN RotatE (sLCWA, BasicNegativeSampler, NSSALoss)", pykeen_version)
    eval_anchor = Anchor("PyKEEN RankBasedEvaluator(filtered=True) on RotatE", pykeen_version)
    source = "UMLS (PyKEEN's bundled copy)" if umls is None else "UMLS (umls/ in --data-dir)"
    workload = (
        f"{source}, training: b {BATCH}, n {NEGATIVES} uniform negatives, self-adversarial α {ALPHA:g}, "
        f"γ {GAMMA:g}, Adam lr {LR:g}, 400 real dims per entity, {steps} steps timed after {warmup}, "
        f"CPU {args.threads} threads"
    )
    names = {
        "rotate": f"ours RotatE d={ROTATE_DIM} complex, unfiltered negatives",
        "rotate-filtered": f"ours RotatE d={ROTATE_DIM} complex, filtered negatives",
        "house": f"ours HousE d={HOUSE_DIM} k={HOUSE_K}, unfiltered negatives",
        "house-filtered": f"ours HousE d={HOUSE_DIM} k={HOUSE_K}, filtered negatives",
    }
    reference = trained["pykeen"]["triples_per_second"]
    rows = [
        Measurement(
            f"{workload}; {names[key]} vs PyKEEN RotatE d={ROTATE_DIM}",
            "training throughput",
            "positive triples/s",
            trained[key]["triples_per_second"],
            reference,
            True,
            anchor,
        )
        for key in names
    ]
    test = evaluated["pykeen"]
    eval_workload = (
        f"{source}, filtered evaluation of the {test['triples']} test triples, both directions, "
        f"all {test['entities']} entities, {args.eval_batch_size} queries per batch, "
        f"median of {repeats}, CPU {args.threads} threads"
    )
    eval_names = {"rotate": f"ours RotatE d={ROTATE_DIM}", "house": f"ours HousE d={HOUSE_DIM} k={HOUSE_K}"}
    rows += [
        Measurement(
            f"{eval_workload}; {eval_names[key]} vs PyKEEN RotatE d={ROTATE_DIM}",
            "evaluation time",
            "s",
            evaluated[key]["seconds"],
            test["seconds"],
            False,
            eval_anchor,
        )
        for key in eval_names
    ]
    wn_seconds = None
    if wn is not None:
        wn_seconds = wn["seconds"] * wn["test_triples"] / wn["triples"]
        how = (
            "the whole split timed"
            if wn["triples"] == wn["test_triples"]
            else f"first {wn['triples']} triples timed ({wn['seconds']:.1f} s), extrapolated linearly"
        )
        rows.append(
            Measurement(
                f"WN18RR test split ({wn['test_triples']} triples), filtered evaluation, both directions, all "
                f"{wn['entities']} entities, ours HousE d={WN18RR_DIM} k={HOUSE_K} (untrained), {WN18RR_BATCH} "
                f"queries per batch, {how}, CPU {args.threads} threads",
                "evaluation time",
                "s",
                wn_seconds,
                WN18RR_TARGET,
                False,
                Anchor("target: WN18RR filtered test evaluation under 60 s", "issue"),
            )
        )
    headline = rows[0]
    path = write_bench(Bench("house-kge", anchor, headline, machine, rows), args.out)

    print(f"machine: {json.dumps(machine)}")
    print(f"pykeen {pykeen_version}, torch {torch.__version__}; ratio = ours / anchor")
    print(f"\nTraining throughput ({workload})")
    print(f"  {'method':52s} {'triples/s':>10s} {'s/step':>8s} {'ours/PyKEEN':>12s}")
    print(
        f"  {'PyKEEN RotatE (sLCWA, basic sampler, NSSALoss)':52s} {reference:10.1f} "
        f"{BATCH / reference:8.3f} {'':>12s}"
    )
    for key, name in names.items():
        value = trained[key]["triples_per_second"]
        print(f"  {name:52s} {value:10.1f} {BATCH / value:8.3f} {value / reference:12.3f}")
    print(f"\nFiltered evaluation ({eval_workload})")
    print(f"  {'method':52s} {'seconds':>10s} {'MRR':>8s} {'ours/PyKEEN':>12s} {'speed-up':>9s}")
    print(
        f"  {'PyKEEN RotatE, RankBasedEvaluator(filtered=True)':52s} {test['seconds']:10.2f} "
        f"{test['mrr']:8.4f} {'':>12s} {'':>9s}"
    )
    for key, name in eval_names.items():
        value = evaluated[key]["seconds"]
        print(
            f"  {name + ', house_kge.evaluate':52s} {value:10.2f} {evaluated[key]['mrr']:8.4f} "
            f"{value / test['seconds']:12.3f} {test['seconds'] / value:9.2f}"
        )
    print()
    if wn is not None and wn_seconds is not None:
        print(
            f"WN18RR: ours HousE d={WN18RR_DIM} k={HOUSE_K}, {wn['triples']} of {wn['test_triples']} test "
            f"triples in {wn['seconds']:.1f} s -> {wn_seconds:.1f} s for the split (target < {WN18RR_TARGET:g} s)"
        )
    else:
        print(f"WN18RR rows skipped: {wn_skip}.")
    train_ratio = rows[0].ratio
    eval_speedup = test["seconds"] / evaluated["rotate"]["seconds"]
    print("\nTargets:")
    print(
        f"  training throughput ours RotatE / PyKEEN RotatE >= {TRAIN_TARGET:g}: {train_ratio:.2f} "
        f"({'met' if train_ratio >= TRAIN_TARGET else 'NOT met'})"
    )
    house_ratio = rows[2].ratio
    print(
        f"  training throughput ours HousE / PyKEEN RotatE >= {TRAIN_TARGET:g}: {house_ratio:.2f} "
        f"({'met' if house_ratio >= TRAIN_TARGET else 'NOT met'})"
    )
    print(
        f"  evaluation speed-up PyKEEN / ours RotatE >= {EVAL_TARGET:g}: {eval_speedup:.2f} "
        f"({'met' if eval_speedup >= EVAL_TARGET else 'NOT met'})"
    )
    if wn_seconds is not None:
        print(
            f"  WN18RR HousE evaluation < {WN18RR_TARGET:g} s: {wn_seconds:.1f} s "
            f"({'met' if wn_seconds < WN18RR_TARGET else 'NOT met'})"
        )
    print(
        json.dumps(
            {
                "bench": str(path),
                "ratio_vs_pykeen": headline.ratio,
                "seconds": round(time.perf_counter() - began, 1),
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
