"""Meta-training step time: tasks batched (``batched=True``) against a per-task loop, and ERM throughput.

Workload: the interaction model of the reproduction (fingerprint encoder 64 wide, 2-layer protein CNN of 64
channels, attentive bilinear head) on the synthetic benchmark; a meta-step is the paper's — 5 families, support
1 + 1, query 4 + 4, 5 inner SGD steps — with first-order MAML and with full MAML. Each variant runs interleaved
with the others, ``--repeats`` times, and its median step time is reported; both variants compute the same
meta-gradient (the tests check that).

- Headline: our batched first-order step time against the straightforward sequential loop over tasks with the
  same model and the same functional inner loop (ratio = ours / loop: below 1 means ours is faster). Batched, the
  fingerprint model's tasks run with stacked per-task parameters in one forward (``meta.stacked_forward``).
- Rows: the same for full MAML; the released code's in-place sequential update (``official``); learn2learn's
  ``MAML`` wrapper (clone, adapt, backward per task) when it is installed — it is not on this Python: its build
  pins old Cython and gym releases; ERM pairs per second at batch 64.

Writes ``bench.json`` under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from portal_learning import __version__
from portal_learning.meta import FamilyTasks, MetaConfig, meta_step
from portal_learning.model import CPIConfig, CPIModel
from portal_learning.splits import four_way_split
from portal_learning.synthetic import SynthSettings, generate
from portal_learning.train import PairData

from papers_common import Anchor, Bench, InputError, Measurement, machine_info, write_bench

MODEL = CPIConfig(
    chemical="fingerprint", gin_hidden=64, protein_embedding=32, protein_channels=64, protein_layers=2
)


def _learn2learn_step(
    model: CPIModel, episode: Callable[[], tuple[list, list]], config: MetaConfig
) -> Callable[[], None]:
    """One first-order meta-step through learn2learn's MAML wrapper (clone, adapt, backward per task)."""
    import learn2learn as l2l

    wrapped = l2l.algorithms.MAML(model, lr=config.inner_lr, first_order=True)
    optimizer = torch.optim.Adam(wrapped.parameters(), lr=1e-3)

    def step() -> None:
        supports, queries = episode()
        optimizer.zero_grad(set_to_none=True)
        for (inputs, labels), (query_inputs, query_labels) in zip(supports, queries, strict=True):
            learner = wrapped.clone()
            for _ in range(config.inner_steps):
                learner.adapt(torch.nn.functional.cross_entropy(learner(*inputs), labels))
            torch.nn.functional.cross_entropy(learner(*query_inputs), query_labels).backward()
        optimizer.step()

    return step


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("reports/portal-learning"))
    parser.add_argument("--repeats", type=int, default=20, help="meta-steps timed per variant")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    try:
        if args.repeats < 3 or args.threads < 1:
            raise InputError("--repeats must be at least 3 and --threads at least 1")
        if args.out.exists() and not args.out.is_dir():
            raise InputError(f"--out {args.out}: a file is in the way")
        return run(args)
    except InputError as error:
        print(f"bench-portal-learning: error: {error}", file=sys.stderr)
        return 2


