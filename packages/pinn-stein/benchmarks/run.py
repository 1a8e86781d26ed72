"""Cost versus dimension and error at equal wall time on Heat-d: Stein estimators against every exact method.

Workload: ``pinn_stein.Heat(d)``, the paper's tanh MLP [d + 1, 256, 256, 256, 1] and batch of 50 domain + 50
initial + 50 boundary points; one training iteration samples fresh points, computes the physics-informed loss,
back-propagates and takes an Adam step, with ``torch.set_num_threads(--threads)``.

Variants: ``stein-vr`` (antithetic + control variate) and ``stein`` (vanilla), each with N = 256 and N = 2048; the
exact methods ``pinn`` (stacked back-propagation), ``pinn-hvp`` (Hessian-vector products), ``pinn-forward``
(forward Laplacian) and ``deepxde`` (DeepXDE's PyTorch backend, a ``dde.grad.hessian`` loop, when importable).

1. **Cost versus dimension.** For every d in ``--dims``, each variant is timed: one warm-up iteration, then up to
   ``--repeats`` timed ones (fewer when the next one, estimated by the warm-up, would take their total past
   ``--max-iteration-s``); the median is reported. The pinn_stein variants run in this process with d outermost,
   so the variants compared at one d are timed within the same minute; DeepXDE runs in its own process afterwards
   (importing it changes torch's global defaults). A variant is skipped, and reported as skipped, at a d where its
   warm-up takes longer than ``--max-iteration-s`` or where the cost predicted from the previous measured d exceeds
   it: Stein's cost is scaled by (d + 2·width), at most one row per sample through the first and hidden layers; an
   exact method's by d·(d + 2·width), a Laplacian costing d passes. Once skipped, it stays skipped at larger d.
2. **Error at equal wall time.** For every d in ``--error-dims``, each pinn_stein variant trains a fresh network
   for ``--budget-s`` seconds of training time (Adam, learning rate 1e-3 decaying linearly to 0 over the budget,
   the paper's schedule in time instead of steps); the test relative L2 error of the method's model (the smoothed
   f, N = ``--eval-samples``, for Stein; g for the exact methods) is reported on ``--test-points`` points.

Headline: Stein-VR (N = 256) seconds per iteration / the best exact method's at d = 250 (or, when 250 is not in
``--dims`` or either side was skipped there, at the largest d where both were measured); below 1, Stein-VR is
faster. ``bench.json`` has a row per d and variant against the best exact method at that d, Stein-VR (N = 256)
against every exact method, and the equal-time errors; a Stein row's workload names its network rows (forward
evaluations) and first-layer rows per iteration. ``bench_details.json`` has every timing and skip with its
reason, Stein's network and first-layer rows per iteration, and the training runs; ``cost_vs_dimension.png`` the
curve.

    python packages/pinn-stein/benchmarks/run.py --out reports/pinn-stein [--dims 10 100 1000] [--repeats 3]
        [--max-iteration-s 30] [--error-dims 100 250] [--budget-s 15] [--threads 1] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, cast

import torch

from papers_common import (
    MLP,
    Anchor,
    Bench,
    InputError,
    Measurement,
    MLPConfig,
    configure_logging,
    machine_info,
    pick_device,
    write_bench,
)
from pinn_stein import Heat, Method, Smoothing, evaluate, make_test_set, physics_loss, sample_batch
from pinn_stein.smoothing import SPLIT_MIN_WIDTH_RATIO

LOG = logging.getLogger("pinn_stein.benchmark")

DIMS = (10, 50, 100, 250, 500, 1000)
ERROR_DIMS = (100, 250)
HEADLINE_DIM = 250
DEPTH = 3
LR = 1e-3
CHECK_TOLERANCE = 1e-5  # float32: DeepXDE's Laplacian must match ours to this, relative to max(1, max |Δu|)


@dataclass(frozen=True)
class Variant:
    """One timed method: a pinn_stein :data:`~pinn_stein.Method` or ``deepxde``, with N for Stein methods."""

    label: str
    method: str
    samples: int = 0

    @property
    def stein(self) -> bool:
        return self.method in ("stein", "stein-vr")

    def network_rows(self, batch: dict[str, int]) -> int | None:
        """Rows through g per iteration (forward evaluations) for Stein variants; None for exact ones.

        Stein-VR: N + 1 per domain point (N/2 antithetic pairs and the centre), N per initial or boundary point
        (the antithetic mean); vanilla: 3N per domain point (value, first and second order draws), N elsewhere.
        """
        if not self.stein:
            return None
        per_domain = self.samples + 1 if self.method == "stein-vr" else 3 * self.samples
        return sum(
            size * (per_domain if region == "domain" else self.samples) for region, size in batch.items()
        )

    def first_layer_rows(self, batch: dict[str, int], dim: int, width: int) -> int | None:
        """Rows through the MLP's first layer per iteration at ``dim`` for Stein variants; None for exact ones.

        When the input (d + 1) is wide enough for :func:`pinn_stein.smoothing.shifted_values` to split the first
        layer off, it runs once per point (W z + b) and once per draw (W δ, shared by z + δ and z − δ):
        Stein-VR N/2 + 1 per point in every region (the centre reuses W z + b), vanilla 3N + 1 per domain point
        and N + 1 elsewhere. Otherwise on every network row.
        """
        if not self.stein:
            return None
        if dim + 1 < SPLIT_MIN_WIDTH_RATIO * width:
            return self.network_rows(batch)
        if self.method == "stein-vr":
            return sum(batch.values()) * (self.samples // 2 + 1)
        return sum(
            size * ((3 if region == "domain" else 1) * self.samples + 1) for region, size in batch.items()
        )

    def rows_text(self, batch: dict[str, int], dim: int, width: int) -> str:
        """``"; R network rows, F first-layer rows per iteration"`` for Stein variants, else empty."""
        if not self.stein:
            return ""
        return (
            f"; {self.label}: {self.network_rows(batch):,} network rows, "
            f"{self.first_layer_rows(batch, dim, width):,} first-layer rows per iteration"
        )


OURS = Variant("stein-vr N=256", "stein-vr", 256)
VARIANTS = (
    OURS,
    Variant("stein-vr N=2048", "stein-vr", 2048),
    Variant("stein N=256", "stein", 256),
    Variant("stein N=2048", "stein", 2048),
    Variant("pinn", "pinn"),
    Variant("pinn-hvp", "pinn-hvp"),
    Variant("pinn-forward", "pinn-forward"),
)
DEEPXDE = Variant("deepxde", "deepxde")
BY_LABEL = {v.label: v for v in (*VARIANTS, DEEPXDE)}
EXACT_NAMES = {
    "pinn": "plain PyTorch autograd PINN, stacked back-propagation (torch.autograd.grad loop, create_graph=True)",
    "pinn-hvp": "exact Laplacian by batched Hessian-vector products (torch.func, pinn-hvp)",
    "pinn-forward": "exact forward Laplacian through the MLP (pinn-forward)",
    "deepxde": "DeepXDE (PyTorch backend, dde.grad.hessian loop)",
}


@dataclass(frozen=True)
class Settings:
    """Everything one run measures and how; parsed and validated from the command line."""

    dims: tuple[int, ...]
    error_dims: tuple[int, ...]
    width: int
    repeats: int
    max_iteration_s: float
    budget_s: float
    test_points: int
    eval_samples: int
    device: str
    threads: int
    seed: int = 0


@dataclass(frozen=True)
class Timing:
    """Seconds per iteration of one variant at one d (median of ``timed`` iterations), or why it was skipped."""

    label: str
    dim: int
    seconds: float | None
    timed: int = 0
    skipped: str | None = None


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def pinn_stein_step(pde: Heat, variant: Variant, settings: Settings) -> Callable[[], None]:
    """One training iteration per call (fresh points, loss, backward, Adam step) of a fresh seeded MLP."""
    device = torch.device(settings.device)
    torch.manual_seed(settings.seed)
    g = MLP(MLPConfig(pde.input_dim, settings.width, DEPTH)).to(device)
    optimizer = torch.optim.Adam(g.parameters(), lr=1e-4)
    generator = torch.Generator(device=device).manual_seed(settings.seed)
    smoothing = Smoothing(samples=variant.samples or 2)
    like = torch.empty(0, device=device)

    def step() -> None:
        batch = sample_batch(pde, pde.default_batch, generator, like)
        loss, _ = physics_loss(
            pde,
            g,
            batch,
            pde.default_weights,
            method=cast(Method, variant.method),
            smoothing=smoothing,
            generator=generator,
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def clock(step: Callable[[], None], device: torch.device) -> float:
    """Wall-clock seconds of one call of ``step``, synchronised on CUDA."""
    _synchronize(device)
    tick = time.perf_counter()
    step()
    _synchronize(device)
    return time.perf_counter() - tick


def predicted(variant: Variant, seconds: float, measured_dim: int, dim: int, width: int) -> float:
    """Seconds per iteration at ``dim`` extrapolated from ``seconds`` at ``measured_dim`` (see the module doc)."""

    def work(d: int) -> float:
        return (d + 2 * width) * (1 if variant.stein else d)

    return seconds * work(dim) / work(measured_dim)


def sweep(
    variants: tuple[Variant, ...],
    settings: Settings,
    make_step: Callable[[Heat, Variant], Callable[[], None]],
) -> list[Timing]:
    """Time every variant at every d of ``settings.dims`` (d outermost), skipping as the module doc says."""
    device = torch.device(settings.device)
    cap = settings.max_iteration_s
    last: dict[str, tuple[int, float]] = {}
    dropped: dict[str, str] = {}
    timings = []
    for dim in settings.dims:
        pde = Heat(dim)
        for variant in variants:
            reason = dropped.get(variant.label)
            if reason is None and variant.label in last:
                then, seconds = last[variant.label]
                guess = predicted(variant, seconds, then, dim, settings.width)
                if guess > cap:
                    reason = f"predicted {guess:.1f} s per iteration from d = {then}, over --max-iteration-s {cap:g}"
            if reason is None:
                LOG.info("timing heat-%d %s", dim, variant.label)
                step = make_step(pde, variant)
                warm = clock(step, device)
                if warm > cap:
                    reason = f"the warm-up iteration took {warm:.1f} s, over --max-iteration-s {cap:g}"
            if reason is not None:
                timings.append(Timing(variant.label, dim, None, skipped=reason))
                dropped.setdefault(variant.label, f"skipped from d = {dim}: {reason}")
                continue
            times = [clock(step, device)]
            while len(times) < settings.repeats and sum(times) + warm <= cap:
                times.append(clock(step, device))
            seconds = statistics.median(times)
            last[variant.label] = (dim, seconds)
            timings.append(Timing(variant.label, dim, seconds, len(times)))
    return timings


def train_for_budget(pde: Heat, variant: Variant, settings: Settings) -> dict[str, Any]:
    """Train a fresh network with ``variant`` for ``settings.budget_s`` seconds of training; its test errors.

    Only the iterations are timed (not the evaluation). A non-finite loss stops the run, reported as diverged.
    """
    device = torch.device(settings.device)
    torch.manual_seed(settings.seed)
    g = MLP(MLPConfig(pde.input_dim, settings.width, DEPTH)).to(device)
    optimizer = torch.optim.Adam(g.parameters(), lr=LR)
    generator = torch.Generator(device=device).manual_seed(settings.seed)
    smoothing = Smoothing(samples=variant.samples or 2)
    method = cast(Method, variant.method)
    like = torch.empty(0, device=device)
    elapsed, iterations, diverged = 0.0, 0, False
    while elapsed < settings.budget_s:
        for group in optimizer.param_groups:
            group["lr"] = LR * (1 - elapsed / settings.budget_s)
        _synchronize(device)
        tick = time.perf_counter()
        batch = sample_batch(pde, pde.default_batch, generator, like)
        loss, _ = physics_loss(
            pde, g, batch, pde.default_weights, method=method, smoothing=smoothing, generator=generator
        )
        if not torch.isfinite(loss):
            diverged = True
            break
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        _synchronize(device)
        elapsed += time.perf_counter() - tick
        iterations += 1
    result: dict[str, Any] = {
        "label": variant.label,
        "dim": pde.dim,
        "iterations": iterations,
        "training_seconds": elapsed,
        "diverged": diverged,
        "rel_l2": None,
    }
    if not diverged:
        test = make_test_set(pde, settings.test_points, seed=settings.seed + 1)
        evaluation = Smoothing(samples=settings.eval_samples)
        result.update(evaluate(g, test, method=method, smoothing=evaluation, generator=generator))
    return result


def deepxde_worker(settings: Settings) -> dict[str, Any]:
    """DeepXDE's sweep in this process, after its Laplacian check on shared weights; or why it is missing."""
    try:
        import deepxde_heat  # the sibling module; importing it imports deepxde
    except ImportError as err:
        return {"unavailable": f"deepxde is not importable ({err})"}
    device = torch.device(settings.device)
    check = deepxde_heat.laplacian_check(Heat(settings.dims[0]), settings.width, DEPTH, device)

    def make_step(pde: Heat, variant: Variant) -> Callable[[], None]:
        return deepxde_heat.training_step(
            pde, width=settings.width, depth=DEPTH, device=device, seed=settings.seed
        )

    timings = sweep((DEEPXDE,), settings, make_step)
    return {"timings": [asdict(t) for t in timings], "check": check, "version": deepxde_heat.VERSION}


