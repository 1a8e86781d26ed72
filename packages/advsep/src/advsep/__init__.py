"""advsep: adversarial noises of (nearly) random networks are linearly separable (Zhang, Yu, Lu, He; AISTATS 2023).

Noise generators for any classifier (FGSM, raw and L2-normalised gradients, PGD), the theorem's two-layer network
and deeper ones, a trainer that moves a network from its initialisation, linear probes, and the experiments and
sweeps of the paper.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from advsep.data import (
    Dataset,
    Standardization,
    digits,
    gaussian,
    load_dataset,
    load_npz,
    load_torchvision,
    mnist1d,
    standardize,
)
from advsep.experiment import (
    AXES,
    Outcome,
    Setup,
    clean_probe,
    experiment,
    run_experiment,
    shuffled_labels,
    sweep,
)
from advsep.models import (
    CNNClassifier,
    CNNConfig,
    MLPClassifier,
    MLPConfig,
    NTKLinear,
    load_classifier,
    make_classifier,
)
from advsep.noise import METHODS, generate_noise, input_gradient
from advsep.probe import BACKENDS, ProbeResult, linear_probe
from advsep.train import TrainReport, accuracy, train_classifier

try:
    __version__ = version("advsep")
except PackageNotFoundError:  # a source tree that is not installed
    __version__ = "0.0.0"

__all__ = [
    "AXES",
    "BACKENDS",
    "METHODS",
    "CNNClassifier",
    "CNNConfig",
    "Dataset",
    "MLPClassifier",
    "MLPConfig",
    "NTKLinear",
    "Outcome",
    "ProbeResult",
    "Setup",
    "Standardization",
    "TrainReport",
    "__version__",
    "accuracy",
    "clean_probe",
    "digits",
    "experiment",
    "gaussian",
    "generate_noise",
    "input_gradient",
    "linear_probe",
    "load_classifier",
    "load_dataset",
    "load_npz",
    "load_torchvision",
    "make_classifier",
    "mnist1d",
    "run_experiment",
    "shuffled_labels",
    "standardize",
    "sweep",
    "train_classifier",
]
