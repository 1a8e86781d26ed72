"""pinn-linf: L∞ (adversarial) training of physics-informed networks for high-dimensional HJB equations.

Wang, Li, He and Wang (NeurIPS 2022) prove that for a class of Hamilton–Jacobi–Bellman equations a small L2
physics-informed loss does not imply a small error (stability needs L^p with p growing with d), and train on the
L∞ loss instead by moving the collocation points toward the largest residual (sign-gradient ascent) before each
optimiser step. This package provides the HJB problems with exact or float64 Monte Carlo references, exact
derivatives, the L2, L^p and adversarial losses, the paper's error metrics, and a resumable trainer.
"""

from importlib.metadata import PackageNotFoundError, version

from pinn_linf.adversarial import Ascent, sign_ascent
from pinn_linf.derivatives import METHODS, Fields, Method, fields
from pinn_linf.losses import KINDS, LossConfig, LossTerms, adversarial_batch, physics_loss, squared_norm
from pinn_linf.metrics import max_residual, relative_errors
from pinn_linf.problems import HJBLQG, PROBLEMS, HJBLin, HJBProblem, make_problem, problem_from_description
from pinn_linf.reference import cached_test_set, make_test_set
from pinn_linf.solution import Solution, load_solution, save_solution
from pinn_linf.train import TrainConfig, TrainingDiverged, TrainResult, evaluate, train

try:
    __version__ = version("pinn-linf")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0"

__all__ = [
    "HJBLQG",
    "KINDS",
    "METHODS",
    "PROBLEMS",
    "Ascent",
    "Fields",
    "HJBLin",
    "HJBProblem",
    "LossConfig",
    "LossTerms",
    "Method",
    "Solution",
    "TrainConfig",
    "TrainResult",
    "TrainingDiverged",
    "__version__",
    "adversarial_batch",
    "cached_test_set",
    "evaluate",
    "fields",
    "load_solution",
    "make_problem",
    "make_test_set",
    "max_residual",
    "physics_loss",
    "problem_from_description",
    "relative_errors",
    "save_solution",
    "sign_ascent",
    "squared_norm",
    "train",
]
