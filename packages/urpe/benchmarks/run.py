"""Forward+backward time and peak memory: URPEAttention vs RPEAttention vs SDPA with an additive bias.

The anchor is what a user would otherwise write for T5-style relative positions: the same projections and bias
table, with ``torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=B)``. SDPA cannot express
URPE's post-softmax product, so the comparison shows the price of the extra expressiveness. Both modules run their
default fused path (``urpe.toeplitz``); the ``-exact`` methods run the autograd reference path (``fused=False``),
which is how both modules computed before the fused path existed.

Time is measured with the steps of every method taken in turn in one process per L, so that all methods meet the
same machine load: the median of ``--rounds`` rounds after one warm-up round. The rounds follow a Williams design
(:func:`williams_orders`): over six rounds each method directly follows every other one once, so that no method is
more often measured after a memory-hungry one. URPE and RPE are also timed alone, their steps alternating in a
process of their own (a row per L). Peak memory (CUDA: ``max_memory_allocated``; CPU: the
growth of the resident set's high-water mark) is one step of one method in a process of its own, so that it
belongs to that method alone; on CPU that process's C allocator returns every freed block of 128 KiB or more to
the system (glibc ``MALLOC_MMAP_THRESHOLD_``), so that the high-water mark follows the tensors alive at once rather
than where the allocator happened to keep freed blocks.

    python benchmarks/run.py --out reports/urpe [--lengths 128 512 2048] [--rounds 12] [--device cpu] [--quiet]

Progress (one unit per length, and per round of timed steps) is a bar on a terminal and a log line every 30 s
otherwise.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

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
from urpe import RPEAttention, URPEAttention

METHODS = ("urpe", "urpe-exact", "urpe-chunked", "rpe", "rpe-exact", "sdpa-bias")
PAIR = ("urpe", "rpe")  # also timed alone: no other method's steps between theirs


def _build(method: str, embed: int, heads: int, max_len: int, device: torch.device) -> torch.nn.Module:
    if method.startswith("urpe"):
        return URPEAttention(
            embed,
            heads,
            batch_first=True,
            max_len=max_len,
            chunk_size=max_len // 4 if method == "urpe-chunked" else None,
            fused=method != "urpe-exact",
        ).to(device)
    return RPEAttention(embed, heads, batch_first=True, max_len=max_len, fused=method != "rpe-exact").to(
        device
    )


def _step(method: str, module: torch.nn.Module, x: torch.Tensor) -> None:
    if method == "sdpa-bias":
        assert isinstance(module, RPEAttention)
        b, length, _ = x.shape
        q, k, v = (module._heads(t) for t in module._project(x, x, x, self_attention=True))
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=module.bias_table(length, length).unsqueeze(0)
        )
        out = module.out_proj(out.transpose(1, 2).reshape(b, length, -1))
    else:
        out, _ = module(x, x, x, need_weights=False)
    out.sum().backward()


def _resident_kib() -> int:
    """Current resident set size in KiB (``/proc/self/statm``), or the high-water mark where that is missing."""
    statm = Path("/proc/self/statm")
    if statm.exists():
        return int(statm.read_text().split()[1]) * resource.getpagesize() // 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _peak_memory(
    method: str,
    length: int,
    batch: int,
    heads: int,
    embed: int,
    device_name: str,
    quiet: bool,
    queue: mp.Queue,
) -> None:
    """Put the peak memory (MiB) of one step of ``method`` on ``queue``; run it in a process of its own."""
    configure_logging(quiet=quiet)  # a spawned process starts without the parent's logging set-up
    torch.manual_seed(0)
    device = torch.device(device_name)
    module = _build(method, embed, heads, length, device)
    x = torch.randn(batch, length, embed, device=device, requires_grad=True)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    rss_before = _resident_kib()
    _step(method, module, x)
    if device.type == "cuda":
        torch.cuda.synchronize()
        queue.put(torch.cuda.max_memory_allocated() / 2**20)
    else:  # growth of the resident high-water mark over the resident size before the step (KiB on Linux)
        queue.put((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024)


def williams_orders(n: int) -> list[list[int]]:
    """Orders of ``n`` items in which each item directly follows every other one equally often (a Williams design:
    once over the ``n`` orders when ``n`` is even, twice over ``2 n`` when it is odd)."""
    first = [0] + [(k + 1) // 2 if k % 2 else n - k // 2 for k in range(1, n)]  # 0, 1, n-1, 2, n-2, ...
    orders = [[(item + shift) % n for item in first] for shift in range(n)]
    return orders if n % 2 == 0 else orders + [order[::-1] for order in orders]


def _time_steps(
    methods: tuple[str, ...],
    length: int,
    batch: int,
    heads: int,
    embed: int,
    rounds: int,
    device_name: str,
    quiet: bool,
    queue: mp.Queue,
) -> None:
    """Put the median seconds per step of each method on ``queue``, their steps taken in turn in one process."""
    configure_logging(quiet=quiet)
    torch.manual_seed(0)
    device = torch.device(device_name)
    modules = {m: _build(m, embed, heads, length, device) for m in methods}
    x = torch.randn(batch, length, embed, device=device, requires_grad=True)
    times: dict[str, list[float]] = {m: [] for m in methods}
    orders = williams_orders(len(methods))
    for round_ in progress(
        range(rounds + 1), desc=f"bench L={length}", unit="round", leave=False, position=1
    ):
        for method in (methods[i] for i in orders[(round_ - 1) % len(orders)]):  # round 0 warms up
            start = time.perf_counter()
            _step(method, modules[method], x)
            if device.type == "cuda":
                torch.cuda.synchronize()
            if round_ > 0:  # the first round warms up
                times[method].append(time.perf_counter() - start)
    queue.put({m: statistics.median(t) for m, t in times.items()})


# glibc: blocks of at least this many bytes are mapped on their own and unmapped when freed (a fixed threshold
# also stops glibc from raising it after the first large free)
_MEMORY_ENV = {"MALLOC_MMAP_THRESHOLD_": str(128 * 1024)}


def _in_fresh_process(target: Callable[..., None], *args: Any, env: dict[str, str] | None = None) -> Any:
    """Run ``target(*args, queue)`` in a spawned process (with ``env`` added to its environment) and return what it
    puts on the queue."""
    context = mp.get_context("spawn")
    queue = context.Queue()
    proc = context.Process(target=target, args=(*args, queue))
    saved = {name: os.environ.get(name) for name in env or {}}
    os.environ.update(env or {})
    try:
        proc.start()  # the spawned interpreter starts with the environment as it is now
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name)
            else:
                os.environ[name] = value
    result = queue.get()
    proc.join()
    return result


def measure(length: int, args: argparse.Namespace) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    """At one length: the median seconds per forward+backward (all methods in one process) and peak memory (MiB, one
    process per method) of every method, and the median seconds of URPE and RPE alone in a process of their own
    (their steps alternating)."""
    common = (args.batch, args.heads, args.embed)
    seconds = _in_fresh_process(_time_steps, METHODS, length, *common, args.rounds, args.device, args.quiet)
    alone = _in_fresh_process(_time_steps, PAIR, length, *common, args.rounds, args.device, args.quiet)
    env = _MEMORY_ENV if args.device == "cpu" else None
    memory = {
        m: _in_fresh_process(_peak_memory, m, length, *common, args.device, args.quiet, env=env)
        for m in METHODS
    }
    return {m: {"seconds": seconds[m], "peak_mb": memory[m]} for m in METHODS}, alone


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--lengths", type=int, nargs="+", default=[128, 512, 2048])
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--embed", type=int, default=512)
    parser.add_argument(
        "--rounds", type=int, default=12, help="timed rounds (one step of every method), after one"
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or progress log lines")
    args = parser.parse_args(argv)
    for flag in ("lengths", "batch", "heads", "embed", "rounds"):
        values = getattr(args, flag)
        if min(values if isinstance(values, list) else [values]) < 1:
            parser.error(f"--{flag} must be at least 1")
    if args.embed % args.heads:
        parser.error(f"--embed {args.embed} is not a multiple of --heads {args.heads}")
    if args.out.exists() and not args.out.is_dir():
        parser.error(f"--out {args.out} is a file, not a folder")
    configure_logging(quiet=args.quiet)
    args.device = str(pick_device(args.device))

    table, alone = {}, {}
    for length in (bar := progress(args.lengths, desc="bench", unit="length")):
        bar.set_postfix(L=length)
        measured, alone[length] = measure(length, args)
        table.update({(method, length): value for method, value in measured.items()})
    for (method, length), value in table.items():
        print(
            f"L={length:5d} {method:15s} {value['seconds'] * 1e3:9.1f} ms  {value['peak_mb']:9.1f} MiB",
            file=sys.stderr,
        )
    for length, value in alone.items():
        line = "  ".join(f"{m} {value[m] * 1e3:.1f} ms" for m in PAIR)
        print(f"L={length:5d} alone, alternating: {line}", file=sys.stderr)

    version = torch.__version__
    sdpa = Anchor("torch.nn.functional.scaled_dot_product_attention + additive bias", version)
    rpe = Anchor("urpe.RPEAttention", version)
    rpe_exact = Anchor("urpe.RPEAttention(fused=False), the autograd reference path", version)
    workload = f"batch {args.batch}, {args.heads} heads, embed {args.embed}, forward+backward, {args.device}"
    comparisons = (  # (ours, anchor method, anchor, workload note)
        ("urpe", "sdpa-bias", sdpa, ""),
        ("urpe", "rpe", rpe, ""),
        ("urpe", "rpe-exact", rpe_exact, ""),
        ("urpe-exact", "rpe-exact", rpe_exact, ", both on the autograd reference path (fused=False)"),
        ("urpe-chunked", "rpe", rpe, ", URPE in query chunks of L/4 (recomputed in backward)"),
    )
    rows = []
    for length in args.lengths:
        for ours, other, anchor, note in comparisons:
            for metric, unit, key in (("time per step", "s", "seconds"), ("peak memory", "MiB", "peak_mb")):
                rows.append(Measurement(f"L={length}, {workload}{note}", metric, unit, table[(ours, length)][key],
                                        table[(other, length)][key], False, anchor))  # fmt: skip
        rows.append(Measurement(f"L={length}, {workload}, URPE and RPE alone, their steps alternating", "time per step",
                                "s", alone[length]["urpe"], alone[length]["rpe"], False, rpe))  # fmt: skip
    middle = sorted(args.lengths)[len(args.lengths) // 2]
    headline = Measurement(
        f"L={middle}, {workload}",
        "time per step",
        "s",
        table[("urpe", middle)]["seconds"],
        table[("sdpa-bias", middle)]["seconds"],
        False,
    )
    bench = Bench("urpe", sdpa, headline, machine_info(args.device), rows)
    path = write_bench(bench, args.out)
    print(json.dumps({"bench": str(path), "ratio_vs_sdpa": headline.ratio}))
    for row in rows:
        if row.anchor in (rpe, rpe_exact) and (row.workload.endswith(args.device) or "alone" in row.workload):
            how = " (URPE and RPE alone)" if "alone" in row.workload else ""
            print(
                f"URPE/{row.anchor.name.split(',')[0]} {row.metric}{how} at {row.workload.split(',')[0]}: {row.ratio:.3f}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
