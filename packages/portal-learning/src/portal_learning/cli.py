"""``portal-learning``: make a benchmark, split interaction data, baselines, step-wise transfer, training with
stress model selection, evaluation and prediction (argument parsing only)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from papers_common import App, InputError, option
from portal_learning import __version__

app = App(
    "portal-learning",
    description="Chemical-protein interaction prediction on unseen protein families (Portal Learning, Cai, Xie et "
    "al., 2021): out-of-cluster splits, an offline out-of-family benchmark, global metrics.",
    version=__version__,
)


def _report(metrics: dict[str, dict[str, float]], out: Path | None) -> None:
    """Print each split's global ROC-AUC, PR-AUC and F1, and write them as JSON to ``out`` when given."""
    from papers_common import write_json

    for name, values in metrics.items():
        print(
            f"{name:10s} ROC-AUC {values['roc_auc']:.4f}  PR-AUC {values['pr_auc']:.4f}  F1 {values['f1']:.4f}"
        )
    if out is not None:
        write_json(out, metrics)


@dataclass
class SynthArgs:
    out: Path = option(
        help="folder for pairs.csv, contacts.csv, sequences.fasta and generator.json", output="dir"
    )
    families: int = option(40, help="protein families with interaction data")
    unlabelled_families: int = option(200, help="more families with sequences only (sequences.fasta)")
    molecules: int = option(2000, help="NCI molecules from the RDKit wheel (at most about 4,900)")
    pairs_per_member: int = option(40, help="molecules paired with each family member")
    seed: int = option(0, help="seed of the families, the pairs and the hidden rule")


@app.command(
    "synth",
    SynthArgs,
    help="generate the offline out-of-family benchmark (real molecules, synthetic families)",
)
def synth(args: SynthArgs) -> None:
    from portal_learning.synthetic import SynthSettings, generate

    settings = SynthSettings(families=args.families, molecules=args.molecules, pairs_per_member=args.pairs_per_member,
                             unlabelled_families=args.unlabelled_families, seed=args.seed)  # fmt: skip
    settings.check()
    benchmark = generate(settings)
    path = benchmark.write(args.out)
    actives = sum(r.label for r in benchmark.records)
    print(
        f"{len(benchmark.records)} pairs ({actives} active) over {args.families} families, "
        f"{len(benchmark.sequences)} sequences of {args.families + args.unlabelled_families} families: {path}"
    )


@dataclass
class SplitArgs:
    data: Path = option(help="interaction CSV/TSV (smiles, sequence, label; family optional)")
    out: Path | None = option(
        None, help="split JSON to write (default: split.json beside --data)", output="file"
    )
    ood_dev: float = option(0.15, help="share of families held out for OOD-dev (model selection)")
    ood_test: float = option(0.15, help="share of families held out for OOD-test")
    iid_dev: float = option(0.1, help="share of the training families' pairs held out for IID-dev")
    seed: int = option(0, help="seed of the family shuffle and the IID-dev draw")
    strict: bool = option(False, help="an invalid row is an error (default: written to a rejects file)")


@app.command(
    "split", SplitArgs, help="the four-way out-of-cluster split (OOD-train, IID-dev, OOD-dev, OOD-test)"
)
def split(args: SplitArgs) -> None:
    from portal_learning.records import read_interactions
    from portal_learning.splits import SPLITS, SplitSettings, four_way_split

    settings = SplitSettings(
        ood_dev=args.ood_dev, ood_test=args.ood_test, iid_dev=args.iid_dev, seed=args.seed
    )
    settings.check()
    rejects = args.data.with_name(args.data.stem + ".rejects.csv")
    read = read_interactions(args.data, strict=args.strict, rejects=rejects)
    if read.rejected:
        print(f"{len(read.rejected)} invalid row(s) left out: {rejects}")
    result = four_way_split(read.records, settings)
    out = args.out or args.data.with_name("split.json")
    result.save(out)
    sizes = ", ".join(f"{name.replace('_', '-')} {len(result.part(name))}" for name in SPLITS)
    print(f"{sizes} pairs; {len(result.excluded)} one-class famil{'y' if len(result.excluded) == 1 else 'ies'} "
          f"left out: {out}")  # fmt: skip


