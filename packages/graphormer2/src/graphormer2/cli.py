"""``graphormer2``: preprocess molecules, train the 2D and 3D models, predict and reproduce (argument parsing only).

Every command turns its options into calls of the library: :mod:`graphormer2.datasets` (loaders and task sets),
:class:`~graphormer2.model.Graphormer` / :class:`~graphormer2.gin.GIN` / :class:`~graphormer2.model3d.Graphormer3D`,
and :func:`graphormer2.train.fit`, which writes the run directory (``config.json``, ``metrics.jsonl``,
``checkpoints/``, ``best/``) and resumes it when the same command is run again. ``train`` and ``train3d`` run under
``torchrun`` as well; then only rank 0 prints and writes. ``best/`` is a saved model (``config.json`` +
``model.safetensors``) whose ``extra`` holds what ``predict`` needs, so it works on that folder alone.

Bad input (a missing column, an unreadable file, conflicting options) ends with a one-line error and exit status 2.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from graphormer2 import __version__
from papers_common import App, InputError, RunArgs, RunDir, option, pick_device, seed_everything

if TYPE_CHECKING:
    import torch
    from torch import nn
    from torch.utils.data import Dataset, Subset

    from graphormer2.atoms import AtomsItem
    from graphormer2.datasets import MoleculeDataset
    from graphormer2.train import FitResult, Objective, TrainConfig

app = App(
    "graphormer2",
    description="Graphormer-V2 (Shi et al., 2022) without fairseq: preprocess molecules from CSV/SDF files, train "
    "the 2D Graphormer (or a GIN baseline) on molecular properties and Graphormer-3D on initial-to-relaxed "
    "energies and displacements, predict properties of new SMILES, and reproduce the paper's claims at CPU scale.",
    version=__version__,
)

Task2D = Literal["tpsa", "sdf-props", "wiener"]
SPLIT_HELP = "train, valid and test fractions of a random split drawn from --seed"


@dataclass(kw_only=True)
class MoleculeSourceArgs:
    """Where 2D molecules come from and how they are preprocessed (:mod:`graphormer2.datasets`)."""

    csv: Path | None = option(None, help="a CSV file of SMILES and targets (header line with column names)")
    smiles_col: str = option("smiles", help="the SMILES column of --csv")
    target_col: list[str] = option(
        [], help="target column(s) of --csv, several after one flag: --target-col y1 y2"
    )
    sdf: Path | None = option(None, help="an SDF file whose numeric SD properties are the targets")
    target_prop: list[str] = option([], help="SD properties used as targets, several after one flag")
    max_nodes: int = option(128, help="skip molecules with more heavy atoms (too_many_atoms)")
    multi_hop_max_dist: int = option(5, help="L: hops of each shortest path kept for the edge encoding")
    strict: bool = option(False, help="stop at the first unusable molecule instead of skipping it")
    rejects: Path | None = option(
        None, help="write the skipped molecules to this CSV (row,smiles,reason)", output="file"
    )
    limit: int | None = option(None, help="read only the first N molecules")
    cache_dir: Path | None = option(
        None, help="keep preprocessed molecules here and reuse them on the next run", output="dir"
    )


@dataclass(kw_only=True)
class PreprocessArgs(MoleculeSourceArgs):
    out: Path = option(
        help="the dataset file to write (read by `graphormer2 train --dataset`)", output="file"
    )


@dataclass(kw_only=True)
class TrainingArgs:
    """The options mapped onto :class:`graphormer2.train.TrainConfig` and the run directory."""

    out: Path = option(
        help="the run directory (config.json, metrics.jsonl, checkpoints/, best/, test_metrics.json)",
        output="dir",
    )
    split: list[float] = option([0.8, 0.1, 0.1], help=SPLIT_HELP)
    epochs: int = option(10, help="passes over the training set (ignored with --max-steps)")
    max_steps: int | None = option(None, help="total optimizer updates instead of --epochs")
    batch_size: int = option(32, help="systems per update (per process under torchrun)")
    lr: float = option(2e-4, help="peak learning rate (linear warm-up, then linear decay to 1e-9)")
    warmup_steps: int = option(0, help="linear warm-up updates")
    weight_decay: float = option(0.0, help="AdamW decoupled weight decay")
    clip_norm: float = option(5.0, help="global gradient-norm clip (0: none)")
    eval_every: int = option(0, help="validate every N updates (0: at the end of every epoch)")
    patience: int = option(0, help="stop after N validations without improvement (0: never)")
    checkpoint_every: int = option(0, help="also checkpoint every N updates (0: only at validations)")
    log_every: int = option(50, help="log the mean training loss every N updates")
    num_workers: int = option(0, help="data-loader worker processes")
    seed: int = option(0, help="seed of the weights, the split, the data order and dropout")
    device: str = option(
        "auto", help="'auto', 'cpu', 'cuda' or 'cuda:N' (torchrun: each rank its LOCAL_RANK GPU)"
    )
    threads: int | None = option(
        None,
        help="torch CPU threads (default: one per available core); a fixed count makes the same seed give the "
        "same numbers whatever the number of cores",
    )


@dataclass(kw_only=True)
class TrainArgs(MoleculeSourceArgs, TrainingArgs):
    task: Task2D | None = option(
        None,
        help="a task set shipped with RDKit: tpsa (4,999 NCI molecules), sdf-props (200), wiener (4,999)",
    )
    dataset: Path | None = option(None, help="a dataset file written by `graphormer2 preprocess`")
    multi_hop_max_dist: int | None = option(
        None,
        help="L: hops of each shortest path kept for the edge encoding (default 5; --dataset: the file's)",
    )
    model: Literal["graphormer", "gin"] = option("graphormer", help="Graphormer, or the GIN baseline of OGB")
    preset: Literal["slim", "base", "large"] = option(
        "slim", help="Graphormer size: slim 12x80 (8 heads), base 12x768 (32), large 24x1024 (32)"
    )
    layers: int | None = option(None, help="override the number of layers (GIN default 5)")
    hidden_dim: int | None = option(None, help="override the hidden size D (GIN default 300)")
    heads: int | None = option(None, help="override the attention heads (Graphormer only)")
    ffn_dim: int | None = option(None, help="override the feed-forward width (Graphormer only)")
    dropout: float | None = option(None, help="override the dropout (Graphormer preset 0.0, GIN 0.5)")
    attention_dropout: float | None = option(None, help="override the attention dropout (Graphormer only)")
    activation_dropout: float | None = option(
        None, help="override the FFN activation dropout (Graphormer only)"
    )
    pre_ln: bool = option(
        False,
        help="Pre-LN layers as Graphormer-V1 (--post-ln: the V2 default)",
        flags=("--pre-ln", "--post-ln"),
    )
    edge_type: Literal["multi_hop", "single_hop"] = option(
        "multi_hop", help="edge encoding along shortest paths, or of direct bonds only"
    )
    virtual_node: bool = option(
        True,
        help="GIN with OGB's virtual node (--no-virtual-node: plain GIN)",
        flags=("--virtual-node", "--no-virtual-node"),
    )
    objective: Literal["regression", "classification"] = option(
        "regression", help="L1 regression (metric MAE), or binary targets with BCE (metric ROC-AUC)"
    )


@dataclass(kw_only=True)
class Train3DArgs(TrainingArgs):
    task: Literal["relaxation"] | None = option(
        None,
        help="initial ETKDG conformers -> MMFF-relaxed energy (kcal/mol) and displacements of NCI molecules",
    )
    molecules: int = option(1000, help="--task relaxation: molecules to generate (about 50 ms each; cached)")
    energy_target: Literal["relaxed", "relaxation"] = option(
        "relaxed",
        help="--task relaxation: the relaxed conformer's energy (the IS2RE analogue) or the relaxation energy "
        "E(initial) - E(relaxed)",
    )
    per_atom: bool = option(False, help="--task relaxation: energy per atom instead of per molecule")
    sdf: Path | None = option(None, help="an SDF file of 3D molecules (hydrogens as written)")
    energy_prop: str | None = option(None, help="--sdf: the SD property holding the target energy")
    oc20: Path | None = option(
        None, help="an OC20 IS2RE LMDB file (or a folder of them): relaxed energy (eV) and displacements (Å)"
    )
    trust_pickle: bool = option(
        False,
        help="--oc20: read its records, which are Python pickles; unpickling can run code, so only for files you "
        "trust (an allow-list still refuses anything an OC20 record does not need)",
    )
    cache_dir: Path | None = option(
        None, help="--task relaxation: keep the generated molecules here", output="dir"
    )
    layers: int = option(4, help="distinct Pre-LN layers (official OC20: 12)")
    blocks: int = option(2, help="times the layer stack is applied with shared weights (official: 4)")
    hidden_dim: int = option(128, help="D, also the feed-forward width (official: 768)")
    heads: int = option(8, help="attention heads (official: 48)")
    kernels: int = option(32, help="Gaussian distance kernels K (official: 128)")
    deltapos_projection: Literal["shared", "per_axis"] = option(
        "shared",
        help="displacement head: one projection for all axes (rotation-equivariant, for molecules) or the "
        "official one per axis (for slabs)",
    )
    node_loss: bool | None = option(
        None,
        help="train the auxiliary displacement loss (lambda 15 -> 1); default: on for --task relaxation, off "
        "for --sdf, whose records have no relaxed positions",
    )
    ewt_threshold: float = option(
        0.02, help="|energy error| counted as within threshold (EwT), in target units"
    )
    lr: float = option(3e-4, help="peak learning rate (official OC20: 3e-4)")
    weight_decay: float = option(1e-3, help="AdamW decoupled weight decay (official OC20: 1e-3)")


@dataclass
class PredictArgs:
    checkpoint: Path = option(
        help="a run directory written by `graphormer2 train`, or its best/ folder (config.json + "
        "model.safetensors), also when copied on its own"
    )
    smiles: list[str] = option([], help="SMILES to predict, several after one flag")
    csv: Path | None = option(None, help="a CSV file whose --smiles-col holds the SMILES to predict")
    smiles_col: str = option("smiles", help="the SMILES column of --csv")
    strict: bool = option(False, help="stop at the first invalid SMILES instead of skipping it with a note")
    batch_size: int = option(64, help="molecules per forward pass")
    device: str = option("auto", help="'auto', 'cpu', 'cuda' or 'cuda:N'")


@dataclass
class ReproduceArgs(RunArgs):
    out: Path = option(
        Path("reports/graphormer2"),
        help="directory for results.json, results.md, tables and figures",
        output="dir",
    )
    quick: bool = option(
        True, help="minutes on a CPU (--full: the larger CPU-scale runs)", flags=("--quick", "--full")
    )
    threads: int | None = option(
        1, help="torch CPU threads, fixed so that the same seed gives the same numbers on any machine"
    )


@dataclass
class ConvertFairseqArgs:
    checkpoint: Path = option(help="an official microsoft/Graphormer (fairseq) checkpoint file (.pt)")
    out: Path = option(
        help="the graphormer2 model folder to write (config.json + model.safetensors)", output="dir"
    )
    trust_pickle: bool = option(
        False,
        help="fully unpickle a checkpoint that holds Python objects beyond tensors and argparse.Namespace "
        "(e.g. omegaconf configs); unpickling can run arbitrary code, so only for files you trust",
    )


@dataclass
class FairseqUserDirArgs:
    """No options: the command prints one path."""


@dataclass
class ExportFairseqArgs:
    model: Path = option(
        help="a graphormer2 model folder (config.json + model.safetensors) or a run directory of "
        "`graphormer2 train` / `train3d`"
    )
    out: Path = option(help="the official-format checkpoint file to write (.pt)", output="file")


# ------------------------------------------------------------------------------------------------- helpers


def _is_main_process() -> bool:
    """Rank 0 of a ``torchrun`` launch, or a plain process: the one that prints and writes."""
    return os.environ.get("RANK", "0") == "0"


def _note(text: str) -> None:
    print(f"graphormer2: note: {text}", file=sys.stderr)


def _check_split(fractions: Sequence[float]) -> tuple[float, float, float]:
    if len(fractions) != 3 or min(fractions) < 0 or not math.isclose(sum(fractions), 1.0, abs_tol=1e-6):
        raise InputError(
            f"--split: give three non-negative fractions summing to 1 (train valid test), got {list(fractions)}"
        )
    return fractions[0], fractions[1], fractions[2]


def _check_parts(sizes: dict[str, int]) -> None:
    empty = [name for name, size in sizes.items() if size == 0]
    if empty:
        shown = ", ".join(f"{name} {size}" for name, size in sizes.items())
        raise InputError(
            f"--split leaves the {' and '.join(empty)} part empty ({shown}); give more data or other fractions"
        )


def _load_dataset_file(path: Path) -> MoleculeDataset:
    from graphormer2.datasets import MoleculeDataset

    if not path.is_file():
        raise InputError(f"--dataset {path}: no such file (write one with `graphormer2 preprocess`)")
    logging.getLogger(__name__).info("reading the dataset %s", path)
    try:
        return MoleculeDataset.load(path)
    except InputError:
        raise
    except Exception as err:  # torch.load of arbitrary bytes fails with many exception types
        raise InputError(
            f"--dataset {path}: not a dataset file written by `graphormer2 preprocess` ({type(err).__name__})"
        ) from None


def _molecule_source(
    args: MoleculeSourceArgs, *, task: str | None = None, dataset: Path | None = None, choices: str
) -> tuple[str, dict[str, Any]]:
    """The one data source given (``task``, ``dataset``, ``csv`` or ``sdf``) and its record for ``config.json``."""
    sources = (("task", task), ("dataset", dataset), ("csv", args.csv), ("sdf", args.sdf))
    given = [name for name, value in sources if value is not None]
    if len(given) != 1:
        shown = f" (got {', '.join('--' + name for name in given)})" if given else ""
        raise InputError(f"give exactly one data source: {choices}{shown}")
    kind = given[0]
    if args.target_col and kind != "csv":
        raise InputError(
            "--target-col names columns of --csv; for --sdf or --task sdf-props use --target-prop"
        )
    if args.target_prop and not (kind == "sdf" or task == "sdf-props"):
        raise InputError("--target-prop names SD properties of --sdf (or of --task sdf-props)")
    if kind == "csv" and not args.target_col:
        raise InputError("--csv needs at least one --target-col (the columns to learn)")
    if kind == "sdf" and not args.target_prop:
        raise InputError("--sdf needs at least one --target-prop (the SD properties to learn)")
    if kind == "dataset":
        if args.limit is not None:
            raise InputError("--limit applies to --csv, --sdf and --task; a --dataset file is used whole")
        return kind, {"dataset": str(dataset.resolve())}
    record: dict[str, Any] = {"limit": args.limit}
    if kind == "task":
        record["task"] = task
        if task == "sdf-props" and args.target_prop:
            record["target_props"] = list(args.target_prop)
    elif kind == "csv":
        record.update(
            csv=str(args.csv.resolve()), smiles_col=args.smiles_col, target_cols=list(args.target_col)
        )
    else:
        record.update(sdf=str(args.sdf.resolve()), target_props=list(args.target_prop))
    return kind, record


def _read_molecules(
    args: MoleculeSourceArgs, kind: str, record: dict[str, Any], hops: int
) -> MoleculeDataset:
    """Load (or preprocess) the molecules of the source checked by :func:`_molecule_source`."""
    from graphormer2 import datasets

    if kind == "dataset":
        return _load_dataset_file(Path(record["dataset"]))
    settings = {"max_nodes": args.max_nodes, "multi_hop_max_dist": hops, "strict": args.strict,
                "rejects": args.rejects, "cache_dir": args.cache_dir}  # fmt: skip
    if kind == "csv":
        return datasets.from_csv(args.csv, args.smiles_col, args.target_col, limit=args.limit, **settings)
    if kind == "sdf":
        return datasets.from_sdf(args.sdf, args.target_prop, limit=args.limit, **settings)
    if record["task"] == "tpsa":
        return datasets.tpsa_task(limit=args.limit, **settings)
    if record["task"] == "sdf-props":
        props = args.target_prop or datasets.SDF_PROPERTIES
        return datasets.sdf_properties_task(props, limit=args.limit, **settings)
    return datasets.wiener_task(args.limit, **settings)


def _skipped_summary(skipped: dict[str, int]) -> str:
    total = sum(skipped.values())
    if not total:
        return "skipped 0"
    return f"skipped {total} ({', '.join(f'{reason}: {count}' for reason, count in sorted(skipped.items()))})"


def _train_config(args: TrainingArgs, **fixed: Any) -> TrainConfig:
    from graphormer2.train import TrainConfig

    return TrainConfig(
        epochs=args.epochs, max_steps=args.max_steps, batch_size=args.batch_size, lr=args.lr,
        warmup_steps=args.warmup_steps, weight_decay=args.weight_decay, clip_norm=args.clip_norm,
        eval_every=args.eval_every, patience=args.patience, checkpoint_every=args.checkpoint_every,
        log_every=args.log_every, num_workers=args.num_workers, seed=args.seed, **fixed,
    )  # fmt: skip


def _evaluate(
    model: nn.Module,
    objective: Objective,
    items: Dataset,
    collate_fn: Callable[[list[Any]], Any],
    batch_size: int,
) -> dict[str, float]:
    """``objective.evaluate`` of ``model`` (eval mode, no gradients) on ``items``, batches on the model's device."""
    from torch.utils.data import DataLoader

    from graphormer2.train import evaluate

    device = next(model.parameters()).device
    loader = DataLoader(items, batch_size=batch_size, collate_fn=collate_fn)
    batches = (batch.to(device) for batch in loader)
    return evaluate(model, objective, batches, desc="test", total=len(loader))


