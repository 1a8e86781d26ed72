"""A trained solution saved in the Hugging Face layout and loaded back with its problem, to evaluate u and ∇u.

``model/`` (in a run directory, or copied anywhere) holds ``config.json`` (the network's sizes and, under
``"extra"``, the problem and the dtype) and ``model.safetensors``. :func:`load_solution` needs nothing else.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from papers_common import MLP, InputError, load_state_dict, pretrained_extra
from pinn_linf.derivatives import Fields, fields
from pinn_linf.problems import HJBProblem, problem_from_description

MODEL_DIR = "model"


def save_solution(net: MLP, problem: HJBProblem, folder: str | os.PathLike[str]) -> Path:
    """Write ``net`` and the description of ``problem`` to ``folder``; returns the folder."""
    dtype = str(next(net.parameters()).dtype).removeprefix("torch.")
    return net.save_pretrained(folder, extra={"problem": problem.describe(), "dtype": dtype})


@dataclass
class Solution:
    """A trained network and the problem it solves."""

    net: MLP
    problem: HJBProblem

    def _inputs(self, x: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
        like = next(self.net.parameters())
        x = torch.as_tensor(x, dtype=like.dtype, device=like.device)
        if x.dim() != 2 or x.shape[1] != self.problem.dim:
            raise InputError(f"x must have shape (points, {self.problem.dim}), got {tuple(x.shape)}")
        t = torch.as_tensor(t, dtype=like.dtype, device=like.device).expand(x.shape[0])
        return torch.cat([x, t.unsqueeze(1)], dim=1)

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
        """``(B,)`` u(x, t) for ``x`` ``(B, d)`` and ``t`` ``(B,)`` or one time."""
        return self.net(self._inputs(x, t)).squeeze(-1)

    def fields(self, x: torch.Tensor, t: torch.Tensor | float) -> Fields:
        """u, ∇_x u, ∂_t u and Δ_x u at the points (detached)."""
        with torch.enable_grad():
            found = fields(self.net, self._inputs(x, t), self.problem.dim)
        return Fields(*(v.detach() for v in (found.u, found.grad, found.dt, found.laplacian)))


def load_solution(path: str | os.PathLike[str]) -> Solution:
    """Load a ``model/`` folder (or a run directory that contains one)."""
    folder = Path(path)
    if (folder / MODEL_DIR / "config.json").is_file():
        folder = folder / MODEL_DIR
    net = MLP.from_pretrained(folder).eval()
    extra = pretrained_extra(folder)
    if "problem" not in extra:
        raise InputError(f"{folder}: config.json records no problem (not saved by pinn-linf)")
    dtype = getattr(torch, str(extra.get("dtype", "float32")), None)
    if not isinstance(dtype, torch.dtype):
        raise InputError(f"{folder}: config.json records an unknown dtype {extra.get('dtype')!r}")
    if dtype != torch.float32:  # from_pretrained builds float32 parameters: read the stored values again
        net = net.to(dtype)
        net.load_state_dict(load_state_dict(folder / "model.safetensors"))
    return Solution(net, problem_from_description(extra["problem"]))
