"""Seconds per training iteration on Heat d = 250: Stein-VR against stacked back-propagation PINNs.

Workload: ``pinn_stein.Heat(250)``, the paper's tanh MLP [251, 256, 256, 256, 1] and batch of 50 domain + 50 initial
+ 50 boundary points; one iteration samples fresh points, computes the physics-informed loss, back-propagates and
takes an Adam step. The time is the median over the timed iterations after one warm-up, with
``torch.set_num_threads(--threads)``.

Methods, each in its own fresh Python process so that memory and threads of one do not affect another:

- ``stein-vr``: ours, antithetic + control-variate Stein estimators of the smoothed model, forward passes only
  (N = 2048 samples per point, the paper's setting, and N = 256);
- ``pinn``: plain PyTorch autograd with stacked back-propagation (a loop of ``torch.autograd.grad`` with
  ``create_graph=True`` over the d diagonal Hessian entries), the headline anchor;
- ``pinn-hvp`` and ``pinn-forward``: this package's faster exact Laplacians (batched Hessian-vector products,
  forward Laplacian), extra rows;
- ``deepxde``: DeepXDE's PyTorch backend with a ``dde.grad.hessian`` loop (when DeepXDE is importable; its
  Laplacian is first checked against ours on the same weights).

``ratio = ours / anchor`` in seconds per iteration: a ratio below 1 means ours (stein-vr) is faster.

    python packages/pinn-stein/benchmarks/run.py --out reports/pinn-stein [--quick] [--device cpu] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, cast

import torch

from papers_common import (
    Anchor,
    Bench,
    Measurement,
    configure_logging,
    machine_info,
    pick_device,
    progress,
    write_bench,
)
from pinn_stein import Heat, Method, iteration_seconds

LOG = logging.getLogger("pinn_stein.benchmark")

DIM, WIDTH, DEPTH = 250, 256, 3
HEADLINE_SAMPLES = 2048
CHECK_TOLERANCE = 1e-5  # float32: DeepXDE's Laplacian must match ours to this, relative to max(1, max |Δu|)


@dataclass(frozen=True)
class Request:
    """One measurement: a method (``stein-vr``, ``pinn``, ``pinn-hvp``, ``pinn-forward`` or ``deepxde``)."""

    method: str
    samples: int = HEADLINE_SAMPLES  # N, used by stein-vr only
    iterations: int = 5
    warmup: int = 1
    device: str = "cpu"
    threads: int = 2

    @property
    def label(self) -> str:
        return f"{self.method} N={self.samples}" if self.method == "stein-vr" else self.method


def measure_pinn_stein(request: Request) -> dict[str, Any]:
    """A pinn_stein method timed by :func:`pinn_stein.iteration_seconds` (fresh MLP, Adam, default batch)."""
    seconds = iteration_seconds(
        Heat(DIM),
        cast(Method, request.method),
        width=WIDTH,
        depth=DEPTH,
        samples=request.samples,
        iterations=request.iterations,
        warmup=request.warmup,
        device=request.device,
        desc=f"timing {request.label}",
    )
    return {"seconds": seconds}


def measure_deepxde(request: Request) -> dict[str, Any]:
    """DeepXDE's PyTorch backend: the Laplacian check on shared weights, then the timing; or why it is missing."""
    try:
        import deepxde_heat  # the sibling module; importing it imports deepxde
    except ImportError as err:
        return {"unavailable": f"deepxde is not importable ({err})"}
    pde, device = Heat(DIM), torch.device(request.device)
    check = deepxde_heat.laplacian_check(pde, WIDTH, DEPTH, device)
    seconds = deepxde_heat.iteration_seconds(
        pde, width=WIDTH, depth=DEPTH, iterations=request.iterations, warmup=request.warmup, device=device
    )
    return {"seconds": seconds, "check": check, "version": deepxde_heat.VERSION}


def worker(request: Request) -> dict[str, Any]:
    """Run one request in this process (called in the child)."""
    torch.set_num_threads(request.threads)
    if request.method == "deepxde":
        return measure_deepxde(request)
    return measure_pinn_stein(request)


