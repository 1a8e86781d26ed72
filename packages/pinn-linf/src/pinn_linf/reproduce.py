"""``pinn-linf reproduce``: the paper's claims (§5), measured on this machine.

1. HJB-LQG (d = 20 quick, d = 100 full), equal iterations: the adversarially (L∞) trained network's relative
   W^{1,1} error is at most half of the L2-trained network's, and its relative L2 error is lower.
2. The same comparison at equal wall-clock time: the L2 network trains for as many seconds as the adversarial
   one took (so for about K + 1 times more iterations); both errors are reported, and the claim holds if the
   adversarial errors are still the lower.
3. The adversarially trained network's L∞ loss on a fixed probe set, w_d · max r² + w_t · max (u − g)² (the
   training loss with the mean over moved points replaced by the maximum, same weights), is lower than the
   L2-trained one's. The PDE part alone (max abs(r)) is reported next to it as a claim of its own.
4. HJB-Lin (c = 1.25, d = 50), equal iterations: claim 1 against the closed-form solution.

Every run is an ordinary training run directory under ``runs/`` (config, metrics, checkpoints, model); the
runs execute two at a time in separate processes with one thread each, so that runs compared at equal wall
clock share the machine in the same way.
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
    Baseline,
    Claim,
    MLPConfig,
    Paper,
    Results,
    RunDir,
    claim,
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
    """Sizes and budgets of one reproduction mode."""

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


QUICK = Plan(
    lqg_dim=20, lin_dim=50, width=64, iterations=400, lin_iterations=700, batch=64, lr=3e-3, steps=10,
    step_size=0.05, test_points=1000, mc_samples=2**15, probe_points=2000, eval_every=50, workers=2,
)  # fmt: skip
FULL = Plan(
    lqg_dim=100, lin_dim=50, width=256, iterations=3000, lin_iterations=1000, batch=100, lr=1e-3, steps=10,
    step_size=0.05, test_points=2000, mc_samples=2**16, probe_points=4000, eval_every=100, workers=2,
)  # fmt: skip


@dataclass(frozen=True)
class Job:
    """One training run of the reproduction."""

    name: str
    problem: dict[str, Any]
    kind: str
    iterations: int
    time_budget: float | None = None


def _run_job(job: Job, plan: Plan, out: str, seed: int) -> dict[str, Any]:
    """Train one job in this (worker) process with one thread; returns its metrics and curve."""
    torch.set_num_threads(1)
    problem = problem_from_description(job.problem)
    test = cached_test_set(problem, plan.test_points, seed=seed + 1, samples=plan.mc_samples,
                           directory=Path(out) / "references")  # fmt: skip
    probe = problem.sample(plan.probe_points, torch.Generator().manual_seed(seed + 2))
    torch.manual_seed(seed)
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
    result = train(net, problem, config, test=test, probe=probe, seed=seed, run=RunDir(Path(out) / "runs" / job.name),
                   desc=job.name)  # fmt: skip
    return {"iterations": result.iterations, "seconds": result.seconds, "metrics": result.metrics,
            "history": result.history}  # fmt: skip


def _references(plan: Plan, out: Path, seed: int) -> None:
    """Build (or find) the test sets once, before the workers start, so that no two processes compute one."""
    for problem in (make_problem("hjb-lqg", plan.lqg_dim), make_problem("hjb-lin", plan.lin_dim)):
        cached_test_set(problem, plan.test_points, seed=seed + 1, samples=plan.mc_samples,
                        directory=out / "references")  # fmt: skip


def run(out: Path, *, quick: bool = True, seed: int = 0, device: str | torch.device = "cpu") -> Results:
    """Measure every claim of the chosen mode; write results.json/.md, runs and figures into ``out``."""
    plan = QUICK if quick else FULL
    mode = "quick" if quick else "full"
    started = time.perf_counter()
    out = Path(out)
    record = RunDir(out)
    config = {"mode": mode, "seed": seed, "device": "cpu", "plan": asdict(plan), "threads_per_run": 1}
    if torch.device(device).type != "cpu":
        LOG.info("reproduce runs on the CPU (small networks, one thread per run); %s is not used", device)
    record.write_config(config)
    lqg = make_problem("hjb-lqg", plan.lqg_dim).describe()
    lin = make_problem("hjb-lin", plan.lin_dim).describe()
    jobs = [
        Job("lqg-adversarial", lqg, "adversarial", plan.iterations),
        Job("lin-adversarial", lin, "adversarial", plan.lin_iterations),
        Job("lqg-l2", lqg, "l2", plan.iterations),
        Job("lin-l2", lin, "l2", plan.lin_iterations),
    ]
    LOG.info("reproduce: references (HJB-LQG d=%d by Monte Carlo, S=%d)", plan.lqg_dim, plan.mc_samples)
    _references(plan, out, seed)
    found: dict[str, dict[str, Any]] = {}
    bar = progress(total=len(jobs) + 1, desc="reproduce", unit="run")
    with ProcessPoolExecutor(max_workers=plan.workers, mp_context=_spawn()) as pool:
        pending: dict[Future, Job] = {pool.submit(_run_job, j, plan, str(out), seed): j for j in jobs}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                job = pending.pop(future)
                found[job.name] = future.result()
                bar.update(1)
                LOG.info("reproduce: %s done (%d iterations, %.0f s)", job.name, found[job.name]["iterations"],
                         found[job.name]["seconds"])  # fmt: skip
                if job.name == "lqg-adversarial":  # the L2 network gets the same training time
                    budget = found[job.name]["seconds"]
                    equal = Job("lqg-l2-equal-time", lqg, "l2", 1_000_000, time_budget=budget)
                    pending[pool.submit(_run_job, equal, plan, str(out), seed)] = equal
    bar.close()
    record.write_json("runs.json", found)
    figures = _figures(out, found)
    claims = _claims(plan, found)
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
    found: dict[str, dict[str, Any]], names: list[str], x: str, y: str
) -> dict[str, tuple[list, list]]:
    return {
        n: ([h[x] for h in found[n]["history"]], [h[y] for h in found[n]["history"]])
        for n in names
        if n in found
    }


def _figures(out: Path, found: dict[str, dict[str, Any]]) -> list[str]:
    lqg = ["lqg-l2", "lqg-adversarial", "lqg-l2-equal-time"]
    lin = ["lin-l2", "lin-adversarial"]
    return [
        plot_lines(out / "lqg_w11_vs_iterations.png", _curves(found, lqg[:2], "iteration", "rel_w11"),
                   xlabel="iteration", ylabel=r"relative $W^{1,1}$ error", title="HJB-LQG", logy=True).name,
        plot_lines(out / "lqg_w11_vs_seconds.png", _curves(found, lqg, "seconds", "rel_w11"),
                   xlabel="training seconds", ylabel=r"relative $W^{1,1}$ error", title="HJB-LQG", logy=True).name,
        plot_lines(out / "lqg_l2_vs_seconds.png", _curves(found, lqg, "seconds", "rel_l2"),
                   xlabel="training seconds", ylabel=r"relative $L^2$ error", title="HJB-LQG", logy=True).name,
        plot_lines(out / "lin_w11_vs_iterations.png", _curves(found, lin, "iteration", "rel_w11"),
                   xlabel="iteration", ylabel=r"relative $W^{1,1}$ error", title="HJB-Lin (c = 1.25)", logy=True).name,
    ]  # fmt: skip


def _claims(plan: Plan, found: dict[str, dict[str, Any]]) -> list[Claim]:
    m = {name: r["metrics"] for name, r in found.items()}
    its, d, lin_d = plan.iterations, plan.lqg_dim, plan.lin_dim
    equal = found["lqg-l2-equal-time"]
    return [
        claim("lqg-w11", f"HJB-LQG d={d}, {its} iterations: adversarial (K={plan.steps}) relative W^1,1 error at most half "
              "of the L2 PINN's", metric="relative W^1,1 error", ours=m["lqg-adversarial"]["rel_w11"],
              higher_is_better=False, baseline=Baseline("L2 PINN", m["lqg-l2"]["rel_w11"]), factor=2.0,
              paper_source=IMPROVES),
        claim("lqg-l2", f"HJB-LQG d={d}, {its} iterations: adversarial relative L2 error below the L2 PINN's",
              metric="relative L2 error", ours=m["lqg-adversarial"]["rel_l2"], higher_is_better=False,
              baseline=Baseline("L2 PINN", m["lqg-l2"]["rel_l2"]), paper_source=IMPROVES),
        claim("lqg-equal-time-w11", f"HJB-LQG d={d}, equal wall clock ({equal['seconds']:.0f} s; L2 PINN "
              f"{equal['iterations']} iterations): adversarial relative W^1,1 error below the L2 PINN's",
              metric="relative W^1,1 error", ours=m["lqg-adversarial"]["rel_w11"], higher_is_better=False,
              baseline=Baseline("L2 PINN, equal time", m["lqg-l2-equal-time"]["rel_w11"]),
              paper_source=NOT_EQUAL_TIME),
        claim("lqg-equal-time-l2", f"HJB-LQG d={d}, equal wall clock: adversarial relative L2 error below the L2 PINN's",
              metric="relative L2 error", ours=m["lqg-adversarial"]["rel_l2"], higher_is_better=False,
              baseline=Baseline("L2 PINN, equal time", m["lqg-l2-equal-time"]["rel_l2"]),
              paper_source=NOT_EQUAL_TIME),
        claim("lqg-linf-loss", f"HJB-LQG d={d}, {its} iterations: adversarial L∞ loss on {plan.probe_points} probe "
              "points (1·max r² + 20·max (u − g)², the loss adversarial training approximates) below the L2 PINN's",
              metric="L∞ loss", ours=m["lqg-adversarial"]["linf_loss"], higher_is_better=False,
              baseline=Baseline("L2 PINN", m["lqg-l2"]["linf_loss"]), paper_source=LINF_LOSS),
        claim("lqg-max-pde-residual", f"HJB-LQG d={d}, {its} iterations: the PDE part alone, adversarial maximum "
              f"residual on {plan.probe_points} probe points below the L2 PINN's", metric="max |residual|",
              ours=m["lqg-adversarial"]["max_residual"], higher_is_better=False,
              baseline=Baseline("L2 PINN", m["lqg-l2"]["max_residual"]), paper_source=MAX_RESIDUAL),
        claim("lin-w11", f"HJB-Lin c=1.25 d={lin_d}, {plan.lin_iterations} iterations: adversarial relative W^1,1 "
              "error at most half of the L2 PINN's", metric="relative W^1,1 error",
              ours=m["lin-adversarial"]["rel_w11"], higher_is_better=False,
              baseline=Baseline("L2 PINN", m["lin-l2"]["rel_w11"]), factor=2.0, paper_source=NOT_LIN),
        claim("lin-l2", f"HJB-Lin c=1.25 d={lin_d}: adversarial relative L2 error below the L2 PINN's",
              metric="relative L2 error", ours=m["lin-adversarial"]["rel_l2"], higher_is_better=False,
              baseline=Baseline("L2 PINN", m["lin-l2"]["rel_l2"]), paper_source=NOT_LIN),
    ]  # fmt: skip


def _write_table(record: RunDir, plan: Plan, found: dict[str, dict[str, Any]]) -> None:
    lines = [
        f"Network [d+1, {plan.width}, {plan.width}, {plan.width}, 1] tanh, batch {plan.batch} + {plan.batch}, Adam "
        f"{plan.lr:g} decaying linearly to 0, K = {plan.steps}, η = {plan.step_size}, one thread per run.",
        "",
        "| run | iterations | training s | rel. L1 | rel. L2 | rel. W^1,1 | max abs(r) | max abs(u − g) | L∞ loss |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in found.items():
        m = r["metrics"]
        lines.append(f"| {name} | {r['iterations']} | {r['seconds']:.0f} | {m['rel_l1']:.4f} | {m['rel_l2']:.4f} | "
                     f"{m['rel_w11']:.4f} | {m['max_residual']:.4f} | {m['max_terminal_error']:.4f} | "
                     f"{m['linf_loss']:.4f} |")  # fmt: skip
    record.write_text("tables.md", "\n".join(lines) + "\n")