def measure_deepxde(settings: Settings) -> dict[str, Any]:
    """:func:`deepxde_worker` in a fresh Python process; its result is the JSON on the last line of its stdout."""
    LOG.info("timing deepxde in a fresh process")
    done = subprocess.run(
        [sys.executable, __file__, "--worker", json.dumps(asdict(settings))],
        stdout=subprocess.PIPE,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def check_text(check: dict[str, float], dim: int) -> str:
    """A one-line account of the DeepXDE-vs-ours derivative check, ending in ok or MISMATCH."""
    passed = check["laplacian_max_abs_diff"] <= CHECK_TOLERANCE * max(1.0, check["laplacian_max_abs"])
    return (
        f"DeepXDE Laplacian vs pinn_stein.exact_derivatives(how='loop') on the same weights (float32, d = {dim}): "
        f"max abs diff {check['laplacian_max_abs_diff']:.2e} (max |Δu| {check['laplacian_max_abs']:.3g}), "
        f"∂t u max abs diff {check['dt_max_abs_diff']:.2e}: {'ok' if passed else 'MISMATCH'}"
    )


def best_exact(seconds: dict[tuple[str, int], float], dim: int) -> str | None:
    """The fastest exact method measured at ``dim`` (None: none was)."""
    found = [(seconds[(label, dim)], label) for label in EXACT_NAMES if (label, dim) in seconds]
    return min(found)[1] if found else None


def headline_dim(seconds: dict[tuple[str, int], float], dims: tuple[int, ...]) -> int:
    """:data:`HEADLINE_DIM` when Stein-VR N=256 and an exact method were measured there, else the largest such d."""
    usable = [d for d in dims if (OURS.label, d) in seconds and best_exact(seconds, d) is not None]
    if not usable:
        raise InputError("no d has both Stein-VR N=256 and an exact method measured: raise --max-iteration-s")
    return HEADLINE_DIM if HEADLINE_DIM in usable else max(usable)


def anchor_of(label: str, deepxde_version: str | None) -> Anchor:
    """The exact method ``label`` as a bench.json anchor, with the version of the library that runs it."""
    version = deepxde_version if label == "deepxde" and deepxde_version else torch.__version__
    return Anchor(EXACT_NAMES[label], version)


def bench_rows(
    seconds: dict[tuple[str, int], float],
    settings: Settings,
    trained: list[dict[str, Any]],
    deepxde_version: str | None,
) -> list[Measurement]:
    """Per d: every variant against the best exact method, Stein-VR N=256 against each exact one; then errors."""

    def timing(ours: str, anchor: str, dim: int) -> Measurement:
        rows = BY_LABEL[ours].rows_text(Heat(dim).default_batch, dim, settings.width)
        return Measurement(f"heat-{dim} training iteration (width {settings.width}, batch 50/50/50, {ours} vs "
                           f"{anchor}{rows})", "seconds per iteration", "s", seconds[(ours, dim)],
                           seconds[(anchor, dim)], False, anchor_of(anchor, deepxde_version))  # fmt: skip

    rows = []
    for dim in settings.dims:
        best = best_exact(seconds, dim)
        if best is None:
            continue
        rows += [timing(v.label, best, dim) for v in (*VARIANTS, DEEPXDE)
                 if (v.label, dim) in seconds and v.label != best]  # fmt: skip
        if (OURS.label, dim) in seconds:
            rows += [timing(OURS.label, label, dim) for label in EXACT_NAMES
                     if (label, dim) in seconds and label != best]  # fmt: skip
    for dim in settings.error_dims:
        runs = {r["label"]: r for r in trained if r["dim"] == dim and r["rel_l2"] is not None}
        if OURS.label not in runs:
            continue
        for label, run in runs.items():
            if label != OURS.label:
                rows.append(
                    Measurement(
                        f"heat-{dim}: {OURS.label} vs {label} after {settings.budget_s:g} s of training each "
                        f"(width {settings.width}, {settings.test_points} test points)",
                        "test relative L2 error at equal wall time",
                        "",
                        runs[OURS.label]["rel_l2"],
                        run["rel_l2"],
                        False,
                        anchor_of(label, deepxde_version) if label in EXACT_NAMES else None,
                    )
                )
    return rows


def plot(timings: list[Timing], settings: Settings, path: Path) -> None:
    """Seconds per iteration against d, log-log, one line per variant (skipped points left out)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.5))
    for variant in (*VARIANTS, DEEPXDE):
        points = [(t.dim, t.seconds) for t in timings if t.label == variant.label and t.seconds is not None]
        if points:
            style = "-" if variant.method == "stein-vr" else ("--" if variant.stein else ":")
            axes.plot(*zip(*points, strict=True), style, marker="o", label=variant.label)
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("d (spatial dimension)")
    axes.set_ylabel("seconds per training iteration")
    axes.set_title(f"Heat-d, width {settings.width}, {settings.device}, {settings.threads} thread(s)")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def print_tables(timings: list[Timing], trained: list[dict[str, Any]], settings: Settings) -> None:
    """The curve (seconds, '-' where skipped) with Stein-VR N=256 / best exact, then the equal-time errors."""
    seconds = {(t.label, t.dim): t.seconds for t in timings if t.seconds is not None}
    labels = [v.label for v in (*VARIANTS, DEEPXDE) if any(t.label == v.label for t in timings)]
    print("d      " + "".join(f"{label:>17s}" for label in labels) + "   best exact   ours / best")
    for dim in settings.dims:
        cells = "".join(
            f"{seconds[(label, dim)]:17.4f}" if (label, dim) in seconds else f"{'-':>17s}" for label in labels
        )
        best = best_exact(seconds, dim)
        ratio = (
            f"{seconds[(OURS.label, dim)] / seconds[(best, dim)]:.3f}"
            if best is not None and (OURS.label, dim) in seconds
            else "-"
        )
        print(f"{dim:<7d}{cells}   {best or '-':>10s}   {ratio:>11s}")
    for timing in timings:
        if timing.skipped:
            print(f"skipped: heat-{timing.dim} {timing.label}: {timing.skipped}")
    for run in trained:
        error = "diverged" if run["diverged"] else f"{run['rel_l2']:.4g}"
        print(
            f"equal time heat-{run['dim']} {run['label']}: {run['iterations']} iterations in "
            f"{run['training_seconds']:.1f} s, test relative L2 {error}"
        )


def _dims(text: str) -> tuple[int, ...]:
    """A comma- or space-separated list of distinct positive integers, returned sorted."""
    try:
        values = [int(item) for item in text.replace(",", " ").split()]
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}") from err
    if not values or min(values) < 1 or len(set(values)) != len(values):
        raise argparse.ArgumentTypeError(f"expected distinct positive integers, got {text!r}")
    return tuple(sorted(values))


def _positive(kind: type) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError as err:
            raise argparse.ArgumentTypeError(f"expected a positive {kind.__name__}, got {text!r}") from err
        if not (math.isfinite(value) and value > 0):
            raise argparse.ArgumentTypeError(f"expected a positive {kind.__name__}, got {text!r}")
        return value

    parse.__name__ = f"positive {kind.__name__}"
    return parse


def parse_settings(argv: list[str] | None) -> tuple[Settings | None, Path | None, str | None]:
    """``(settings, --out, --worker)``; every invalid flag exits with a one-line error naming it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="directory of bench.json, bench_details.json and the plot")
    parser.add_argument(
        "--dims", type=_dims, default=DIMS, help="dimensions of the curve (default: %(default)s)"
    )
    parser.add_argument(
        "--repeats", type=_positive(int), default=3, help="timed iterations at most (default 3)"
    )
    parser.add_argument(
        "--max-iteration-s",
        type=_positive(float),
        default=30.0,
        help="per-iteration time budget: a variant above it is skipped at that d and above (default 30)",
    )
    parser.add_argument(
        "--error-dims",
        type=_dims,
        default=ERROR_DIMS,
        help="dimensions of the equal-time errors (default 100 250)",
    )
    parser.add_argument(
        "--budget-s",
        type=_positive(float),
        default=15.0,
        help="training seconds per equal-time run (default 15)",
    )
    parser.add_argument("--width", type=_positive(int), default=256, help="hidden width (default 256)")
    parser.add_argument(
        "--test-points", type=_positive(int), default=1000, help="equal-time test set (default 1000)"
    )
    parser.add_argument(
        "--eval-samples",
        type=_positive(int),
        default=256,
        help="N of the smoothed f at test time (default 256)",
    )
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (default cpu)")
    parser.add_argument("--threads", type=_positive(int), default=1, help="torch threads (default 1)")
    # internal: run DeepXDE's sweep for the Settings given as JSON in this process and print its result
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return None, None, args.worker
    if args.out is None:
        parser.error("--out is required")
    if args.eval_samples % 2:
        parser.error(f"--eval-samples: antithetic estimates need an even N, got {args.eval_samples}")
    try:
        device = str(pick_device(args.device))
    except InputError as err:
        parser.error(str(err))
    settings = Settings(
        args.dims,
        args.error_dims,
        args.width,
        args.repeats,
        args.max_iteration_s,
        args.budget_s,
        args.test_points,
        args.eval_samples,
        device,
        args.threads,
    )
    return settings, args.out, None