def _finish(
    run: RunDir, result: FitResult, metric: str, test: dict[str, float], sizes: dict[str, int]
) -> None:
    """Write ``test_metrics.json`` and print the one-line JSON summary."""
    summary = {
        "steps": result.steps,
        "best_step": result.best_step,
        f"valid_{metric}": result.best_metric,
        **{f"test_{name}": value for name, value in test.items()},
        "sizes": sizes,
        "seconds": round(result.seconds, 2),
    }
    run.write_json("test_metrics.json", summary)
    print(json.dumps(summary))


def _mean_predictor_mae(train_part: Subset, test_part: Subset) -> float:
    """The test MAE of predicting every target's training mean: the reference a useful model must beat."""
    import torch

    def targets(part: Subset) -> torch.Tensor:
        return part.dataset.targets[torch.as_tensor(part.indices, dtype=torch.long)]

    mean = targets(train_part).nanmean(dim=0)
    errors = (targets(test_part) - mean).abs()
    return float(errors[~torch.isnan(errors)].mean())


# ------------------------------------------------------------------------------------------------ commands


@app.command(
    "preprocess", PreprocessArgs, help="featurise molecules of a CSV or SDF file into a dataset file"
)
def preprocess(args: PreprocessArgs) -> None:
    kind, record = _molecule_source(args, choices="--csv or --sdf")
    dataset = _read_molecules(args, kind, record, args.multi_hop_max_dist)
    dataset.save(args.out)
    print(f"kept {len(dataset)} molecules, {_skipped_summary(dataset.skipped)}")
    print(f"wrote {args.out}")
    if args.rejects is not None:
        print(f"wrote the skipped molecules to {args.rejects}")


