"""``pinn-linf``: train, evaluate, build references and reproduce from the command line (parsing only)."""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from papers_common import (
    App,
    InputError,
    RunArgs,
    RunDir,
    option,
    pick_device,
    read_json,
    seed_everything,
    to_jsonable,
)
from pinn_linf import __version__

if TYPE_CHECKING:
    from papers_common import TestSet
    from pinn_linf.problems import HJBProblem

app = App(
    "pinn-linf",
    description="L-infinity (adversarial) training of physics-informed networks for high-dimensional HJB "
    "equations (Wang et al., NeurIPS 2022), against the L2 loss, with exact or float64 Monte Carlo references.",
    version=__version__,
)

ProblemName = Literal["hjb-lqg", "hjb-lin"]
LossName = Literal["l2", "lp", "adversarial"]
MethodName = Literal["forward", "autograd"]
CPU_WIDTH, PAPER_WIDTH, QUICK_WIDTH = 256, 4096, 64
QUICK_ITERATIONS, QUICK_TEST_POINTS, QUICK_MC_SAMPLES = 100, 200, 4096


def _check_counts(args: object, least: dict[str, int]) -> None:
    """Raise :class:`InputError` naming the flag when a size or count option of ``args`` is below its least value.

    ``least`` maps option names to the smallest value that means something (1 for sizes; 0 where 0 is documented,
    as "evaluate only at the end"); unset options (None) are skipped.
    """
    for name, minimum in least.items():
        value = getattr(args, name)
        if value is not None and value < minimum:
            flag = "--" + name.replace("_", "-")
            wanted = "a positive integer" if minimum == 1 else f"an integer of at least {minimum}"
            raise InputError(f"{flag} {value}: must be {wanted}")


@dataclass
class ProblemArgs:
    pde: ProblemName = option("hjb-lqg", help="the problem")
    dim: int = option(100, help="spatial dimension d")
    mu: float = option(1.0, help="μ of hjb-lqg (u_t + Δu − μ|∇u|² = 0)")
    c: float = option(1.25, help="exponent c in (1, 2] of hjb-lin")
    horizon: float = option(1.0, help="terminal time T")

    def __post_init__(self) -> None:
        _check_counts(self, {"dim": 1})


@dataclass
class TrainArgs(RunArgs, ProblemArgs):
    loss: LossName = option(
        "adversarial", help="l2 (standard PINN), lp (squared L^p norm) or adversarial (L∞)"
    )
    p: float = option(4.0, help="p of the lp loss")
    steps: int = option(
        20, help="K ≥ 1, sign-gradient ascent steps per iteration (adversarial; --loss l2 has none)"
    )
    step_size: float = option(0.05, help="η, the ascent step per coordinate (adversarial)")
    radius: float | None = option(
        None, help="bound on |x − x₀| per coordinate during the ascent (default: none)"
    )
    box: float | None = option(None, help="bound on |x| per coordinate during the ascent (default: none)")
    iterations: int = option(
        5000, help="Adam steps, learning rate decaying linearly to 0 (--quick: at most 100)"
    )
    lr: float = option(7e-4, help="initial learning rate")
    domain_batch: int = option(100, help="fresh points inside per iteration")
    terminal_batch: int = option(100, help="fresh points on the slice t = T per iteration")
    domain_weight: float = option(1.0, help="weight of the residual term")
    terminal_weight: float = option(20.0, help="weight of the terminal term")
    width: int | None = option(
        None,
        help=f"hidden units per layer (default: {PAPER_WIDTH} on a GPU, as the paper; {CPU_WIDTH} on a CPU; {QUICK_WIDTH} with --quick)",
    )
    depth: int = option(3, help="hidden layers")
    method: MethodName = option(
        "forward", help="exact derivatives: forward Laplacian (fastest) or torch.func autograd"
    )
    time_budget: float | None = option(
        None, help="equal wall-clock mode: train this many seconds (the decay follows time)"
    )
    eval_every: int = option(100, help="evaluate every N iterations (0: at the end)")
    checkpoint_every: int = option(500, help="checkpoint every N iterations (0: at the end)")
    test_set: Path | None = option(
        None, help="a reference file from `pinn-linf reference` (or the paper's hjb_{100,250}_grad.pkl)"
    )
    test_points: int = option(
        1000, help="size of the generated test set when --test-set is not given (--quick: at most 200)"
    )
    mc_samples: int = option(
        65536, help="Monte Carlo draws per point of a generated hjb-lqg reference (--quick: at most 4096)"
    )
    probe_points: int = option(2000, help="points where the maximum residual is measured")  # fmt: skip

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_counts(self, {"steps": 1, "iterations": 1, "domain_batch": 1, "terminal_batch": 1, "width": 1,
                            "depth": 1, "eval_every": 0, "checkpoint_every": 0, "test_points": 1,
                            "mc_samples": 1, "probe_points": 1})  # fmt: skip


