"""``advsep``: probe, sweep and reproduce from the command line (parsing only)."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from advsep import __version__
from papers_common import App, InputError, RunDir, option, seed_everything, to_jsonable

if TYPE_CHECKING:
    from advsep.data import Dataset
    from advsep.experiment import Outcome, Setup

app = App(
    "advsep",
    description="Adversarial noises of (nearly) random networks are linearly separable (Zhang et al., AISTATS "
    "2023): make the noises of a dataset, probe them linearly, sweep width / training / depth / attack steps.",
    version=__version__,
)

ModelName = Literal["two-layer", "mlp", "cnn"]
MethodName = Literal["fgsm", "grad", "grad_l2", "pgd"]
AxisName = Literal["width", "epochs", "lr", "depth", "steps"]
INTEGER_AXES = {"width": 1, "epochs": 0, "depth": 1, "steps": 1}  # the least value of each


# The experiments are small and run on the CPU, so the commands take no --device; probe and sweep have a single
# size (no --quick/--full), which their flags set.
@dataclass
class ExperimentArgs:
    seed: int = option(0, help="random seed for Python, NumPy and torch")
    dataset: str = option("digits", help="digits, mnist1d, gaussian, a .npz file (x, y[, x_test, y_test]) or torchvision:NAME:ROOT")  # fmt: skip
    standardize: bool = option(
        True, help="standardise a .npz or torchvision dataset's features with its training split's statistics"
    )
    model: ModelName = option(
        "two-layer",
        help="two-layer (the theorem's network), mlp (--depth layers) or cnn (fixed channels 32, 64)",
    )
    width: int | None = option(None, help="hidden units m of two-layer and mlp; 1024 when not given")
    depth: int | None = option(None, help="weight layers of an mlp; 2 when not given")
    activation: Literal["relu", "tanh", "gelu"] = option("relu", help="activation")
    parameterization: Literal["ntk", "standard"] | None = option(
        None, help="two-layer and mlp: ntk (N(0,1) weights / sqrt(fan-in), ±1 output, no bias; when not given) "
        "or standard (nn.Linear)"
    )  # fmt: skip
    train_epochs: int = option(0, help="SGD epochs before the noise is made (0: at initialisation)")
    lr: float = option(0.1, help="SGD learning rate")
    batch_size: int = option(128, help="SGD mini-batch")
    method: MethodName = option("fgsm", help="fgsm, grad (raw gradient), grad_l2 or pgd")
    eps: float = option(0.1, help="ε of fgsm / grad_l2 / pgd")
    steps: int = option(10, help="PGD steps")
    labels: Literal["true", "shuffled"] = option("true", help="labels the noise is built with")
    probe: Literal["lbfgs", "ridge", "sklearn", "precursor"] = option("lbfgs", help="the linear probe")
    threads: int | None = option(
        None, help="torch CPU threads (default: one per available core); a fixed count makes the same seed give "
        "the same numbers whatever the number of cores"
    )  # fmt: skip


@dataclass
class ProbeArgs(ExperimentArgs):
    out: Path | None = option(
        None, help="run directory for config.json and result.json (default: print only)", output="dir"
    )
    save_noise: Path | None = option(
        None, help="also write the noises to this .npz (x, y, x_test, y_test)", output="file"
    )


@dataclass
class SweepArgs(ExperimentArgs):
    over: AxisName = option("width", help="the setting to sweep")
    values: list[float] = option([8, 32, 128, 512, 2048], help="its values")
    out: Path = option(
        Path("runs/sweep"), help="directory for sweep.json, sweep.md and sweep.png", output="dir"
    )


@dataclass
class ReproduceArgs:
    seed: int = option(0, help="random seed for Python, NumPy and torch")
    out: Path = option(
        Path("reports/advsep"),
        help="directory for results.json, results.md, tables and figures",
        output="dir",
    )
    quick: bool = option(True, help="2 seeds, a minute or two on a CPU (--full: more widths, epochs, depths and "
                         "3 seeds)", flags=("--quick", "--full"))  # fmt: skip
    threads: int | None = option(
        1,
        help="torch CPU threads, fixed so that the same seed gives the same numbers whatever the number of cores",
    )


def _at_least(flag: str, value: int | None, least: int) -> None:
    if value is not None and value < least:
        raise InputError(f"{flag} must be an integer >= {least}, got {value}")


def _setup(args: ExperimentArgs) -> Setup:
    from advsep.experiment import Setup

    seed_everything(args.seed)  # also refuses a negative --seed
    for flag, value, least in (("--width", args.width, 1), ("--depth", args.depth, 1),
                               ("--train-epochs", args.train_epochs, 0), ("--batch-size", args.batch_size, 1),
                               ("--steps", args.steps, 1)):  # fmt: skip
        _at_least(flag, value, least)
    if not (math.isfinite(args.lr) and args.lr > 0):
        raise InputError(f"--lr must be positive and finite, got {args.lr}")
    if not (math.isfinite(args.eps) and args.eps > 0):
        raise InputError(f"--eps must be positive and finite, got {args.eps}")
    if args.model == "cnn":
        given = [f for f, v in (("--width", args.width), ("--depth", args.depth),
                                ("--parameterization", args.parameterization)) if v is not None]  # fmt: skip
        if given:
            raise InputError(f"{given[0]}: the cnn has fixed channels (32, 64) and torch's initialisation; "
                             "--width, --depth and --parameterization apply to --model two-layer and mlp")  # fmt: skip
    if args.model == "two-layer" and args.depth not in (None, 2):
        raise InputError(f"--depth {args.depth}: the two-layer network has 2 weight layers; use --model mlp")
    return Setup(
        model=args.model, width=1024 if args.width is None else args.width,
        depth=2 if args.depth is None else args.depth, activation=args.activation,
        parameterization=args.parameterization or "ntk", epochs=args.train_epochs, lr=args.lr,
        batch_size=args.batch_size, method=args.method, eps=args.eps, steps=args.steps, labels=args.labels,
        probe=args.probe, seed=args.seed,
    )  # fmt: skip


def _load(args: ExperimentArgs) -> Dataset:
    from advsep.data import load_dataset

    return load_dataset(args.dataset, seed=args.seed, standardize_features=args.standardize)


def _save_standardization(run: RunDir, data: Dataset) -> None:
    if data.standardization is not None:
        data.standardization.save(run.path("standardization.npz"))


@app.command("probe", ProbeArgs, help="make the noises of a dataset and fit a linear probe on them")
def probe(args: ProbeArgs) -> None:
    from advsep.experiment import clean_probe, experiment

    setup = _setup(args)
    data = _load(args)
    outcome = experiment(data, setup)
    result = {
        **outcome.metrics,
        "clean_test_accuracy": clean_probe(data, setup.probe),
        "dataset": data.describe(),
    }
    if args.save_noise is not None:
        _save_noise(args.save_noise, outcome)
    if args.out is not None:
        run = RunDir(args.out)
        run.write_config(
            {"command_line": to_jsonable(args), "setup": asdict(setup), "dataset": data.describe()}
        )
        run.write_json("result.json", result)
        _save_standardization(run, data)
        outcome.model.save_pretrained(
            run.path("model"), extra={"dataset": data.describe(), "setup": asdict(setup)}
        )
    print(json.dumps(result))


def _save_noise(path: Path, outcome: Outcome) -> None:
    import numpy as np

    from papers_common import atomic_path

    arrays = {"x": outcome.noise_train, "y": outcome.labels_train, "x_test": outcome.noise_test,
              "y_test": outcome.labels_test}  # fmt: skip
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **{k: v.numpy() for k, v in arrays.items()})


@app.command("sweep", SweepArgs, help="the probe's accuracy as one setting varies; writes a table and a plot")
def sweep_command(args: SweepArgs) -> None:
    from advsep.experiment import clean_probe, sweep
    from papers_common import plot_lines, write_text

    setup = _setup(args)
    values: list[float | int] = []
    for v in args.values:
        if args.over in INTEGER_AXES:
            least = INTEGER_AXES[args.over]
            if not float(v).is_integer() or v < least:
                raise InputError(f"--values: {args.over} takes integers >= {least}, got {v:g}")
            values.append(int(v))
        elif not (math.isfinite(v) and v > 0):
            raise InputError(f"--values: {args.over} takes positive finite numbers, got {v}")
        else:
            values.append(float(v))
    data = _load(args)
    rows = sweep(data, setup, args.over, values)
    clean = clean_probe(data, setup.probe)
    run = RunDir(args.out)
    run.write_config({"command_line": to_jsonable(args), "setup": asdict(setup), "dataset": data.describe()})
    _save_standardization(run, data)
    run.write_json("sweep.json", {"clean_test_accuracy": clean, "rows": rows})
    table = [f"| {args.over} | probe train | probe test | distance from init | network test accuracy |",
             "|---|---|---|---|---|"]  # fmt: skip
    table += [f"| {r['value']:g} | {r['noise_train_accuracy']:.3f} | {r['noise_test_accuracy']:.3f} | "
              f"{r['distance']:.3f} | {r['model_test_accuracy']:.3f} |" for r in rows]  # fmt: skip
    table.append(f"\nClean-input probe, test: {clean:.3f}")
    write_text(args.out / "sweep.md", "\n".join(table) + "\n")
    x = [r["value"] for r in rows]
    if len(x) > 1:
        plot_lines(args.out / "sweep.png", {"noise probe (test)": (x, [r["noise_test_accuracy"] for r in rows]),
                   "clean-input probe": (x, [clean] * len(x))}, xlabel=args.over, ylabel="accuracy",
                   logx=args.over in ("width", "lr", "steps") and min(x) > 0)  # fmt: skip
    print(json.dumps({"clean_test_accuracy": clean, "rows": [{k: r[k] for k in ("value", "noise_test_accuracy",
                      "distance")} for r in rows], "out": str(args.out)}))  # fmt: skip


@app.command("reproduce", ReproduceArgs, help="measure the paper's claims; write results.json/.md and figures",
             extra="reproduce")  # fmt: skip
def reproduce(args: ReproduceArgs) -> None:
    from advsep.reproduce import run

    seed_everything(args.seed)
    results = run(args.out, quick=args.quick, seed=args.seed)
    for line in results.summary_lines():
        print(line)
    print(f"wrote {args.out / 'results.json'} and {args.out / 'results.md'}")


def main() -> None:
    raise SystemExit(app.main())


if __name__ == "__main__":
    main()
