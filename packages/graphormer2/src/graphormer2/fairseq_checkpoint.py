"""Official microsoft/Graphormer (fairseq) checkpoints to graphormer2 models and back.

A fairseq checkpoint is a pickled dict: ``model`` (the state dict, official parameter names), ``args`` (an
``argparse.Namespace``, older fairseq) or ``cfg`` (``cfg["model"]``: a Namespace, dict or omegaconf ``DictConfig``),
and training state (optimizer, iterator, meters) that inference never reads. :func:`from_fairseq` reads the
architecture from the arguments, falls back on the tensor shapes where an argument is missing, checks the state dict
key by key and builds a :class:`~graphormer2.model.Graphormer` or :class:`~graphormer2.model3d.Graphormer3D`;
:func:`to_fairseq` writes the official layout of a graphormer2 model.

Names are translated by one declarative table per model (:func:`name_rules`; both directions:
:func:`fairseq_names`, :func:`graphormer2_names`). Each rule pairs one graphormer2 tensor with one or more official
tensors and a *layout* saying how the values are arranged:

- ``same``: identical tensors;
- ``row``: ours ``(n,)``, official ``(1, n)`` (an ``nn.Embedding(1, n)``: virtual distance, Gaussian means, stds);
- ``hops``: ours ``(E, H, H)``, official ``edge_dis_encoder.weight`` ``(E·H·H, 1)``;
- ``concat``: ours ``(3, ...)``, official three ``(1, ...)`` tensors (the three ``force_proj`` heads of Δpos);
- ``atoms`` / ``pairs``: Graphormer-3D's type tables. graphormer2 indexes atoms by atomic number (128 rows, pair
  type a·128 + b); the official code maps OC20's 56 elements to compact ids 1…56 and every other element to 57
  (``AtomDataset.atom_mapper`` in ``graphormer/tasks/is2re.py``) and has 64 rows (pair type a·64 + b). Importing
  copies official row ``id(Z)`` to our row ``Z`` for every Z, which is exact; exporting copies the rows of the 56
  elements (and padding) and leaves the unknown id at its initial value (embedding 0, scale 1, shift 0).

Official tensors that the official forward never reads (:data:`UNUSED_OFFICIAL`) are accepted and dropped on import
and written with neutral values on export: ``encoder.masked_lm_pooler`` (built, never called) and, with Pre-LN,
``encoder.graph_encoder.final_layer_norm`` (built, never applied). Reading never unpickles arbitrary objects unless
asked to (``trust_pickle``).
"""

from __future__ import annotations

import argparse
import dataclasses
import pickle
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from graphormer2.atoms import ATOM_TYPES
from graphormer2.model import Graphormer, GraphormerConfig
from graphormer2.model3d import Graphormer3D, Graphormer3DConfig
from papers_common import InputError

FairseqModel = Graphormer | Graphormer3D

OC20_ELEMENTS: tuple[int, ...] = (
    1, 5, 6, 7, 8, 11, 13, 14, 15, 16, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 37, 38,
    39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 55, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 83,
)  # fmt: skip
"""Atomic numbers with an id of their own in the official Graphormer-3D, in id order (ids 1…56; 0 is padding)."""
OFFICIAL_3D_ATOM_TYPES = 64
"""Rows of the official Graphormer-3D's atom embedding (``self.atom_types = 64``); pair types are 64²."""
OFFICIAL_3D_UNKNOWN = len(OC20_ELEMENTS) + 1
"""The official id of every element outside :data:`OC20_ELEMENTS` (57)."""

CHECKPOINT_ENTRIES_UNUSED = (
    "optimizer_history", "last_optimizer_state", "extra_state", "criterion", "task_state", "best_loss",
    "optimizer", "epoch", "batch_offset", "val_loss",
)  # fmt: skip
"""Top-level checkpoint entries with training state only; they are never read (only ``model``, ``args``, ``cfg``
and graphormer2's own ``graphormer2`` entry are)."""
GRAPHORMER2_ENTRY = "graphormer2"
"""Top-level entry that :func:`to_fairseq` adds (fairseq ignores it): graphormer2's config, for the settings that
have no official argument (3D target standardisation, EwT threshold)."""

GRAPH_ENCODER = "encoder.graph_encoder."

# ------------------------------------------------------------------------------------------------ name table


@dataclass(frozen=True)
class NameRule:
    """One graphormer2 tensor and the official tensor(s) holding the same values.

    Attributes:
        ours: the graphormer2 state-dict name. official: the official name(s), several for ``concat``.
        layout: how the values are arranged (see the module docstring).
        fill: the value of official rows without a graphormer2 source (``atoms`` / ``pairs`` export).
    """

    ours: str
    official: tuple[str, ...]
    layout: str = "same"
    fill: float = 0.0


def _module(ours: str, official: str, *params: str) -> list[NameRule]:
    """Rules for the parameters ``params`` of a module called ``ours`` here and ``official`` there."""
    return [NameRule(f"{ours}.{p}", (f"{official}.{p}",)) for p in params or ("weight", "bias")]


