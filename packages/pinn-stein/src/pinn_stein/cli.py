"""``pinn-stein``: train, evaluate, build references and reproduce from the command line (parsing only)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from papers_common import App, InputError, RunArgs, RunDir, option, pick_device, seed_everything, to_jsonable
from pinn_stein import __version__

if TYPE_CHECKING:
    from pinn_stein.pdes import PDE

app = App(
    "pinn-stein",
    description="PINNs without stacked back-propagation (He et al., AISTATS 2023): train Gaussian-smoothed "
    "networks whose derivatives come from forward passes (Stein's identity), or exact-autograd PINNs, on "
    "high-dimensional Poisson, Heat and HJB problems.",
    version=__version__,
)

PDEName = Literal["poisson", "heat", "hjb", "hjb-lin"]
MethodName = Literal[
    "stein-vr", "stein", "smoothed-autograd", "pinn", "pinn-hvp", "pinn-forward", "pinn-hutchinson"
]


@dataclass
class TrainArgs(RunArgs):
    pde: PDEName = option("heat", help="the problem")
    dim: int = option(100, help="spatial dimension d")
    method: MethodName = option("stein-vr", help="how derivatives are computed")
    iterations: int = option(
        1000, help="Adam steps, learning rate decaying linearly to 0 (--quick: at most 200)"
    )
    lr: float = option(1e-3, help="initial Adam learning rate")
    width: int = option(256, help="hidden units per layer")
    depth: int = option(3, help="hidden layers")
    samples: int = option(2048, help="N, noisy copies per point for the smoothed methods (even for stein-vr)")
    eval_samples: int = option(2048, help="N for the smoothed model at test time")
    sigma_x: float = option(0.01, help="spatial smoothing scale")
    sigma_t: float = option(0.01, help="time smoothing scale")
    batch: tuple[str, ...] = option(
        (), help="points per region, e.g. domain=50 boundary=50 (default: the paper's)"
    )
    weights: tuple[str, ...] = option(
        (), help="loss weights, e.g. domain=1 initial=1000 (default: the paper's)"
    )
    test_set: Path | None = option(
        None, help="a reference file from `pinn-stein reference` (or the paper's pickle)"
    )
    test_points: int = option(2000, help="size of the generated test set when --test-set is not given")
    mc_samples: int = option(16384, help="Monte Carlo draws per point of a generated HJB reference")
    eval_every: int = option(0, help="evaluate every N iterations (0: at the end)")
    checkpoint_every: int = option(100, help="checkpoint every N iterations (0: at the end)")
    probes: int = option(16, help="Rademacher probes for pinn-hutchinson")


@dataclass
class EvaluateArgs:
    checkpoint: Path = option(
        help="a run directory written by `pinn-stein train`, its model/ folder (anywhere), or a checkpoint file"
    )
    test_set: Path | None = option(
        None,
        help="a reference file (default: the run's own test set, drawn again when the run is not beside it)",
    )
    eval_samples: int | None = option(
        None, help="N for the smoothed model (default: the run's --eval-samples)"
    )
    seed: int = option(0, help="seed of the smoothing noise")
    device: str = option("auto", help="'auto', 'cpu', 'cuda' or 'cuda:N'")


@dataclass
class ReferenceArgs:
    pde: PDEName = option("hjb", help="the problem (hjb: Cole–Hopf Monte Carlo; others: exact)")
    dim: int = option(250, help="spatial dimension d")
    points: int = option(1000, help="test points")
    samples: int = option(65536, help="Monte Carlo draws per point (float64)")
    seed: int = option(0, help="seed of the points and of the draws")
    out: Path = option(Path("hjb_reference.safetensors"), help="output .safetensors file", output="file")


@dataclass
class ReproduceArgs(RunArgs):
    out: Path = option(
        Path("reports/pinn-stein"),
        help="directory for results.json, results.md, tables and figures",
        output="dir",
    )
    quick: bool = option(
        True,
        help="minutes on a CPU (--full: the paper's widths, N and iterations)",
        flags=("--quick", "--full"),
    )
    threads: int | None = option(
        1, help="torch CPU threads, fixed so that the same seed gives the same numbers on any machine"
    )


def _pairs(values: tuple[str, ...], option_name: str, kind: type) -> dict[str, float]:
    """``("domain=50", ...)`` -> ``{"domain": 50}``; malformed items are errors naming the option."""
    found = {}
    for item in values:
        region, sep, text = item.partition("=")
        try:
            if not sep or not region:
                raise ValueError
            found[region] = kind(text)
        except ValueError:
            raise InputError(
                f"--{option_name}: expected REGION=VALUE items such as domain=50, got {item!r}"
            ) from None
    return found


def _pde(name: str, dim: int) -> PDE:
    from pinn_stein.pdes import make_pde

    return make_pde(name, dim)


@app.command("train", TrainArgs, help="train a network on a PDE and report relative L1/L2 test errors")
def train(args: TrainArgs) -> None:
    from papers_common import MLP, MLPConfig
    from pinn_stein.reference import TestSet, cached_test_set
    from pinn_stein.train import TrainConfig
    from pinn_stein.train import train as fit

    seed_everything(args.seed)
    device = pick_device(args.device)
    pde = _pde(args.pde, args.dim)
    config = TrainConfig(
        method=args.method,
        iterations=min(args.iterations, 200) if args.quick else args.iterations,
        lr=args.lr,
        batch={k: int(v) for k, v in _pairs(args.batch, "batch", int).items()} or None,
        weights=_pairs(args.weights, "weights", float) or None,
        sigma_x=args.sigma_x,
        sigma_t=args.sigma_t,
        samples=args.samples,
        eval_samples=args.eval_samples,
        eval_every=args.eval_every,
        checkpoint_every=args.checkpoint_every,
        probes=args.probes,
    )
    run = RunDir(args.out)
    if args.test_set is not None:
        test = TestSet.load(args.test_set)
        if test.x.shape[1] != pde.dim:
            raise InputError(
                f"{args.test_set}: its points have dimension {test.x.shape[1]}, not --dim {pde.dim}"
            )
    else:
        test = cached_test_set(
            run.path("test_set.safetensors"),
            pde,
            args.test_points,
            seed=args.seed + 1,
            samples=args.mc_samples,
        )
    g = MLP(MLPConfig(pde.input_dim, args.width, args.depth))
    result = fit(
        pde, g, config, test=test, seed=args.seed, device=device, run=run,
        extra_config={"command_line": to_jsonable(args)},
    )  # fmt: skip
    print(
        json.dumps(
            {
                "iterations": result.iterations,
                "seconds_per_iteration": result.seconds_per_iteration,
                **result.metrics,
                "model": str(result.model),
            }
        )
    )


@app.command("evaluate", EvaluateArgs, help="relative L1/L2 errors of a trained network on a test set")
def evaluate(args: EvaluateArgs) -> None:
    import torch

    from pinn_stein.reference import TestSet
    from pinn_stein.train import evaluate as measure
    from pinn_stein.trained import load_trained, model_location

    device = pick_device(args.device)
    trained = load_trained(args.checkpoint, map_location=device, eval_samples=args.eval_samples)
    _, run_root = model_location(args.checkpoint)
    beside = None if run_root is None else run_root / "test_set.safetensors"
    if args.test_set is not None:
        if not args.test_set.is_file():
            raise InputError(f"--test-set {args.test_set}: no such file")
        test = TestSet.load(args.test_set)
    elif beside is not None and beside.is_file():
        test = TestSet.load(beside)
    elif trained.test_recipe is not None:
        test = trained.regenerate_test_set()
    else:
        raise InputError(f"{args.checkpoint}: no test set beside this model; give --test-set FILE")
    if test.x.shape[1] != trained.pde.dim:
        raise InputError(
            f"the test set's points have dimension {test.x.shape[1]}, the model's {trained.pde.dim}"
        )
    generator = torch.Generator(device=device).manual_seed(args.seed)
    metrics = measure(
        trained.g, test, method=trained.method, smoothing=trained.smoothing, generator=generator
    )
    print(json.dumps(metrics))


@app.command(
    "reference", ReferenceArgs, help="build a test set: exact values, or a float64 Monte Carlo HJB reference"
)
def reference(args: ReferenceArgs) -> None:
    from pinn_stein.reference import make_test_set

    test = make_test_set(_pde(args.pde, args.dim), args.points, seed=args.seed, samples=args.samples)
    path = test.save(args.out)
    print(json.dumps({"out": str(path), **test.meta}))


@app.command(
    "reproduce",
    ReproduceArgs,
    help="measure the paper's claims; write results.json/.md, tables and figures",
    extra="reproduce",
)
def reproduce(args: ReproduceArgs) -> None:
    from pinn_stein.reproduce import run

    seed_everything(args.seed)
    results = run(args.out, quick=args.quick, seed=args.seed, device=pick_device(args.device))
    for line in results.summary_lines():
        print(line)
    print(f"wrote {args.out / 'results.json'}, {args.out / 'results.md'} and {args.out / 'tables.md'}")


def main() -> None:
    raise SystemExit(app.main())