@app.command(
    "train", TrainArgs, help="train Graphormer (or GIN) on molecular properties; test the best weights"
)
def train(args: TrainArgs) -> None:
    import torch

    from graphormer2.collate import MULTI_HOP_MAX_DIST, collate
    from graphormer2.datasets import split
    from graphormer2.features import FEATURE_VERSION
    from graphormer2.gin import GIN, GINConfig
    from graphormer2.model import Graphormer, GraphormerConfig
    from graphormer2.train import ClassificationObjective, RegressionObjective, fit

    fractions = _check_split(args.split)
    kind, record = _molecule_source(
        args, task=args.task, dataset=args.dataset, choices="--task, --dataset, --csv or --sdf"
    )
    graphormer_only = {"--heads": args.heads, "--ffn-dim": args.ffn_dim, "--attention-dropout": args.attention_dropout,
                       "--activation-dropout": args.activation_dropout}  # fmt: skip
    if args.model == "gin" and any(value is not None for value in graphormer_only.values()):
        given = [flag for flag, value in graphormer_only.items() if value is not None]
        raise InputError(f"{', '.join(given)} apply to --model graphormer only")
    hops = args.multi_hop_max_dist or MULTI_HOP_MAX_DIST
    dataset = _read_molecules(args, kind, record, hops)
    if kind == "dataset":
        if args.multi_hop_max_dist not in (None, dataset.multi_hop_max_dist):
            raise InputError(
                f"--multi-hop-max-dist {args.multi_hop_max_dist}: {args.dataset} was preprocessed with "
                f"{dataset.multi_hop_max_dist}; preprocess it again to change it"
            )
        hops = dataset.multi_hop_max_dist
    if not dataset.target_names:
        raise InputError("the data has no target columns to learn")
    observed = dataset.targets[~torch.isnan(dataset.targets)]
    if args.objective == "classification" and not bool(((observed == 0) | (observed == 1)).all()):
        raise InputError("--objective classification needs targets that are 0 or 1 (or missing)")
    parts = split(dataset, fractions, seed=args.seed)
    sizes = {"train": len(parts[0]), "valid": len(parts[1]), "test": len(parts[2])}
    _check_parts(sizes)
    shard = math.ceil(sizes["train"] / int(os.environ.get("WORLD_SIZE", "1")))
    if args.model == "gin" and args.virtual_node and shard % args.batch_size == 1:
        raise InputError(
            f"--model gin batch-normalises one virtual-node vector per graph, which needs 2 graphs or more per "
            f"batch, but the last batch of every epoch would hold 1 of the {shard} training molecules; change "
            "--batch-size or --split"
        )
    if _is_main_process() and dataset.skipped:
        _note(f"kept {len(dataset)} molecules, {_skipped_summary(dataset.skipped)}")

    seed_everything(args.seed)
    num_targets = len(dataset.target_names)
    model: nn.Module
    if args.model == "gin":
        gin_settings = {"num_layers": args.layers, "hidden_dim": args.hidden_dim, "dropout": args.dropout}
        model = GIN(GINConfig(num_classes=num_targets, virtual_node=args.virtual_node,
                              **{k: v for k, v in gin_settings.items() if v is not None}))  # fmt: skip
    else:
        overrides = {"num_layers": args.layers, "hidden_dim": args.hidden_dim, "num_heads": args.heads,
                     "ffn_dim": args.ffn_dim, "dropout": args.dropout, "attention_dropout": args.attention_dropout,
                     "activation_dropout": args.activation_dropout}  # fmt: skip
        config = GraphormerConfig.preset(
            args.preset, num_classes=num_targets, multi_hop_max_dist=hops, edge_type=args.edge_type,
            norm_first=args.pre_ln, max_nodes=args.max_nodes,
            **{k: v for k, v in overrides.items() if v is not None},
        )  # fmt: skip
        model = Graphormer(config)
    train_targets = dataset.targets[torch.as_tensor(parts[0].indices, dtype=torch.long)]
    objective = (
        RegressionObjective.standardising(train_targets)
        if args.objective == "regression"
        else ClassificationObjective()
    )
    extra = {"data": record, "target_names": dataset.target_names, "objective": args.objective, "split": list(fractions),
             "max_nodes": args.max_nodes, "multi_hop_max_dist": hops,
             "target_mean": getattr(objective, "target_mean", None),
             "target_std": getattr(objective, "target_std", None)}  # fmt: skip
    run = RunDir(args.out)
    result = fit(model, parts[0], parts[1], collate, objective, _train_config(args), run=run, device=args.device,
                 extra_config=extra, best_extra={**extra, "features": FEATURE_VERSION})  # fmt: skip
    if not _is_main_process():
        return
    model.load_state_dict(result.best_state)
    test = _evaluate(model, objective, parts[2], collate, args.batch_size)
    if args.objective == "regression":
        test["mae_of_mean_predictor"] = _mean_predictor_mae(parts[0], parts[2])
    _finish(run, result, objective.metric, test, sizes)


