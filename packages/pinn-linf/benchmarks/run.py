"""pinn-linf's adversarial training vs its own L2 PINN, DeepXDE and the official L_inf-PINN code on HJB-LQG:
errors at equal time, s per iteration.

Workload: ``pinn_linf.HJBLQG(20)`` (u_t + Δu − abs(∇u)² = 0, T = 1, g(x) = log((1 + abs(x)²)/2)), the tanh MLP
[21, W, W, W, 1] of ``papers_common.MLP`` (W = 128 quick, 256 full), 64 domain + 64 terminal points drawn fresh
each iteration (x ~ N(0, I), t ~ U(0, 1) or t = 1), Adam 1e-3 decaying linearly to 0, loss weights 1 and 20,
``torch.set_num_threads(--threads)``. Errors are relative L2 and W^{1,1} (``pinn_linf.relative_errors``) on a
float64 Monte Carlo test set (``pinn_linf.cached_test_set``, with a seed of its own); every network starts from
the same initial weights.

Measurements, each in its own fresh Python process (``papers_common.run_isolated``):

1. Equal wall clock: ours, ``pinn_linf.train`` with the adversarial loss (K = 5 sign-ascent steps of size
   η = 0.05) for ``budget`` seconds (30 quick, 120 full); then, for exactly as many seconds, the strongest
   equal-time alternative, our own L2 PINN (the same trainer and network with ``LossConfig(kind="l2")``, whose
   iterations cost about 1/(K + 1) as much), and DeepXDE (``deepxde_hjb``: a ``dde.grad.hessian`` loop in a
   hand-written training loop, since DeepXDE's geometries cannot express x ~ N(0, I)) with RAR (residual-based
   adaptive refinement) and with plain resampling. Headline: our adversarial W^{1,1} error / our L2 PINN's.
   A comparison in which either side ran fewer than ``MIN_ITERATIONS`` (50) iterations in the budget (an
   overloaded machine) compares barely trained networks: its rows are left out of bench.json, and when it is
   the headline's, no bench.json is written and the exit status is 1.
2. Seconds per plain L2 iteration: ours (forward Laplacian, ``pinn_linf.fields(method="forward")``) against
   DeepXDE's ``dde.grad.hessian`` loop on the same network and batch, after checking that both give the same
   derivatives on shared weights.
3. With ``--official-dir`` (a checkout of LithiumDA/L_inf-PINN, imported by ``official_loop``): seconds per
   adversarial and per L2 iteration of ours against the official ``pgd`` + ``HJBEquation`` + ``PinnWrapper``
   loop with the same K, η, sizes and weights; and both trained for the same number of iterations from the same
   weights on the same points, with their errors. Without it these rows are left out.

``ratio = ours / anchor``: below 1 means ours has the lower error, or is faster. The exit status is 1 when an
anchor's Laplacian does not match ours (bench.json is written all the same) or when the headline comparison is
invalid (then no bench.json is written).

    python packages/pinn-linf/benchmarks/run.py --out reports/pinn-linf [--quick] [--threads 2] \\
        [--official-dir PATH]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from functools import partial
from importlib.metadata import version
from pathlib import Path
from typing import Any

import official_loop  # the sibling module (this script's folder is first on sys.path)
import torch

from papers_common import (
    MLP,
    Anchor,
    Bench,
    InputError,
    Measurement,
    MLPConfig,
    TestSet,
    configure_logging,
    emit_result,
    machine_info,
    progress,
    run_isolated,
    write_bench,
)
from pinn_linf import (
    HJBLQG,
    Ascent,
    LossConfig,
    TrainConfig,
    cached_test_set,
    fields,
    physics_loss,
    relative_errors,
    train,
)

# float32: the anchors' Laplacians must match ours to this, relative to max(1, max abs(Δu))
CHECK_TOLERANCE = 1e-5
TRAIN_SEED, TEST_SEED = 0, 2022  # the training points' and the test points' seeds, apart
MIN_ITERATIONS = 50  # an equal wall-clock run with fewer iterations than this makes its comparison invalid
HEADLINE_RUN = "train-ours-l2"  # the headline's anchor: our own L2 PINN for the same seconds
DEEPXDE_RUNS = {  # the DeepXDE equal wall-clock measurements and their labels in the table
    "train-deepxde-rar": "eq. time vs DeepXDE RAR",
    "train-deepxde-resample": "eq. time vs DeepXDE resample",
}


@dataclass(frozen=True)
class Setup:
    """Sizes and budgets shared by every measurement of one run.

    Attributes:
        dim, width, depth: d and the MLP's hidden layers (``MLPConfig(dim + 1, width, depth)``).
        domain_batch, terminal_batch: fresh points per iteration.
        lr: Adam's initial learning rate (linear decay to 0).
        steps, step_size: K and η of the adversarial ascent.
        budget: seconds of our adversarial training in the equal wall-clock comparison.
        warmup, timed, timed_adversarial: untimed and timed iterations of the seconds-per-iteration
            measurements (median; the adversarial ones are K + 1 times as long).
        equal_iterations: iterations of the ours-vs-official equal-iteration training.
        test_points, test_samples: the test set's size and its Monte Carlo draws per point.
        threads: ``torch.set_num_threads`` in every measuring process.
    """

    dim: int = 20
    width: int = 128
    depth: int = 3
    domain_batch: int = 64
    terminal_batch: int = 64
    lr: float = 1e-3
    steps: int = 5
    step_size: float = 0.05
    budget: float = 30.0
    warmup: int = 2
    timed: int = 10
    timed_adversarial: int = 5
    equal_iterations: int = 50
    test_points: int = 500
    test_samples: int = 2**14
    threads: int = 2

    @property
    def problem(self) -> HJBLQG:
        return HJBLQG(self.dim)

    @property
    def batch(self) -> tuple[int, int]:
        return self.domain_batch, self.terminal_batch

    @property
    def adversarial(self) -> LossConfig:
        return LossConfig(kind="adversarial", ascent=Ascent(steps=self.steps, step_size=self.step_size))

    def describe(self) -> str:
        """The settings every row shares, as text."""
        return (
            f"hjb-lqg d={self.dim}, MLP [{self.dim + 1}, {self.width}x{self.depth}, 1] tanh, batch "
            f"{self.domain_batch}+{self.terminal_batch}, Adam {self.lr:g} linear decay, threads={self.threads}"
        )


QUICK = Setup()
FULL = Setup(width=256, budget=120.0, equal_iterations=100, test_points=1000, test_samples=2**16)


@dataclass(frozen=True)
class Request:
    """One measurement: ``task`` (a key of :data:`TASKS`), the setup, the official checkout and, for DeepXDE's
    equal wall-clock runs, its budget in ``seconds``."""

    task: str
    setup: Setup
    official_dir: str | None = None
    seconds: float | None = None


# ---------------------------------------------------------------- the measurements (each in its own process)


def initial_network(setup: Setup) -> MLP:
    """The MLP every side starts from: PyTorch's default initialisation under ``torch.manual_seed(0)``."""
    torch.manual_seed(0)
    return MLP(MLPConfig(setup.dim + 1, setup.width, setup.depth))