@dataclass
class BaselineArgs:
    data: Path = option(help="interaction CSV/TSV")
    split: Path = option(help="split JSON written by portal-learning split")
    out: Path | None = option(None, help="write the metrics as JSON here", output="file")


@app.command("baseline", BaselineArgs, help="the linear baseline's global metrics on every split")
def baseline(args: BaselineArgs) -> None:
    from portal_learning.baselines import linear_baseline
    from portal_learning.records import read_interactions
    from portal_learning.splits import Split

    records = read_interactions(args.data).records
    split_ = Split.load_for(args.split, records, args.data)
    metrics = linear_baseline(records, split_)
    _report(metrics, args.out)


@dataclass
class PretrainArgs:
    sequences: Path = option(help="protein sequences: FASTA (.fa/.fasta/.faa) or an interaction CSV/TSV")
    out: Path = option(help="run folder; the model is written to its model/", output="dir")
    epochs: int = option(10, help="passes over the distinct sequences")
    batch_size: int = option(32, help="sequences per step")
    lr: float = option(1e-3, help="Adam learning rate")
    protein_channels: int = option(256, help="protein CNN channels (as in portal-learning train)")
    holdout: float = option(0.1, help="share of sequences kept apart to measure masked-residue accuracy")
    seed: int = option(0, help="seed of the weights, the held-out sequences and the masks")
    threads: int | None = option(1, help="torch CPU threads")


@app.command("pretrain-protein", PretrainArgs,
             help="step 1 of step-wise transfer: masked-residue pretraining of the protein encoder")  # fmt: skip
def pretrain_protein(args: PretrainArgs) -> None:
    from portal_learning.model import CPIConfig
    from portal_learning.records import read_sequences
    from portal_learning.transfer import pretrain_protein as run

    model_config = CPIConfig(protein_channels=args.protein_channels)
    model_config.check()
    result = run(read_sequences(args.sequences), args.out, model_config=model_config, epochs=args.epochs,
                 batch_size=args.batch_size, lr=args.lr, holdout=args.holdout, seed=args.seed)  # fmt: skip
    before, after = result.metrics["before"], result.metrics["after"]
    print(f"masked-residue accuracy on held-out sequences: {before['masked_accuracy']:.4f} -> "
          f"{after['masked_accuracy']:.4f}; model in {result.model}")  # fmt: skip


@dataclass
class StructureArgs:
    data: Path = option(help="interaction CSV/TSV (pairs of the proteins with contacts)")
    contacts: Path = option(help="contacts CSV: protein,contact_positions (0-based, space-separated)")
    out: Path = option(help="run folder; the model is written to its model/", output="dir")
    split: Path | None = option(
        None, help="split JSON: learn from OOD-train families only (the others stay unseen)"
    )
    init: Path | None = option(None, help="a pretrain-protein folder to start the protein encoder from")
    freeze: list[str] = option([], help="parameter groups kept fixed: protein-embeddings, protein-convs, protein, "
                               "chemical")  # fmt: skip
    chemical: str = option(
        "gin", help="chemical encoder: 'gin' or 'fingerprint' (as in portal-learning train)"
    )
    gin_layers: int = option(5, help="GIN layers")
    gin_hidden: int = option(300, help="GIN width (and the fingerprint MLP's)")
    protein_channels: int = option(256, help="protein CNN channels")
    epochs: int = option(10, help="passes over the pairs")
    batch_size: int = option(32, help="pairs per step")
    lr: float = option(1e-3, help="Adam learning rate")
    holdout: float = option(0.2, help="share of families kept apart to measure contact ROC-AUC")
    seed: int = option(0, help="seed of the weights, the held-out families and the batch order")
    threads: int | None = option(1, help="torch CPU threads")


@app.command("structure", StructureArgs,
             help="step 2 of step-wise transfer: protein and chemical encoders learn binding-site contacts")  # fmt: skip