@app.command(
    "train3d",
    Train3DArgs,
    help="train Graphormer-3D on energies and displacements of 3D molecules; test the best",
)
def train3d(args: Train3DArgs) -> None:
    import torch

    from graphormer2.atoms import Standardisation, collate_atoms, read_sdf_3d
    from graphormer2.datasets import split
    from graphormer2.model3d import Graphormer3D, Graphormer3DConfig
    from graphormer2.relaxation import relaxation_task
    from graphormer2.train import ModelLossObjective, atoms_inputs, fit

    fractions = _check_split(args.split)
    if sum(source is not None for source in (args.task, args.sdf, args.oc20)) != 1:
        raise InputError(
            "give exactly one data source: --task relaxation, --sdf FILE --energy-prop NAME or --oc20 LMDB"
        )
    train_items: list[AtomsItem]
    if args.task == "relaxation":
        if args.energy_prop is not None:
            raise InputError("--energy-prop applies to --sdf; --task relaxation learns the MMFF energy")
        task = relaxation_task(args.molecules, seed=args.seed, cache_dir=args.cache_dir, per_atom=args.per_atom,
                               energy_target=args.energy_target, split=fractions[:2])  # fmt: skip
        if _is_main_process() and task.skipped:
            _note(f"generated {len(task.items)} molecules, {_skipped_summary(task.skipped)}")
        train_items, valid_items, test_items = task.train, task.valid, task.test
        _check_parts({"train": len(train_items), "valid": len(valid_items), "test": len(test_items)})
        standardisation = task.standardisation
        record: dict[str, Any] = {"task": "relaxation", "molecules": args.molecules,
                                  "energy_target": args.energy_target, "per_atom": args.per_atom}  # fmt: skip
        node_loss = True if args.node_loss is None else args.node_loss
    elif args.oc20 is not None:
        from graphormer2.oc20 import read_oc20_lmdb

        items = read_oc20_lmdb(args.oc20, task="is2re", trust_pickle=args.trust_pickle)
        train_items, valid_items, test_items = (
            [items[i] for i in part.indices] for part in split(items, fractions, seed=args.seed)
        )
        _check_parts({"train": len(train_items), "valid": len(valid_items), "test": len(test_items)})
        standardisation = Standardisation.fit(train_items)
        record = {"oc20": str(args.oc20.resolve()), "task": "is2re"}
        node_loss = True if args.node_loss is None else args.node_loss
    else:
        if args.energy_prop is None:
            raise InputError("--sdf needs --energy-prop, the SD property holding each molecule's energy")
        items = read_sdf_3d(args.sdf, args.energy_prop)
        train_items, valid_items, test_items = (
            [items[i] for i in part.indices] for part in split(items, fractions, seed=args.seed)
        )
        _check_parts({"train": len(train_items), "valid": len(valid_items), "test": len(test_items)})
        standardisation = Standardisation.fit(train_items, isotropic=True)
        record = {"sdf": str(args.sdf.resolve()), "energy_prop": args.energy_prop}
        node_loss = False if args.node_loss is None else args.node_loss
    sizes = {"train": len(train_items), "valid": len(valid_items), "test": len(test_items)}

    seed_everything(args.seed)
    config = Graphormer3DConfig(
        layers=args.layers, blocks=args.blocks, embed_dim=args.hidden_dim, ffn_embed_dim=args.hidden_dim,
        attention_heads=args.heads, num_kernel=args.kernels, deltapos_projection=args.deltapos_projection,
        ewt_threshold=args.ewt_threshold,
    ).with_standardisation(standardisation)  # fmt: skip
    model = Graphormer3D(config)
    objective = ModelLossObjective(
        inputs=atoms_inputs, metric="energy_mae", loss_options={"node_loss": node_loss}
    )
    settings = _train_config(args, betas=(0.9, 0.98), eps=1e-6, find_unused_parameters=not node_loss)
    extra = {"data": record, "split": list(fractions), "node_loss": node_loss}
    run = RunDir(args.out)
    result = fit(model, train_items, valid_items, collate_atoms, objective, settings, run=run, device=args.device,
                 extra_config=extra, best_extra=extra)  # fmt: skip
    if not _is_main_process():
        return
    model.load_state_dict(result.best_state)
    measured = _evaluate(model, objective, test_items, collate_atoms, args.batch_size)
    # the loss and lambda depend on the training step; the parts below do not
    test = {name: measured[name] for name in ("energy_mae", "ewt", "energy", "deltapos")}
    train_mean = torch.tensor([item.energy for item in train_items], dtype=torch.float64).mean()
    test_energy = torch.tensor([item.energy for item in test_items], dtype=torch.float64)
    test["energy_mae_of_mean_predictor"] = float((test_energy - train_mean).abs().mean())
    _finish(run, result, objective.metric, test, sizes)