def test_set(setup: Setup) -> TestSet:
    """The float64 Monte Carlo test set (built once, then read from pinn_linf's cache)."""
    return cached_test_set(setup.problem, setup.test_points, seed=TEST_SEED, samples=setup.test_samples)


def median_seconds(step: Callable[[], Any], setup: Setup, timed: int, desc: str) -> dict[str, float]:
    """Median wall-clock ``seconds`` of ``step()`` over ``timed`` calls after ``setup.warmup`` untimed ones, and
    the median CPU time of this process, ``cpu_seconds`` (with one thread, nearly independent of other load on
    the machine)."""
    wall, cpu = [], []
    for index in progress(range(setup.warmup + timed), desc=desc, unit="it"):
        tick, tock = time.perf_counter(), time.process_time()
        step()
        if index >= setup.warmup:
            wall.append(time.perf_counter() - tick)
            cpu.append(time.process_time() - tock)
    return {"seconds": statistics.median(wall), "cpu_seconds": statistics.median(cpu)}


def train_ours(request: Request, *, adversarial: bool) -> dict[str, Any]:
    """Our training (after building the test set); its errors. Adversarial: for ``budget`` seconds; L2: for the
    ``seconds`` the adversarial run took."""
    setup = request.setup
    test = test_set(setup)
    seconds = setup.budget if adversarial else request.seconds
    assert seconds is not None, "our L2 PINN's budget is the time the adversarial run took"
    config = TrainConfig(
        iterations=10**6,  # only a cap: the time budget ends training
        lr=setup.lr,
        domain_batch=setup.domain_batch,
        terminal_batch=setup.terminal_batch,
        loss=setup.adversarial if adversarial else LossConfig(kind="l2"),
        method="forward",
        time_budget=seconds,
        eval_every=0,
        checkpoint_every=0,
    )
    desc = "ours adversarial" if adversarial else "ours l2"
    result = train(initial_network(setup), setup.problem, config, test=test, seed=TRAIN_SEED, desc=desc)
    return {"seconds": result.seconds, "iterations": result.iterations, "metrics": result.metrics}


