"""graphormer2: Graphormer-V2 (arXiv 2203.04810) for 2D molecular graphs and 3D atomic systems in pure PyTorch.

Data flows one way: RDKit molecules -> :mod:`~graphormer2.features` (OGB-style ids) -> :mod:`~graphormer2.paths`
(shortest paths and path edges) -> :mod:`~graphormer2.collate` (padded :class:`GraphBatch`) -> :class:`Graphormer`
(or the :class:`GIN` baseline) -> :func:`fit` -> :func:`load_predictor` (predictions in the target's units). The
3D side: :class:`AtomsItem` / :func:`collate_atoms` (with :func:`periodic_item` for OC20-style cells) ->
:class:`Graphormer3D`. Interop: :mod:`~graphormer2.pyg` (PyTorch Geometric ``Data`` in OGB's layout, both ways) and
:mod:`~graphormer2.ogb` (PCQM4Mv2's raw files, streamed), :mod:`~graphormer2.oc20` (OC20 LMDB files), :mod:`~graphormer2.fairseq_checkpoint` (official fairseq checkpoints, both ways).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from graphormer2.atoms import AtomsBatch, AtomsItem, Standardisation, collate_atoms, read_sdf_3d
from graphormer2.collate import GraphBatch, GraphItem, collate, preprocess
from graphormer2.datasets import (
    MoleculeDataset,
    from_csv,
    from_mols,
    from_sdf,
    from_smiles,
    sdf_properties_task,
    split,
    tpsa_task,
    wiener_task,
)
from graphormer2.fairseq_checkpoint import FairseqImport, from_fairseq, load_fairseq, to_fairseq
from graphormer2.features import MolGraph, mol_to_graph, smiles_to_graph
from graphormer2.gin import GIN, GINConfig
from graphormer2.model import Graphormer, GraphormerConfig
from graphormer2.model3d import Graphormer3D, Graphormer3DConfig
from graphormer2.oc20 import OC20Dataset, OC20Record, read_oc20_lmdb
from graphormer2.ogb import PCQM4Mv2Part, load_pcqm4mv2, read_pcqm4mv2, read_split_dict
from graphormer2.pbc import periodic_images, periodic_item
from graphormer2.predictor import Predictions, Predictor, load_predictor
from graphormer2.pyg import PygDataset, dataset_from_pyg, from_pyg, ogb_data_from_smiles, to_pyg
from graphormer2.relaxation import RelaxationTask, relax_molecule, relaxation_task
from graphormer2.train import (
    ClassificationObjective,
    FitResult,
    ModelLossObjective,
    RegressionObjective,
    TrainConfig,
    atoms_inputs,
    fit,
    learning_rate,
)

try:
    __version__ = version("graphormer2")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

__all__ = [
    "GIN",
    "AtomsBatch",
    "AtomsItem",
    "ClassificationObjective",
    "FairseqImport",
    "FitResult",
    "GINConfig",
    "GraphBatch",
    "GraphItem",
    "Graphormer",
    "Graphormer3D",
    "Graphormer3DConfig",
    "GraphormerConfig",
    "ModelLossObjective",
    "MolGraph",
    "MoleculeDataset",
    "OC20Dataset",
    "OC20Record",
    "PCQM4Mv2Part",
    "Predictions",
    "Predictor",
    "PygDataset",
    "RegressionObjective",
    "RelaxationTask",
    "Standardisation",
    "TrainConfig",
    "__version__",
    "atoms_inputs",
    "collate",
    "collate_atoms",
    "dataset_from_pyg",
    "fit",
    "from_csv",
    "from_fairseq",
    "from_mols",
    "from_pyg",
    "from_sdf",
    "from_smiles",
    "learning_rate",
    "load_fairseq",
    "load_pcqm4mv2",
    "load_predictor",
    "mol_to_graph",
    "ogb_data_from_smiles",
    "periodic_images",
    "periodic_item",
    "preprocess",
    "read_oc20_lmdb",
    "read_pcqm4mv2",
    "read_sdf_3d",
    "read_split_dict",
    "relax_molecule",
    "relaxation_task",
    "sdf_properties_task",
    "smiles_to_graph",
    "split",
    "to_fairseq",
    "to_pyg",
    "tpsa_task",
    "wiener_task",
]
