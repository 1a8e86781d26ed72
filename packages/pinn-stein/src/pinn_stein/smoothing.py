"""Gaussian smoothing f(x, t) = E_δ g(x + δ_x, t + δ_t), δ_x ~ N(0, σ_x² I_d), δ_t ~ N(0, σ_t²) (paper §3).

f is never available in closed form: it is estimated by a Monte Carlo mean over noisy copies of each point, in
training (boundary and initial losses) and at test time. With antithetic pairs (x ± δ) the mean is exact for the
odd part of g around x, which lowers its variance at no extra cost.

Every estimator evaluates g at shifted copies z + δ_k of each point. When g starts with a linear layer
(:class:`papers_common.MLP`, or an ``nn.Sequential`` whose first module is ``nn.Linear``), its pre-activations
are built as W(z + δ) + b = (W z + b) + W δ: W z + b once per point and W δ once per draw, shared by the + and −
member of an antithetic pair. That first layer, (d + 1) × width multiply-adds a row and the largest one when d is
large, then runs on (M + 1)·B rows instead of 2M·B (or (2M + 1)·B with the centre), and the ``(2M, B, D)``
noisy inputs are never formed. The result equals g on the shifted inputs up to rounding.

The split saves about M·B·D·width multiply-adds (forward and weight gradient alike) and costs a few elementwise
passes over the ``(2M, B, width)`` pre-activations, so it is used only when the input is at least a quarter as
wide as the first layer's output (:data:`SPLIT_MIN_WIDTH_RATIO`); on a one-thread CPU with width 256 the two
break even near D = 50.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional

from papers_common import MLP, InputError
from pinn_stein.fields import check_points, network_input, network_values

SPLIT_MIN_WIDTH_RATIO = 0.25  # evaluate the first layer split when in_features >= this × out_features


@dataclass(frozen=True)
class Smoothing:
    """Noise scales and Monte Carlo size of the smoothed model.

    Attributes:
        sigma_x: σ_x, the spatial noise scale (paper: 0.01).
        sigma_t: σ_t, the time noise scale (paper: 0.01); unused by time-independent problems.
        samples: N, noisy copies per point (paper: 2048). Antithetic estimators use N/2 pairs, so N must be even.
    """

    sigma_x: float = 0.01
    sigma_t: float = 0.01
    samples: int = 2048

    def __post_init__(self) -> None:
        for name in ("sigma_x", "sigma_t"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise InputError(f"Smoothing.{name} must be a positive finite number, got {value!r}")
        if not isinstance(self.samples, int) or self.samples < 1:
            raise InputError(f"Smoothing.samples must be a positive integer, got {self.samples!r}")

    def pairs(self) -> int:
        """N/2, the number of antithetic pairs; an odd N is an error."""
        if self.samples < 2 or self.samples % 2:
            raise InputError(
                f"antithetic estimators need an even number of samples (N/2 pairs), got samples={self.samples}"
            )
        return self.samples // 2

    def scales(self, dim: int, timed: bool, like: torch.Tensor) -> torch.Tensor:
        """``(dim,)`` or ``(dim + 1,)`` per-input noise scales ``[σ_x, ..., σ_x, σ_t]``."""
        scales = like.new_full((dim + int(timed),), self.sigma_x)
        if timed:
            scales[-1] = self.sigma_t
        return scales


def gaussian_noise(
    count: int,
    x: torch.Tensor,
    t: torch.Tensor | None,
    smoothing: Smoothing,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """``(count, B, D)`` draws of δ = (δ_x, δ_t) for the ``B`` points, D = d (+ 1 with time)."""
    batch, dim = x.shape
    columns = dim + int(t is not None)
    noise = torch.randn(count, batch, columns, generator=generator, device=x.device, dtype=x.dtype)
    return noise.mul_(smoothing.scales(dim, t is not None, x))


def first_layer_split(g: nn.Module) -> tuple[nn.Linear, Callable[[torch.Tensor], torch.Tensor]] | None:
    """``(first, rest)`` with g(z) = rest(first(z)) and ``first`` an ``nn.Linear``, or None when g is not known to be
    such a network.

    Known: :class:`papers_common.MLP` (rest = tanh, then the hidden and output layers) and ``nn.Sequential``
    starting with ``nn.Linear``, each with its own ``forward`` and no forward hooks on g or the first layer (a
    split evaluation would bypass them). ``rest`` maps ``(n, width)`` pre-activations to g's ``(n, 1)`` output.
    """
    if isinstance(g, MLP) and type(g).forward is MLP.forward:
        first, after = g.layers[0], g.layers[1:]

        def rest(hidden: torch.Tensor) -> torch.Tensor:
            for layer in after:
                hidden = layer(torch.tanh(hidden))
            return hidden

    elif (
        isinstance(g, nn.Sequential)
        and type(g).forward is nn.Sequential.forward
        and len(g) > 0
        and isinstance(g[0], nn.Linear)
    ):
        first, rest = g[0], g[1:]
    else:
        return None
    hooked = any(m._forward_hooks or m._forward_pre_hooks for m in (g, first))
    return None if hooked or type(first).forward is not nn.Linear.forward else (first, rest)


def shifted_values(
    g: nn.Module, z: torch.Tensor, delta: torch.Tensor, *, antithetic: bool, centre: bool = False
) -> torch.Tensor:
    """``(S, B)`` values of g at shifted copies of every point: g(z + δ_k) for k = 1..K, then g(z − δ_k) when
    ``antithetic``, then g(z) when ``centre``; S = K·(1 + antithetic) + centre.

    A network with a linear first layer (:func:`first_layer_split`) at least :data:`SPLIT_MIN_WIDTH_RATIO` times
    as wide in as out gets (W z + b) ± W δ_k as its first pre-activations (module docstring): the first layer on
    B rows (W z + b) and K·B rows (W δ) instead of S·B, and the centre is ``rest(W z + b)``. Any other g is one
    batched call on the ``(S, B, D)`` shifted inputs. The two agree up to rounding; gradients flow to θ either way.

    Args:
        g: network ``(n, D) -> (n, 1)`` or ``(n,)``.
        z: ``(B, D)`` network inputs.
        delta: ``(K, B, D)`` shifts.
        antithetic: also evaluate z − δ_k.
        centre: also evaluate z itself.
    """
    split = first_layer_split(g)
    if split is None or split[0].in_features < SPLIT_MIN_WIDTH_RATIO * split[0].out_features:
        shifted = [z + delta, z - delta] if antithetic else [z + delta]
        if centre:
            shifted.append(z.unsqueeze(0))
        return network_values(g, torch.cat(shifted) if len(shifted) > 1 else shifted[0])  # (S, B, D) inputs
    first, rest = split
    at_z = first(z)  # (B, width): W z + b
    step = functional.linear(delta, first.weight)  # (K, B, width): W δ
    signs = z.new_tensor([1.0, -1.0]).reshape(2, 1, 1, 1)
    hidden = torch.addcmul(at_z, signs, step).flatten(0, 1) if antithetic else at_z + step
    values = network_values(rest, hidden)  # (S - centre, B)
    return torch.cat([values, network_values(rest, at_z).unsqueeze(0)]) if centre else values


def smoothed_value(
    g: nn.Module | torch.nn.Module,
    x: torch.Tensor,
    t: torch.Tensor | None,
    smoothing: Smoothing,
    *,
    antithetic: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Monte Carlo estimate ``(B,)`` of f(x, t) from N evaluations of g per point (:func:`shifted_values`).

    Args:
        g: network ``(n, D) -> (n, 1)`` or ``(n,)``.
        x: ``(B, d)`` points; t: ``(B,)`` times or None.
        antithetic: N/2 pairs g(z ± δ) (N even) instead of N independent draws.
    """
    check_points(x, t)
    z = network_input(x, t)
    count = smoothing.pairs() if antithetic else smoothing.samples
    noise = gaussian_noise(count, x, t, smoothing, generator)
    return shifted_values(g, z, noise, antithetic=antithetic).mean(0)