def run(args: argparse.Namespace) -> int:
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    benchmark = generate(SynthSettings(families=40, molecules=300, pairs_per_member=8, seed=0))
    records = benchmark.records
    split = four_way_split(records)
    data = PairData(records, MODEL)
    rows = np.array(split.ood_train)
    tasks = FamilyTasks(np.array([r.family for r in records]), data.labels, rows)
    rng = np.random.default_rng(0)
    device = torch.device("cpu")

    def episode() -> tuple[list, list]:
        chosen = tasks.sample(rng, 5, 1, 4)
        length = max(len(data.sequences[i]) for t in chosen for i in np.concatenate([t.support, t.query]))

        def labelled(part: np.ndarray) -> tuple:
            return data.batch(part.tolist(), device, length), torch.from_numpy(data.labels[part])

        return [labelled(t.support) for t in chosen], [labelled(t.query) for t in chosen]

    variants: dict[str, Callable[[], None]] = {}
    for mode in ("fomaml", "maml", "official"):
        config = MetaConfig(mode=mode)
        for batched in (True, False) if mode != "official" else (False,):
            model = CPIModel(MODEL)
            optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

            def step(model=model, optimizer=optimizer, config=config, batched=batched) -> None:
                supports, queries = episode()
                meta_step(model, supports, queries, config, optimizer, batched=batched)

            variants[f"{mode}-{'batched' if batched else 'loop'}"] = step
    learn2learn_version = None
    try:
        import learn2learn

        learn2learn_version = learn2learn.__version__
        variants["learn2learn-fomaml"] = _learn2learn_step(CPIModel(MODEL), episode, MetaConfig())
    except ImportError:
        pass
    times: dict[str, list[float]] = {name: [] for name in variants}
    for step in variants.values():  # warm-up
        step()
    for _ in range(args.repeats):
        for name, step in variants.items():
            started = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - started)
    median = {name: statistics.median(values) for name, values in times.items()}
    erm_model = CPIModel(MODEL)
    erm_optimizer = torch.optim.Adam(erm_model.parameters(), lr=1e-3)
    order = np.random.default_rng(1).permutation(rows)
    batches = [order[k : k + 64] for k in range(0, len(order) - 63, 64)]
    started = time.perf_counter()
    for batch in batches:
        loss = torch.nn.functional.cross_entropy(erm_model(*data.batch(batch.tolist(), device)),
                                                 torch.from_numpy(data.labels[batch]))  # fmt: skip
        erm_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        erm_optimizer.step()
    erm_pairs_per_s = 64 * len(batches) / (time.perf_counter() - started)
    loop = Anchor("per-task loop (same model, same functional inner loop)", __version__)
    workload = "meta-step: 5 families x (support 1+1, query 4+4), 5 inner SGD steps, fingerprint CPI model"
    headline = Measurement(
        f"{workload}; FOMAML step time, tasks batched vs the per-task loop",
        "seconds per meta-step",
        "s",
        median["fomaml-batched"],
        median["fomaml-loop"],
        False,
        loop,
    )
    measured = [
        Measurement(f"{workload}; full MAML step time", "seconds per meta-step", "s", median["maml-batched"],
                    median["maml-loop"], False, loop),
        Measurement(f"{workload}; FOMAML (batched) vs the released code's sequential in-place update", "seconds per "
                    "meta-step", "s", median["fomaml-batched"], median["official-loop"], False,
                    Anchor("released-code update (mode official)", __version__)),
        Measurement("ERM on OOD-train pairs, batch 64", "pairs per second", "pairs/s", erm_pairs_per_s,
                    erm_pairs_per_s, True, Anchor("itself (throughput only)", __version__)),
    ]  # fmt: skip
    if learn2learn_version is not None:
        measured.append(Measurement(f"{workload}; FOMAML (batched) vs learn2learn MAML(first_order=True)",
                                    "seconds per meta-step", "s", median["fomaml-batched"],
                                    median["learn2learn-fomaml"], False, Anchor("learn2learn", learn2learn_version)))  # fmt: skip
    machine = {**machine_info(), "threads": args.threads, "repeats": args.repeats,
               "learn2learn": learn2learn_version or "not installable on this Python (see the module docstring)"}  # fmt: skip
    path = write_bench(Bench("portal-learning", loop, headline, machine, measured), args.out)
    print(json.dumps({"median_seconds": median, "erm_pairs_per_s": erm_pairs_per_s}, indent=1))
    print(f"FOMAML meta-step: batched {median['fomaml-batched']:.3f} s, loop {median['fomaml-loop']:.3f} s "
          f"({1 / headline.ratio:.2f}x faster); wrote {path}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