def train_deepxde(request: Request, *, refine: bool) -> dict[str, Any]:
    """DeepXDE for the ``seconds`` ours took, with RAR (``refine``) or fresh resampling only; its errors."""
    import deepxde_hjb

    setup, problem = request.setup, request.setup.problem
    assert request.seconds is not None, "DeepXDE's budget is the time ours took"
    net = deepxde_hjb.build(problem, setup.width, setup.depth)
    deepxde_hjb.copy_weights(initial_network(setup), net)
    rar = deepxde_hjb.RAR() if refine else None
    run = deepxde_hjb.train(
        net, problem, seconds=request.seconds, lr=setup.lr, batch=setup.batch, rar=rar, seed=TRAIN_SEED
    )
    metrics = relative_errors(net, problem, test_set(setup))
    return {**asdict(run), "metrics": metrics, "rar": None if rar is None else asdict(rar)}


def time_ours(request: Request, *, adversarial: bool) -> dict[str, Any]:
    """Median seconds of our iteration as :func:`pinn_linf.train` takes it: fresh points, ``physics_loss``
    (forward Laplacian; adversarial: after K ascent steps), backward, Adam step."""
    setup, problem = request.setup, request.setup.problem
    loss = setup.adversarial if adversarial else LossConfig(kind="l2")
    net = initial_network(setup)
    optimizer = torch.optim.Adam(net.parameters(), lr=setup.lr)
    generator = torch.Generator().manual_seed(TRAIN_SEED)

    def step() -> None:
        domain = problem.sample(setup.domain_batch, generator)
        terminal = problem.sample(setup.terminal_batch, generator, terminal=True)
        terms = physics_loss(net, problem, domain, terminal, loss, method="forward")
        optimizer.zero_grad(set_to_none=True)
        terms.total.backward()
        optimizer.step()

    timed = setup.timed_adversarial if adversarial else setup.timed
    kind = "adversarial" if adversarial else "l2"
    return median_seconds(step, setup, timed, f"timing ours {kind}")


def time_deepxde(request: Request) -> dict[str, Any]:
    """DeepXDE's derivatives checked against ours on shared weights, then its median L2 iteration."""
    import deepxde_hjb

    setup, problem = request.setup, request.setup.problem
    mlp = initial_network(setup)
    net = deepxde_hjb.build(problem, setup.width, setup.depth)
    deepxde_hjb.copy_weights(mlp, net)
    generator = torch.Generator().manual_seed(TRAIN_SEED)
    check = deepxde_hjb.laplacian_check(problem, mlp, net, problem.sample(setup.domain_batch, generator))
    optimizer = torch.optim.Adam(net.parameters(), lr=setup.lr)
    step = deepxde_hjb.l2_step(net, problem, optimizer, generator, setup.batch)
    return {**median_seconds(step, setup, setup.timed, "timing deepxde l2"), "check": check}


def official_run(request: Request, *, adversarial: bool, iterations: int) -> official_loop.OfficialRun:
    """``official_loop.OfficialRun`` from our initial weights (K = 0 unless ``adversarial``)."""
    setup, problem = request.setup, request.setup.problem
    assert request.official_dir is not None, "the official rows need --official-dir"
    code = official_loop.load(request.official_dir)
    net = official_loop.official_network(code, initial_network(setup))
    return official_loop.OfficialRun(
        code,
        net,
        dim=problem.dim,
        horizon=problem.horizon,
        mu=problem.mu,
        lr=setup.lr,
        iterations=iterations,
        steps=setup.steps if adversarial else 0,
        step_size=setup.step_size,
    )