def _rules_2d(config: GraphormerConfig) -> list[NameRule]:
    node, bias = GRAPH_ENCODER + "graph_node_feature.", GRAPH_ENCODER + "graph_attn_bias."
    rules = [
        NameRule("node_embedding.atom.weight", (node + "atom_encoder.weight",)),
        NameRule("node_embedding.in_degree.weight", (node + "in_degree_encoder.weight",)),
        NameRule("node_embedding.out_degree.weight", (node + "out_degree_encoder.weight",)),
        NameRule("node_embedding.graph_token", (node + "graph_token.weight",)),
        NameRule("attention_bias.spatial.weight", (bias + "spatial_pos_encoder.weight",)),
        NameRule("attention_bias.edge.weight", (bias + "edge_encoder.weight",)),
        NameRule("attention_bias.virtual_distance", (bias + "graph_token_virtual_distance.weight",), "row"),
        *_module("embedding_norm", GRAPH_ENCODER + "emb_layer_norm"),
    ]
    if config.edge_type == "multi_hop":
        rules.append(NameRule("attention_bias.hop_weights", (bias + "edge_dis_encoder.weight",), "hops"))
    for i in range(config.num_layers):
        ours, official = f"layers.{i}", f"{GRAPH_ENCODER}layers.{i}"
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            rules += _module(f"{ours}.{proj}", f"{official}.self_attn.{proj}")
        rules += _module(f"{ours}.attention_norm", f"{official}.self_attn_layer_norm")
        rules += _module(f"{ours}.fc1", f"{official}.fc1") + _module(f"{ours}.fc2", f"{official}.fc2")
        rules += _module(f"{ours}.ffn_norm", f"{official}.final_layer_norm")
    return [
        *rules,
        *_module("head_transform", "encoder.lm_head_transform_weight"),
        *_module("head_norm", "encoder.layer_norm"),
        *_module("head_out", "encoder.embed_out", "weight"),
        NameRule("head_bias", ("encoder.lm_output_learned_bias",)),
    ]


def _rules_3d(config: Graphormer3DConfig) -> list[NameRule]:
    rules = [
        NameRule("atom_encoder.weight", ("atom_encoder.weight",), "atoms"),
        *_module("tag_encoder", "tag_encoder", "weight"),
        NameRule("gaussian.means", ("gbf.means.weight",), "row"),
        NameRule("gaussian.stds", ("gbf.stds.weight",), "row"),
        NameRule("gaussian.mul.weight", ("gbf.mul.weight",), "pairs", fill=1.0),
        NameRule("gaussian.bias.weight", ("gbf.bias.weight",), "pairs"),
        *_module("bias_proj.0", "bias_proj.layer1"),
        *_module("bias_proj.2", "bias_proj.layer2"),
        *_module("centrality_proj", "edge_proj"),
    ]
    for i in range(config.layers):
        ours, official = f"layers.{i}", f"layers.{i}"
        rules += _module(f"{ours}.attention_norm", f"{official}.self_attn_layer_norm")
        rules += _module(f"{ours}.in_proj", f"{official}.self_attn.in_proj")
        rules += _module(f"{ours}.out_proj", f"{official}.self_attn.out_proj")
        rules += _module(f"{ours}.ffn_norm", f"{official}.final_layer_norm")
        rules += _module(f"{ours}.fc1", f"{official}.fc1") + _module(f"{ours}.fc2", f"{official}.fc2")
    rules += [
        *_module("final_norm", "final_ln"),
        *_module("energy_head.0", "engergy_proj.layer1"),  # sic: the official spelling
        *_module("energy_head.2", "engergy_proj.layer2"),
        *_module("tag_scale", "energe_agg_factor", "weight"),  # sic
        *_module("deltapos_head.q_proj", "node_proc.q_proj"),
        *_module("deltapos_head.k_proj", "node_proc.k_proj"),
        *_module("deltapos_head.v_proj", "node_proc.v_proj"),
    ]
    if config.deltapos_projection != "per_axis":
        raise ValueError("name_rules: the official Δpos head has one projection per axis")
    for param in ("weight", "bias"):
        official = tuple(f"node_proc.force_proj{axis}.{param}" for axis in (1, 2, 3))
        rules.append(NameRule(f"deltapos_head.axis_{param}", official, "concat"))
    return rules


def name_rules(config: GraphormerConfig | Graphormer3DConfig) -> list[NameRule]:
    """The name table of a model with ``config`` (3D: the official per-axis Δpos head)."""
    if isinstance(config, Graphormer3DConfig):
        return _rules_3d(dataclasses.replace(config, deltapos_projection="per_axis"))
    return _rules_2d(config)


def fairseq_names(config: GraphormerConfig | Graphormer3DConfig) -> dict[str, tuple[str, ...]]:
    """graphormer2 name -> official name(s)."""
    return {rule.ours: rule.official for rule in name_rules(config)}


def graphormer2_names(config: GraphormerConfig | Graphormer3DConfig) -> dict[str, str]:
    """official name -> graphormer2 name (the three ``force_proj`` tensors share one)."""
    return {official: rule.ours for rule in name_rules(config) for official in rule.official}


@dataclass(frozen=True)
class UnusedTensor:
    """An official tensor that the official forward never reads: accepted and dropped on import, written on export
    with ``fill`` (shape from the hidden size D)."""

    name: str
    shape: Callable[[int], tuple[int, ...]]
    fill: float
    pre_ln_only: bool = False


