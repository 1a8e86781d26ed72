"""The measurements behind ``pinn-stein reproduce``: estimator accuracy, training error, cost per iteration."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from papers_common import MLP, MLPConfig, progress
from pinn_stein.derivatives import Method
from pinn_stein.pdes import Heat
from pinn_stein.smoothing import Smoothing, gaussian_noise
from pinn_stein.stein import stein_vanilla, stein_variance_reduced
from pinn_stein.timing import iteration_seconds


@dataclass(frozen=True)
class EstimatorError:
    """Relative L2 errors (over the points) of the two Stein Laplacian estimators at one setting and seed."""

    dtype: str
    dim: int
    samples: int
    vanilla: float
    variance_reduced: float
    seed: int = 0

    @property
    def ratio(self) -> float:
        """How many times smaller the variance-reduced error is."""
        return self.vanilla / self.variance_reduced


def smoothed_laplacian(
    g: MLP, x: torch.Tensor, smoothing: Smoothing, pairs: int, generator: torch.Generator, rows: int = 4096
) -> torch.Tensor:
    """``(B,)`` Δf(x) = E Δg(x + δ) by exact forward Laplacians at ``pairs`` antithetic pairs x ± δ.

    The antithetic mean cancels the O(σ) term, so the only error is the Monte Carlo spread of Δg over the
    O(σ) ball, far below either Stein estimator's.
    """
    half = gaussian_noise(pairs, x, None, smoothing, generator)
    noise = torch.cat([half, -half])  # (2P, B, d)
    inputs = (x + noise).reshape(-1, x.shape[1])
    laplacians = torch.cat([g.forward_laplacian(chunk, x.shape[1])[2] for chunk in inputs.split(rows)])
    return laplacians.reshape(noise.shape[:2]).mean(0)


@torch.no_grad()
def estimator_errors(
    dims: tuple[int, ...],
    samples: tuple[int, ...],
    *,
    points: int = 64,
    width: int = 128,
    sigma: float = 0.01,
    dtypes: tuple[torch.dtype, ...] = (torch.float32, torch.float64),
    reference_pairs: int = 256,
    seed: int = 0,
) -> list[EstimatorError]:
    """Vanilla vs variance-reduced Stein Laplacians of a fixed random tanh MLP against the smoothed model's.

    For each dimension d a fresh MLP ``[d, width, width, width, 1]`` (seeded) is evaluated at ``points`` points
    uniform in the unit ball; the reference Δf is :func:`smoothed_laplacian` in float64.
    """
    results = []
    bar = progress(total=len(dims) * len(dtypes) * len(samples), desc="estimator accuracy", unit="setting")
    for dim in dims:
        bar.set_postfix(d=dim, stage="reference", refresh=False)
        generator = torch.Generator().manual_seed(seed + dim)
        torch.manual_seed(seed + dim)
        g64 = MLP(MLPConfig(dim, width, 3)).double()
        x64 = Heat(dim).sample("domain", points, generator, torch.empty(0, dtype=torch.float64)).x
        smoothing = Smoothing(sigma, sigma, 2)
        with torch.enable_grad():
            reference = smoothed_laplacian(g64, x64, smoothing, reference_pairs, generator).detach()
        for dtype in dtypes:
            g = MLP(MLPConfig(dim, width, 3)).to(dtype)
            g.load_state_dict(g64.state_dict())
            x = x64.to(dtype)
            for count in samples:
                bar.set_postfix(d=dim, dtype=str(dtype).removeprefix("torch."), N=count, refresh=False)
                smoothing = Smoothing(sigma, sigma, count)
                vanilla = stein_vanilla(g, x, None, smoothing, generator).laplacian.double()
                reduced = stein_variance_reduced(g, x, None, smoothing, generator).laplacian.double()
                norm = reference.norm()
                results.append(
                    EstimatorError(
                        str(dtype).removeprefix("torch."),
                        dim,
                        count,
                        float((vanilla - reference).norm() / norm),
                        float((reduced - reference).norm() / norm),
                        seed,
                    )
                )
                bar.update(1)
    bar.close()
    return results


@dataclass(frozen=True)
class Cost:
    """Seconds per training iteration of one method at one dimension on one device (None: out of memory), timed
    on the network and points drawn from ``seed``."""

    device: str
    method: str
    dim: int
    seconds: float | None
    seed: int = 0


def cost_sweep(
    dims: tuple[int, ...],
    methods: tuple[Method, ...],
    *,
    width: int,
    samples: int,
    iterations: int,
    device: torch.device | str = "cpu",
    limits: dict[str, int] | None = None,
    seed: int = 0,
) -> list[Cost]:
    """:func:`iteration_seconds` on Heat-d for every method and dimension (``limits``: largest d per method), with
    the network and points drawn from ``seed``.

    A method that runs out of GPU memory at some d is recorded as None there and not tried at larger d.
    """
    results = []
    exhausted: set[str] = set()
    planned = [
        (dim, method) for dim in dims for method in methods if not (limits and dim > limits.get(method, dim))
    ]
    kind = str(torch.device(device).type)
    with progress(total=len(planned), desc=f"cost sweep ({kind})", unit="timing") as bar:
        for dim, method in planned:
            bar.set_postfix(d=dim, method=method, refresh=False)
            if method in exhausted:
                bar.update(1)
                continue
            try:
                seconds: float | None = iteration_seconds(
                    Heat(dim),
                    method,
                    width=width,
                    samples=samples,
                    iterations=iterations,
                    device=device,
                    seed=seed,
                    desc=f"timing heat-{dim} {method}",
                )
            except torch.cuda.OutOfMemoryError:
                seconds = None
                exhausted.add(method)
                torch.cuda.empty_cache()
            results.append(Cost(kind, method, dim, seconds, seed))
            bar.update(1)
    return results


def crossover(costs: list[Cost], ours: str, anchor: str) -> int | None:
    """Smallest measured d from which ``ours`` is faster than ``anchor`` at every larger measured d."""
    times = {(c.method, c.dim): c.seconds for c in costs if c.seconds is not None}
    dims = sorted({c.dim for c in costs if (ours, c.dim) in times and (anchor, c.dim) in times})
    found = None
    for dim in reversed(dims):
        if times[(ours, dim)] < times[(anchor, dim)]:
            found = dim
        else:
            break
    return found
