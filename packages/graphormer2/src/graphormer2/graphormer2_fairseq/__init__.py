"""A fairseq plugin backed by graphormer2: ``fairseq-train --user-dir $(graphormer2 fairseq-user-dir) ...``.

fairseq imports this folder as the top-level module ``graphormer2_fairseq``, which registers

- the task ``graphormer2_graph_prediction``: ``--graph-dataset`` is a dataset file of ``graphormer2 preprocess``, split into
  ``train`` / ``valid`` / ``test`` by ``--split-fractions`` and ``--split-seed`` exactly as ``graphormer2 train``
  splits it (:func:`graphormer2.split`); batches are graphormer2's :func:`~graphormer2.collate`;
- the model ``graphormer2`` (:class:`graphormer2.Graphormer`), with the official architecture arguments
  (``--encoder-layers``, ``--encoder-embed-dim``, ``--encoder-ffn-embed-dim``, ``--encoder-attention-heads``,
  ``--pre-layernorm``, ``--dropout``, ``--attention-dropout``, ``--act-dropout``, and the table sizes) and the
  architectures ``graphormer2_slim``, ``graphormer2_base``, ``graphormer2_large`` (the presets of
  :meth:`graphormer2.GraphormerConfig.preset`);
- the criterion ``graphormer2_l1``: L1 between the raw outputs and the observed (non-NaN) targets, as the official
  ``l1_loss`` (the official pipeline regresses raw targets);
- for 3D systems, the task ``graphormer2_is2re`` (OC20 IS2RE LMDB files through :class:`graphormer2.OC20Dataset`,
  ``--train-lmdb`` / ``--valid-lmdb`` / ``--test-lmdb``, read only with ``--trust-pickle``), the model
  ``graphormer2_3d`` (:class:`graphormer2.Graphormer3D` with the official 3D arguments ``--layers``, ``--blocks``,
  ``--embed-dim``, ``--ffn-embed-dim``, ``--attention-heads``, ``--num-kernel``, ...; architecture
  ``graphormer2_3d_base``) and the criterion ``graphormer2_3d_loss`` (:meth:`graphormer2.Graphormer3D.loss`: energy
  L1 plus the Δpos loss, its weight decaying over ``--max-update``).

The 2D model's state dict uses the official parameter names and layouts
(:func:`graphormer2.fairseq_checkpoint.official_state_dict`), so the checkpoints fairseq writes are official-format
checkpoints: ``graphormer2 convert-fairseq`` and the official code read them, and fairseq reads official ones.
fairseq reads the task's dataclass fields as types, so this module does not postpone annotations.
"""

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from fairseq.criterions import FairseqCriterion, register_criterion
from fairseq.data import FairseqDataset
from fairseq.dataclass import FairseqDataclass
from fairseq.logging import metrics
from fairseq.models import BaseFairseqModel, register_model, register_model_architecture
from fairseq.tasks import FairseqTask, register_task
from omegaconf import II

from graphormer2.atoms import collate_atoms
from graphormer2.collate import collate
from graphormer2.datasets import MoleculeDataset, split
from graphormer2.fairseq_checkpoint import UNUSED_OFFICIAL, graphormer2_state_dict, official_state_dict
from graphormer2.model import PRESETS, Graphormer, GraphormerConfig
from graphormer2.model3d import Graphormer3D, Graphormer3DConfig
from graphormer2.oc20 import OC20Dataset
from papers_common import InputError

SPLITS = ("train", "valid", "test")


@dataclass
class GraphPredictionConfig(FairseqDataclass):
    """Settings of the ``graphormer2_graph_prediction`` task."""

    graph_dataset: str = field(
        default="", metadata={"help": "a dataset file written by `graphormer2 preprocess`"}
    )
    split_fractions: str = field(default="0.8,0.1,0.1", metadata={"help": "train,valid,test fractions"})
    split_seed: int = field(default=0, metadata={"help": "seed of the split (graphormer2.split)"})


class GraphDataset(FairseqDataset):
    """The molecules of one split; ``collater`` gives ``{"net_input": {"batched_data": GraphBatch}, "target": (B, C),
    "nsamples": B}``."""

    def __init__(self, dataset: MoleculeDataset, indices: list[int]) -> None:
        self.dataset, self.indices = dataset, indices
        self.atoms = np.array([int(dataset[i].x.shape[0]) for i in indices], dtype=np.int64)

    def __getitem__(self, index: int) -> Any:
        return self.dataset[self.indices[index]]

    def __len__(self) -> int:
        return len(self.indices)

    def collater(self, samples: list[Any]) -> dict[str, Any]:
        if not samples:
            return {}
        batch = collate(samples)
        return {"net_input": {"batched_data": batch}, "target": batch.y, "nsamples": len(samples)}

    def num_tokens(self, index: int) -> int:
        return int(self.atoms[index])

    def size(self, index: int) -> int:
        return int(self.atoms[index])

    def num_tokens_vec(self, indices: np.ndarray) -> np.ndarray:
        return self.atoms[indices]

    def ordered_indices(self) -> np.ndarray:
        return np.arange(len(self))