@dataclass
class EvaluateArgs:
    model: Path = option(help="a run directory written by `pinn-linf train`, or its model/ folder (anywhere)")
    test_set: Path | None = option(
        None, help="a reference file (default: the run's own test set, rebuilt or cached)"
    )
    test_points: int = option(1000, help="size of a regenerated test set outside a run directory")
    mc_samples: int = option(65536, help="Monte Carlo draws per point of such a set (hjb-lqg)")
    device: str = option("auto", help="'auto', 'cpu', 'cuda' or 'cuda:N'")

    def __post_init__(self) -> None:
        _check_counts(self, {"test_points": 1, "mc_samples": 1})


@dataclass
class ReferenceArgs(ProblemArgs):
    points: int = option(1000, help="test points")
    mc_samples: int = option(65536, help="Monte Carlo draws per point (float64; hjb-lqg only)")
    seed: int = option(0, help="seed of the points and of the draws")
    out: Path = option(Path("hjb_reference.safetensors"), help="output .safetensors file", output="file")

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_counts(self, {"points": 1, "mc_samples": 1})


@dataclass
class ReproduceArgs(RunArgs):
    seed: int = option(
        0,
        help="the first seed: every comparison runs with seeds SEED, SEED+1, ... (3 in both modes); the test and "
        "probe points come from SEED",
    )
    out: Path = option(
        Path("reports/pinn-linf"),
        help="directory for results.json, results.md, tables and figures",
        output="dir",
    )
    quick: bool = option(True, help="minutes on a CPU (--full: d = 100 and longer runs)", flags=("--quick", "--full"))  # fmt: skip
    threads: int | None = option(
        1, help="torch CPU threads, fixed so that the same seed gives the same numbers on any machine"
    )


def _problem(args: ProblemArgs) -> HJBProblem:
    from pinn_linf.problems import make_problem

    if args.pde == "hjb-lqg":
        return make_problem(args.pde, args.dim, mu=args.mu, horizon=args.horizon)
    return make_problem(args.pde, args.dim, c=args.c, horizon=args.horizon)


def _unreadable(path: Path, err: Exception) -> str:
    """One line for a --test-set file that neither safetensors nor torch.load(weights_only=True) can read."""
    lines = str(err).splitlines()
    reason = f"{type(err).__name__}: {lines[0]}" if lines else type(err).__name__
    return (
        f"--test-set {path}: not a readable test set ({reason}); expected a .safetensors file written by "
        "`pinn-linf reference` (tensors x, t, u, grad) or the paper's hjb_{100,250}_grad.pkl (X, Y, grad_x)"
    )


def _load_test_set(path: Path, problem: HJBProblem) -> TestSet:
    from papers_common import TestSet, UnsafeCheckpointError

    if not path.is_file():
        raise InputError(f"--test-set {path}: no such file")
    try:
        # torch notes a plain pickle's protocol before it refuses the file; the one line below says it all
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Detected pickle protocol", UserWarning)
            test = TestSet.load(path)
    except (InputError, MemoryError) as err:
        if not isinstance(err, UnsafeCheckpointError):  # a readable file that is no test set is named already
            raise
        raise InputError(_unreadable(path, err)) from err
    except Exception as err:  # safetensors and torch's unpickler fail in many ways on a foreign file
        raise InputError(_unreadable(path, err)) from err
    if test.x.shape[1] != problem.dim:
        raise InputError(f"{path}: its points have dimension {test.x.shape[1]}, the problem {problem.dim}")
    if test.t is None:
        raise InputError(f"{path}: an HJB test set needs times t")
    return test


