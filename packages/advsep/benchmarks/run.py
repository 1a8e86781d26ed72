"""Noise generation: a parity check against torchattacks, and a comparison with per-example gradients.

Parity: for each workload ours and torchattacks (the library users pick for FGSM / PGD) make the FGSM and the
PGD-10 noise of every example with the same batch size and thread count, each as it is used: ours in one call
that batches internally, torchattacks in a loop over batches. Both run the same forward and input-gradient
backward pass per batch and step, so equal noises (checked first; inputs scaled to [0, 1], as torchattacks
requires, and ``clip=(0, 1)`` on ours) at equal speed is the expected result: the rows show that nothing is lost,
not a speed-up. The headline is this parity on mnist1d with the theorem's two-layer network (ours / torchattacks).

Per-example gradients: a user who wants each example's own noise without knowing that a summed loss gives it in
one batched backward pass would write ``torch.func.vmap(torch.func.grad(loss))`` or a loop over examples. Those
rows time FGSM noises per second, ours against each (noises checked equal first), on the two-layer network and
the digits CNN.
Writes ``bench.json``.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from advsep import digits, generate_noise, make_classifier, mnist1d
from papers_common import Anchor, Bench, Measurement, machine_info, write_bench

EPS, ALPHA, STEPS = 8 / 255, 2 / 255, 10
Attack = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _unit_range(x: torch.Tensor) -> torch.Tensor:
    low, high = x.min(), x.max()
    return (x - low) / (high - low)


def _workloads() -> list[tuple[str, nn.Module, torch.Tensor, torch.Tensor]]:
    torch.manual_seed(0)
    m1d, dig = mnist1d(), digits()
    x_m, x_d = _unit_range(m1d.x_train), _unit_range(dig.x_train)
    g = torch.Generator().manual_seed(0)
    x_img = torch.rand(2048, 3, 32, 32, generator=g)
    y_img = torch.randint(0, 10, (2048,), generator=g)
    return [
        ("mnist1d 4000 x 40, two-layer m=1024", make_classifier("two-layer", m1d.shape, 10, width=1024), x_m,
         m1d.y_train),
        ("mnist1d 4000 x 40, MLP depth 4, m=512", make_classifier("mlp", m1d.shape, 10, width=512, depth=4), x_m,
         m1d.y_train),
        ("digits 1200 x 1x8x8, CNN", make_classifier("cnn", dig.shape, 10), x_d, dig.y_train),
        ("images 2048 x 3x32x32, CNN", make_classifier("cnn", (3, 32, 32), 10), x_img, y_img),
    ]  # fmt: skip


def _batched(fn: Attack, x: torch.Tensor, y: torch.Tensor,
             batch: int) -> torch.Tensor:  # fmt: skip
    return torch.cat([fn(x[i : i + batch], y[i : i + batch]) for i in range(0, x.shape[0], batch)])


def _per_call(fn: Callable[[], object], minimum: float) -> float:
    """Mean seconds per call of ``fn`` over as many calls as fill ``minimum`` seconds."""
    calls, start = 0, time.perf_counter()
    while True:
        fn()
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= minimum:
            return elapsed / calls


def _seconds(
    ours: Callable[[], object], theirs: Callable[[], object], rounds: int, minimum: float
) -> tuple[float, float]:
    """Median seconds per call of each, measured in alternating rounds so that drifts in the machine's speed
    fall on both sides."""
    ours(), theirs()  # warm-up
    pairs = [(_per_call(ours, minimum), _per_call(theirs, minimum)) for _ in range(rounds)]
    return statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs)


def _sides(model: nn.Module, batch: int) -> dict[str, tuple[Attack, Attack]]:
    """(ours, torchattacks) noise makers for each attack, on one model."""
    import torchattacks

    fgsm = torchattacks.FGSM(model, eps=EPS)
    pgd = torchattacks.PGD(model, eps=EPS, alpha=ALPHA, steps=STEPS, random_start=False)
    return {
        "FGSM": (lambda xb, yb: generate_noise(model, xb, yb, "fgsm", eps=EPS, clip=(0.0, 1.0), batch_size=batch),
                 lambda xb, yb: fgsm(xb, yb) - xb),
        "PGD-10": (lambda xb, yb: generate_noise(model, xb, yb, "pgd", eps=EPS, steps=STEPS, step_size=ALPHA,
                                                 clip=(0.0, 1.0), batch_size=batch),
                   lambda xb, yb: pgd(xb, yb) - xb),
    }  # fmt: skip


def _vmap_fgsm(model: nn.Module) -> Attack:
    """FGSM from per-example gradients with ``torch.func``: vmap over examples of grad of one example's loss."""
    from torch.func import functional_call, grad, vmap

    params = {k: v.detach() for k, v in model.named_parameters()}
    buffers = {k: v.detach() for k, v in model.named_buffers()}

    def loss(x1: torch.Tensor, y1: torch.Tensor) -> torch.Tensor:
        logits = functional_call(model, (params, buffers), (x1.unsqueeze(0),))
        return F.cross_entropy(logits, y1.unsqueeze(0))

    per_example = vmap(grad(loss))
    return lambda xb, yb: (xb + EPS * per_example(xb, yb).sign()).clamp(0.0, 1.0) - xb