UNUSED_OFFICIAL: tuple[UnusedTensor, ...] = (
    UnusedTensor("encoder.masked_lm_pooler.weight", lambda d: (d, d), 0.0),
    UnusedTensor("encoder.masked_lm_pooler.bias", lambda d: (d,), 0.0),
    UnusedTensor(GRAPH_ENCODER + "final_layer_norm.weight", lambda d: (d,), 1.0, pre_ln_only=True),
    UnusedTensor(GRAPH_ENCODER + "final_layer_norm.bias", lambda d: (d,), 0.0, pre_ln_only=True),
)


def _unused(config: GraphormerConfig | Graphormer3DConfig) -> tuple[UnusedTensor, ...]:
    if isinstance(config, Graphormer3DConfig):
        return ()
    return tuple(u for u in UNUSED_OFFICIAL if config.norm_first or not u.pre_ln_only)


# ---------------------------------------------------------------------------------------------------- layouts


def _official_id(atomic_number: int) -> int:
    if atomic_number == 0:
        return 0
    if atomic_number in OC20_ELEMENTS:
        return OC20_ELEMENTS.index(atomic_number) + 1
    return OFFICIAL_3D_UNKNOWN


def _atom_sources(ours_types: int) -> list[tuple[int, int]]:
    """(official id, atomic number) for padding and the OC20 elements below ``ours_types``."""
    return [(_official_id(z), z) for z in (0, *OC20_ELEMENTS) if z < ours_types]


def _to_official(rule: NameRule, tensor: torch.Tensor, config: Any) -> list[torch.Tensor]:
    if rule.layout == "same":
        return [tensor]
    if rule.layout == "row":
        return [tensor.unsqueeze(0)]
    if rule.layout == "hops":
        return [tensor.reshape(-1, 1)]
    if rule.layout == "concat":
        return list(tensor.split(1, dim=0))
    sources = _atom_sources(config.atom_types)
    rows = OFFICIAL_3D_ATOM_TYPES if rule.layout == "atoms" else OFFICIAL_3D_ATOM_TYPES**2
    out = torch.full((rows, *tensor.shape[1:]), rule.fill, dtype=tensor.dtype, device=tensor.device)
    if rule.layout == "atoms":
        index_official = [c for c, _ in sources]
        index_ours = [z for _, z in sources]
    else:
        t, o = config.atom_types, OFFICIAL_3D_ATOM_TYPES
        index_official = [ca * o + cb for ca, _ in sources for cb, _ in sources]
        index_ours = [za * t + zb for _, za in sources for _, zb in sources]
    device = tensor.device
    out[torch.tensor(index_official, device=device)] = tensor[torch.tensor(index_ours, device=device)]
    return [out]


def _to_ours(rule: NameRule, tensors: list[torch.Tensor], config: Any) -> torch.Tensor:
    if rule.layout == "same":
        return tensors[0]
    if rule.layout == "row":
        return tensors[0].reshape(-1)
    if rule.layout == "hops":
        return tensors[0].reshape(-1, config.num_heads, config.num_heads)
    if rule.layout == "concat":
        return torch.cat(tensors, dim=0)
    ids = torch.tensor([_official_id(z) for z in range(config.atom_types)])
    if rule.layout == "atoms":
        return tensors[0][ids]
    pairs = (ids.unsqueeze(1) * OFFICIAL_3D_ATOM_TYPES + ids.unsqueeze(0)).reshape(-1)
    return tensors[0][pairs]


def _export_config(model: FairseqModel) -> tuple[Any, dict[str, torch.Tensor]]:
    """The config and state dict in the official form (3D: a shared Δpos projection becomes three equal ones)."""
    state = {name: value.detach() for name, value in model.state_dict().items()}
    config = model.config
    if isinstance(config, Graphormer3DConfig) and config.deltapos_projection == "shared":
        weight = state.pop("deltapos_head.axis_proj.weight")  # (1, D), no bias
        state["deltapos_head.axis_weight"] = weight.expand(3, -1)
        state["deltapos_head.axis_bias"] = weight.new_zeros(3)
        config = dataclasses.replace(config, deltapos_projection="per_axis")
    return config, state


def _official_tensors(model: FairseqModel) -> dict[str, torch.Tensor]:
    config, state = _export_config(model)
    rules = name_rules(config)
    uncovered = set(state) - {rule.ours for rule in rules}
    if uncovered:  # a model change without a table change: a bug here, not bad input
        raise RuntimeError(f"fairseq name table misses {sorted(uncovered)}")
    official: dict[str, torch.Tensor] = {}
    for rule in rules:
        tensors = _to_official(rule, state[rule.ours], config)
        official.update(zip(rule.official, tensors, strict=True))
    reference = next(iter(state.values()))
    for unused in _unused(config):
        shape = unused.shape(config.hidden_dim)
        official[unused.name] = torch.full(shape, unused.fill, dtype=reference.dtype, device=reference.device)
    return official


def official_state_dict(model: FairseqModel) -> dict[str, torch.Tensor]:
    """The state dict of the official model equivalent to ``model`` (official names, CPU tensors)."""
    return {name: t.detach().cpu().clone().contiguous() for name, t in _official_tensors(model).items()}


