"""``pinn-linf reproduce``: the paper's claims (§5), measured on this machine.

1. HJB-LQG (d = 20 quick, d = 100 full), equal iterations: the adversarially (L∞) trained network's relative
   W^{1,1} error is at most half of the L2-trained network's, and its relative L2 error is lower.
2. The same comparison at equal wall-clock time: the L2 network trains for as many seconds as the adversarial
   one of the same seed took (so for about K + 1 times more iterations); both errors are reported, and the claim
   holds if the adversarial errors are still the lower.
3. The adversarially trained network's L∞ loss on a fixed probe set, w_d · max r² + w_t · max (u − g)² (the
   training loss with the mean over moved points replaced by the maximum, same weights), is lower than the
   L2-trained one's. The PDE part alone (max abs(r)) is reported next to it as a claim of its own.
4. HJB-Lin (c = 1.25, d = 50), equal iterations: claim 1 against the closed-form solution.

Every claim compares two methods, so each is decided over several seeds (``Plan.seeds``: the seeds ``seed``,
``seed + 1``, ...) with :func:`papers_common.claim_over_seeds`: the adversarial and the L2 run of one seed start
from the same initial weights and draw their collocation points from the same seed, and the claim holds only when
the mean advantage over the seeds exceeds its seed-to-seed standard deviation. The test set and the probe points
are drawn once, from ``seed``, so that every run is measured on the same points.

Every run is an ordinary training run directory under ``runs/`` (config, metrics, checkpoints, model); the
runs execute two at a time in separate processes with one thread each, so that runs compared at equal wall
clock share the machine in the same way. The Monte Carlo reference is built in one of those processes while the
other trains the HJB-Lin runs, which do not need it.
"""

from __future__ import annotations

import logging
import multiprocessing
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from papers_common import (
    MLP,
    Claim,
    MLPConfig,
    Paper,
    Results,
    RunDir,
    claim_over_seeds,
    plot_lines,
    progress,
    write_results,
)
from pinn_linf import __version__
from pinn_linf.adversarial import Ascent
from pinn_linf.losses import LossConfig
from pinn_linf.problems import make_problem, problem_from_description
from pinn_linf.reference import cached_test_set
from pinn_linf.train import TrainConfig, train

LOG = logging.getLogger(__name__)
HEARTBEAT_SECONDS = 20.0  # the longest silence while runs are in flight
PAPER = Paper(
    "Is L2 Physics-Informed Loss Always Suitable for Training Physics-Informed Neural Network?", "2206.02016"
)


# The paper column of each claim. The paper's tables (HJB-LQG, d = 100 and 250, width 4,096) are not at hand,
# so no number of theirs is quoted: each claim says what the paper states, or that it has no such measurement.
IMPROVES = "qualitative in the paper: L∞ training lowers the error; no number available for its tables"
NOT_EQUAL_TIME = "no equal-wall-clock comparison in the paper's reported results"
LINF_LOSS = "qualitative in the paper: it trains on the L∞ residual; no L∞-loss value reported"
MAX_RESIDUAL = "no maximum-residual measurement in the paper's reported results"
NOT_LIN = "not reported at this setting (the paper's tables: HJB-LQG, d = 100, 250)"


@dataclass(frozen=True)
class Plan:
    """Sizes and budgets of one reproduction mode; ``seeds`` is how many seeds every comparison is run with."""

    lqg_dim: int
    lin_dim: int
    width: int
    iterations: int
    lin_iterations: int
    batch: int
    lr: float
    steps: int
    step_size: float
    test_points: int
    mc_samples: int
    probe_points: int
    eval_every: int
    workers: int
    seeds: int


QUICK = Plan(
    lqg_dim=20, lin_dim=50, width=64, iterations=400, lin_iterations=700, batch=64, lr=3e-3, steps=10,
    step_size=0.05, test_points=500, mc_samples=2**15, probe_points=2000, eval_every=50, workers=2, seeds=3,
)  # fmt: skip
FULL = Plan(
    lqg_dim=100, lin_dim=50, width=256, iterations=3000, lin_iterations=1000, batch=100, lr=1e-3, steps=10,
    step_size=0.05, test_points=2000, mc_samples=2**16, probe_points=4000, eval_every=100, workers=2, seeds=3,
)  # fmt: skip


@dataclass(frozen=True)
class Job:
    """One training run of the reproduction (``kind="reference"``: building the Monte Carlo test set)."""

    name: str
    problem: dict[str, Any]
    kind: str
    iterations: int
    seed: int = 0
    time_budget: float | None = None


