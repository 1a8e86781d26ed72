"""A trained solution: the network together with everything that predicting and evaluating with it needs.

``train`` saves the final network of a run as ``<run>/model/``, a Hugging Face-style folder written by
:meth:`MLP.save_pretrained <papers_common.Pretrained.save_pretrained>`::

    config.json         the MLPConfig fields, "architectures": ["MLP"], and "extra":
                          pde        the problem (PDE.describe(): name, dimension, μ / c / T)
                          method     the derivative method trained with (smoothed f or raw g)
                          smoothing  σ_x, σ_t and N of the smoothed model at prediction time
                          test_set   how the run's test set was drawn (points, seed, Monte Carlo draws),
                                     when it can be drawn again; absent for a test set read from a file
    model.safetensors   the weights

The folder alone is enough for :func:`load_trained` (and ``pinn-stein evaluate``): copied anywhere, it predicts
and regenerates its test set without the run directory. Training checkpoints (``checkpoints/step-*``) and run
directories written before 0.2.0 load too, their settings read from the checkpoint's config.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from papers_common import MLP, InputError, Pretrained, load_checkpoint, pretrained_extra
from pinn_stein.derivatives import Method, check_method, model_value
from pinn_stein.pdes import PDE, pde_from_description
from pinn_stein.reference import TestSet, make_test_set
from pinn_stein.smoothing import Smoothing

LOG = logging.getLogger(__name__)
MODEL_DIR = "model"
"""The saved model's folder inside a run directory."""


def test_set_recipe(test: TestSet | None, pde: PDE) -> dict[str, Any] | None:
    """``test.meta`` when it says how to draw the same set again with :func:`make_test_set`, else None."""
    if test is None:
        return None
    meta = dict(test.meta)
    same_problem = {k: meta.get(k) for k in pde.describe()} == pde.describe()
    if not (same_problem and isinstance(meta.get("seed"), int) and isinstance(meta.get("points"), int)):
        return None
    return meta


def save_trained(
    g: Pretrained,
    directory: str | os.PathLike[str],
    *,
    pde: PDE,
    method: Method,
    smoothing: Smoothing,
    test: TestSet | None = None,
) -> Path:
    """Write ``g`` and its prediction settings (see the module docstring) into ``directory``; returns it."""
    extra: dict[str, Any] = {
        "pde": pde.describe(),
        "method": method,
        "smoothing": {
            "sigma_x": smoothing.sigma_x,
            "sigma_t": smoothing.sigma_t,
            "samples": smoothing.samples,
        },
    }
    recipe = test_set_recipe(test, pde)
    if recipe is not None:
        extra["test_set"] = recipe
    return g.save_pretrained(directory, extra=extra)


@dataclass
class TrainedModel:
    """A network with the problem and the settings it was trained with.

    Attributes:
        g: the network ``(n, pde.input_dim) -> (n, 1)``, inputs ``[x, t]`` (time last when the problem has one).
        pde: the problem it solves.
        method: the derivative method it was trained with; smoothed methods predict with f = E g(x + δ).
        smoothing: σ_x, σ_t and N of f at prediction time.
        test_recipe: how the run's test set was drawn (:func:`make_test_set` arguments), or None.
        source: the folder or checkpoint it was loaded from.
    """

    g: MLP
    pde: PDE
    method: Method
    smoothing: Smoothing
    test_recipe: dict[str, Any] | None
    source: Path

    @torch.no_grad()
    def predict(
        self, x: torch.Tensor, t: torch.Tensor | None = None, *, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """``(B,)`` u(x, t) of the trained model (Monte Carlo smoothed for smoothed methods)."""
        return model_value(self.g, x, t, method=self.method, smoothing=self.smoothing, generator=generator)

    def regenerate_test_set(self) -> TestSet:
        """The run's test set drawn again from its recipe (exact values, or Cole–Hopf Monte Carlo for HJB)."""
        if self.test_recipe is None:
            raise InputError(
                f"{self.source}: no test-set recipe is stored with this model; give --test-set FILE"
            )
        recipe = self.test_recipe
        LOG.info(
            "drawing the test set again: %s points, seed %s%s",
            recipe["points"],
            recipe["seed"],
            f", {recipe['monte_carlo_samples']} Monte Carlo draws each"
            if "monte_carlo_samples" in recipe
            else "",
        )
        return make_test_set(
            self.pde,
            recipe["points"],
            seed=recipe["seed"],
            samples=recipe.get("monte_carlo_samples", 2**14),
        )


def model_location(path: str | os.PathLike[str]) -> tuple[Path, Path | None]:
    """``(what to load, the run directory or None)`` for a run directory, a saved model folder or a checkpoint.

    A run directory resolves to its ``model/`` folder, or to its ``checkpoints/`` when it has no such folder (runs
    written before 0.2.0).
    """
    given = Path(path)
    if given.is_dir():
        if (given / MODEL_DIR / "model.safetensors").is_file():
            return given / MODEL_DIR, given
        if (given / "checkpoints").is_dir():
            return given / "checkpoints", given
        if (given / "model.safetensors").is_file():
            parent = given.parent
            return given, parent if given.name == MODEL_DIR and (parent / "checkpoints").is_dir() else None
        if given.name == "checkpoints":
            return given, given.parent
        return given, None
    if given.name in ("config.json", "model.safetensors"):
        return model_location(given.parent)
    if given.parent.name == "checkpoints":
        return given, given.parent.parent
    return given, None


def load_trained(
    path: str | os.PathLike[str], *, map_location: str | torch.device = "cpu", eval_samples: int | None = None
) -> TrainedModel:
    """Load a :class:`TrainedModel` from a saved model folder, a run directory or a training checkpoint.

    Args:
        path: see :func:`model_location`.
        map_location: device of the network.
        eval_samples: N of the smoothed model at prediction time (default: the one the run evaluated with).

    Raises:
        InputError: nothing loadable is there, or it was not written by ``pinn-stein train``.
    """
    location, _ = model_location(path)
    if (location / "model.safetensors").is_file():
        extra = pretrained_extra(location)
        missing = {"pde", "method", "smoothing"} - extra.keys()
        if missing:
            raise InputError(
                f"{location}: not a model saved by `pinn-stein train` (extra lacks {sorted(missing)})"
            )
        pde_description, method, sigmas = extra["pde"], extra["method"], extra["smoothing"]
        sigma_x, sigma_t, samples = sigmas["sigma_x"], sigmas["sigma_t"], sigmas["samples"]
        recipe = extra.get("test_set")
    else:
        config = load_checkpoint(location).config
        if "train" not in config or "pde" not in config:
            raise InputError(f"{location}: not a checkpoint written by `pinn-stein train`")
        settings = config["train"]
        pde_description, method = config["pde"], settings["method"]
        sigma_x, sigma_t, samples = settings["sigma_x"], settings["sigma_t"], settings["eval_samples"]
        recipe = None
    check_method(method)
    g = MLP.from_pretrained(location, map_location=map_location)
    g.eval()
    smoothing = Smoothing(sigma_x, sigma_t, samples if eval_samples is None else eval_samples)
    return TrainedModel(g, pde_from_description(pde_description), method, smoothing, recipe, location)