def structure(args: StructureArgs) -> None:
    from portal_learning.model import CPIConfig
    from portal_learning.records import read_interactions
    from portal_learning.splits import Split
    from portal_learning.transfer import read_contacts, train_structure

    model_config = CPIConfig(chemical=args.chemical, gin_layers=args.gin_layers, gin_hidden=args.gin_hidden,
                             protein_channels=args.protein_channels)  # fmt: skip
    model_config.check()
    if args.init is not None and not args.init.is_dir():
        raise InputError(f"--init {args.init}: not a folder")
    contacts = read_contacts(args.contacts)
    records = read_interactions(args.data).records
    if args.split is not None:
        records = [records[i] for i in Split.load_for(args.split, records, args.data).ood_train]
    result = train_structure(records, contacts, args.out, model_config=model_config, init=args.init,
                             freeze=args.freeze, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                             holdout=args.holdout, seed=args.seed)  # fmt: skip
    before, after = result.metrics["before"], result.metrics["after"]
    print(f"contact ROC-AUC on held-out families: {before['contact_roc_auc']:.4f} -> "
          f"{after['contact_roc_auc']:.4f}; model in {result.model}")  # fmt: skip


@dataclass
class TrainArgs:
    data: Path = option(help="interaction CSV/TSV")
    split: Path = option(help="split JSON written by portal-learning split")
    out: Path = option(help="run folder (resumed when rerun with the same settings)", output="dir")
    method: str = option(
        "erm", help="'erm', or out-of-cluster meta-learning: 'ooc-fomaml', 'ooc-maml', 'ooc-official'"
    )
    select: str = option(
        "ood-dev", help="the model kept as model/: 'ood-dev' (stress selection) or 'iid-dev'"
    )
    chemical: str = option(
        "gin", help="chemical encoder: 'gin' (molecular graph) or 'fingerprint' (Morgan MLP)"
    )
    epochs: int = option(10, help="rounds: passes over OOD-train (erm) or --steps-per-round meta-steps")
    batch_size: int = option(64, help="pairs per step (erm)")
    lr: float = option(1e-3, help="Adam learning rate (the outer one for meta-learning)")
    tasks: int = option(5, help="families per meta-step")
    support: int = option(1, help="support pairs per class and family")
    query: int = option(4, help="query pairs per class and family")
    inner_steps: int = option(5, help="inner gradient steps per task")
    inner_lr: float = option(0.01, help="inner learning rate")
    steps_per_round: int = option(80, help="meta-steps between evaluations")
    init: Path | None = option(None, help="start from a pretrain-protein or structure folder")
    freeze: list[str] = option([], help="parameter groups kept fixed: protein-embeddings, protein-convs, protein, "
                               "chemical")  # fmt: skip
    gin_layers: int = option(5, help="GIN layers")
    gin_hidden: int = option(300, help="GIN width (and the fingerprint MLP's)")
    protein_channels: int = option(256, help="protein CNN channels")
    seed: int = option(0, help="seed of the weights and the batch order")
    threads: int | None = option(1, help="torch CPU threads")


@app.command(
    "train",
    TrainArgs,
    help="ERM or out-of-cluster meta-learning on OOD-train, stress model selection on OOD-dev (IID-dev beside it)",
)
def train(args: TrainArgs) -> None:
    import shutil

    from portal_learning.meta import MetaConfig
    from portal_learning.model import CPIConfig
    from portal_learning.records import read_interactions
    from portal_learning.splits import Split
    from portal_learning.train import TrainConfig, train_model

    model_config = CPIConfig(chemical=args.chemical, gin_layers=args.gin_layers, gin_hidden=args.gin_hidden,
                             protein_channels=args.protein_channels)  # fmt: skip
    meta = MetaConfig(tasks=args.tasks, support=args.support, query=args.query, inner_steps=args.inner_steps,
                      inner_lr=args.inner_lr, steps_per_round=args.steps_per_round)  # fmt: skip
    config = TrainConfig(method=args.method, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                         select=args.select, seed=args.seed, meta=meta)  # fmt: skip
    model_config.check()
    config.check()
    if args.init is not None and not args.init.is_dir():
        raise InputError(f"--init {args.init}: not a folder")
    records = read_interactions(args.data).records
    split_ = Split.load_for(args.split, records, args.data)
    result = train_model(records, split_, args.out, model_config=model_config, config=config, init=args.init,
                         freeze=args.freeze)  # fmt: skip
    chosen = args.out / "model"
    shutil.rmtree(chosen, ignore_errors=True)
    shutil.copytree(args.out / f"model-{args.select}", chosen)
    for selection, found in result.selected.items():
        test = found["metrics"]["ood_test"]["roc_auc"]
        print(f"selected on {selection}: epoch {found['epoch']}, {selection} ROC-AUC {found['selection_roc_auc']:.4f}, "
              f"OOD-test {test:.4f}, deployment gap {found['deployment_gap']:+.4f}")  # fmt: skip
    print(f"model ({args.select}-selected) in {chosen}")


