"""Training throughput and filtered-evaluation time: house_kge (HousE, RotatE) against PyKEEN and the official code.

Workload (UMLS; the RotatE-toolkit recipe at the settings of the spec's performance comparison):

- **Training**: batch b = 512 positives, n = 128 negatives per positive, self-adversarial loss with margin γ = 12
  and temperature α = 1, Adam (lr 1e-3), 400 real numbers per entity. Ours: ``house_kge.HousE`` (d = 400, k = 8,
  one projection per side) and ``house_kge.RotatE`` (200 complex dimensions), trained by ``house_kge.train``,
  whose alternating head-/tail-batch steps corrupt one side per positive; measured with unfiltered negatives
  (``filter_negatives=False``, like PyKEEN's basic sampler) and with the toolkit's filtered negatives. Anchors:

  - **PyKEEN, the same HousE** (the headline without ``--official-dir``): ``house_kge.interop.HousEModel`` (the same interaction, sizes and
    initialisation; ``NSSALoss(margin=0, adversarial_temperature=α)``, as its scores contain γ) in PyKEEN's sLCWA
    training loop with ``BasicNegativeSampler(num_negs_per_pos=n)`` (unfiltered; each negative corrupts the head or
    the tail), the same b and Adam learning rate, full batches (``drop_last=True``). sLCWA scores every negative
    triple with its own gathered relation representation (10 unit vectors of 50 blocks each), so a step costs
    tens of seconds on 2 cores: it is timed over ``--pykeen-house-steps`` steps after one warm-up step.
  - **PyKEEN RotatE** (second row, RotatE against RotatE): ``pykeen.models.RotatE`` (embedding_dim 200,
    ``NSSALoss(margin=γ, adversarial_temperature=α)``), the same loop and settings.
  - **The official code** (with ``--official-dir``, a checkout of anrep/HousE; then the headline, ours filtered
    against it): its ``codes/model.py`` and
    ``codes/dataloader.py`` imported from the checkout, ``KGEModel("HousE", ...)`` at d = 400, k = 8 (hn = k, as its
    run script sets), one projection per side, threshold 0.5, trained by ``KGEModel.train_step`` with ``-adv`` and
    subsampling weights, from its ``BidirectionalOneShotIterator`` over two ``DataLoader``s (one worker each, the
    run script's ``max(1, cpu_num // 2)`` for ``-cpu 2``) of ``TrainDataset`` (filtered negatives), Adam. Before
    timing, the measuring process checks on copies in float64 that one official head-batch and one tail-batch step
    (its loss and gradients) equal ours on the same batch, weights copied, and that its subsampling weights equal
    ours. NumPy 2.4 removed ``np.in1d``, which the official sampler calls: that process sets ``numpy.in1d`` to the
    equivalent ``numpy.isin(...).ravel()``; the checkout is not modified.

  Throughput = positive triples per second (and steps per second) over ``--steps`` optimizer steps timed after
  ``--warmup`` steps: ours from ``TrainResult.seconds`` of a second ``train`` call made after a warm-up call on
  the same model (set-up such as the answer index is outside the timed loop); PyKEEN's from the wall clock between
  the starts of batch ``warmup`` and batch ``warmup + steps`` (``pre_batch`` callback), so it includes the loop's
  own epoch overheads (data loader, constraints); the official code's from the wall clock around its
  ``train_step`` calls (its data loader workers prepare batches meanwhile). The spec's protocol warms up 20 steps
  and times 200; the defaults here (full: 3 + 20, quick: 2 + 8) keep the whole full run near 8 minutes on 2 cores;
  ``--warmup`` and ``--steps`` restore the spec's counts.
- **Evaluation**: filtered ranks of every UMLS test triple against all entities in both directions (train, valid
  and test filter). Ours: ``house_kge.evaluate`` with an ``AnswerIndex`` over all triples (index construction
  timed too); anchor: ``pykeen.evaluation.RankBasedEvaluator(filtered=True)`` on PyKEEN's RotatE with train and
  valid as ``additional_filter_triples``; the same query batch size (``--eval-batch-size``); untrained weights
  (timing only); median of the timed repeats (3; quick: 1) after an untimed warm-up call on the first 64 test
  triples.
- **WN18RR** (only from ``--data-dir``, folder ``wn18rr``): filtered evaluation of ours HousE at the paper's size
  (d = 800, k = 8, γ = 6) on the test split against the target of 60 s. Evaluation cost is linear in the number
  of test triples (query batches against all 40,943 entities), so the quick mode times the first
  ``--wn18rr-triples`` triples and extrapolates to the whole split (said so in the workload); the full mode times
  the whole split.

Each measurement runs in a fresh Python process with ``torch.set_num_threads(--threads)``, ``PYKEEN_HOME`` in a
temporary directory (unless set) and ``HF_HUB_OFFLINE=1``. Ratios are ``ours / anchor`` (papers_common's convention):
for throughput (higher is better) a ratio above 1 means ours is faster, for seconds (lower is better) a ratio below
1 means ours is faster. ``bench.json``'s machine record holds the 1-minute load average at the start and the end.
Progress goes to stderr: ``measuring <label> ...`` and its time for each measurement, and a ``bench`` record
(:func:`papers_common.progress`) of the measurements done. A measuring process's own output is shown only when it
fails, so stderr is quiet while one runs (20-45 s each on 2 cores; PyKEEN's HousE and the full mode's whole WN18RR
split 1-2 minutes).

Note: PyKEEN's RotatE interaction is ‖h∘r − t‖₂ over the whole complex vector, the toolkit's (and ours) the sum of
the complex moduli Σ_b |h_b r_b − t_b|; the cost per score is the same.

    python packages/house-kge/benchmarks/run.py --out reports/house-kge [--quick] [--data-dir DIR]
        [--official-dir path/to/HousE]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from types import ModuleType, SimpleNamespace
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
TRAIN_TARGET, EVAL_TARGET, WN18RR_TARGET, OFFICIAL_TARGET = 1.5, 1.0, 60.0, 3.0
OFFICIAL_FILES = ("codes/model.py", "codes/dataloader.py")  # imported from --official-dir
# relative: the official step against ours, in float64 but for the official subsampling weights, float32 values
# that it also sums in float32 (about 5e-8 of the loss and of every gradient)
CHECK_TOLERANCE = 1e-6


@dataclass(frozen=True)
class Request:
    """One measurement, run in its own process.

    ``task`` is ``train`` or ``eval``, ``library`` ``ours``, ``pykeen`` or ``official`` (training HousE from the
    checkout ``official_dir``), ``model`` ``rotate`` or ``house``; ``dim`` is RotatE's complex dimension or HousE's
    real dimension; ``eval_triples`` = 0 evaluates the whole test split.
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
    official_dir: str | None = None

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
    """PyKEEN's RotatE, or HousE through house_kge's plugin, on our id triples (the very same training data), CPU."""
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
    if request.model == "house":
        from house_kge.interop import HousEModel

        model = HousEModel(
            triples_factory=factory,
            dim=request.dim,
            k=request.k,
            variant="house",
            projections=1,
            threshold=0.5,
            gamma=request.gamma,
            loss=NSSALoss(margin=0.0, adversarial_temperature=ALPHA),  # the scores contain γ
            random_seed=request.seed,
        )
    else:
        model = RotatE(
            triples_factory=factory,
            embedding_dim=request.dim,
            loss=NSSALoss(margin=request.gamma, adversarial_temperature=ALPHA),
            random_seed=request.seed,
        )
    return factory, model.to(torch.device("cpu"))


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