def run_name(method: str, seed: int) -> str:
    """The run folder and ``runs.json`` key of one method and seed: ``lqg-adversarial-seed0``."""
    return f"{method}-seed{seed}"


def _run_job(job: Job, plan: Plan, out: str, data_seed: int) -> dict[str, Any]:
    """Train one job in this (worker) process with one thread; returns its metrics and curve.

    The test set and the probe points come from ``data_seed`` (the same for every run); the initial weights and
    the collocation points from ``job.seed``.
    """
    torch.set_num_threads(1)
    problem = problem_from_description(job.problem)
    started = time.perf_counter()
    test = cached_test_set(problem, plan.test_points, seed=data_seed + 1, samples=plan.mc_samples,
                           directory=Path(out) / "references")  # fmt: skip
    if job.kind == "reference":
        return {"seconds": time.perf_counter() - started}
    probe = problem.sample(plan.probe_points, torch.Generator().manual_seed(data_seed + 2))
    torch.manual_seed(job.seed)
    net = MLP(MLPConfig(problem.input_dim, plan.width, 3))
    config = TrainConfig(
        iterations=job.iterations,
        lr=plan.lr,
        domain_batch=plan.batch,
        terminal_batch=plan.batch,
        loss=LossConfig(kind=job.kind, ascent=Ascent(plan.steps, plan.step_size)),  # type: ignore[arg-type]
        time_budget=job.time_budget,
        eval_every=plan.eval_every,
        checkpoint_every=100,
    )
    result = train(net, problem, config, test=test, probe=probe, seed=job.seed,
                   run=RunDir(Path(out) / "runs" / job.name), desc=job.name)  # fmt: skip
    return {"seed": job.seed, "iterations": result.iterations, "seconds": result.seconds,
            "metrics": result.metrics, "history": result.history}  # fmt: skip


def run(out: Path, *, quick: bool = True, seed: int = 0, device: str | torch.device = "cpu") -> Results:
    """Measure every claim of the chosen mode over ``plan.seeds`` seeds from ``seed``; write results.json/.md,
    runs and figures into ``out``."""
    plan = QUICK if quick else FULL
    mode = "quick" if quick else "full"
    started = time.perf_counter()
    out = Path(out)
    record = RunDir(out)
    seeds = [seed + i for i in range(plan.seeds)]
    config = {"mode": mode, "seed": seed, "seeds": seeds, "device": "cpu", "plan": asdict(plan),
              "threads_per_run": 1}  # fmt: skip
    if torch.device(device).type != "cpu":
        LOG.info("reproduce runs on the CPU (small networks, one thread per run); %s is not used", device)
    record.write_config(config)
    lqg = make_problem("hjb-lqg", plan.lqg_dim).describe()
    lin_problem = make_problem("hjb-lin", plan.lin_dim)
    lin = lin_problem.describe()
    # the closed-form HJB-Lin set is cheap: built here, so that no two workers write it
    cached_test_set(lin_problem, plan.test_points, seed=seed + 1, samples=plan.mc_samples,
                    directory=out / "references")  # fmt: skip
    # Longest first among what can start: the HJB-LQG runs wait for their Monte Carlo reference, and each
    # equal-time L2 run for the adversarial run of its seed, whose seconds it gets.
    ready = [Job("reference", lqg, "reference", 0)]
    for s in seeds:
        ready += [Job(run_name("lin-adversarial", s), lin, "adversarial", plan.lin_iterations, s),
                  Job(run_name("lin-l2", s), lin, "l2", plan.lin_iterations, s)]  # fmt: skip
    ready.sort(key=lambda j: j.kind != "reference" and j.kind != "adversarial")
    found: dict[str, dict[str, Any]] = {}
    bar = progress(total=5 * len(seeds) + 1, desc="reproduce", unit="run")
    LOG.info("reproduce: %d seeds %s; HJB-LQG d=%d reference by Monte Carlo (S=%d)", len(seeds), seeds,
             plan.lqg_dim, plan.mc_samples)  # fmt: skip
    with ProcessPoolExecutor(max_workers=plan.workers, mp_context=_spawn()) as pool:
        pending: dict[Future, Job] = {}
        while ready or pending:
            while ready and len(pending) < plan.workers:
                job = ready.pop(0)
                pending[pool.submit(_run_job, job, plan, str(out), seed)] = job
            done, _ = wait(pending, timeout=HEARTBEAT_SECONDS, return_when=FIRST_COMPLETED)
            if not done:  # a line at least every HEARTBEAT_SECONDS while runs are in flight
                LOG.info("reproduce: running %s (%.0f s elapsed)", ", ".join(j.name for j in pending.values()),
                         time.perf_counter() - started)  # fmt: skip
            for future in done:
                job = pending.pop(future)
                result = future.result()
                bar.update(1)
                if job.kind == "reference":
                    LOG.info("reproduce: HJB-LQG reference ready (%.0f s)", result["seconds"])
                    ready[:0] = [Job(run_name("lqg-adversarial", s), lqg, "adversarial", plan.iterations, s)
                                 for s in seeds] + [Job(run_name("lqg-l2", s), lqg, "l2", plan.iterations, s)
                                                    for s in seeds]  # fmt: skip
                    continue
                found[job.name] = result
                LOG.info("reproduce: %s done (%d iterations, %.0f s)", job.name, result["iterations"],
                         result["seconds"])  # fmt: skip
                if job.name.startswith("lqg-adversarial-"):  # the L2 network gets the same training time
                    equal = Job(run_name("lqg-l2-equal-time", job.seed), lqg, "l2", 1_000_000, job.seed,
                                time_budget=result["seconds"])  # fmt: skip
                    ready.insert(0, equal)
    bar.close()
    record.write_json("runs.json", found)
    figures = _figures(out, found, seed)
    claims = _claims(plan, found, seeds)
    _write_table(record, plan, found)
    results = Results(
        "pinn-linf", __version__, PAPER, mode, config, time.perf_counter() - started, claims, figures
    )
    write_results(results, out)
    return results


