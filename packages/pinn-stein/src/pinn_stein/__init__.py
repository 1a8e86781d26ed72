"""pinn-stein: PINNs without stacked back-propagation (He et al., AISTATS 2023).

A Gaussian-smoothed network f(x, t) = E g(x + δ_x, t + δ_t) has derivatives that are expectations of g times
polynomials of δ (Stein's identity), so a PDE residual needs forward passes only. This package provides the
estimators (vanilla and variance-reduced), exact autograd baselines (stacked back-propagation, Hessian-vector
products, forward Laplacian), the paper's PDE benchmarks with exact or Monte Carlo references, and a trainer.
"""

from importlib.metadata import PackageNotFoundError, version

from papers_common import MLP, MLPConfig, TestSet, cole_hopf
from pinn_stein.derivatives import METHODS, SMOOTHED_METHODS, Method, derivatives, model_value
from pinn_stein.errors import TrainingDiverged
from pinn_stein.exact import exact_derivatives
from pinn_stein.fields import Derivatives
from pinn_stein.loss import physics_loss, sample_batch
from pinn_stein.pdes import (
    HJBLQG,
    PDE,
    PROBLEMS,
    Heat,
    HJBLin,
    Points,
    Poisson,
    make_pde,
    pde_from_description,
)
from pinn_stein.reference import cached_test_set, make_test_set
from pinn_stein.smoothing import Smoothing, smoothed_value
from pinn_stein.stein import stein_vanilla, stein_variance_reduced
from pinn_stein.timing import iteration_seconds
from pinn_stein.train import TrainConfig, TrainResult, evaluate, train
from pinn_stein.trained import TrainedModel, load_trained, save_trained

try:
    __version__ = version("pinn-stein")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0"

__all__ = [
    "HJBLQG",
    "METHODS",
    "MLP",
    "PDE",
    "PROBLEMS",
    "SMOOTHED_METHODS",
    "Derivatives",
    "HJBLin",
    "Heat",
    "MLPConfig",
    "Method",
    "Points",
    "Poisson",
    "Smoothing",
    "TestSet",
    "TrainConfig",
    "TrainResult",
    "TrainedModel",
    "TrainingDiverged",
    "__version__",
    "cached_test_set",
    "cole_hopf",
    "derivatives",
    "evaluate",
    "exact_derivatives",
    "iteration_seconds",
    "load_trained",
    "make_pde",
    "make_test_set",
    "model_value",
    "pde_from_description",
    "physics_loss",
    "sample_batch",
    "save_trained",
    "smoothed_value",
    "stein_vanilla",
    "stein_variance_reduced",
    "train",
]