def time_official(request: Request, *, adversarial: bool) -> dict[str, Any]:
    """The official Laplacian and domain loss checked against ours on the same weights, then its median
    iteration (``pgd`` on both point sets when ``adversarial``)."""
    setup, problem = request.setup, request.setup.problem
    run = official_run(request, adversarial=adversarial, iterations=10**6)
    generator = torch.Generator().manual_seed(TRAIN_SEED)
    z = problem.sample(setup.domain_batch, generator)
    found = fields(initial_network(setup), z, problem.dim, method="forward")
    laplacian, residual = found.laplacian.detach(), problem.residual(found).detach()
    check = {
        "laplacian_max_abs_diff": (run.laplacian(z) - laplacian).abs().max().item(),
        "laplacian_max_abs": laplacian.abs().max().item(),
        "domain_loss_theirs": run.equation.domain_loss(z.clone(), run.wrapper).detach().item(),
        "domain_loss_ours": residual.square().mean().item(),
        "commit": run.code.commit,
    }

    def step() -> None:
        domain = problem.sample(setup.domain_batch, generator)
        run.step(domain, problem.sample(setup.terminal_batch, generator, terminal=True))

    timed = setup.timed_adversarial if adversarial else setup.timed
    desc = f"timing official {'adversarial' if adversarial else 'l2'}"
    return {**median_seconds(step, setup, timed, desc), "check": check}


def equal_ours(request: Request) -> dict[str, Any]:
    """Ours, adversarial, for ``equal_iterations`` iterations; its errors."""
    setup = request.setup
    config = TrainConfig(
        iterations=setup.equal_iterations,
        lr=setup.lr,
        domain_batch=setup.domain_batch,
        terminal_batch=setup.terminal_batch,
        loss=setup.adversarial,
        method="forward",
        eval_every=0,
        checkpoint_every=0,
    )
    test = test_set(setup)
    result = train(initial_network(setup), setup.problem, config, test=test, seed=TRAIN_SEED, desc="ours")
    return {"seconds": result.seconds, "iterations": result.iterations, "metrics": result.metrics}


def equal_official(request: Request) -> dict[str, Any]:
    """The official loop for ``equal_iterations`` iterations on the points :func:`pinn_linf.train` draws
    (its seed; domain, then terminal points, each iteration); its errors."""
    setup, problem = request.setup, request.setup.problem
    run = official_run(request, adversarial=True, iterations=setup.equal_iterations)
    generator = torch.Generator().manual_seed(TRAIN_SEED)
    tick = time.perf_counter()
    for _ in progress(range(setup.equal_iterations), desc="official", unit="it"):
        domain = problem.sample(setup.domain_batch, generator)
        run.step(domain, problem.sample(setup.terminal_batch, generator, terminal=True))
    seconds = time.perf_counter() - tick
    metrics = relative_errors(run.net, problem, test_set(setup))
    return {"seconds": seconds, "iterations": setup.equal_iterations, "metrics": metrics}


TASKS: dict[str, Callable[[Request], dict[str, Any]]] = {
    "train-ours": partial(train_ours, adversarial=True),
    HEADLINE_RUN: partial(train_ours, adversarial=False),
    "train-deepxde-rar": partial(train_deepxde, refine=True),
    "train-deepxde-resample": partial(train_deepxde, refine=False),
    "time-ours-l2": partial(time_ours, adversarial=False),
    "time-deepxde-l2": time_deepxde,
}
OFFICIAL_TASKS: dict[str, Callable[[Request], dict[str, Any]]] = {
    "time-ours-adversarial": partial(time_ours, adversarial=True),
    "time-official-adversarial": partial(time_official, adversarial=True),
    "time-official-l2": partial(time_official, adversarial=False),
    "equal-ours": equal_ours,
    "equal-official": equal_official,
}