@app.command(
    "predict", PredictArgs, help="predict the trained targets of new SMILES with a run's best weights"
)
def predict(args: PredictArgs) -> None:
    from graphormer2.datasets import from_csv, from_smiles
    from graphormer2.predictor import load_predictor

    if not args.smiles and args.csv is None:
        raise InputError("give molecules to predict: --smiles S1 S2 ... and/or --csv FILE")
    try:
        predictor = load_predictor(args.checkpoint, device=args.device)
    except InputError as err:
        raise InputError(f"--checkpoint {err}") from None
    settings = {"max_nodes": predictor.max_nodes, "multi_hop_max_dist": predictor.multi_hop_max_dist}

    def load(strict: bool) -> list[MoleculeDataset]:
        found = []
        if args.smiles:
            found.append(from_smiles(args.smiles, strict=strict, **settings))
        if args.csv is not None:
            found.append(from_csv(args.csv, args.smiles_col, [], strict=strict, **settings))
        return found

    try:
        datasets = load(args.strict)
    except InputError:
        load(strict=True)  # names the first unusable molecule when none of a source could be used
        raise
    for dataset in datasets:
        for rejected in dataset.rejected:
            _note(f"skipped {rejected.where} {rejected.smiles!r} ({rejected.reason})")
        values = predictor.predict_dataset(dataset, args.batch_size)
        for smiles, row in zip(dataset.smiles, values.tolist(), strict=True):
            cells = [f"{name}={value:.6g}" for name, value in zip(predictor.target_names, row, strict=True)]
            print("\t".join([smiles, *cells]))