class GraphTask(FairseqTask):
    """A task without token dictionaries or length limits, built from its config alone."""

    @classmethod
    def setup_task(cls, cfg: FairseqDataclass, **kwargs: Any) -> "GraphTask":
        return cls(cfg)

    def max_positions(self) -> None:
        return None

    @property
    def source_dictionary(self) -> None:
        return None

    @property
    def target_dictionary(self) -> None:
        return None


def add_arguments(parser: Any, table: dict[str, tuple[str, type, str]]) -> None:
    """``--name`` options for an ``official name: (config field, type, help)`` table."""
    for name, (_, kind, text) in table.items():
        parser.add_argument("--" + name.replace("_", "-"), type=kind, metavar="N", help=text)


@register_task("graphormer2_graph_prediction", dataclass=GraphPredictionConfig)
class GraphPredictionTask(GraphTask):
    """Graph-level prediction on a graphormer2 dataset file (module docstring)."""

    def __init__(self, cfg: GraphPredictionConfig) -> None:
        super().__init__(cfg)
        path = Path(cfg.graph_dataset)
        if not path.is_file():
            raise InputError(
                f"--graph-dataset {path}: no such file (write one with `graphormer2 preprocess`)"
            )
        try:
            fractions = tuple(float(v) for v in cfg.split_fractions.split(","))
        except ValueError:
            raise InputError(
                f"--split-fractions {cfg.split_fractions!r}: three comma-separated numbers"
            ) from None
        if len(fractions) != 3 or min(fractions) < 0 or not math.isclose(sum(fractions), 1.0, abs_tol=1e-6):
            raise InputError(f"--split-fractions {cfg.split_fractions!r}: three fractions >= 0 that sum to 1")
        self.molecules = MoleculeDataset.load(path)
        parts = split(self.molecules, fractions, seed=cfg.split_seed)
        self.parts = {name: list(part.indices) for name, part in zip(SPLITS, parts, strict=True)}

    @property
    def num_classes(self) -> int:
        """Targets per molecule, C."""
        return len(self.molecules.target_names)

    def load_dataset(self, split: str, combine: bool = False, **kwargs: Any) -> None:
        if split not in self.parts:
            raise InputError(f"split {split!r}: this task has {', '.join(SPLITS)}")
        self.datasets[split] = GraphDataset(self.molecules, self.parts[split])


ARGUMENTS = {
    # official argument name: (GraphormerConfig field, type, help)
    "encoder_layers": ("num_layers", int, "encoder layers"),
    "encoder_embed_dim": ("hidden_dim", int, "D"),
    "encoder_ffn_embed_dim": ("ffn_dim", int, "feed-forward width"),
    "encoder_attention_heads": ("num_heads", int, "attention heads"),
    "dropout": ("dropout", float, "dropout"),
    "attention_dropout": ("attention_dropout", float, "attention dropout"),
    "act_dropout": ("activation_dropout", float, "dropout after the feed-forward activation"),
    "num_atoms": ("num_atoms", int, "atom feature ids"),
    "num_edges": ("num_edges", int, "bond feature ids"),
    "num_in_degree": ("num_degree", int, "degree ids"),
    "num_out_degree": ("num_degree", int, "degree ids (equal to --num-in-degree)"),
    "num_spatial": ("num_spatial", int, "shortest-path-distance ids"),
    "num_edge_dis": ("num_edge_dis", int, "hop matrices"),
    "multi_hop_max_dist": ("multi_hop_max_dist", int, "hops of the edge encoding"),
    "edge_type": ("edge_type", str, "multi_hop or single_hop"),
}