def measure(request: Request) -> dict[str, Any]:
    """Run one request in a fresh Python process; its result is the JSON on the last line of its stdout."""
    LOG.info("measuring %s in a fresh process", request.label)
    done = subprocess.run(
        [sys.executable, __file__, "--worker", json.dumps(asdict(request))],
        stdout=subprocess.PIPE,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def check_text(check: dict[str, float]) -> str:
    """A one-line account of the DeepXDE-vs-ours derivative check, ending in ok or MISMATCH."""
    passed = check["laplacian_max_abs_diff"] <= CHECK_TOLERANCE * max(1.0, check["laplacian_max_abs"])
    return (
        f"DeepXDE Laplacian vs pinn_stein.exact_derivatives(how='loop') on the same weights (float32): "
        f"max abs diff {check['laplacian_max_abs_diff']:.2e} (max |Δu| {check['laplacian_max_abs']:.3g}), "
        f"∂t u max abs diff {check['dt_max_abs_diff']:.2e}: {'ok' if passed else 'MISMATCH'}"
    )


def workload(detail: str) -> str:
    """The workload's description, with what distinguishes one measurement."""
    return f"heat-{DIM} training iteration (width {WIDTH}, batch 50/50/50, {detail})"


def requests(args: argparse.Namespace) -> list[Request]:
    """Every measurement of one run, in the order they are made."""
    iterations, warmup = (2, 1) if args.quick else (5, 1)
    common: dict[str, Any] = {
        "iterations": iterations,
        "warmup": warmup,
        "device": args.device,
        "threads": args.threads,
    }
    return [
        Request("stein-vr", HEADLINE_SAMPLES, **common),
        Request("stein-vr", 256, **common),
        Request("pinn", **common),
        Request("pinn-hvp", **common),
        Request("pinn-forward", **common),
        Request("deepxde", **common),
    ]


def print_table(seconds: dict[str, float], ours: list[str]) -> None:
    """Every method's seconds per iteration and the ratios stein-vr / method (below 1: stein-vr is faster)."""
    print(f"{'method':18s} {'s/iter':>9s}" + "".join(f" {label + ' / method':>26s}" for label in ours))
    for label, value in seconds.items():
        ratios = "".join(f" {seconds[mine] / value:26.3f}" for mine in ours)
        print(f"{label:18s} {value:9.3f}{ratios}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="directory of bench.json")
    parser.add_argument("--quick", action="store_true", help="2 timed iterations instead of 5")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    # internal: run one Request, given as JSON, in this process and print its result
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    configure_logging()
    if args.worker:
        print(json.dumps(worker(Request(**json.loads(args.worker)))))
        return 0
    if args.out is None:
        parser.error("--out is required")
    args.device = str(pick_device(args.device))

    seconds: dict[str, float] = {}
    deepxde: dict[str, Any] | None = None
    bar = progress(requests(args), desc="benchmark", unit="method")
    for request in bar:
        bar.set_postfix(method=request.label, refresh=False)
        result = measure(request)
        if "unavailable" in result:
            print(f"{request.label}: omitted, {result['unavailable']}")
            continue
        seconds[request.label] = result["seconds"]
        if request.method == "deepxde":
            deepxde = result

    machine = {**machine_info(args.device), "threads": args.threads}
    print(f"machine: {json.dumps(machine)}")
    print(
        f"mode: {'quick' if args.quick else 'full'}; ratio = stein-vr / method (below 1: stein-vr is faster)"
    )
    ours = [f"stein-vr N={HEADLINE_SAMPLES}", "stein-vr N=256"]
    print_table(seconds, ours)

    pinn = Anchor(
        "plain PyTorch autograd PINN, stacked back-propagation (torch.autograd.grad loop, create_graph=True)",
        torch.__version__,
    )
    anchors = [(pinn, "pinn", "")]
    if deepxde is not None:
        text = check_text(deepxde["check"])
        print(text)
        dde = Anchor("DeepXDE (PyTorch backend, dde.grad.hessian loop)", deepxde["version"])
        anchors.append((dde, "deepxde", f"; {text}"))
    rows = [
        Measurement(
            workload(f"{label} vs {key}") + note,
            "seconds per iteration",
            "s",
            seconds[label],
            seconds[key],
            False,
            anchor,
        )
        for anchor, key, note in anchors
        for label in [*ours, "pinn-hvp", "pinn-forward"]
    ]
    headline = Measurement(
        workload(f"N={HEADLINE_SAMPLES}"),
        "seconds per iteration",
        "s",
        seconds[ours[0]],
        seconds["pinn"],
        False,
    )
    path = write_bench(Bench("pinn-stein", pinn, headline, machine, rows), args.out)
    print(json.dumps({"bench": str(path), "ratio_vs_pinn": headline.ratio}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