def _loop_fgsm(model: nn.Module) -> Attack:
    """FGSM one example at a time: a forward and a backward pass per example."""

    def attack(xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        parts = []
        for i in range(xb.shape[0]):
            leaf = xb[i : i + 1].detach().requires_grad_(True)
            (g,) = torch.autograd.grad(F.cross_entropy(model(leaf), yb[i : i + 1]), leaf)
            parts.append((leaf.detach() + EPS * g.sign()).clamp(0.0, 1.0) - leaf.detach())
        return torch.cat(parts)

    return attack


def _per_example_rows(name: str, model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int, rounds: int,
                      minimum: float) -> list[Measurement]:  # fmt: skip
    ours_fn = functools.partial(
        generate_noise, model, x, y, "fgsm", eps=EPS, clip=(0.0, 1.0), batch_size=batch
    )
    ours = ours_fn()
    rows = []
    others: dict[str, Callable[[], torch.Tensor]] = {
        "torch.func vmap(grad)": functools.partial(_batched, _vmap_fgsm(model), x, y, batch),
        "per-example loop": functools.partial(_loop_fgsm(model), x, y),
    }
    for label, fn in others.items():
        theirs = fn()
        # a sign flips where a coordinate's gradient is ~0 and the two sum in different orders
        flipped = float(((ours - theirs).abs() > 1e-6).double().mean())
        if flipped > 1e-3:
            raise SystemExit(
                f"{name}: our FGSM noise differs from the {label}'s on {flipped:.2%} of coordinates"
            )
        t_ours, t_theirs = _seconds(ours_fn, fn, rounds, minimum)
        n = x.shape[0]
        anchor = Anchor(label, torch.__version__)
        rows.append(Measurement(f"FGSM noises, {name}, ours batch {batch} vs {label}", "throughput", "noises/s",
                                n / t_ours, n / t_theirs, True, anchor))  # fmt: skip
        print(f"{rows[-1].workload}: ours {n / t_ours:,.0f}/s, {label} {n / t_theirs:,.0f}/s, "
              f"ratio {rows[-1].ratio:.1f}")  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="directory of bench.json")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--batch", type=int, default=256, help="examples per batch, both sides")
    parser.add_argument("--rounds", type=int, default=7, help="alternating timed rounds (median)")
    parser.add_argument("--quick", action="store_true", help="3 rounds of at least 0.2 s (default: 1 s)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rounds, minimum = (3, 0.2) if args.quick else (args.rounds, 1.0)
    anchor = Anchor("torchattacks", version("torchattacks"))
    rows: list[Measurement] = []
    workloads = _workloads()
    for name, model, x, y in workloads:
        model.eval()
        sides = _sides(model, args.batch)
        for attack, (ours_fn, theirs_fn) in sides.items():
            ours = ours_fn(x, y)
            theirs = _batched(theirs_fn, x, y, args.batch)
            gap = float((ours - theirs).abs().max())
            if gap > 1e-6:
                raise SystemExit(f"{name} {attack}: our noise differs from torchattacks' by up to {gap:.3g}")
            t_ours, t_theirs = _seconds(
                functools.partial(ours_fn, x, y),
                functools.partial(_batched, theirs_fn, x, y, args.batch),
                rounds,
                minimum,
            )
            n = x.shape[0]
            rows.append(Measurement(f"{attack}, {name}, batch {args.batch} (noises equal, max gap {gap:.1g})",
                                    "throughput", "examples/s", n / t_ours, n / t_theirs, True, anchor))  # fmt: skip
            print(f"{rows[-1].workload}: ours {n / t_ours:,.0f}/s, torchattacks {n / t_theirs:,.0f}/s, "
                  f"ratio {rows[-1].ratio:.2f}")  # fmt: skip
    for name, model, x, y in workloads[:1] + workloads[2:3]:  # the two-layer network and the digits CNN
        rows += _per_example_rows(name, model, x, y, args.batch, rounds, minimum)
    machine = {**machine_info("cpu"), "threads": args.threads}
    path = write_bench(Bench("advsep", anchor, rows[0], machine, rows), args.out)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
