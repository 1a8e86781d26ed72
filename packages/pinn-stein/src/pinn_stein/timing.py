"""Wall-clock cost of one training iteration (sample points, loss, backward, Adam step) per method and dimension."""

from __future__ import annotations

import statistics
import time

import torch

from papers_common import MLP, MLPConfig, progress
from pinn_stein.derivatives import Method
from pinn_stein.loss import physics_loss, sample_batch
from pinn_stein.pdes import PDE
from pinn_stein.smoothing import Smoothing


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def iteration_seconds(
    pde: PDE,
    method: Method,
    *,
    width: int = 256,
    depth: int = 3,
    samples: int = 2048,
    batch: dict[str, int] | None = None,
    iterations: int = 5,
    warmup: int = 1,
    device: torch.device | str = "cpu",
    seed: int = 0,
    desc: str | None = None,
) -> float:
    """Median seconds of ``iterations`` timed training iterations after ``warmup`` untimed ones.

    The network is a fresh :class:`MLP` of the given ``width`` and ``depth``; batch sizes default to the problem's.
    With ``desc``, the iterations are reported by :func:`papers_common.progress` under that label.
    """
    device = torch.device(device)
    torch.manual_seed(seed)
    g = MLP(MLPConfig(pde.input_dim, width, depth)).to(device)
    optimizer = torch.optim.Adam(g.parameters(), lr=1e-4)
    generator = torch.Generator(device=device).manual_seed(seed)
    sizes = {**pde.default_batch, **(batch or {})}
    smoothing = Smoothing(samples=samples)
    like = torch.empty(0, device=device)
    times = []
    for step in progress(range(warmup + iterations), desc=desc, leave=False, disable=desc is None):
        _synchronize(device)
        tick = time.perf_counter()
        points = sample_batch(pde, sizes, generator, like)
        loss, _ = physics_loss(
            pde, g, points, pde.default_weights, method=method, smoothing=smoothing, generator=generator
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        _synchronize(device)
        if step >= warmup:
            times.append(time.perf_counter() - tick)
    return statistics.median(times)