def _spawn() -> multiprocessing.context.BaseContext:
    """Fresh worker interpreters: a forked torch process can deadlock in its thread pools."""
    return multiprocessing.get_context("spawn")


def _curves(
    found: dict[str, dict[str, Any]], names: list[str], seed: int, x: str, y: str
) -> dict[str, tuple[list, list]]:
    """The curves of ``seed``'s runs of the methods ``names``, labelled by method."""
    runs = {n: found.get(run_name(n, seed)) for n in names}
    return {n: ([h[x] for h in r["history"]], [h[y] for h in r["history"]]) for n, r in runs.items() if r}


def _figures(out: Path, found: dict[str, dict[str, Any]], seed: int) -> list[str]:
    """The curves of the first seed's runs (the others are in ``runs.json``)."""
    lqg = ["lqg-l2", "lqg-adversarial", "lqg-l2-equal-time"]
    lin = ["lin-l2", "lin-adversarial"]
    return [
        plot_lines(out / "lqg_w11_vs_iterations.png", _curves(found, lqg[:2], seed, "iteration", "rel_w11"),
                   xlabel="iteration", ylabel=r"relative $W^{1,1}$ error", title=f"HJB-LQG, seed {seed}",
                   logy=True).name,
        plot_lines(out / "lqg_w11_vs_seconds.png", _curves(found, lqg, seed, "seconds", "rel_w11"),
                   xlabel="training seconds", ylabel=r"relative $W^{1,1}$ error", title=f"HJB-LQG, seed {seed}",
                   logy=True).name,
        plot_lines(out / "lqg_l2_vs_seconds.png", _curves(found, lqg, seed, "seconds", "rel_l2"),
                   xlabel="training seconds", ylabel=r"relative $L^2$ error", title=f"HJB-LQG, seed {seed}",
                   logy=True).name,
        plot_lines(out / "lin_w11_vs_iterations.png", _curves(found, lin, seed, "iteration", "rel_w11"),
                   xlabel="iteration", ylabel=r"relative $W^{1,1}$ error",
                   title=f"HJB-Lin (c = 1.25), seed {seed}", logy=True).name,
    ]  # fmt: skip


def _span(values: list[float], spec: str) -> str:
    """``19`` when all values print alike, else ``18–20``."""
    low, high = format(min(values), spec), format(max(values), spec)
    return low if low == high else f"{low}–{high}"


