"""``house-kge``: train, evaluate, predict and reproduce from the command line (argument parsing only)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from house_kge import __version__
from house_kge.data import Unseen
from papers_common import App, InputError, RunArgs, RunDir, option, pick_device, seed_everything, to_jsonable

if TYPE_CHECKING:
    import torch

    from house_kge.data import KnowledgeGraph
    from house_kge.models import BlockModel

app = App(
    "house-kge",
    description="HousE knowledge-graph embeddings (Li et al., ICML 2022): Householder rotations and projections. "
    "Train on a directory of head<TAB>relation<TAB>tail files (WN18RR/FB15k-237 layout) or a bundled dataset, "
    "evaluate filtered MRR/Hits@k, and predict missing entities.",
    version=__version__,
)

ModelName = Literal["house", "house-r", "house+", "house-r+", "rotate"]


@dataclass
class TrainArgs(RunArgs):
    dataset: str = option(
        "umls",
        help="a dataset directory, a name under --data-dir, wn18rr/fb15k-237 (downloaded once), or "
        "nations/umls/kinships (pykeen)",
    )
    data_dir: Path | None = option(None, help="folder holding <dataset>/train.txt, valid.txt, test.txt")
    model: ModelName = option("house", help="HousE variant, or the RotatE baseline")
    paper_config: str | None = option(
        None,
        help="the paper's model and training settings, e.g. house/wn18rr (replaces --model ... --regularization)",
    )
    dim: int = option(400, help="entity dimension d (RotatE: complex dimensions)")
    k: int = option(8, help="HousE block size (must divide --dim)")
    reflections: int | None = option(None, help="reflections per rotation (default: k, or k-1 for odd k)")
    projections: int = option(1, help="Householder projections per side (house, house+)")
    threshold: float = option(0.5, help="upper clamp of the projection strength tau")
    gamma: float = option(12.0, help="margin gamma")
    steps: int = option(10_000, help="optimizer steps (--quick: at most 500)")
    batch_size: int = option(512, help="positive triples per step")
    negatives: int = option(128, help="negatives per positive")
    alpha: float = option(1.0, help="self-adversarial temperature (0: uniform)")
    lr: float = option(1e-3, help="Adam learning rate")
    warm_up: int | None = option(None, help="step of the first tenfold lr drop (default: steps/2)")
    regularization: float = option(0.0, help="weight of the mean entity norm")
    filter_negatives: bool = option(
        True,
        help="skip true triples when sampling negatives",
        flags=("--filter-negatives", "--no-filter-negatives"),
    )
    eval_every: int = option(0, help="validation metrics every N steps (0: only the final test evaluation)")
    checkpoint_every: int = option(1000, help="checkpoint every N steps")
    unseen: Unseen = option(
        "keep",
        help="valid/test triples whose entities or relations never occur in training: keep and rank them (the "
        "official protocol), drop them, or stop with an error",
    )


@dataclass
class EvaluateArgs:
    checkpoint: Path = option(
        help="a saved model folder (a run's model/, config.json + model.safetensors + triples.safetensors) or a run "
        "directory of `house-kge train`"
    )
    split: Literal["valid", "test"] = option("test", help="which split to rank")
    batch_size: int = option(256, help="queries per batch (each batch holds one relation)")
    device: str = option("auto", help="'auto', 'cpu', 'cuda' or 'cuda:N'")


@dataclass
class PredictArgs:
    checkpoint: Path = option(
        help="a saved model folder (a run's model/) or a run directory of `house-kge train`"
    )
    relation: str = option(help="relation name")
    head: str | None = option(None, help="known head: predict tails")
    tail: str | None = option(None, help="known tail: predict heads")
    top: int = option(10, help="how many candidates to print")
    known: bool = option(
        False, help="also list candidates already true in the data", flags=("--known", "--unknown-only")
    )


@dataclass
class ReproduceArgs(RunArgs):
    out: Path = option(
        Path("reports/house-kge"),
        help="directory for results.json, results.md, tables and figures",
        output="dir",
    )
    quick: bool = option(
        True, help="minutes on a CPU (--full: larger models and WN18RR)", flags=("--quick", "--full")
    )
    data_dir: Path | None = option(
        None,
        help="folder whose countries_S3/, umls/, nations/ replace the shipped and PyKEEN copies; for --full, its "
        "wn18rr/ adds the WN18RR claim",
    )
    threads: int | None = option(
        1, help="torch CPU threads, fixed so that the same seed gives the same numbers on any machine"
    )


def _trained(path: Path, device: str | torch.device) -> tuple[BlockModel, KnowledgeGraph]:
    """The model and graph at ``path``: a saved model folder, a run directory (its ``model/``), or its
    ``checkpoints/``.

    A run without ``model/`` (written before 0.2.0, or interrupted) loads its latest checkpoint and reads the dataset
    again from where its ``config.json`` says training read it.
    """
    from house_kge.data import load_dataset
    from house_kge.models import HousE, RotatE
    from house_kge.saved import load_trained, trained_folder

    root = path.parent if path.name == "checkpoints" else path
    folder = trained_folder(root)
    if folder is not None:
        return load_trained(folder, map_location=device)
    config_path = root / "config.json"
    if not config_path.is_file() or not (root / "checkpoints").is_dir():
        raise InputError(
            f"{path}: neither a saved model folder (config.json + model.safetensors) nor a run directory of "
            "`house-kge train`"
        )
    config = json.loads(config_path.read_text(encoding="utf-8"))
    source = config["command_line"]
    # a 0.1.0 run dropped unseen valid/test triples unless it was --strict
    unseen = source.get("unseen") or ("error" if source.get("strict") else "drop")
    graph = load_dataset(source["dataset"], data_dir=source["data_dir"], unseen=unseen)
    cls = {"HousE": HousE, "RotatE": RotatE}[config["model_class"]]
    return cls.from_pretrained(root / "checkpoints", map_location=device), graph


@app.command("train", TrainArgs, help="train HousE (or RotatE) and report filtered test metrics")
def train(args: TrainArgs) -> None:
    from house_kge.configs import paper_config
    from house_kge.data import load_dataset
    from house_kge.evaluation import countries_auc_pr, evaluate
    from house_kge.models import HousE, HousEConfig, RotatE, RotatEConfig
    from house_kge.sampling import AnswerIndex
    from house_kge.train import TrainConfig, sized_for
    from house_kge.train import train as fit

    seed_everything(args.seed)
    device = pick_device(args.device)
    graph = load_dataset(args.dataset, data_dir=args.data_dir, unseen=args.unseen)
    for split, count in graph.unseen.items():
        what = "skipped" if args.unseen == "drop" else "kept and ranked"
        print(
            f"note: {count} {split} triples have entities or relations unseen in training: {what} (--unseen)"
        )
    preset = paper_config(args.paper_config) if args.paper_config else {"model": {}, "train": {}}
    model_settings = {"dim": args.dim, "k": args.k, "reflections": args.reflections, "projections": args.projections,
                      "threshold": args.threshold, "gamma": args.gamma, **preset["model"]}  # fmt: skip
    if args.model == "rotate":
        model: BlockModel = RotatE(
            RotatEConfig(
                graph.num_entities, graph.num_relations, model_settings["dim"], model_settings["gamma"]
            )
        )
    else:
        model_settings["variant"] = preset["model"].get("variant", args.model)
        model = HousE(HousEConfig(graph.num_entities, graph.num_relations, **model_settings))
    train_settings = {"steps": min(args.steps, 500) if args.quick else args.steps, "batch_size": args.batch_size,
                      "negatives": args.negatives, "alpha": args.alpha, "lr": args.lr, "warm_up": args.warm_up,
                      "regularization": args.regularization, "filter_negatives": args.filter_negatives,
                      "eval_every": args.eval_every, "checkpoint_every": args.checkpoint_every, **preset["train"]}  # fmt: skip
    config, capped = sized_for(TrainConfig(**train_settings), graph)
    for name, (asked, used) in capped.items():
        print(f"note: --{name.replace('_', '-')} {asked} capped at {used} for {graph.name}")
    run = RunDir(args.out)
    result = fit(model, graph, config, seed=args.seed, device=device, run=run,
                 extra_config={"command_line": to_jsonable(args), "capped": capped})  # fmt: skip
    metrics = evaluate(
        model,
        graph.test,
        AnswerIndex(graph.all_triples(), graph.num_entities, graph.num_relations),
        desc="test",
    )
    if graph.regions is not None:
        metrics["auc_pr"] = countries_auc_pr(model, graph.test, graph.regions)
    run.write_json("final_metrics.json", metrics)
    print(
        json.dumps(
            {"steps": result.steps, "triples_per_second": round(result.triples_per_second, 1), **metrics}
        )
    )


@app.command(
    "evaluate", EvaluateArgs, help="filtered MRR, MR and Hits@k of a trained run (AUC-PR for Countries)"
)
def evaluate(args: EvaluateArgs) -> None:
    from house_kge.evaluation import countries_auc_pr
    from house_kge.evaluation import evaluate as rank
    from house_kge.sampling import AnswerIndex

    model, graph = _trained(args.checkpoint, pick_device(args.device))
    triples = getattr(graph, args.split)
    metrics = rank(model, triples, AnswerIndex(graph.all_triples(), graph.num_entities, graph.num_relations),
                   batch_size=args.batch_size, desc=args.split)  # fmt: skip
    if graph.regions is not None:
        metrics["auc_pr"] = countries_auc_pr(model, triples, graph.regions)
    print(json.dumps(metrics))


@app.command("predict", PredictArgs, help="rank every entity as the missing tail (--head) or head (--tail)")
def predict(args: PredictArgs) -> None:
    import torch

    from house_kge.sampling import AnswerIndex

    if (args.head is None) == (args.tail is None):
        raise InputError("give exactly one of --head (predict tails) or --tail (predict heads)")
    model, graph = _trained(args.checkpoint, "cpu")
    direction = "tail" if args.head is not None else "head"
    known = torch.tensor([graph.entity_id(args.head if args.head is not None else args.tail)])
    relation = torch.tensor([graph.relation_id(args.relation)])
    with torch.no_grad():
        scores = model.score_all(known, relation, direction)[0]
    true = torch.zeros_like(scores, dtype=torch.bool)
    _, answers = AnswerIndex(graph.all_triples(), graph.num_entities, graph.num_relations).answers(
        known, relation, direction
    )
    true[answers] = True
    if not args.known:
        scores = scores.masked_fill(true, float("-inf"))
    top = scores.topk(min(args.top, int(torch.isfinite(scores).sum())))
    for score, entity in zip(top.values.tolist(), top.indices.tolist(), strict=True):
        mark = "\tknown" if true[entity] else ""
        print(f"{graph.entities[entity]}\t{score:.4f}{mark}")


@app.command(
    "reproduce",
    ReproduceArgs,
    help="measure the paper's claims; write results.json/.md, tables and figures",
    extra="reproduce",
)
def reproduce(args: ReproduceArgs) -> None:
    from house_kge.reproduce import run

    seed_everything(args.seed)
    results = run(
        args.out, quick=args.quick, seed=args.seed, device=pick_device(args.device), data_dir=args.data_dir
    )
    for line in results.summary_lines():
        print(line)
    print(f"wrote {args.out / 'results.json'} and {args.out / 'results.md'}")


def main() -> None:
    raise SystemExit(app.main())