@app.command(
    "train", TrainArgs, help="train a network with the L2, L^p or adversarial loss and report its errors"
)
def train(args: TrainArgs) -> None:
    import torch

    from papers_common import MLP, MLPConfig
    from pinn_linf.adversarial import Ascent
    from pinn_linf.losses import LossConfig
    from pinn_linf.reference import cached_test_set
    from pinn_linf.train import TrainConfig
    from pinn_linf.train import train as fit

    seed_everything(args.seed)
    device = pick_device(args.device)
    problem = _problem(args)
    width = args.width
    if width is None:
        width = QUICK_WIDTH if args.quick else PAPER_WIDTH if device.type == "cuda" else CPU_WIDTH
    test_points, mc_samples = args.test_points, args.mc_samples
    if args.quick:
        test_points, mc_samples = min(test_points, QUICK_TEST_POINTS), min(mc_samples, QUICK_MC_SAMPLES)
    config = TrainConfig(
        iterations=min(args.iterations, QUICK_ITERATIONS) if args.quick else args.iterations,
        lr=args.lr,
        domain_batch=args.domain_batch,
        terminal_batch=args.terminal_batch,
        loss=LossConfig(
            kind=args.loss,
            p=args.p,
            ascent=Ascent(args.steps, args.step_size, args.radius, args.box),
            domain_weight=args.domain_weight,
            terminal_weight=args.terminal_weight,
        ),
        method=args.method,
        time_budget=args.time_budget,
        eval_every=args.eval_every,
        checkpoint_every=args.checkpoint_every,
    )
    MLPConfig(problem.input_dim, width, args.depth)  # validates the sizes before anything is written
    if args.test_set is not None:
        test = _load_test_set(args.test_set, problem)
        recipe = {"file": str(args.test_set)}
    else:
        test = cached_test_set(problem, test_points, seed=args.seed + 1, samples=mc_samples)
        recipe = test.meta
    probe = problem.sample(args.probe_points, torch.Generator().manual_seed(args.seed + 2))
    run = RunDir(args.out)
    net = MLP(MLPConfig(problem.input_dim, width, args.depth)).to(device)
    result = fit(
        net, problem, config, test=test, probe=probe, seed=args.seed, run=run,
        extra_config={"command_line": to_jsonable(args), "width": width, "test_set": recipe},
    )  # fmt: skip
    print(json.dumps({"iterations": result.iterations, "seconds": round(result.seconds, 3), **result.metrics,
                      "model": str(result.model)}))  # fmt: skip


def _run_config(model: Path) -> dict[str, Any]:
    """The config.json of the training run that wrote ``model`` (given as the run or its model/), or {}."""
    for folder in (model, model.parent):
        config = folder / "config.json"
        if config.is_file():
            recorded = read_json(config, "run config")
            if isinstance(recorded.get("train"), dict):
                return recorded
    return {}


@app.command(
    "evaluate", EvaluateArgs, help="relative L1 / L2 / W^{1,1} errors and the maximum residual of a model"
)
def evaluate(args: EvaluateArgs) -> None:
    import torch

    from pinn_linf.reference import cached_test_set
    from pinn_linf.solution import load_solution
    from pinn_linf.train import evaluate as measure

    device = pick_device(args.device)
    solution = load_solution(args.model)
    solution.net.to(device)
    problem = solution.problem
    recorded = _run_config(args.model)
    recipe = recorded.get("test_set", {})
    if not (isinstance(recipe, dict) and "seed" in recipe):  # a run on a test-set file
        recipe = {}
    loss = recorded.get("train", {}).get("loss", {})
    weights = (float(loss.get("domain_weight", 1.0)), float(loss.get("terminal_weight", 20.0)))
    command = recorded.get("command_line", {})  # the run's probe set: its size and seed + 2, as in train
    probe_points, probe_seed = int(command.get("probe_points", 2000)), int(command.get("seed", 0)) + 2
    if args.test_set is not None:
        test = _load_test_set(args.test_set, problem)
    else:
        test = cached_test_set(
            problem,
            int(recipe.get("points", args.test_points)),
            seed=int(recipe.get("seed", 1)),
            samples=int(recipe.get("monte_carlo_samples", args.mc_samples)),
        )
    probe = problem.sample(probe_points, torch.Generator().manual_seed(probe_seed))
    metrics = measure(solution.net, problem, test, probe, weights=weights)
    print(json.dumps({"problem": problem.describe(), **metrics}))


@app.command(
    "reference",
    ReferenceArgs,
    help="build a test set: closed form (hjb-lin) or float64 Monte Carlo (hjb-lqg)",
)
def reference(args: ReferenceArgs) -> None:
    from pinn_linf.reference import make_test_set

    test = make_test_set(_problem(args), args.points, seed=args.seed, samples=args.mc_samples)
    path = test.save(args.out)
    print(json.dumps({"out": str(path), **test.meta}))


@app.command("reproduce", ReproduceArgs, help="measure the paper's claims; write results.json/.md and figures",
             extra="reproduce")  # fmt: skip
def reproduce(args: ReproduceArgs) -> None:
    from pinn_linf.reproduce import run

    seed_everything(args.seed)
    results = run(args.out, quick=args.quick, seed=args.seed, device=pick_device(args.device))
    for line in results.summary_lines():
        print(line)
    print(f"wrote {args.out / 'results.json'} and {args.out / 'results.md'}")


def main() -> None:
    raise SystemExit(app.main())


if __name__ == "__main__":
    main()