def _claims(plan: Plan, found: dict[str, dict[str, Any]], seeds: list[int]) -> list[Claim]:
    """Every claim, each a comparison of the adversarial and the L2 runs paired by seed."""

    def metric(method: str, key: str) -> list[float]:
        return [found[run_name(method, s)]["metrics"][key] for s in seeds]

    def versus(id: str, statement: str, what: str, key: str, ours: str, baseline: str, name: str,
               source: str, factor: float = 1.0) -> Claim:  # fmt: skip
        return claim_over_seeds(id, statement, metric=what, seeds=seeds, ours=metric(ours, key),
                                baseline_name=name, baseline=metric(baseline, key), higher_is_better=False,
                                factor=factor, paper_source=source)  # fmt: skip

    its, d, lin_d, n = plan.iterations, plan.lqg_dim, plan.lin_dim, len(seeds)
    equal = [found[run_name("lqg-l2-equal-time", s)] for s in seeds]
    budget = _span([r["seconds"] for r in equal], ".0f")
    equal_its = _span([r["iterations"] for r in equal], ",d")
    w11, l2 = "relative W^1,1 error", "relative L2 error"
    return [
        versus("lqg-w11", f"HJB-LQG d={d}, {its} iterations, {n} seeds: adversarial (K={plan.steps}) relative "
               "W^1,1 error at most half of the L2 PINN's", w11, "rel_w11", "lqg-adversarial", "lqg-l2",
               "L2 PINN", IMPROVES, factor=2.0),
        versus("lqg-l2", f"HJB-LQG d={d}, {its} iterations, {n} seeds: adversarial relative L2 error below the L2 "
               "PINN's", l2, "rel_l2", "lqg-adversarial", "lqg-l2", "L2 PINN", IMPROVES),
        versus("lqg-equal-time-w11", f"HJB-LQG d={d}, equal wall clock per seed ({budget} s; L2 PINN {equal_its} "
               f"iterations), {n} seeds: adversarial relative W^1,1 error below the L2 PINN's", w11, "rel_w11",
               "lqg-adversarial", "lqg-l2-equal-time", "L2 PINN, equal time", NOT_EQUAL_TIME),
        versus("lqg-equal-time-l2", f"HJB-LQG d={d}, equal wall clock per seed, {n} seeds: adversarial relative L2 "
               "error below the L2 PINN's", l2, "rel_l2", "lqg-adversarial", "lqg-l2-equal-time",
               "L2 PINN, equal time", NOT_EQUAL_TIME),
        versus("lqg-linf-loss", f"HJB-LQG d={d}, {its} iterations, {n} seeds: adversarial L∞ loss on "
               f"{plan.probe_points} probe points (1·max r² + 20·max (u − g)², the loss adversarial training "
               "approximates) below the L2 PINN's", "L∞ loss", "linf_loss", "lqg-adversarial", "lqg-l2",
               "L2 PINN", LINF_LOSS),
        versus("lqg-max-pde-residual", f"HJB-LQG d={d}, {its} iterations, {n} seeds: the PDE part alone, "
               f"adversarial maximum residual on {plan.probe_points} probe points below the L2 PINN's",
               "max |residual|", "max_residual", "lqg-adversarial", "lqg-l2", "L2 PINN", MAX_RESIDUAL),
        versus("lin-w11", f"HJB-Lin c=1.25 d={lin_d}, {plan.lin_iterations} iterations, {n} seeds: adversarial "
               "relative W^1,1 error at most half of the L2 PINN's", w11, "rel_w11", "lin-adversarial", "lin-l2",
               "L2 PINN", NOT_LIN, factor=2.0),
        versus("lin-l2", f"HJB-Lin c=1.25 d={lin_d}, {n} seeds: adversarial relative L2 error below the L2 PINN's",
               l2, "rel_l2", "lin-adversarial", "lin-l2", "L2 PINN", NOT_LIN),
    ]  # fmt: skip


def _write_table(record: RunDir, plan: Plan, found: dict[str, dict[str, Any]]) -> None:
    lines = [
        f"Network [d+1, {plan.width}, {plan.width}, {plan.width}, 1] tanh, batch {plan.batch} + {plan.batch}, Adam "
        f"{plan.lr:g} decaying linearly to 0, K = {plan.steps}, η = {plan.step_size}, one thread per run.",
        "",
        "| run | seed | iterations | training s | rel. L1 | rel. L2 | rel. W^1,1 | max abs(r) | max abs(u − g) | "
        "L∞ loss |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in sorted(found.items()):
        m = r["metrics"]
        lines.append(f"| {name.rsplit('-seed', 1)[0]} | {r['seed']} | {r['iterations']} | {r['seconds']:.0f} | "
                     f"{m['rel_l1']:.4f} | {m['rel_l2']:.4f} | {m['rel_w11']:.4f} | {m['max_residual']:.4f} | "
                     f"{m['max_terminal_error']:.4f} | {m['linf_loss']:.4f} |")  # fmt: skip
    record.write_text("tables.md", "\n".join(lines) + "\n")