@dataclass
class CompareArgs:
    runs: Path = option(help="a folder whose subfolders are portal-learning train runs")
    on: str = option(
        "ood-dev", help="rank by the model selected on 'ood-dev' (stress selection) or 'iid-dev'"
    )


@app.command(
    "compare", CompareArgs, help="hyperparameter selection: rank finished runs by their OOD-dev ROC-AUC"
)
def compare(args: CompareArgs) -> None:
    from portal_learning.train import compare_runs

    ranked = compare_runs(args.runs, args.on)
    print(f"{'run':24s} {'epoch':>5s} {args.on + ' ROC-AUC':>16s} {'OOD-test ROC-AUC':>17s} {'gap':>8s}")
    for r in ranked:
        print(f"{r['run']:24s} {r['epoch']:5d} {r['selection_roc_auc']:16.4f} {r['ood_test_roc_auc']:17.4f} "
              f"{r['deployment_gap']:+8.4f}")  # fmt: skip
    print(f"selected on {args.on}: {ranked[0]['run']}")


@dataclass
class EvaluateArgs:
    model: Path = option(help="a model folder (portal-learning train's model/)")
    data: Path = option(help="interaction CSV/TSV with labels")
    split: Path | None = option(None, help="split JSON: score each split (default: the whole file)")
    out: Path | None = option(None, help="write the metrics as JSON here", output="file")


@app.command("evaluate", EvaluateArgs, help="global ROC-AUC, PR-AUC and F1 of a model on labelled pairs")
def evaluate(args: EvaluateArgs) -> None:
    import numpy as np

    from portal_learning.metrics import classification_metrics
    from portal_learning.model import CPIModel
    from portal_learning.records import read_interactions
    from portal_learning.splits import SPLITS, Split

    model = CPIModel.from_pretrained(args.model)
    records = read_interactions(args.data).records
    parts = {"all": list(range(len(records)))}
    if args.split is not None:
        split_ = Split.load_for(args.split, records, args.data)
        parts = {name: split_.part(name) for name in SPLITS}
    probabilities = model.predict([r.smiles for r in records], [r.sequence for r in records])
    labels = np.array([r.label for r in records])
    metrics = {
        name: classification_metrics(labels[rows], probabilities[rows]) for name, rows in parts.items()
    }
    _report(metrics, args.out)


@dataclass
class PredictArgs:
    model: Path = option(help="a model folder (portal-learning train's model/)")
    data: Path = option(help="CSV/TSV with SMILES and sequence columns (labels not needed)")
    out: Path = option(help="CSV to write: the input pairs with a probability column", output="file")


@app.command("predict", PredictArgs, help="interaction probabilities for (SMILES, sequence) pairs")
def predict(args: PredictArgs) -> None:
    import csv

    from papers_common import atomic_path
    from portal_learning.model import CPIModel
    from portal_learning.records import read_interactions

    model = CPIModel.from_pretrained(args.model)
    read = read_interactions(args.data, labelled=False)
    probabilities = model.predict([r.smiles for r in read.records], [r.sequence for r in read.records])
    with atomic_path(args.out) as tmp, tmp.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["line", "smiles", "protein", "probability"])
        writer.writerows(
            (r.line, r.smiles, r.protein, f"{p:.6f}")
            for r, p in zip(read.records, probabilities, strict=True)
        )
    print(f"{len(read.records)} pairs scored ({len(read.rejected)} invalid left out): {args.out}")


@dataclass
class ReproduceArgs:
    out: Path = option(Path("reports/portal-learning"), help="directory for results", output="dir")
    quick: bool = option(True, help="the quick version (minutes on a CPU)", flags=("--quick", "--full"))


@app.command(
    "reproduce",
    ReproduceArgs,
    help="the paper's claims on the synthetic out-of-family benchmark over seeds (quick: minutes on a CPU)",
)
def reproduce(args: ReproduceArgs) -> None:
    from portal_learning.reproduce import run

    results = run(args.out, quick=args.quick)
    print("\n".join(results.summary_lines()))
    print(f"results in {args.out}")


def main() -> None:
    raise SystemExit(app.main())


if __name__ == "__main__":
    main()