@app.command(
    "fairseq-user-dir",
    FairseqUserDirArgs,
    help="print the folder to give fairseq-train as --user-dir (graphormer2's fairseq task, model and criterion)",
)
def fairseq_user_dir(args: FairseqUserDirArgs) -> None:
    """Print the plugin folder; fairseq itself is only imported by fairseq when it reads the folder."""
    import graphormer2

    print(Path(graphormer2.__file__).parent / "graphormer2_fairseq")


@app.command(
    "convert-fairseq",
    ConvertFairseqArgs,
    help="convert an official microsoft/Graphormer (fairseq) checkpoint into a graphormer2 model folder",
)
def convert_fairseq(args: ConvertFairseqArgs) -> None:
    from graphormer2.fairseq_checkpoint import load_fairseq
    from graphormer2.features import FEATURE_VERSION

    try:
        found = load_fairseq(args.checkpoint, trust_pickle=args.trust_pickle)
    except InputError as err:
        raise InputError(f"--checkpoint {err}") from None
    if found.kind == "Graphormer":
        config = found.model.config
        classification = (found.criterion or "").startswith("binary_logloss")
        names = ["y"] if config.num_classes == 1 else [f"y{i}" for i in range(config.num_classes)]
        extra = {"target_names": names, "objective": "classification" if classification else "regression",
                 "target_mean": None, "target_std": None, "max_nodes": config.max_nodes,
                 "multi_hop_max_dist": config.multi_hop_max_dist, "features": FEATURE_VERSION,
                 "source": {"fairseq_checkpoint": str(args.checkpoint.resolve()), "criterion": found.criterion}}  # fmt: skip
        found.model.save_pretrained(args.out, extra=extra)
    else:
        found.model.save_pretrained(
            args.out, extra={"source": {"fairseq_checkpoint": str(args.checkpoint.resolve())}}
        )
    print(f"converted {found.summary()}")
    if found.ignored:
        print(f"dropped official tensors that the official forward never reads: {', '.join(found.ignored)}")
    if found.assumed:
        _note(
            f"not recorded in the checkpoint, so the official defaults were assumed: {', '.join(found.assumed)}"
        )
    print(f"wrote {args.out}")