def missing_official_files(path: Path) -> list[str]:
    """The files of :data:`OFFICIAL_FILES` that the checkout ``path`` lacks."""
    return [name for name in OFFICIAL_FILES if not (path / name).is_file()]


def _in1d(values: Any, test: Any, assume_unique: bool = False, invert: bool = False) -> Any:
    """``numpy.in1d`` as NumPy < 2.4 defined it: membership of the flattened ``values`` in ``test``."""
    import numpy

    return numpy.isin(values, test, assume_unique=assume_unique, invert=invert).ravel()


def import_official(path: Path) -> tuple[ModuleType, ModuleType]:
    """The official ``model`` and ``dataloader`` modules, imported from ``path/codes`` (in this process only)."""
    import numpy

    if not hasattr(numpy, "in1d"):  # removed in NumPy 2.4; the official TrainDataset calls it
        setattr(numpy, "in1d", _in1d)  # noqa: B010 - DataLoader workers are forked from here and inherit it
    sys.path.insert(0, str(path / "codes"))
    import dataloader
    import model

    return model, dataloader


def build_official(request: Request, graph: Any, model_module: ModuleType) -> Any:
    """The official ``KGEModel("HousE", ...)`` at the request's sizes: hn = k (even k) as its run script sets."""
    house_num = request.k if request.k % 2 == 0 else request.k - 1
    return model_module.KGEModel(
        "HousE",
        graph.num_entities,
        graph.num_relations,
        request.dim,
        request.gamma,
        request.k,
        house_num,
        1,
        0.5,
    )