def worker(payload: dict[str, Any]) -> dict[str, Any]:
    """Run one request, given as the JSON of :func:`measure`, in this process (the child)."""
    request = Request(**{**payload, "setup": Setup(**payload["setup"])})
    torch.set_num_threads(request.setup.threads)
    return {**TASKS, **OFFICIAL_TASKS}[request.task](request)


# ---------------------------------------------------------------- the parent: measure, compare, report


def measure(request: Request) -> dict[str, Any]:
    """Run ``request`` in a fresh Python process (this script with ``--worker``)."""
    payload = {**asdict(request), "setup": asdict(request.setup)}
    return run_isolated(__file__, payload, request.task)


def measure_all(setup: Setup, official_dir: str | None) -> dict[str, dict[str, Any]]:
    """Every measurement, in order; the other equal wall-clock runs' budget is the time ours took."""
    tasks = [*TASKS, *(OFFICIAL_TASKS if official_dir is not None else ())]
    results: dict[str, dict[str, Any]] = {}
    bar = progress(tasks, desc="benchmark", unit="measurement")
    for task in bar:
        bar.set_postfix(task=task, refresh=False)
        equal_time = task.startswith("train-") and task != "train-ours"
        seconds = results["train-ours"]["seconds"] if equal_time else None
        results[task] = measure(Request(task, setup, official_dir, seconds))
    return results


def check_text(name: str, check: dict[str, Any], extra: str) -> tuple[bool, str]:
    """Whether ``name``'s Laplacian matched ours, and a one-line account ending in ok or MISMATCH."""
    passed = check["laplacian_max_abs_diff"] <= CHECK_TOLERANCE * max(1.0, check["laplacian_max_abs"])
    text = (
        f"{name} Laplacian vs pinn_linf.fields(method='forward') on the same weights (float32): max abs diff "
        f"{check['laplacian_max_abs_diff']:.2e} (max |Δu| {check['laplacian_max_abs']:.3g}), {extra}: "
        f"{'ok' if passed else 'MISMATCH'}"
    )
    return passed, text


Row = tuple[str, Measurement]  # a short label for the printed table, and the measurement


def too_few_iterations(ours: int, anchor: int, least: int = MIN_ITERATIONS) -> str | None:
    """Why an equal wall-clock comparison is invalid (a side ran fewer than ``least`` iterations), else None.

    Such networks are barely trained, and the ratio of their errors says nothing about the methods; it happens
    when other work starves one of the runs of its budget.
    """
    short = [
        f"{side} ran {count}" for side, count in (("ours", ours), ("the anchor", anchor)) if count < least
    ]
    if not short:
        return None
    return f"{' and '.join(short)} iterations in the budget, fewer than {least}"


def row(label: str, workload: str, metric: str, unit: str, ours: float, theirs: float, anchor: Anchor) -> Row:
    """A row whose metric is better when lower (errors and seconds)."""
    return label, Measurement(workload, metric, unit, ours, theirs, False, anchor)


def error_rows(
    label: str, workload: str, ours: dict[str, float], theirs: dict[str, float], anchor: Anchor
) -> list[Row]:
    """Relative W^{1,1} and L2 errors, ours against the anchor's."""
    return [
        row(
            f"{label}, W11",
            workload,
            "relative W^{1,1} error",
            "",
            ours["rel_w11"],
            theirs["rel_w11"],
            anchor,
        ),
        row(f"{label}, L2", workload, "relative L2 error", "", ours["rel_l2"], theirs["rel_l2"], anchor),
    ]


def timing_row(
    label: str, workload: str, ours: dict[str, Any], theirs: dict[str, Any], anchor: Anchor
) -> Row:
    """Median wall-clock seconds per iteration, ours against the anchor's; the CPU times go into the text."""
    cpu = f" (process CPU s/it: ours {ours['cpu_seconds']:.4g}, anchor {theirs['cpu_seconds']:.4g})"
    return row(
        label, workload + cpu, "seconds per iteration", "s", ours["seconds"], theirs["seconds"], anchor
    )