def official_shapes(model: FairseqModel) -> dict[str, tuple[int, ...]]:
    """Official name -> shape for ``model``'s architecture (computed on the meta device, without copying)."""
    with torch.device("meta"):
        meta = type(model)(model.config)  # type: ignore[arg-type]
    return {name: tuple(t.shape) for name, t in _official_tensors(meta).items()}


# ------------------------------------------------------------------------------------------------------ export


def _args_2d(config: GraphormerConfig) -> dict[str, Any]:
    return {
        "_name": "graphormer", "arch": "graphormer",
        "encoder_layers": config.num_layers, "encoder_embed_dim": config.hidden_dim,
        "encoder_ffn_embed_dim": config.ffn_dim, "encoder_attention_heads": config.num_heads,
        "dropout": config.dropout, "attention_dropout": config.attention_dropout,
        "act_dropout": config.activation_dropout, "num_classes": config.num_classes, "max_nodes": config.max_nodes,
        "num_atoms": config.num_atoms, "num_in_degree": config.num_degree, "num_out_degree": config.num_degree,
        "num_edges": config.num_edges, "num_spatial": config.num_spatial, "num_edge_dis": config.num_edge_dis,
        "edge_type": config.edge_type, "multi_hop_max_dist": config.multi_hop_max_dist,
        "pre_layernorm": config.norm_first, "encoder_normalize_before": True, "activation_fn": "gelu",
        "apply_graphormer_init": True, "share_encoder_input_output_embed": False,
        "no_token_positional_embeddings": False, "pretrained_model_name": "none",
        "load_pretrained_model_output_layer": False, "remove_head": False,
    }  # fmt: skip


TASK_ARGS_2D = (
    "num_classes", "max_nodes", "num_atoms", "num_in_degree", "num_out_degree", "num_edges", "num_spatial",
    "num_edge_dis", "edge_type", "multi_hop_max_dist", "pretrained_model_name", "load_pretrained_model_output_layer",
)  # fmt: skip
"""Arguments of the official ``graph_prediction`` task (the model reads them too)."""


def _args_3d(config: Graphormer3DConfig) -> dict[str, Any]:
    return {
        "_name": "graphormer3d_base", "arch": "graphormer3d_base",
        "layers": config.layers, "blocks": config.blocks, "embed_dim": config.embed_dim,
        "ffn_embed_dim": config.ffn_embed_dim, "attention_heads": config.attention_heads,
        "num_kernel": config.num_kernel, "input_dropout": config.input_dropout, "dropout": config.dropout,
        "attention_dropout": config.attention_dropout, "activation_dropout": config.activation_dropout,
        "node_loss_weight": config.node_loss_weight, "min_node_loss_weight": config.min_node_loss_weight,
        "eng_loss_weight": 1.0,
    }  # fmt: skip


def fairseq_args(config: GraphormerConfig | Graphormer3DConfig) -> dict[str, Any]:
    """The official model arguments of ``config`` (fairseq's ``cfg["model"]``, ``_name`` = the architecture)."""
    return _args_3d(config) if isinstance(config, Graphormer3DConfig) else _args_2d(config)


def _fold_target_scaling(
    state: dict[str, torch.Tensor], mean: Sequence[float] | None, std: Sequence[float] | None
) -> None:
    """Make the 2D head output mean + std·y (target units), as the official pipeline reads raw outputs."""
    weight, bias = state["encoder.embed_out.weight"], state["encoder.lm_output_learned_bias"]
    classes = weight.shape[0]
    std_t = (
        torch.ones(classes, dtype=torch.float64) if std is None else torch.tensor(std, dtype=torch.float64)
    )
    mean_t = (
        torch.zeros(classes, dtype=torch.float64) if mean is None else torch.tensor(mean, dtype=torch.float64)
    )
    if std_t.shape != (classes,) or mean_t.shape != (classes,):
        raise InputError(f"target mean/std: give {classes} values each, got {len(mean_t)} and {len(std_t)}")
    shift = std_t * bias.double() + mean_t
    if not torch.allclose(shift, shift[0].expand_as(shift), rtol=1e-6, atol=1e-9):
        raise InputError(
            "target scaling: the official head has one output bias shared by all targets, so per-target means "
            "(or stds with a non-zero bias) cannot be folded into it; export the model unscaled (outputs in "
            "standardised units)"
        )
    state["encoder.embed_out.weight"] = (weight.double() * std_t.unsqueeze(1)).to(weight.dtype)
    state["encoder.lm_output_learned_bias"] = shift[:1].to(bias.dtype)