def official_args() -> SimpleNamespace:
    """The flags ``KGEModel.train_step`` reads: CPU, ``-adv -a 1``, subsampling weights, no regulariser."""
    return SimpleNamespace(
        cuda=False,
        negative_adversarial_sampling=True,
        adversarial_temperature=ALPHA,
        uni_weight=False,
        regularization=0.0,
    )


def check_official(
    request: Request, graph: Any, modules: tuple[ModuleType, ModuleType], official: Any
) -> dict[str, float]:
    """How far one official training step is from ours, on copies in float64 with the same weights.

    For one head-batch and one tail-batch (the first b training triples, negatives from the official
    ``TrainDataset``), the official ``train_step`` (an SGD optimiser with lr 0 keeps the weights) and ours
    (``score_candidates`` + ``adversarial_loss`` with the batch's official subsampling weights) give the loss and
    the gradients of every parameter. Returns the largest relative differences of the loss and of the gradients
    (each parameter's max |Δ| over its max |g|), and the largest absolute difference between the official
    subsampling weights of all training triples (float32 values) and ``house_kge.data.subsampling_weights``.
    """
    import copy

    import numpy
    from house_kge.data import subsampling_weights
    from house_kge.train import adversarial_loss

    model_module, data_module = modules
    reference = copy.deepcopy(official).double()
    ours = build_ours(request, graph).double()
    relations, m, n, k = ours.units.shape
    with torch.no_grad():
        ours.entity.copy_(reference.entity_embedding)
        ours.units.copy_(reference.relation_embedding.view(relations, m, n, k))
        for name in ("k_dir_head", "k_dir_tail", "k_scale_head", "k_scale_tail"):
            getattr(ours, name).copy_(getattr(reference, name))
    pairs = [
        ("entity_embedding", ours.entity),
        ("relation_embedding", ours.units),
        *(
            (name, getattr(ours, name))
            for name in ("k_dir_head", "k_dir_tail", "k_scale_head", "k_scale_tail")
        ),
    ]
    triples = [tuple(row) for row in graph.train.tolist()]
    loss_gap = gradient_gap = 0.0
    dataset = None
    for mode in ("head-batch", "tail-batch"):
        dataset = data_module.TrainDataset(triples, graph.num_entities, graph.num_relations, NEGATIVES, mode)
        batch = data_module.TrainDataset.collate_fn([dataset[i] for i in range(BATCH)])
        optimizer = torch.optim.SGD([p for p in reference.parameters() if p.requires_grad], lr=0.0)
        official_loss = model_module.KGEModel.train_step(
            reference, optimizer, iter([batch]), official_args()
        )["loss"]
        positive, negative, weight, _ = batch
        direction = "head" if mode == "head-batch" else "tail"
        known, target = (
            (positive[:, 2], positive[:, 0]) if direction == "head" else (positive[:, 0], positive[:, 2])
        )
        candidates = torch.cat([target.unsqueeze(1), negative], dim=1)
        scores = ours.score_candidates(known, positive[:, 1], candidates, direction)
        loss_pos, loss_neg = adversarial_loss(scores[:, 0], scores[:, 1:], weight.double(), ALPHA)
        loss = (loss_pos + loss_neg) / 2
        ours.zero_grad()
        loss.backward()
        loss_gap = max(loss_gap, abs(official_loss - loss.item()) / abs(loss.item()))
        for name, parameter in pairs:
            expected = getattr(reference, name).grad.reshape(parameter.shape)
            gap = (expected - parameter.grad).abs().max() / expected.abs().max().clamp_min(1e-300)
            gradient_gap = max(gradient_gap, float(gap))
    assert dataset is not None
    official_weights = torch.tensor(
        [numpy.sqrt(1 / (dataset.count[(h, r)] + dataset.count[(t, -r - 1)])) for h, r, t in triples],
        dtype=torch.float64,
    )
    ours_weights = subsampling_weights(graph.train, graph.num_relations).double()
    weight_gap = float((official_weights - ours_weights).abs().max())
    return {"loss": loss_gap, "gradients": gradient_gap, "subsampling_weights": weight_gap}