@register_model("graphormer2")
class GraphormerModel(BaseFairseqModel):
    """:class:`graphormer2.Graphormer` as a fairseq model; its state dict has the official names and layouts."""

    def __init__(self, graphormer: Graphormer) -> None:
        super().__init__()
        self.graphormer = graphormer

    @staticmethod
    def add_args(parser: Any) -> None:
        add_arguments(parser, ARGUMENTS)
        parser.add_argument(
            "--pre-layernorm", action="store_true", help="Pre-LN (Graphormer V1) instead of Post-LN"
        )

    @classmethod
    def build_model(cls, args: Any, task: GraphPredictionTask) -> "GraphormerModel":
        if args.num_in_degree != args.num_out_degree:
            raise InputError(
                "--num-in-degree and --num-out-degree must be equal (graphormer2 has one degree table)"
            )
        fields = {target: kind(getattr(args, name)) for name, (target, kind, _) in ARGUMENTS.items()}
        config = GraphormerConfig(**fields, norm_first=bool(args.pre_layernorm), num_classes=task.num_classes)
        return cls(Graphormer(config))

    def forward(self, batched_data: Any) -> torch.Tensor:
        """``(B, C)`` raw outputs."""
        return self.graphormer(batched_data)

    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, torch.Tensor]:
        """The official state dict (names and layouts of microsoft/Graphormer)."""
        return official_state_dict(self.graphormer)

    def load_state_dict(
        self, state_dict: Any, strict: bool = True, model_cfg: Any = None, args: Any = None
    ) -> Any:
        """Load an official state dict (tensors the official forward never reads are ignored)."""
        unused = {u.name for u in UNUSED_OFFICIAL}
        used = {name: tensor for name, tensor in state_dict.items() if name not in unused}
        return self.graphormer.load_state_dict(
            graphormer2_state_dict(used, self.graphormer.config), strict=strict
        )


def _architecture(preset: str) -> Any:
    def defaults(args: Any) -> None:
        config = GraphormerConfig.preset(preset)
        for name, (target, _, _) in ARGUMENTS.items():
            if getattr(args, name, None) is None:
                setattr(args, name, getattr(config, target))
        args.pre_layernorm = getattr(args, "pre_layernorm", False)

    return defaults


for _preset in PRESETS:
    register_model_architecture("graphormer2", f"graphormer2_{_preset}")(_architecture(_preset))


@register_criterion("graphormer2_l1", dataclass=FairseqDataclass)
class L1Criterion(FairseqCriterion):
    """Mean absolute error over the observed targets, on raw outputs."""

    def forward(self, model: GraphormerModel, sample: dict[str, Any], reduce: bool = True) -> tuple:
        output = model(**sample["net_input"])
        target = sample["target"].to(output)
        observed = ~torch.isnan(target)
        errors = (output - target.nan_to_num(0.0)).abs() * observed
        count = int(observed.sum())
        loss = errors.sum()
        return loss, count, {"loss": loss.detach(), "sample_size": count, "nsentences": sample["nsamples"],
                             "ntokens": count}  # fmt: skip

    @staticmethod
    def reduce_metrics(logging_outputs: list[dict[str, Any]]) -> None:
        total = sum(float(log.get("loss", 0)) for log in logging_outputs)
        size = sum(log.get("sample_size", 0) for log in logging_outputs)
        metrics.log_scalar("loss", total / max(size, 1), size, round=6)

    @staticmethod
    def logging_outputs_can_be_summed() -> bool:
        return True


@dataclass
class IS2REConfig(FairseqDataclass):
    """Settings of the ``graphormer2_is2re`` task."""

    train_lmdb: str = field(
        default="", metadata={"help": "OC20 IS2RE LMDB file or folder of the train split"}
    )
    valid_lmdb: str = field(
        default="", metadata={"help": "OC20 IS2RE LMDB file or folder of the valid split"}
    )
    test_lmdb: str = field(default="", metadata={"help": "OC20 IS2RE LMDB file or folder of the test split"})
    trust_pickle: bool = field(
        default=False,
        metadata={
            "help": "read the LMDB records, which are pickles (unpickling can run code: trusted files only)"
        },
    )


class SystemsDataset(FairseqDataset):
    """The systems of one OC20 LMDB; ``collater`` gives ``{"net_input": {"atoms", "tags", "pos", "real_mask"},
    "batch": AtomsBatch, "nsamples": B}``."""

    def __init__(self, systems: OC20Dataset) -> None:
        self.systems = systems

    def __getitem__(self, index: int) -> Any:
        return self.systems[index]

    def __len__(self) -> int:
        return len(self.systems)

    def collater(self, samples: list[Any]) -> dict[str, Any]:
        if not samples:
            return {}
        batch = collate_atoms(samples)
        inputs = {"atoms": batch.atoms, "tags": batch.tags, "pos": batch.pos, "real_mask": batch.real_mask}
        return {"net_input": inputs, "batch": batch, "nsamples": len(samples)}

    def num_tokens(self, index: int) -> int:
        return 1

    def size(self, index: int) -> int:
        return 1

    def ordered_indices(self) -> np.ndarray:
        return np.arange(len(self))