@app.command(
    "export-fairseq",
    ExportFairseqArgs,
    help="write a graphormer2 model as an official microsoft/Graphormer (fairseq) checkpoint",
)
def export_fairseq(args: ExportFairseqArgs) -> None:
    import torch

    from graphormer2.fairseq_checkpoint import to_fairseq
    from graphormer2.model import Graphormer
    from graphormer2.model3d import Graphormer3D
    from papers_common import pretrained_extra

    folder = args.model / "best" if (args.model / "best" / "config.json").is_file() else args.model
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise InputError(f"--model {args.model}: no such model folder (config.json + model.safetensors)")
    try:
        kinds = json.loads(config_path.read_text(encoding="utf-8")).get("architectures") or ["?"]
    except (OSError, ValueError, AttributeError) as err:
        raise InputError(f"--model {config_path}: not a saved model's config ({err})") from None
    classes = {"Graphormer": Graphormer, "Graphormer3D": Graphormer3D}
    if kinds[0] not in classes:
        raise InputError(f"--model {args.model}: a {kinds[0]} model has no microsoft/Graphormer counterpart")
    try:
        model = classes[kinds[0]].from_pretrained(folder)
        extra = pretrained_extra(folder) if kinds[0] == "Graphormer" else {}
        checkpoint = to_fairseq(
            model, target_mean=extra.get("target_mean"), target_std=extra.get("target_std")
        )
    except InputError as err:
        raise InputError(f"--model {err}") from None
    torch.save(checkpoint, args.out)
    if extra.get("target_mean") is not None or extra.get("target_std") is not None:
        print("folded the target standardisation into the output layer: the checkpoint predicts target units")
    dropped = checkpoint["graphormer2"].get("unmapped_atomic_numbers")
    if dropped:
        _note("the official Graphormer-3D has ids for OC20's 56 elements only; atomic numbers "
              f"{_number_ranges(dropped)} map to its unknown type, whose rows are left at their initial values")  # fmt: skip
    count = sum(p.numel() for p in model.parameters())
    print(f"exported {kinds[0]} ({count:,} parameters, {len(checkpoint['model'])} official tensors)")
    print(f"wrote {args.out}")


def _number_ranges(numbers: Sequence[int]) -> str:
    """``[2, 3, 4, 9]`` -> ``"2-4, 9"``."""
    runs: list[list[int]] = []
    for n in numbers:
        if runs and n == runs[-1][-1] + 1:
            runs[-1].append(n)
        else:
            runs.append([n])
    return ", ".join(str(r[0]) if len(r) == 1 else f"{r[0]}-{r[-1]}" for r in runs)


@app.command(
    "reproduce",
    ReproduceArgs,
    help="measure the paper's claims; write results.json/.md, tables and figures",
    extra="reproduce",
)
def reproduce(args: ReproduceArgs) -> None:
    from graphormer2.reproduce import run

    seed_everything(args.seed)
    results = run(args.out, quick=args.quick, seed=args.seed, device=pick_device(args.device))
    for line in results.summary_lines():
        print(line)
    print(f"wrote {args.out / 'results.json'} and {args.out / 'results.md'}")


def main() -> None:
    raise SystemExit(app.main())


if __name__ == "__main__":  # python -m graphormer2.cli, and torchrun -m graphormer2.cli
    main()