def headline_rows(
    setup: Setup, results: dict[str, dict[str, Any]], anchor: Anchor
) -> tuple[list[Row], str | None]:
    """Errors at equal wall clock, ours (adversarial) against our own L2 PINN; why they are invalid, or None."""
    ours, theirs = results["train-ours"], results[HEADLINE_RUN]
    workload = (
        f"{setup.describe()}; equal wall clock: ours adversarial K={setup.steps} eta={setup.step_size:g} "
        f"{ours['seconds']:.1f} s / {ours['iterations']} its vs our L2 PINN (same trainer, network, initial "
        f"weights and fresh points per iteration, loss kind 'l2') {theirs['seconds']:.1f} s / "
        f"{theirs['iterations']} its; test {setup.test_points} points, {setup.test_samples} MC draws each"
    )
    rows = error_rows("eq. time vs our L2 PINN", workload, ours["metrics"], theirs["metrics"], anchor)
    return rows, too_few_iterations(ours["iterations"], theirs["iterations"])


def deepxde_rows(
    setup: Setup, results: dict[str, dict[str, Any]], anchor: Anchor
) -> tuple[list[Row], list[str], str, bool]:
    """Errors at equal wall clock against both DeepXDE runs and seconds per L2 iteration; the notes on the
    comparisons left out (too few iterations), and the derivative check's text and outcome."""
    ours = results["train-ours"]
    rows: list[Row] = []
    invalid: list[str] = []
    for task, label in DEEPXDE_RUNS.items():
        theirs, rar = results[task], results[task]["rar"]
        reason = too_few_iterations(ours["iterations"], theirs["iterations"])
        if reason is not None:
            invalid.append(f"{label}: left out, {reason}")
            continue
        sampling = (
            f"RAR every {rar['period']} its (top {rar['added']} of {rar['candidates']} fresh candidates, newest "
            f"{rar['anchors']} in each batch; RAR rounds: {theirs['rar_rounds']})"
            if rar
            else "fresh points every iteration (PDEPointResampler, period 1)"
        )
        workload = (
            f"{setup.describe()}; equal wall clock: ours adversarial K={setup.steps} eta={setup.step_size:g} "
            f"{ours['seconds']:.1f} s / {ours['iterations']} its vs DeepXDE, {sampling}, {theirs['seconds']:.1f} s "
            f"/ {theirs['iterations']} its; test {setup.test_points} points, {setup.test_samples} MC draws each"
        )
        rows += error_rows(label, workload, ours["metrics"], theirs["metrics"], anchor)
    timing = results["time-deepxde-l2"]
    passed, check = check_text("DeepXDE", timing["check"], f"∇u {timing['check']['grad_max_abs_diff']:.2e}")
    workload = (
        f"{setup.describe()}; L2 iteration: ours (forward Laplacian) vs DeepXDE (dde.grad.hessian loop), same "
        f"weights, median of {setup.timed}; {check}"
    )
    rows.append(timing_row("L2 s/it vs DeepXDE", workload, results["time-ours-l2"], timing, anchor))
    return rows, invalid, check, passed


def official_rows(setup: Setup, results: dict[str, dict[str, Any]], anchor: Anchor) -> list[Row]:
    """Seconds per iteration against the official loop, and errors after equal iterations."""
    adversarial = f"adversarial K={setup.steps} eta={setup.step_size:g}"
    rows = [
        timing_row(
            "adv. s/it vs official",
            f"{setup.describe()}; {adversarial} iteration: ours (pinn_linf.physics_loss, forward Laplacian) vs "
            "official (pgd + HJBEquation + PinnWrapper d-loop), same weights and batch, median of "
            f"{setup.timed_adversarial}",
            results["time-ours-adversarial"],
            results["time-official-adversarial"],
            anchor,
        ),
        timing_row(
            "L2 s/it vs official",
            f"{setup.describe()}; L2 iteration (K=0): ours (forward Laplacian) vs official (PinnWrapper d-loop), "
            f"same weights and batch, median of {setup.timed}",
            results["time-ours-l2"],
            results["time-official-l2"],
            anchor,
        ),
    ]
    ours, theirs = results["equal-ours"], results["equal-official"]
    workload = (
        f"{setup.describe()}; {adversarial}, {setup.equal_iterations} iterations each from the same weights on "
        f"the same points (ours {ours['seconds']:.1f} s, official {theirs['seconds']:.1f} s); test "
        f"{setup.test_points} points"
    )
    return rows + error_rows("eq. its vs official", workload, ours["metrics"], theirs["metrics"], anchor)


