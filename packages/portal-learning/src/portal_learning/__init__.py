"""portal_learning: chemical–protein interaction prediction on unseen protein families (Portal Learning; Cai, Xie et
al., 2021).

Interaction records from CSV/TSV exports, the four-way out-of-cluster split (OOD-train, IID-dev, OOD-dev,
OOD-test), an offline benchmark of synthetic protein families with real molecules, global metrics, a linear
baseline and the benchmark's bilinear pocket reference, and the interaction model (GIN or fingerprint MLP, protein
CNN, attentive bilinear head), step-wise transfer (masked-residue pretraining, binding-site contacts), and training
by ERM or out-of-cluster meta-learning (FOMAML, MAML) with stress model selection.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from portal_learning.baselines import composition, linear_baseline, pocket_reference
from portal_learning.featurize import GraphBatch, batch_graphs, mol_graph, residue_tokens
from portal_learning.meta import MODES, FamilyTasks, MetaConfig, meta_gradient, meta_step
from portal_learning.metrics import average_precision, classification_metrics, f1, minibatch_average, roc_auc
from portal_learning.model import (
    GIN,
    CPIConfig,
    CPIModel,
    ProteinCNN,
    chemical_encoder,
    protein_encoder,
    train_mode,
)
from portal_learning.records import (
    Interaction,
    ReadResult,
    read_interactions,
    read_sequences,
    write_interactions,
)
from portal_learning.splits import SPLITS, Split, SplitSettings, cluster_sequences, four_way_split
from portal_learning.synthetic import Benchmark, SynthSettings, generate, morgan_fingerprints, nci_smiles
from portal_learning.train import METHODS, SELECTIONS, TrainConfig, TrainResult, compare_runs, train_model
from portal_learning.transfer import (
    FREEZE_GROUPS,
    ProteinMLM,
    StructureModel,
    freeze,
    initialise_from,
    pretrain_protein,
    read_contacts,
    train_structure,
)

try:
    __version__ = version("portal-learning")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

__all__ = [
    "FREEZE_GROUPS",
    "GIN",
    "METHODS",
    "MODES",
    "SELECTIONS",
    "SPLITS",
    "Benchmark",
    "CPIConfig",
    "CPIModel",
    "FamilyTasks",
    "GraphBatch",
    "Interaction",
    "MetaConfig",
    "ProteinCNN",
    "ProteinMLM",
    "ReadResult",
    "Split",
    "SplitSettings",
    "StructureModel",
    "SynthSettings",
    "TrainConfig",
    "TrainResult",
    "__version__",
    "average_precision",
    "batch_graphs",
    "chemical_encoder",
    "classification_metrics",
    "cluster_sequences",
    "compare_runs",
    "composition",
    "f1",
    "four_way_split",
    "freeze",
    "generate",
    "initialise_from",
    "linear_baseline",
    "meta_gradient",
    "meta_step",
    "minibatch_average",
    "mol_graph",
    "morgan_fingerprints",
    "nci_smiles",
    "pocket_reference",
    "pretrain_protein",
    "protein_encoder",
    "read_contacts",
    "read_interactions",
    "read_sequences",
    "residue_tokens",
    "roc_auc",
    "train_mode",
    "train_model",
    "train_structure",
    "write_interactions",
]