def to_fairseq(
    model: FairseqModel,
    *,
    target_mean: Sequence[float] | None = None,
    target_std: Sequence[float] | None = None,
) -> dict[str, Any]:
    """A fairseq-style checkpoint of ``model`` for the official microsoft/Graphormer code (save it with torch.save).

    Holds ``model`` (official names), ``args`` None and ``cfg`` (``model``: the architecture arguments as the official
    code names them, ``_name`` the architecture; ``task``; ``criterion``), the minimal training entries fairseq's
    checkpoint upgrade expects, and ``graphormer2`` (this package's config; fairseq ignores it). Everything is plain
    Python, so ``torch.load(..., weights_only=True)`` reads it.

    Args:
        target_mean, target_std: a 2D regression model trained on standardised targets outputs (y − μ)/σ; given
            μ and σ, they are folded into the head so that the checkpoint outputs target units, as the official
            pipeline expects (one target, or targets sharing the folded bias).

    Raises:
        InputError: target scaling that the official single output bias cannot hold, or given for a 3D model.
    """
    if not isinstance(model, (Graphormer, Graphormer3D)):
        raise InputError(f"to_fairseq: expected a Graphormer or Graphormer3D, got {type(model).__name__}")
    config, _ = _export_config(model)
    state = official_state_dict(model)
    extra: dict[str, Any] = {"architecture": type(model).__name__, "config": dataclasses.asdict(model.config)}
    if isinstance(config, Graphormer3DConfig):
        if target_mean is not None or target_std is not None:
            raise InputError(
                "to_fairseq: target_mean/target_std apply to 2D models (3D keeps its standardisation)"
            )
        model_args = _args_3d(config)
        task: dict[str, Any] = {"_name": "is2re"}
        criterion: dict[str, Any] = {"_name": "mae_deltapos", "node_loss_weight": config.node_loss_weight,
                                     "min_node_loss_weight": config.min_node_loss_weight}  # fmt: skip
        extra["unmapped_atomic_numbers"] = [
            z for z in range(1, config.atom_types) if _official_id(z) == OFFICIAL_3D_UNKNOWN
        ]
    else:
        if target_mean is not None or target_std is not None:
            _fold_target_scaling(state, target_mean, target_std)
        model_args = _args_2d(config)
        task = {"_name": "graph_prediction", **{key: model_args[key] for key in TASK_ARGS_2D}}
        criterion = {"_name": "l1_loss"}
    return {
        "args": None,
        "cfg": {"model": model_args, "task": task, "criterion": criterion},
        "model": state,
        "optimizer_history": [
            {
                "criterion_name": criterion["_name"],
                "optimizer_name": "none",
                "lr_scheduler_state": {"best": None},
                "num_updates": 0,
            }
        ],
        "extra_state": {"train_iterator": {"epoch": 1, "iterations_in_epoch": 0}},
        "last_optimizer_state": None,
        GRAPHORMER2_ENTRY: extra,
    }


# ------------------------------------------------------------------------------------------------------ reading

_BLOCKED_GLOBAL = re.compile(r"GLOBAL ([\w.]+) was not an allowed global")


def _refusal(err: Exception) -> str | None:
    """The global (class or function) that the safe unpickler refused; None: the file is not a usable pickle."""
    found = _BLOCKED_GLOBAL.search(str(err))
    return found.group(1) if found else None


def read_checkpoint(path: str | Path, *, trust_pickle: bool = False) -> Any:
    """Unpickle a fairseq checkpoint file as safely as it allows.

    First ``torch.load(weights_only=True)`` (tensors and plain containers only); then the same with
    ``argparse.Namespace`` allowed (older fairseq's ``args``; building one runs no code); anything else (omegaconf
    configs, other classes) only with ``trust_pickle=True``, since unpickling can run arbitrary code.

    Raises:
        InputError: no such file, a file that is not a PyTorch pickle, or one that needs ``trust_pickle``.
    """
    file = Path(path)
    if not file.is_file():
        raise InputError(f"{file}: no such checkpoint file")

    def corrupt(err: BaseException) -> InputError:
        return InputError(
            f"{file}: not a readable PyTorch checkpoint ({type(err).__name__}: {err})".split("\n")[0]
        )

    try:
        return torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if _refusal(err) is None:
            raise corrupt(err) from None
    except Exception as err:  # a text file, an empty file, a truncated archive: many exception types
        raise corrupt(err) from None
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        refused = _refusal(err)
        if refused is None:
            raise corrupt(err) from None
    except Exception as err:
        raise corrupt(err) from None
    if not trust_pickle:
        raise InputError(
            f"{file}: holds Python objects ({refused}) that only full unpickling can rebuild, and unpickling an "
            "untrusted file can run arbitrary code; if you trust its origin, pass --trust-pickle (trust_pickle=True)"
        )
    try:
        return torch.load(file, map_location="cpu", weights_only=False)
    except ModuleNotFoundError as err:
        raise InputError(
            f"{file}: its objects need the Python module {err.name!r}, which is not installed (pip install {err.name})"
        ) from None
    except Exception as err:
        raise corrupt(err) from None


def _mapping(value: Any) -> dict[str, Any]:
    """A Namespace, dict or DictConfig as a plain dict (None: empty)."""
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return dict(value.items())
    if hasattr(value, "items"):
        return dict(value.items())
    if hasattr(value, "__dict__"):
        return dict(vars(value))
    return {}


