"""``metro-lm``: train a tokenizer, pretrain, fine-tune, predict and reproduce from the command line (parsing only)."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from metro_lm import __version__
from papers_common import App, InputError, option, pick_device, seed_everything

app = App(
    "metro-lm",
    description="METRO (Bajaj et al., 2022): ELECTRA-style denoising pretraining with model-generated signals, "
    "as Hugging Face models. Train a tokenizer on text files, pretrain (mlm, electra or metro; torchrun for "
    "several processes or GPUs), fine-tune on GLUE-format TSV tasks, predict, reproduce the paper's claims.",
    version=__version__,
)


@dataclass
class TokenizerArgs:
    files: list[Path] = option(help="text files or folders of *.txt to train on", metavar="PATH")
    out: Path = option(
        Path("tokenizer"), help="folder for the tokenizer (loads with AutoTokenizer)", output="dir"
    )
    vocab_size: int = option(0, help="vocabulary size (0: fitted to the corpus size, 512 to 8,000; 32,000 above 400 MB)")  # fmt: skip
    kind: Literal["bpe", "unigram", "wordpiece"] = option("bpe", help="byte-level BPE, unigram or WordPiece")
    lowercase: bool = option(False, help="lower-case the text first")
    min_frequency: int = option(2, help="fewest occurrences of a merged piece (bpe, wordpiece)")
    exclude: list[str] = option(["METADATA.txt"], help="file names to leave out")
    strict: bool = option(False, help="stop at an empty or non-UTF-8 file instead of skipping it")


@dataclass
class PretrainArgs:
    corpus: list[Path] = option(help="text files or folders of *.txt", metavar="PATH")
    out: Path = option(
        Path("runs/pretrain"),
        help="run folder: config, metrics, checkpoints, model/ (resumed when it holds a checkpoint)",
        output="dir",
    )
    seed: int = option(0, help="seeds initialisation, data order, masking and sampling")
    device: str = option(
        "auto",
        help="'auto', 'cpu', 'cuda' or 'cuda:N' (under torchrun each process takes its LOCAL_RANK GPU)",
    )
    tokenizer: Path | None = option(None, help="a tokenizer folder (default: train one into OUT/tokenizer)")
    objective: Literal["metro", "electra", "mlm"] = option("metro", help="metro (RTD + generator MLM + corrective LM), electra or mlm")  # fmt: skip
    size: Literal["auto", "tiny", "small", "base"] = option("auto", help="model preset (auto: by the corpus's training tokens)")  # fmt: skip
    seq_len: int = option(0, help="tokens per packed sequence (0: 128, shorter for a tiny corpus)")
    batch_size: int = option(0, help="sequences per optimizer step over all processes (0: fitted)")
    max_steps: int = option(0, help="optimizer steps (0: 10 passes over the corpus, 20 to 125,000)")
    warmup_steps: int = option(-1, help="linear warm-up steps (-1: 6%% of the steps)")
    lr: float = option(0.0, help="peak learning rate (0: 5e-4, 4e-4 for base)")
    grad_accumulation: int = option(1, help="micro-batches per process and step")
    clip_norm: float = option(1.0, help="gradient-norm clip (0: off)")
    weight_decay: float = option(0.01, help="AdamW weight decay")
    precision: Literal["auto", "fp32", "bf16"] = option("auto", help="bf16 autocast (auto: on CUDA devices that support it)")  # fmt: skip
    position_embedding: Literal["auto", "relative", "absolute"] = option("auto", help="auto: relative for metro, absolute for electra and mlm")  # fmt: skip
    layer_norm: Literal["post", "pre"] = option(
        "post", help="Post-LN (METRO's, with the scaled init) or Pre-LN"
    )
    scaled_init: Literal["auto", "on", "off"] = option("auto", help="scaled init of residual projections (auto: on for metro)")  # fmt: skip
    vocab_size: int = option(0, help="vocabulary of a tokenizer trained here (0: fitted to the corpus)")
    mode: Literal["file", "line"] = option("file", help="one document per file or per non-empty line")
    exclude: list[str] = option(["METADATA.txt"], help="file names to leave out")
    valid_fraction: float = option(0.05, help="share of documents held out for evaluation")
    strict: bool = option(False, help="stop at an empty or non-UTF-8 file instead of skipping it")
    log_every: int = option(10, help="steps between metrics.jsonl records")
    eval_every: int = option(0, help="steps between held-out evaluations (0: at the end)")
    save_every: int = option(500, help="steps between checkpoints (0: at the end)")
    threads: int | None = option(
        None,
        help="torch CPU threads (default: one per available core); a fixed count makes the same seed give the "
        "same numbers whatever the number of cores",
    )


@dataclass
class FinetuneArgs:
    model: Path = option(help="a pretraining run's model/ folder (or a fine-tuned one)", metavar="DIR")
    task_dir: Path = option(help="folder with train.tsv and dev.tsv (GLUE layout)", metavar="DIR")
    out: Path = option(
        Path("runs/finetune"), help="folder for model/, metrics.json and config.json", output="dir"
    )
    seed: int = option(0, help="seeds the head and the example order")
    device: str = option("auto", help="'auto', 'cpu', 'cuda' or 'cuda:N'")
    task: str = option("", help="cola, sst-2, mrpc, sts-b, qqp, mnli, qnli, rte, wnli or generic (default: from the folder name)")  # fmt: skip
    epochs: float = option(3.0, help="passes over train.tsv")
    batch_size: int = option(32, help="examples per step")
    lr: float = option(1e-4, help="peak learning rate")
    max_length: int = option(128, help="tokens per example (longer ones are truncated)")
    keep: Literal["best", "last"] = option("best", help="save the model of the epoch with the best dev score, or the last")  # fmt: skip
    threads: int | None = option(
        None,
        help="torch CPU threads (default: one per available core); a fixed count makes the same seed give the "
        "same numbers whatever the number of cores",
    )


@dataclass
class PredictArgs:
    model: Path = option(help="a fine-tuned model folder (OUT/model of finetune)", metavar="DIR")
    input: Path = option(
        help="a TSV with a 'sentence' column (or 'sentence1' and 'sentence2')", metavar="FILE"
    )
    output: Path | None = option(
        None, help="write the predictions here, one per line (default: print them)", output="file"
    )


@dataclass
class ConfigArgs:
    preset: Literal["tiny", "small", "base"] = option("tiny", help="tiny (a laptop), small (ELECTRA-Small's size and schedule) or base (METRO base, torchrun on GPUs)")  # fmt: skip
    out: Path | None = option(None, help="write the TOML file here (default: print it)", output="file")


@dataclass
class InfoArgs:
    model: Path = option(
        help="a saved METRO model folder (pretraining, masked-LM or fine-tuned)", metavar="DIR"
    )
    json: bool = option(False, help="print the description as one JSON object")


@dataclass
class ReproduceArgs:
    out: Path = option(
        Path("reports/metro-lm"),
        help="folder for results.json/.md, tables, figures and the runs",
        output="dir",
    )
    quick: bool = option(True, help="2 seeds in about 9 minutes on a CPU (--full: 3 seeds, about 4x the pretraining steps)", flags=("--quick", "--full"))  # fmt: skip
    data_dir: Path | None = option(None, help="a folder of .txt documents (default: CPython's pydoc topics)")
    seed: int = option(0, help="random seed")
    device: str = option("cpu", help="'cpu', 'cuda' or 'auto'")
    threads: int | None = option(
        1, help="torch CPU threads, fixed so that the same seed gives the same numbers on any machine"
    )


@app.command("tokenizer", TokenizerArgs, help="train a BPE, unigram or WordPiece tokenizer on text files")
def tokenizer(args: TokenizerArgs) -> None:
    from metro_lm.data import corpus_files
    from metro_lm.pipeline import tokenizer_vocab_size
    from metro_lm.tokenizer import train_tokenizer

    files = corpus_files(args.files, exclude=args.exclude)
    size = args.vocab_size or tokenizer_vocab_size(sum(p.stat().st_size for p in files))
    tok = train_tokenizer(files, vocab_size=size, kind=args.kind, lowercase=args.lowercase,
                          min_frequency=args.min_frequency, strict=args.strict, out=args.out)  # fmt: skip
    print(json.dumps({"out": str(args.out), "vocab_size": len(tok), "files": len(files)}))


@app.command("pretrain", PretrainArgs, help="pretrain on text files; resumes when OUT holds a checkpoint")
def pretrain(args: PretrainArgs) -> None:
    from metro_lm.pipeline import Settings, pretrain_from_files
    from metro_lm.train import TrainConfig

    if args.lr < 0 or not math.isfinite(args.lr):
        raise InputError(f"--lr must be positive and finite, got {args.lr}")
    seed_everything(args.seed)
    device = pick_device(args.device)
    model: dict[str, object] = {"layer_norm": args.layer_norm}
    if args.position_embedding != "auto":
        model["position_embedding"] = args.position_embedding
    elif args.objective != "metro":
        model["position_embedding"] = "absolute"
    if args.scaled_init != "auto":
        model["scaled_init"] = args.scaled_init == "on"
    elif args.objective != "metro":
        model["scaled_init"] = False
    settings = Settings(objective=args.objective, size=args.size, seq_len=args.seq_len or None,
                        batch_size=args.batch_size or None, steps=args.max_steps or None,
                        warmup_steps=None if args.warmup_steps < 0 else args.warmup_steps, lr=args.lr or None,
                        model=model)  # fmt: skip
    train = TrainConfig(grad_accumulation=args.grad_accumulation, clip_norm=args.clip_norm,
                        weight_decay=args.weight_decay, precision=args.precision, seed=args.seed,
                        log_every=args.log_every, eval_every=args.eval_every, save_every=args.save_every)  # fmt: skip
    done = pretrain_from_files(args.corpus, args.out, settings, tokenizer=args.tokenizer,
                               vocab_size=args.vocab_size or None, mode=args.mode, exclude=tuple(args.exclude),
                               valid_fraction=args.valid_fraction, strict=args.strict, train=train,
                               device=str(device))  # fmt: skip
    result = done.result
    print(json.dumps({"out": str(args.out), "model": str(args.out / "model"), "steps": result.steps,
                      "diverged_at": result.diverged_at, "tokens_per_second": round(result.tokens_per_second),
                      "final_eval": result.final_eval, "settings": done.resolved["settings"]}))  # fmt: skip


@app.command(
    "finetune", FinetuneArgs, help="fine-tune on a GLUE-format TSV task; writes OUT/model and metrics"
)
def finetune(args: FinetuneArgs) -> None:
    from metro_lm.finetune import FinetuneConfig, read_task, read_test
    from metro_lm.finetune import finetune as run_finetune
    from metro_lm.finetune import predict as run_predict
    from metro_lm.tokenizer import load_tokenizer
    from papers_common import write_text

    seed_everything(args.seed)
    device = pick_device(args.device)
    fmt, train, dev = read_task(args.task_dir, args.task or None)
    test = read_test(args.task_dir, fmt)  # read now: a malformed test file stops the run before training
    config = FinetuneConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                            max_length=args.max_length, seed=args.seed, keep=args.keep)  # fmt: skip
    result = run_finetune(args.model, None, train, dev, fmt, config, out=args.out, device=str(device))
    done = {"task": fmt.name, "out": str(args.out), "model": str(args.out / "model"), "metrics": result.metrics,
            "kept_epoch": result.kept_epoch, "config": asdict(config)}  # fmt: skip
    if test is not None:
        ids, texts_a, texts_b = test
        labels = run_predict(result.model, texts_a, texts_b, tokenizer=load_tokenizer(args.out / "model"),
                             max_length=args.max_length, device=str(device))  # fmt: skip
        rows = "".join(f"{i}\t{label}\n" for i, label in zip(ids, labels, strict=True))
        write_text(args.out / "test_predictions.tsv", "index\tprediction\n" + rows)
        done["test_predictions"] = str(args.out / "test_predictions.tsv")
    print(json.dumps(done))


@app.command("predict", PredictArgs, help="label the sentences of a TSV with a fine-tuned model")
def predict(args: PredictArgs) -> None:
    from metro_lm.finetune import predict as run_predict
    from metro_lm.finetune import read_inputs
    from papers_common import write_text

    texts_a, texts_b = read_inputs(args.input)
    labels = run_predict(args.model, texts_a, texts_b)
    lines = "\n".join(str(v) for v in labels) + "\n"
    if args.output is None:
        print(lines, end="")
    else:
        write_text(args.output, lines)


@app.command(
    "config", ConfigArgs, help="write a shipped pretraining config (tiny, small, base) to use with --config"
)
def config(args: ConfigArgs) -> None:
    from importlib.resources import files

    from papers_common import write_text

    text = (files("metro_lm") / "presets" / f"{args.preset}.toml").read_text(encoding="utf-8")
    if args.out is None:
        print(text, end="")
    else:
        write_text(args.out, text)
        print(json.dumps({"preset": args.preset, "out": str(args.out)}))


@app.command(
    "info", InfoArgs, help="describe a saved model: config, parameters of main model and generator, tie"
)
def info(args: InfoArgs) -> None:
    from metro_lm.model_files import inventory

    found = inventory(args.model)
    print(found.to_json() if args.json else "\n".join(found.lines()))


@app.command("reproduce", ReproduceArgs, help="measure the paper's claims; write results.json/.md and figures",
             extra="reproduce")  # fmt: skip
def reproduce(args: ReproduceArgs) -> None:
    from metro_lm.reproduce import run

    seed_everything(args.seed)
    results = run(args.out, quick=args.quick, data_dir=args.data_dir, seed=args.seed,
                  device=str(pick_device(args.device)))  # fmt: skip
    for line in results.summary_lines():
        print(line)
    print(f"wrote {args.out / 'results.json'} and {args.out / 'results.md'}")


def main() -> None:
    raise SystemExit(app.main())


if __name__ == "__main__":
    main()