@register_task("graphormer2_is2re", dataclass=IS2REConfig)
class IS2RETask(GraphTask):
    """Relaxed energy (and Δpos) from initial structures, on OC20 IS2RE LMDB files (module docstring)."""

    def __init__(self, cfg: IS2REConfig) -> None:
        super().__init__(cfg)
        self.paths = {"train": cfg.train_lmdb, "valid": cfg.valid_lmdb, "test": cfg.test_lmdb}

    def load_dataset(self, split: str, combine: bool = False, **kwargs: Any) -> None:
        path = self.paths.get(split)
        if not path:
            raise InputError(f"split {split!r}: give its LMDB with --{split}-lmdb")
        self.datasets[split] = SystemsDataset(
            OC20Dataset(path, task="is2re", trust_pickle=self.cfg.trust_pickle)
        )


ARGUMENTS_3D = {
    # official argument name: (Graphormer3DConfig field, type, help)
    "layers": ("layers", int, "distinct Pre-LN layers"),
    "blocks": ("blocks", int, "times the layer stack is applied"),
    "embed_dim": ("embed_dim", int, "D"),
    "ffn_embed_dim": ("ffn_embed_dim", int, "feed-forward width"),
    "attention_heads": ("attention_heads", int, "attention heads"),
    "num_kernel": ("num_kernel", int, "Gaussian distance kernels"),
    "input_dropout": ("input_dropout", float, "dropout on the node input"),
    "dropout": ("dropout", float, "dropout"),
    "attention_dropout": ("attention_dropout", float, "attention dropout"),
    "activation_dropout": ("activation_dropout", float, "dropout after the feed-forward activation"),
    "node_loss_weight": ("node_loss_weight", float, "initial weight of the Δpos loss"),
    "min_node_loss_weight": ("min_node_loss_weight", float, "final weight of the Δpos loss"),
}


@register_model("graphormer2_3d")
class Graphormer3DModel(BaseFairseqModel):
    """:class:`graphormer2.Graphormer3D` as a fairseq model (graphormer2's parameter names, under ``graphormer3d.``)."""

    def __init__(self, graphormer3d: Graphormer3D) -> None:
        super().__init__()
        self.graphormer3d = graphormer3d
        self.num_updates = 0

    @staticmethod
    def add_args(parser: Any) -> None:
        add_arguments(parser, ARGUMENTS_3D)

    @classmethod
    def build_model(cls, args: Any, task: IS2RETask) -> "Graphormer3DModel":
        fields = {target: kind(getattr(args, name)) for name, (target, kind, _) in ARGUMENTS_3D.items()}
        return cls(Graphormer3D(Graphormer3DConfig(**fields)))

    def forward(
        self, atoms: torch.Tensor, tags: torch.Tensor, pos: torch.Tensor, real_mask: torch.Tensor
    ) -> tuple:
        """Standardised energy ``(B,)`` and Δpos ``(B, N, 3)``."""
        return self.graphormer3d(atoms, tags, pos, real_mask)

    def set_num_updates(self, num_updates: int) -> None:
        self.num_updates = num_updates
        super().set_num_updates(num_updates)


@register_model_architecture("graphormer2_3d", "graphormer2_3d_base")
def _architecture_3d(args: Any) -> None:
    config = Graphormer3DConfig()
    for name, (target, _, _) in ARGUMENTS_3D.items():
        if getattr(args, name, None) is None:
            setattr(args, name, getattr(config, target))


@dataclass
class Loss3DConfig(FairseqDataclass):
    """Settings of the ``graphormer2_3d_loss`` criterion."""

    max_update: int = II("optimization.max_update")


@register_criterion("graphormer2_3d_loss", dataclass=Loss3DConfig)
class Loss3DCriterion(FairseqCriterion):
    """:meth:`graphormer2.Graphormer3D.loss` (energy L1 + λ · Δpos L1, λ decaying over ``--max-update``)."""

    def __init__(self, task: IS2RETask, max_update: int) -> None:
        super().__init__(task)
        self.max_update = max(int(max_update or 0), 1)

    def forward(self, model: Graphormer3DModel, sample: dict[str, Any], reduce: bool = True) -> tuple:
        outputs = model(**sample["net_input"])
        loss, parts = model.graphormer3d.loss(sample["batch"], outputs, model.num_updates, self.max_update)
        size = sample["nsamples"]
        return loss * size, size, {"loss": loss.detach() * size, "energy_mae": parts["energy_mae"] * size,
                                   "sample_size": size, "nsentences": size, "ntokens": size}  # fmt: skip

    @staticmethod
    def reduce_metrics(logging_outputs: list[dict[str, Any]]) -> None:
        size = max(sum(log.get("sample_size", 0) for log in logging_outputs), 1)
        for key in ("loss", "energy_mae"):
            total = sum(float(log.get(key, 0)) for log in logging_outputs)
            metrics.log_scalar(key, total / size, size, round=6)

    @staticmethod
    def logging_outputs_can_be_summed() -> bool:
        return True