@dataclass(frozen=True)
class FairseqImport:
    """What :func:`load_fairseq` found.

    Attributes:
        model: the graphormer2 model (eval mode). kind: ``"Graphormer"`` or ``"Graphormer3D"``.
        ignored: official tensors dropped as unused by the official forward.
        assumed: settings found neither in the arguments nor in the shapes, with the default used.
        criterion: the official criterion's name when the checkpoint records it (e.g. ``l1_loss``).
    """

    model: FairseqModel
    kind: str
    ignored: tuple[str, ...]
    assumed: tuple[str, ...]
    criterion: str | None

    def summary(self) -> str:
        """One line: architecture and parameter count."""
        config = self.model.config
        if isinstance(config, Graphormer3DConfig):
            shape = (f"{config.layers} layers x {config.blocks} blocks, D {config.embed_dim}, FFN "
                     f"{config.ffn_embed_dim}, {config.attention_heads} heads, {config.num_kernel} kernels")  # fmt: skip
        else:
            shape = (f"{config.num_layers} layers, D {config.hidden_dim}, FFN {config.ffn_dim}, {config.num_heads} "
                     f"heads, {'Pre' if config.norm_first else 'Post'}-LN, {config.edge_type} edges "
                     f"(L {config.multi_hop_max_dist}), {config.num_classes} output(s)")  # fmt: skip
        count = sum(p.numel() for p in self.model.parameters())
        return f"{self.kind} ({shape}): {count:,} parameters"


def _names(names: Sequence[str], limit: int = 12) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


class _Args:
    """Typed look-ups of official arguments; None when absent (or None)."""

    def __init__(self, values: dict[str, Any], where: str) -> None:
        self.values, self.where = values, where

    def get(self, name: str, kind: type) -> Any:
        value = self.values.get(name)
        if value is None:
            return None
        try:
            return kind(value) if kind is not bool else bool(value)
        except (TypeError, ValueError):
            raise InputError(f"{self.where}: argument {name}={value!r} is not a {kind.__name__}") from None


def _layer_count(state: Mapping[str, Any], prefix: str) -> int | None:
    found = {int(m.group(1)) for key in state if (m := re.match(re.escape(prefix) + r"(\d+)\.", key))}
    return max(found) + 1 if found else None


def _dim(state: Mapping[str, torch.Tensor], key: str, axis: int) -> int | None:
    tensor = state.get(key)
    return int(tensor.shape[axis]) if tensor is not None and tensor.dim() > axis else None


def _choose(
    fields: dict[str, Any], assumed: list[str], name: str, *candidates: Any, default: Any = None
) -> None:
    """Set ``fields[name]`` to the first candidate that is not None, else record ``default`` as assumed."""
    for value in candidates:
        if value is not None:
            fields[name] = value
            return
    if default is not None:
        fields[name] = default
        assumed.append(f"{name}={default}")


def _config_2d(
    args: _Args, state: Mapping[str, torch.Tensor], where: str
) -> tuple[GraphormerConfig, list[str]]:
    node, bias = GRAPH_ENCODER + "graph_node_feature.", GRAPH_ENCODER + "graph_attn_bias."
    if args.get("encoder_normalize_before", bool) is False:
        raise InputError(f"{where}: encoder_normalize_before=False (no embedding LayerNorm) is not supported")
    if args.get("activation_fn", str) not in (None, "gelu"):
        raise InputError(f"{where}: activation_fn={args.get('activation_fn', str)!r}; graphormer2 uses gelu")
    if args.get("share_encoder_input_output_embed", bool):
        raise InputError(
            f"{where}: share_encoder_input_output_embed is not supported (nor by the official code)"
        )
    fields: dict[str, Any] = {}
    assumed: list[str] = []
    heads = args.get("encoder_attention_heads", int) or _dim(state, bias + "spatial_pos_encoder.weight", 1)
    classes = args.get("num_classes", int)
    in_degree = args.get("num_in_degree", int) or _dim(state, node + "in_degree_encoder.weight", 0)
    out_degree = args.get("num_out_degree", int) or _dim(state, node + "out_degree_encoder.weight", 0)
    if in_degree and out_degree and in_degree != out_degree:
        raise InputError(
            f"{where}: num_in_degree={in_degree} differs from num_out_degree={out_degree}; graphormer2 has one "
            "degree size (undirected molecules)"
        )
    hop_rows = _dim(state, bias + "edge_dis_encoder.weight", 0)
    edge_type = args.get("edge_type", str)
    if edge_type is None and (bias + "edge_encoder.weight") in state:
        edge_type = "multi_hop" if hop_rows is not None else "single_hop"
    atoms, edges = _dim(state, node + "atom_encoder.weight", 0), _dim(state, bias + "edge_encoder.weight", 0)
    _choose(
        fields,
        assumed,
        "num_layers",
        args.get("encoder_layers", int),
        _layer_count(state, GRAPH_ENCODER + "layers."),
    )
    _choose(
        fields,
        assumed,
        "hidden_dim",
        args.get("encoder_embed_dim", int),
        _dim(state, node + "atom_encoder.weight", 1),
    )
    _choose(
        fields,
        assumed,
        "ffn_dim",
        args.get("encoder_ffn_embed_dim", int),
        _dim(state, GRAPH_ENCODER + "layers.0.fc1.weight", 0),
    )
    _choose(fields, assumed, "num_heads", heads)
    _choose(
        fields,
        assumed,
        "num_classes",
        classes if classes and classes > 0 else None,
        _dim(state, "encoder.embed_out.weight", 0),
    )
    _choose(fields, assumed, "num_atoms", args.get("num_atoms", int), atoms - 1 if atoms else None)
    _choose(fields, assumed, "num_edges", args.get("num_edges", int), edges - 1 if edges else None)
    _choose(fields, assumed, "num_degree", in_degree)
    _choose(
        fields,
        assumed,
        "num_spatial",
        args.get("num_spatial", int),
        _dim(state, bias + "spatial_pos_encoder.weight", 0),
    )
    _choose(
        fields,
        assumed,
        "num_edge_dis",
        args.get("num_edge_dis", int),
        hop_rows // heads**2 if hop_rows and heads else None,
    )
    _choose(fields, assumed, "edge_type", edge_type)
    _choose(
        fields,
        assumed,
        "norm_first",
        args.get("pre_layernorm", bool),
        (GRAPH_ENCODER + "final_layer_norm.weight") in state,
    )
    _choose(fields, assumed, "multi_hop_max_dist", args.get("multi_hop_max_dist", int), default=5)
    _choose(fields, assumed, "max_nodes", args.get("max_nodes", int), default=128)
    _choose(fields, assumed, "dropout", args.get("dropout", float))
    _choose(fields, assumed, "attention_dropout", args.get("attention_dropout", float))
    _choose(fields, assumed, "activation_dropout", args.get("act_dropout", float))  # fmt: skip
    if fields.get("edge_type") == "single_hop" and "num_edge_dis" not in fields:
        fields["num_edge_dis"] = max(fields.get("multi_hop_max_dist", 1), 1)
    try:
        return GraphormerConfig(**fields), assumed
    except (InputError, TypeError) as err:
        raise InputError(
            f"{where}: its architecture does not give a valid GraphormerConfig ({err})"
        ) from None


