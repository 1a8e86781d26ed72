"""``portal-learning``: make a benchmark, split interaction data, fit the linear baseline (argument parsing only)."""

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


@dataclass
class SynthArgs:
    out: Path = option(help="folder for pairs.csv, contacts.csv and generator.json", output="dir")
    families: int = option(40, help="protein families")
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

    settings = SynthSettings(families=args.families, molecules=args.molecules,
                             pairs_per_member=args.pairs_per_member, seed=args.seed)  # fmt: skip
    settings.check()
    benchmark = generate(settings)
    path = benchmark.write(args.out)
    actives = sum(r.label for r in benchmark.records)
    print(f"{len(benchmark.records)} pairs ({actives} active) over {args.families} families: {path}")


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
    from papers_common import write_json
    from portal_learning.baselines import linear_baseline
    from portal_learning.records import read_interactions
    from portal_learning.splits import Split, records_digest

    records = read_interactions(args.data).records
    split_ = Split.load(args.split)
    if split_.records_digest != records_digest(records):
        raise InputError(
            f"{args.split}: made for other records than {args.data}; run portal-learning split again"
        )
    metrics = linear_baseline(records, split_)
    for name, values in metrics.items():
        print(
            f"{name:10s} ROC-AUC {values['roc_auc']:.4f}  PR-AUC {values['pr_auc']:.4f}  F1 {values['f1']:.4f}"
        )
    if args.out is not None:
        write_json(args.out, metrics)


@dataclass
class ReproduceArgs:
    out: Path = option(Path("reports/portal-learning"), help="directory for results", output="dir")
    quick: bool = option(True, help="the quick version (minutes on a CPU)", flags=("--quick", "--full"))


@app.command("reproduce", ReproduceArgs, help="the paper's claims (arrive in portal-learning 0.2.0)")
def reproduce(args: ReproduceArgs) -> None:
    from portal_learning.reproduce import AVAILABLE_IN

    raise InputError(f"portal-learning reproduce arrives in {AVAILABLE_IN} with the encoders and meta-learning; "
                     f"{__version__} provides synth, split and baseline")  # fmt: skip


def main() -> None:
    raise SystemExit(app.main())


if __name__ == "__main__":
    main()