def print_table(rows: list[Row]) -> None:
    """Every row's label, ours, the anchor's value and the ratio (the workloads are in bench.json)."""
    print(f"{'row':34s} {'ours':>10s} {'anchor':>10s} {'ratio':>7s}")
    for label, measured in rows:
        print(f"{label:34s} {measured.ours:10.4g} {measured.anchor_value:10.4g} {measured.ratio:7.3f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="directory of bench.json")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="width 128, 30 s budget, smaller test set (full: width 256, 120 s)",
    )
    parser.add_argument("--threads", type=int, default=2, help="torch threads in every measuring process")
    parser.add_argument("--official-dir", type=Path, help="a LithiumDA/L_inf-PINN checkout: adds its rows")
    # internal: run one Request, given as JSON, in this process and print its result
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    configure_logging()
    if args.worker:
        emit_result(worker(json.loads(args.worker)))
        return 0
    if args.out is None:
        parser.error("--out is required")
    if importlib.util.find_spec("deepxde") is None:
        parser.error("DeepXDE, the anchor, is not installed: install pinn-linf[bench]")
    official = None
    if args.official_dir is None:
        print("no --official-dir: the rows against the official LithiumDA/L_inf-PINN loop are left out")
    else:
        try:
            official = str(official_loop.checkout_root(args.official_dir))
        except InputError as err:
            parser.error(str(err))
    setup = replace(QUICK if args.quick else FULL, threads=args.threads)

    began = time.perf_counter()
    results = measure_all(setup, official)
    machine: dict[str, Any] = {
        **machine_info("cpu"),
        "threads": args.threads,
        "mode": "quick" if args.quick else "full",
        "settings": {**asdict(setup), "train_seed": TRAIN_SEED, "test_seed": TEST_SEED},
        "pinn_linf": version("pinn-linf"),
        "deepxde": version("deepxde"),
        "benchmark_seconds": round(time.perf_counter() - began, 1),
    }
    own_l2 = Anchor(
        "pinn-linf L2 PINN (the same trainer and network, loss kind 'l2', equal wall clock)",
        version("pinn-linf"),
    )
    deepxde = Anchor(
        "DeepXDE (PyTorch backend: FNN, dde.grad.hessian loop, RAR; hand-written loop)", version("deepxde")
    )
    rows, headline_invalid = headline_rows(setup, results, own_l2)
    extra, invalid, check, passed = deepxde_rows(setup, results, deepxde)
    rows += extra
    checks = [check]
    if official is not None:
        found = results["time-official-adversarial"]["check"]
        machine["official"] = {"dir": official, "commit": found["commit"]}
        loss = f"domain loss {found['domain_loss_theirs']:.6g} vs ours {found['domain_loss_ours']:.6g}"
        ok, check = check_text("official", found, loss)
        passed, checks = passed and ok, [*checks, check]
        rows += official_rows(
            setup, results, Anchor("LithiumDA/L_inf-PINN official training loop", found["commit"])
        )

    print(f"machine: {json.dumps({k: v for k, v in machine.items() if k != 'settings'})}")
    print(f"settings: {json.dumps(machine['settings'])}")
    print(f"mode: {machine['mode']}; ratio = ours / anchor (below 1: ours has the lower error or is faster)")
    if headline_invalid is not None:
        print(
            f"error: the headline comparison is invalid: {headline_invalid} (an overloaded machine? try "
            f"--threads 1); no ratio is reported and {args.out / 'bench.json'} is not written"
        )
        return 1
    print_table(rows)
    print("\n".join([*invalid, *checks]))
    headline = rows[0][1]  # W^{1,1} at equal wall clock against our own L2 PINN
    path = write_bench(
        Bench("pinn-linf", own_l2, headline, machine, [measured for _, measured in rows]), args.out
    )
    print(
        json.dumps(
            {"bench": str(path), "headline_ratio": headline.ratio, "seconds": machine["benchmark_seconds"]}
        )
    )
    return 0 if passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