def train_official(request: Request) -> dict[str, Any]:
    """The official training loop's steps per second, after checking that its step is ours (:func:`check_official`)."""
    import numpy
    from torch.utils.data import DataLoader

    assert request.official_dir is not None
    modules = import_official(Path(request.official_dir))
    model_module, data_module = modules
    numpy.random.seed(request.seed)  # noqa: NPY002 - the official sampler draws from NumPy's global state
    graph = load_graph(request)
    official = build_official(request, graph, model_module)
    check = check_official(request, graph, modules, official)
    triples = [tuple(row) for row in graph.train.tolist()]
    loaders = [
        DataLoader(
            data_module.TrainDataset(triples, graph.num_entities, graph.num_relations, NEGATIVES, mode),
            batch_size=BATCH,
            shuffle=True,
            num_workers=1,
            collate_fn=data_module.TrainDataset.collate_fn,
        )
        for mode in ("head-batch", "tail-batch")
    ]
    iterator = data_module.BidirectionalOneShotIterator(*loaders)
    optimizer = torch.optim.Adam([p for p in official.parameters() if p.requires_grad], lr=LR)
    args = official_args()
    for _ in range(request.warmup):
        model_module.KGEModel.train_step(official, optimizer, iterator, args)
    start = time.perf_counter()
    for _ in range(request.steps):
        model_module.KGEModel.train_step(official, optimizer, iterator, args)
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "triples_per_second": request.steps * BATCH / seconds,
        "steps": request.steps,
        "check": check,
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
        ("train", "official"): train_official,
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
    parser.add_argument(
        "--official-dir",
        type=Path,
        help="a checkout of anrep/HousE (codes/model.py, codes/dataloader.py): also time the official training loop",
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, help="timed optimizer steps (default: 8 quick, 20 full)")
    parser.add_argument("--warmup", type=int, help="untimed steps before them (default: 2 quick, 3 full)")
    parser.add_argument(
        "--pykeen-house-steps",
        type=int,
        help="timed steps of PyKEEN's HousE, after one warm-up step (default: 2 quick, 3 full)",
    )
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
    if args.official_dir is not None:
        missing = missing_official_files(args.official_dir)
        if missing:
            print(
                f"error: --official-dir {args.official_dir}: no {', '.join(missing)} there "
                "(expected a checkout of anrep/HousE)",
                file=sys.stderr,
            )
            return 2
    steps = args.steps or (8 if args.quick else 20)
    warmup = args.warmup if args.warmup is not None else (2 if args.quick else 3)
    pykeen_house_steps = args.pykeen_house_steps or (2 if args.quick else 3)
    wn_triples = args.wn18rr_triples if args.wn18rr_triples is not None else (256 if args.quick else 0)
    repeats = 1 if args.quick else 3
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    scratch = None
    if not os.environ.get("PYKEEN_HOME"):
        scratch = tempfile.TemporaryDirectory(prefix="pykeen-home-")
        os.environ["PYKEEN_HOME"] = scratch.name
    began = time.perf_counter()
    load_start = os.getloadavg()[0]

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
        "pykeen-house": replace(base, library="pykeen", **house, warmup=1, steps=pykeen_house_steps),
        "pykeen": replace(base, library="pykeen"),
        "house": replace(base, **house),
        "house-filtered": replace(base, **house, filter_negatives=True),
        "rotate": base,
        "rotate-filtered": replace(base, filter_negatives=True),
    }
    if args.official_dir is not None:
        official_dir = str(args.official_dir.resolve())
        train_requests["official"] = replace(base, library="official", **house, official_dir=official_dir)
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

    machine = {
        **machine_info("cpu"),
        "threads": args.threads,
        "mode": "quick" if args.quick else "full",
        "load_average": [round(load_start, 2), round(os.getloadavg()[0], 2)],
    }
    pykeen_version = package_version("pykeen")
    house_anchor = Anchor(
        "PyKEEN sLCWA training of house_kge.interop.HousEModel (BasicNegativeSampler, NSSALoss)",
        pykeen_version,
    )
    rotate_anchor = Anchor("PyKEEN RotatE (sLCWA, BasicNegativeSampler, NSSALoss)", pykeen_version)
    official_anchor = Anchor("official code anrep/HousE (codes/model.py KGEModel.train_step)", "checkout")
    eval_anchor = Anchor("PyKEEN RankBasedEvaluator(filtered=True) on RotatE", pykeen_version)
    source = "UMLS (PyKEEN's bundled copy)" if umls is None else "UMLS (umls/ in --data-dir)"
    workload = (
        f"{source}, training: b {BATCH}, n {NEGATIVES} negatives, self-adversarial α {ALPHA:g}, "
        f"γ {GAMMA:g}, Adam lr {LR:g}, 400 real dims per entity, {steps} steps timed after {warmup}, "
        f"CPU {args.threads} threads"
    )
    house_name = f"HousE d={HOUSE_DIM} k={HOUSE_K} dn=1"
    # (ours, anchor, what the anchor is, its Anchor)
    comparisons = {
        "house": (
            "house",
            "pykeen-house",
            f"PyKEEN {house_name} ({pykeen_house_steps} steps timed after 1)",
            house_anchor,
        ),
        "house-filtered": (
            "house-filtered",
            "pykeen-house",
            f"PyKEEN {house_name} ({pykeen_house_steps} steps timed after 1)",
            house_anchor,
        ),
        "rotate": ("rotate", "pykeen", f"PyKEEN RotatE d={ROTATE_DIM}", rotate_anchor),
        "rotate-filtered": ("rotate-filtered", "pykeen", f"PyKEEN RotatE d={ROTATE_DIM}", rotate_anchor),
    }
    if "official" in trained:
        comparisons["official-filtered"] = (
            "house-filtered",
            "official",
            f"official {house_name} (filtered)",
            official_anchor,
        )
        comparisons["official"] = ("house", "official", f"official {house_name} (filtered)", official_anchor)
    names = {
        "house": f"ours {house_name}, unfiltered negatives",
        "house-filtered": f"ours {house_name}, filtered negatives",
        "rotate": f"ours RotatE d={ROTATE_DIM} complex, unfiltered negatives",
        "rotate-filtered": f"ours RotatE d={ROTATE_DIM} complex, filtered negatives",
    }
    rows = [
        Measurement(
            f"{workload}; {names[ours]} vs {anchor_name}",
            "training throughput",
            "positive triples/s",
            trained[ours]["triples_per_second"],
            trained[anchor]["triples_per_second"],
            True,
            anchor_record,
        )
        for ours, anchor, anchor_name, anchor_record in comparisons.values()
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
                Anchor("target: WN18RR filtered test evaluation under 60 s", "target"),
            )
        )
    # the headline is the strongest equal-settings anchor measured: the official loop when given, else PyKEEN HousE
    official = "official-filtered" in comparisons
    headline = rows[list(comparisons).index("official-filtered")] if official else rows[0]
    headline_anchor = official_anchor if official else house_anchor
    path = write_bench(Bench("house-kge", headline_anchor, headline, machine, rows), args.out)

    print(f"machine: {json.dumps(machine)}")
    print(f"pykeen {pykeen_version}, torch {torch.__version__}; ratio = ours / anchor")
    print(f"\nTraining throughput ({workload})")
    print(f"  {'method':64s} {'triples/s':>10s} {'steps/s':>8s}")
    labels = {
        "pykeen-house": f"PyKEEN {house_name} (HousEModel, sLCWA, basic sampler)",
        "pykeen": f"PyKEEN RotatE d={ROTATE_DIM} (sLCWA, basic sampler)",
        "official": f"official {house_name} (train_step, filtered negatives)",
        **names,
    }
    for key in train_requests:
        value = trained[key]["triples_per_second"]
        print(f"  {labels[key]:64s} {value:10.1f} {value / BATCH:8.3f}")
    print(f"\n  {'ratio':64s} {'ours/anchor':>12s}")
    for ours, anchor, anchor_name, _ in comparisons.values():
        ratio = trained[ours]["triples_per_second"] / trained[anchor]["triples_per_second"]
        print(f"  {names[ours] + ' / ' + anchor_name.split(' (')[0]:64s} {ratio:12.2f}")
    check = trained.get("official", {}).get("check")
    if check is not None:
        print(
            f"\nOfficial step against ours (float64, one head- and one tail-batch, same weights): relative "
            f"difference of the loss {check['loss']:.1e}, of the gradients {check['gradients']:.1e}; "
            f"subsampling weights max |Δ| {check['subsampling_weights']:.1e}"
        )
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

    def verdict(met: bool) -> str:
        return "met" if met else "NOT met"

    print("\nTargets:")
    for key, target in (("house", TRAIN_TARGET), ("rotate", TRAIN_TARGET), ("official-filtered", OFFICIAL_TARGET),
                        ("official", OFFICIAL_TARGET)):  # fmt: skip
        if key in comparisons:
            ours, anchor, anchor_name, _ = comparisons[key]
            ratio = trained[ours]["triples_per_second"] / trained[anchor]["triples_per_second"]
            print(
                f"  training throughput {names[ours]} / {anchor_name.split(' (')[0]} >= {target:g}: {ratio:.2f} "
                f"({verdict(ratio >= target)})"
            )
    if "official" not in trained:
        print("  official code: not measured (no --official-dir)")
    if check is not None:
        same = check["loss"] <= CHECK_TOLERANCE and check["gradients"] <= CHECK_TOLERANCE
        same = same and check["subsampling_weights"] <= CHECK_TOLERANCE
        print(
            f"  official step equals ours (loss, gradients, weights within {CHECK_TOLERANCE:g}): {verdict(same)}"
        )
    eval_speedup = test["seconds"] / evaluated["rotate"]["seconds"]
    print(
        f"  evaluation speed-up PyKEEN / ours RotatE >= {EVAL_TARGET:g}: {eval_speedup:.2f} "
        f"({verdict(eval_speedup >= EVAL_TARGET)})"
    )
    if wn_seconds is not None:
        print(
            f"  WN18RR HousE evaluation < {WN18RR_TARGET:g} s: {wn_seconds:.1f} s "
            f"({verdict(wn_seconds < WN18RR_TARGET)})"
        )
    print(
        json.dumps(
            {
                "bench": str(path),
                "headline_ratio": headline.ratio,
                "seconds": round(time.perf_counter() - began, 1),
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