def main(argv: list[str] | None = None) -> int:
    settings, out, worker = parse_settings(argv)
    configure_logging()
    if worker is not None:
        given = json.loads(worker)
        settings = Settings(
            **{**given, "dims": tuple(given["dims"]), "error_dims": tuple(given["error_dims"])}
        )
        torch.set_num_threads(settings.threads)
        print(json.dumps(deepxde_worker(settings)))
        return 0
    assert settings is not None
    assert out is not None
    torch.set_num_threads(settings.threads)
    began = time.perf_counter()

    def make_step(pde: Heat, variant: Variant) -> Callable[[], None]:
        return pinn_stein_step(pde, variant, settings)

    timings = sweep(VARIANTS, settings, make_step)
    dde = measure_deepxde(settings)
    deepxde_version = None
    check = None
    if "unavailable" in dde:
        print(f"deepxde: omitted, {dde['unavailable']}")
    else:
        timings += [Timing(**t) for t in dde["timings"]]
        deepxde_version = dde["version"]
        check = check_text(dde["check"], settings.dims[0])
        print(check)
    trained = []
    for dim in settings.error_dims:
        for variant in VARIANTS:
            LOG.info("training heat-%d %s for %g s", dim, variant.label, settings.budget_s)
            trained.append(train_for_budget(Heat(dim), variant, settings))

    machine = {**machine_info(settings.device), "threads": settings.threads}
    print(f"machine: {json.dumps(machine)}")
    print_tables(timings, trained, settings)
    seconds = {(t.label, t.dim): t.seconds for t in timings if t.seconds is not None}
    dim = headline_dim(seconds, settings.dims)
    best = best_exact(seconds, dim)
    assert best is not None
    anchor = anchor_of(best, deepxde_version)
    headline = Measurement(
        f"heat-{dim} training iteration (width {settings.width}, batch 50/50/50, {OURS.label} vs best exact {best}"
        f"{OURS.rows_text(Heat(dim).default_batch, dim, settings.width)})",
        "seconds per iteration",
        "s",
        seconds[(OURS.label, dim)],
        seconds[(best, dim)],
        False,
    )
    out.mkdir(parents=True, exist_ok=True)
    path = write_bench(
        Bench(
            "pinn-stein", anchor, headline, machine, bench_rows(seconds, settings, trained, deepxde_version)
        ),
        out,
    )
    batch = Heat(settings.dims[0]).default_batch
    details = {
        "settings": asdict(settings),
        "headline_dim": dim,
        "network_rows_per_iteration": {v.label: v.network_rows(batch) for v in VARIANTS if v.stein},
        "first_layer_rows_per_iteration": {
            v.label: {d: v.first_layer_rows(batch, d, settings.width) for d in settings.dims}
            for v in VARIANTS
            if v.stein
        },
        "timings": [asdict(t) for t in timings],
        "deepxde": {"version": deepxde_version, "check": check} if check else dde,
        "equal_time": trained,
        "seconds": time.perf_counter() - began,
    }
    (out / "bench_details.json").write_text(json.dumps(details, indent=2) + "\n", encoding="utf-8")
    plot(timings, settings, out / "cost_vs_dimension.png")
    print(json.dumps({"bench": str(path), "headline_dim": dim, "best_exact": best, "ratio": headline.ratio}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