def _config_3d(
    args: _Args, state: Mapping[str, torch.Tensor], extra: dict[str, Any], where: str
) -> tuple[Graphormer3DConfig, list[str]]:
    stored = _mapping(extra.get("config"))
    keep = ("energy_mean", "energy_std", "deltapos_mean", "deltapos_std", "ewt_threshold", "head_dropout")
    fields: dict[str, Any] = {key: stored[key] for key in keep if key in stored}
    assumed: list[str] = []
    _choose(fields, assumed, "layers", args.get("layers", int), _layer_count(state, "layers."))
    _choose(fields, assumed, "blocks", args.get("blocks", int), default=4)
    _choose(fields, assumed, "embed_dim", args.get("embed_dim", int), _dim(state, "atom_encoder.weight", 1))
    _choose(
        fields,
        assumed,
        "ffn_embed_dim",
        args.get("ffn_embed_dim", int),
        _dim(state, "layers.0.fc1.weight", 0),
    )
    _choose(
        fields,
        assumed,
        "attention_heads",
        args.get("attention_heads", int),
        _dim(state, "bias_proj.layer2.weight", 0),
    )
    _choose(fields, assumed, "num_kernel", args.get("num_kernel", int), _dim(state, "gbf.means.weight", 1))
    for name in (
        "dropout",
        "attention_dropout",
        "activation_dropout",
        "input_dropout",
        "node_loss_weight",
        "min_node_loss_weight",
    ):
        _choose(fields, assumed, name, args.get(name, float))
    fields.update(atom_types=ATOM_TYPES, deltapos_projection="per_axis")  # fmt: skip
    try:
        return Graphormer3DConfig(**fields), assumed
    except (InputError, TypeError) as err:
        raise InputError(
            f"{where}: its architecture does not give a valid Graphormer3DConfig ({err})"
        ) from None


def _kind(state: Mapping[str, Any], arch: str | None, where: str) -> str:
    if any(key.startswith(GRAPH_ENCODER) for key in state):
        return "Graphormer"
    if "gbf.means.weight" in state or any(key.startswith("node_proc.") for key in state):
        return "Graphormer3D"
    if arch:
        return "Graphormer3D" if arch.startswith("graphormer3d") else "Graphormer"
    first = _names(sorted(state), 5) or "none"
    raise InputError(
        f"{where}: neither a Graphormer (encoder.graph_encoder.*) nor a Graphormer-3D (gbf.*, node_proc.*) state "
        f"dict; its keys: {first}"
    )


def graphormer2_state_dict(
    official: Mapping[str, torch.Tensor], config: GraphormerConfig | Graphormer3DConfig
) -> dict[str, torch.Tensor]:
    """The graphormer2 state dict of ``config``'s model from an official state dict with every tensor the name
    table expects (:data:`UNUSED_OFFICIAL` tensors, if present, are not read)."""
    return {
        rule.ours: _to_ours(rule, [official[name] for name in rule.official], config)
        for rule in name_rules(config)
    }


PLUGIN_3D_PREFIX = "graphormer3d."
"""Key prefix of the Graphormer-3D checkpoints that graphormer2's fairseq plugin writes (graphormer2's own names)."""


