"""house-kge: HousE knowledge-graph embeddings (Li et al., "HousE: Knowledge Graph Embedding with Householder
Parameterization", ICML 2022).

Entities are split into k-dimensional blocks; each relation rotates them with a product of Householder
reflections and may rescale them with Householder projections. This package provides the model and its variants,
RotatE as the in-package baseline, vectorised training with self-adversarial negative sampling, filtered 1-N
evaluation, data loading in the RotatE-toolkit layout, trained models saved as one folder with their vocabulary,
and a PyKEEN-compatible interaction.
"""

from importlib.metadata import PackageNotFoundError, version

from house_kge.data import KnowledgeGraph, load_dataset, load_directory, subsampling_weights
from house_kge.evaluation import countries_auc_pr, evaluate, filtered_ranks, rank_metrics
from house_kge.householder import (
    householder_project,
    householder_reflect,
    projection_chain,
    reflection_chain,
)
from house_kge.models import VARIANTS, BlockModel, HousE, HousEConfig, Operators, RotatE, RotatEConfig
from house_kge.sampling import AnswerIndex, sample_negatives
from house_kge.saved import load_trained, save_trained
from house_kge.scoring import distance_to_all, distance_to_candidates
from house_kge.train import TrainConfig, TrainResult, adversarial_loss, learning_rate, sized_for, train

try:
    __version__ = version("house-kge")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0"

__all__ = [
    "VARIANTS",
    "AnswerIndex",
    "BlockModel",
    "HousE",
    "HousEConfig",
    "KnowledgeGraph",
    "Operators",
    "RotatE",
    "RotatEConfig",
    "TrainConfig",
    "TrainResult",
    "__version__",
    "adversarial_loss",
    "countries_auc_pr",
    "distance_to_all",
    "distance_to_candidates",
    "evaluate",
    "filtered_ranks",
    "householder_project",
    "householder_reflect",
    "learning_rate",
    "load_dataset",
    "load_directory",
    "load_trained",
    "projection_chain",
    "rank_metrics",
    "reflection_chain",
    "sample_negatives",
    "save_trained",
    "sized_for",
    "subsampling_weights",
    "train",
]
