"""portal_learning: chemical–protein interaction prediction on unseen protein families (Portal Learning; Cai, Xie et
al., 2021).

Interaction records from CSV/TSV exports, the four-way out-of-cluster split (OOD-train, IID-dev, OOD-dev,
OOD-test), an offline benchmark of synthetic protein families with real molecules, global metrics, a linear
baseline and the benchmark's bilinear pocket reference, and the interaction model (GIN or fingerprint MLP, protein
CNN, attentive bilinear head) with ERM training and stress model selection.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from portal_learning.baselines import composition, linear_baseline, pocket_reference
from portal_learning.featurize import GraphBatch, batch_graphs, mol_graph, residue_tokens
from portal_learning.metrics import average_precision, classification_metrics, f1, minibatch_average, roc_auc
from portal_learning.model import GIN, CPIConfig, CPIModel, ProteinCNN
from portal_learning.records import Interaction, ReadResult, read_interactions, write_interactions
from portal_learning.splits import SPLITS, Split, SplitSettings, cluster_sequences, four_way_split
from portal_learning.synthetic import Benchmark, SynthSettings, generate, morgan_fingerprints, nci_smiles
from portal_learning.train import SELECTIONS, TrainConfig, TrainResult, compare_runs, train_erm

try:
    __version__ = version("portal-learning")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

__all__ = [
    "GIN",
    "SELECTIONS",
    "SPLITS",
    "Benchmark",
    "CPIConfig",
    "CPIModel",
    "GraphBatch",
    "Interaction",
    "ProteinCNN",
    "ReadResult",
    "Split",
    "SplitSettings",
    "SynthSettings",
    "TrainConfig",
    "TrainResult",
    "__version__",
    "average_precision",
    "batch_graphs",
    "classification_metrics",
    "cluster_sequences",
    "compare_runs",
    "composition",
    "f1",
    "four_way_split",
    "generate",
    "linear_baseline",
    "minibatch_average",
    "mol_graph",
    "morgan_fingerprints",
    "nci_smiles",
    "pocket_reference",
    "read_interactions",
    "residue_tokens",
    "roc_auc",
    "train_erm",
    "write_interactions",
]