def _plugin_3d(values: Mapping[str, Any], state: Mapping[str, torch.Tensor], where: str) -> FairseqImport:
    """A checkpoint of the plugin's ``graphormer2_3d`` model: its arguments are Graphormer3DConfig's field names."""
    fields = {f.name: values[f.name] for f in dataclasses.fields(Graphormer3DConfig) if f.name in values}
    try:
        model = Graphormer3D(Graphormer3DConfig(**fields))
    except (InputError, TypeError) as err:
        raise InputError(f"{where}: its arguments do not give a valid Graphormer3DConfig ({err})") from None
    ours = {key.removeprefix(PLUGIN_3D_PREFIX): tensor for key, tensor in state.items()}
    unknown, missing = (
        sorted(set(ours) - set(model.state_dict())),
        sorted(set(model.state_dict()) - set(ours)),
    )
    if unknown or missing:
        raise InputError(f"{where}: unknown key(s) {_names(unknown)}; missing key(s) {_names(missing)}")
    model.load_state_dict(ours, strict=True)
    assumed = [f.name for f in dataclasses.fields(Graphormer3DConfig) if f.name not in values]
    return FairseqImport(model.eval(), "Graphormer3D", (), tuple(assumed), values.get("criterion"))


def load_fairseq(source: str | Path | Mapping[str, Any], *, trust_pickle: bool = False) -> FairseqImport:
    """Build the graphormer2 model of an official checkpoint; see :func:`from_fairseq`. Also says what was dropped
    (unused official tensors) and which settings were assumed."""
    if isinstance(source, Mapping):
        where, checkpoint = "the checkpoint", source
    else:
        where, checkpoint = str(source), read_checkpoint(source, trust_pickle=trust_pickle)
    if not isinstance(checkpoint, Mapping):
        raise InputError(
            f"{where}: not a fairseq checkpoint (holds a {type(checkpoint).__name__}, not a dict)"
        )
    state: Any = checkpoint.get("model") if "model" in checkpoint else checkpoint
    if not isinstance(state, Mapping):
        raise InputError(f"{where}: not a fairseq checkpoint (its 'model' entry is a {type(state).__name__})")
    not_tensors = [str(k) for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if not_tensors:
        raise InputError(
            f"{where}: not a fairseq checkpoint (entries that are not tensors: {_names(not_tensors)})"
        )
    state = {str(k): v for k, v in state.items()}
    cfg = _mapping(checkpoint.get("cfg")) if state is not checkpoint else {}
    args_source = checkpoint.get("args") if state is not checkpoint else None
    values = _mapping(args_source) or {**_mapping(cfg.get("task")), **_mapping(cfg.get("model"))}
    criterion = values.get("criterion") or _mapping(cfg.get("criterion")).get("_name")
    if any(key.startswith(PLUGIN_3D_PREFIX) for key in state):
        return _plugin_3d(values, state, where)
    args = _Args(values, where)
    arch = args.get("arch", str) or args.get("_name", str)
    kind = _kind(state, arch, where)
    extra = _mapping(checkpoint.get(GRAPHORMER2_ENTRY)) if state is not checkpoint else {}
    config: GraphormerConfig | Graphormer3DConfig
    if kind == "Graphormer3D":
        config, assumed = _config_3d(args, state, extra, where)
        model: FairseqModel = Graphormer3D(config)
    else:
        config, assumed = _config_2d(args, state, where)
        model = Graphormer(config)
    rules = name_rules(config)
    expected = {name for rule in rules for name in rule.official}
    unused = {u.name for u in UNUSED_OFFICIAL} if kind == "Graphormer" else set()
    unknown = sorted(set(state) - expected - unused)
    missing = sorted(expected - set(state))
    if unknown or missing:
        parts = [
            f"unknown key(s) {_names(unknown)}" if unknown else "",
            f"missing key(s) {_names(missing)}" if missing else "",
        ]
        raise InputError(
            f"{where}: does not match the official {kind} of its architecture: {'; '.join(p for p in parts if p)}"
        )
    shapes = official_shapes(model)
    wrong = [f"{name} {tuple(state[name].shape)} (expected {shapes[name]})" for name in sorted(expected)
             if tuple(state[name].shape) != shapes[name]]  # fmt: skip
    if wrong:
        raise InputError(f"{where}: tensor shapes do not fit its architecture: {_names(wrong, 6)}")
    model.load_state_dict(graphormer2_state_dict(state, config), strict=True)
    ignored = tuple(sorted(set(state) & unused))
    return FairseqImport(model.eval(), kind, ignored, tuple(assumed), str(criterion) if criterion else None)


def from_fairseq(source: str | Path | Mapping[str, Any], *, trust_pickle: bool = False) -> FairseqModel:
    """The graphormer2 model (eval mode) of an official microsoft/Graphormer checkpoint.

    Args:
        source: a checkpoint file, or an already loaded checkpoint dict (or a bare state dict).
        trust_pickle: allow full unpickling of files holding objects beyond tensors, containers and
            ``argparse.Namespace`` (omegaconf configs, other classes); only for files from a trusted source.

    The architecture comes from ``args`` or ``cfg["model"]`` (and ``cfg["task"]``); arguments that are missing are
    read from tensor shapes (``multi_hop_max_dist``, ``max_nodes`` and the 3D ``blocks`` cannot be, and take the
    official defaults 5, 128 and 4). The official 3D atom ids are remapped to atomic numbers (module docstring).

    Raises:
        InputError: an unreadable file (named), one needing ``trust_pickle``, unknown or missing tensors (all named
            in one message, except :data:`UNUSED_OFFICIAL`), shapes that do not fit, or unsupported settings.
    """
    return load_fairseq(source, trust_pickle=trust_pickle).model
