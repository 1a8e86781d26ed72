"""``urpe``: train, evaluate and reproduce from the command line (argument parsing only)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from papers_common import App, InputError, RunArgs, RunDir, option, pick_device, seed_everything, to_jsonable
from urpe import __version__

app = App(
    "urpe",
    description="Universal RPE attention (Luo et al., NeurIPS 2022): train and evaluate Transformers with "
    "none/absolute/RPE/URPE positions on the paper's synthetic tasks or on your own text.",
    version=__version__,
)


@dataclass
class TrainArgs(RunArgs):
    task: Literal["position-identification", "even-token", "lm"] = option(
        "position-identification", help="what to learn"
    )
    position: Literal["none", "absolute", "rpe", "urpe"] = option("urpe", help="position encoding")
    data: Path | None = option(None, help="folder of .txt files (task lm)")
    seq_len: int = option(32, help="sequence length L")
    vocab: int = option(10, help="input vocabulary of the synthetic tasks")
    d_model: int = option(64, help="model width")
    num_heads: int = option(4, help="attention heads")
    num_layers: int = option(3, help="Transformer layers")
    ffn_dim: int = option(256, help="feed-forward width")
    dropout: float = option(0.0, help="dropout (also on attention weights)")
    rel_mode: Literal["unique", "bucket"] = option(
        "unique", help="relative offsets: one entry each, or T5 log buckets"
    )
    num_buckets: int = option(32, help="buckets (rel_mode bucket)")
    max_distance: int = option(128, help="largest bucketed distance (rel_mode bucket)")
    steps: int = option(2000, help="optimizer steps (--quick: at most 300)")
    batch_size: int = option(64, help="sequences per step")
    lr: float = option(1e-3, help="peak Adam learning rate")
    warmup: int = option(200, help="linear warm-up steps")
    eval_batches: int = option(20, help="evaluation batches")
    checkpoint_every: int = option(0, help="save a checkpoint every N steps (0: at the end only)")


@dataclass
class EvaluateArgs:
    checkpoint: Path = option(
        help="a saved model folder (a run's model/ or a copy of it), a run directory written by `urpe train`, "
        "or a training checkpoint file or directory"
    )
    data: Path | None = option(None, help="folder of .txt files (language models)")
    eval_batches: int = option(20, help="evaluation batches")
    batch_size: int = option(64, help="sequences per batch")
    seed: int = option(0, help="seed of the evaluation batches (synthetic tasks)")
    device: str = option("auto", help="'auto', 'cpu', 'cuda' or 'cuda:N'")


@dataclass
class ReproduceArgs(RunArgs):
    out: Path = option(
        Path("reports/urpe"),
        help="directory for results.json, results.md, figures and runs/ (finished or interrupted runs there are resumed)",
        output="dir",
    )
    quick: bool = option(
        True,
        help="the quick version (minutes on a CPU); --full: larger models and the LM claim",
        flags=("--quick", "--full"),
    )
    data_dir: Path | None = option(
        None, help="folder of .txt files for the language-model claim (needed by --full)"
    )
    threads: int | None = option(
        1, help="torch CPU threads, fixed so that the same seed gives the same numbers on any machine"
    )


@app.command("train", TrainArgs, help="train one model on a synthetic task or a text folder")
def train(args: TrainArgs) -> None:
    from urpe.experiment import ModelSize, language_model, synthetic_model
    from urpe.tasks import SyntheticTask
    from urpe.text import TextCorpus
    from urpe.train import Schedule, train_lm, train_synthetic

    seed_everything(args.seed)
    device = pick_device(args.device)
    size = ModelSize(
        args.d_model,
        args.num_heads,
        args.num_layers,
        args.ffn_dim,
        args.dropout,
        args.rel_mode,
        args.num_buckets,
        args.max_distance,
    )
    steps = min(args.steps, 300) if args.quick else args.steps
    schedule = Schedule(
        steps,
        args.batch_size,
        args.lr,
        min(args.warmup, steps),
        eval_batches=args.eval_batches,
        checkpoint_every=args.checkpoint_every,
    )
    run = RunDir(args.out)
    recorded = {"command_line": to_jsonable(args)}
    if args.task == "lm":
        if args.data is None:
            raise InputError("--task lm needs --data FOLDER (text files)")
        result = train_lm(
            language_model(args.seq_len, args.position, size),
            TextCorpus(args.data),
            schedule,
            seed=args.seed,
            device=device,
            run=run,
            extra_config=recorded,
        )
    else:
        task = SyntheticTask(args.task, args.seq_len, args.vocab)
        result = train_synthetic(
            synthetic_model(task, args.position, size),
            task,
            schedule,
            seed=args.seed,
            device=device,
            run=run,
            extra_config=recorded,
        )
    print(json.dumps({"steps": result.steps, "seconds": round(result.seconds, 1), **result.metrics}))


@app.command("evaluate", EvaluateArgs, help="evaluate a trained model on fresh batches or validation text")
def evaluate(args: EvaluateArgs) -> None:
    from urpe.train import evaluate_lm, evaluate_synthetic, load_trained

    device = pick_device(args.device)
    trained = load_trained(args.checkpoint, map_location=device)
    if trained.task is not None:
        metrics = evaluate_synthetic(
            trained.model,
            trained.task,
            batches=args.eval_batches,
            batch_size=args.batch_size,
            seed=args.seed,
            device=device,
        )
    else:
        if args.data is None:
            raise InputError(
                f"{trained.source} is a language model: give --data FOLDER (text to evaluate on)"
            )
        metrics = evaluate_lm(
            trained.model,
            trained.corpus(args.data),
            batches=args.eval_batches,
            batch_size=args.batch_size,
            device=device,
        )
    print(json.dumps(metrics))


@app.command(
    "reproduce",
    ReproduceArgs,
    help="reproduce the paper's key claims and write results.json/.md and figures",
    extra="reproduce",
)
def reproduce(args: ReproduceArgs) -> None:
    from urpe.reproduce import run

    seed_everything(args.seed)
    results = run(
        args.out, quick=args.quick, seed=args.seed, device=pick_device(args.device), data_dir=args.data_dir
    )
    for line in results.summary_lines():
        print(line)
    print(f"wrote {args.out / 'results.json'} and {args.out / 'results.md'}")


def main() -> None:
    raise SystemExit(app.main())
