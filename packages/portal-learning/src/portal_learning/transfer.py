"""Step-wise transfer (Portal 1): sequence → structure → function.

The paper pretrains its protein encoder on sequences alone (masked-language modelling), then on chemical–protein
structures (which residues contact the ligand), and only then on interactions, each step starting from the
weights of the one before. Here:

- **Step 1, sequence** (:func:`pretrain_protein`): a :class:`ProteinMLM` — the interaction model's
  :class:`~portal_learning.model.ProteinCNN` plus a token head (Linear, GELU, LayerNorm, Linear to the residue
  vocabulary) — learns to restore masked residues. Masking is BERT's: 15% of the real residues are chosen
  (padding never); of those 80% are replaced by a mask token, 10% by a random residue and 10% are kept. The
  residue vocabulary has no mask id, and adding one would give the MLM an embedding table of another size than
  :class:`~portal_learning.model.CPIModel`'s, so the weights could not move on: the mask token is 1, the "other
  residue" id (X, B, Z, U, O), which real sequences rarely contain. The loss is the cross-entropy on the chosen
  positions only.
- **Step 2, structure** (:func:`train_structure`): a :class:`StructureModel` — the chemical and protein encoders
  exactly as :class:`~portal_learning.model.CPIModel` builds them (same parameter names, ``chemical.*`` and
  ``protein.*``) — predicts, for a (molecule, protein) pair, which residues contact the molecule. Pair features
  are an elementwise product, as in the paper: residue l's logit is ``MLP(W_p P_l ⊙ W_c c̄)`` for residue states
  P (L × d_p) and the mean of the chemical states c̄ (d_c), both projected to :data:`CONTACT_WIDTH`. The loss is
  the binary cross-entropy over real residues, 1 at the protein's contact positions (:func:`read_contacts`).
- **Step 3, function**: :func:`initialise_from` loads step 1's protein encoder, or step 2's protein and chemical
  encoders, into a :class:`~portal_learning.model.CPIModel` before interaction training, and :func:`freeze` stops
  the gradient of named parameter groups (:data:`FREEZE_GROUPS`).

Freezing. The paper's official code fine-tunes its ALBERT protein encoder with the parameters numbered 8 to 23
(in the module's parameter order) frozen; by our reading of ALBERT's layout those are the shared transformer
layer's attention and feed-forward weights, while the embeddings before them stay trainable. Our encoder is a
CNN, so the groups are named by role instead of number: ``protein-embeddings`` (residue and position embeddings,
``protein.embed``, ``protein.positions``), ``protein-convs`` (the contextual layers, ``protein.project``,
``protein.convs``, ``protein.norms`` — the counterpart of ALBERT's 8..23), ``protein`` (both) and ``chemical``
(the whole chemical encoder). A BatchNorm whose parameters are all frozen also keeps its running statistics
(:func:`~portal_learning.model.train_mode`), so a frozen group is left exactly as loaded.

Each step writes a run folder: ``config.json`` (its settings), ``checkpoints/`` (one per epoch; an interrupted
run resumes from its last one), ``metrics.jsonl`` (a line per epoch), ``metrics.json`` (before and after
training) and ``model/``, the model in the Hugging Face layout whose ``config.json`` records the step that wrote
it (``extra.step``), so that :func:`initialise_from` knows which encoders it holds and refuses any other folder.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from papers_common import (
    InputError,
    Pretrained,
    RunDir,
    read_json,
    resume_run,
    save_checkpoint,
    write_json,
)
from portal_learning.featurize import RESIDUE_VOCAB, GraphBatch, residue_tokens
from portal_learning.metrics import roc_auc
from portal_learning.model import CPIConfig, chemical_encoder, protein_encoder, train_mode
from portal_learning.records import Interaction, check_sequence
from portal_learning.train import PairData

LOG = logging.getLogger(__name__)

STEP_PROTEIN = "pretrain-protein"
STEP_STRUCTURE = "structure"
ENCODERS = {STEP_PROTEIN: ("protein",), STEP_STRUCTURE: ("protein", "chemical")}
"""The encoders (top-level parameter names) whose weights each step hands on."""
_EMBEDDINGS = ("protein.embed", "protein.positions")
_CONVS = ("protein.project", "protein.convs", "protein.norms")
FREEZE_GROUPS: dict[str, tuple[str, ...]] = {
    "protein-embeddings": _EMBEDDINGS,
    "protein-convs": _CONVS,
    "protein": _EMBEDDINGS + _CONVS,
    "chemical": ("chemical",),
}
"""Parameter groups :func:`freeze` knows: group → parameter-name prefixes."""
MASK_RATE = 0.15
MASK_TOKEN = 1  # the "other residue" id; see the module docstring
CONTACT_WIDTH = 64
MODEL_DIR = "model"
METRICS_FILE = "metrics.json"
CONTACTS_HEADER = ("protein", "contact_positions")


class ProteinMLM(nn.Module, Pretrained):
    """Step 1: masked-residue logits ``(B, L, RESIDUE_VOCAB)`` from ``(B, L)`` tokens and their ``(B, L)`` mask."""

    config_class = CPIConfig

    def __init__(self, config: CPIConfig | None = None) -> None:
        super().__init__()
        self.config = config or CPIConfig()
        self.config.check()
        channels = self.config.protein_channels
        self.protein = protein_encoder(self.config)
        self.head = nn.Sequential(
            nn.Linear(channels, channels),
            nn.GELU(),
            nn.LayerNorm(channels),
            nn.Linear(channels, RESIDUE_VOCAB),
        )

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``(B, L, RESIDUE_VOCAB)`` logits for ``(B, L)`` (corrupted) tokens and their ``(B, L)`` residue mask."""
        return self.head(self.protein(tokens, mask))


def mask_residues(
    tokens: torch.Tensor, mask: torch.Tensor, generator: torch.Generator, rate: float = MASK_RATE
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT-style corruption of ``(B, L)`` tokens (CPU, like ``generator``) with their ``(B, L)`` residue mask.

    Returns:
        The corrupted ``(B, L)`` tokens and the ``(B, L)`` bool mask of the chosen positions: each real residue is
        chosen with probability ``rate``; a chosen one becomes :data:`MASK_TOKEN` (80%), a random residue (10%)
        or stays (10%). Padding is never chosen.
    """
    chosen = (torch.rand(tokens.shape, generator=generator) < rate) & mask
    how = torch.rand(tokens.shape, generator=generator)
    random = torch.randint(2, RESIDUE_VOCAB, tokens.shape, generator=generator)
    corrupted = torch.where(chosen & (how < 0.8), MASK_TOKEN, tokens)
    corrupted = torch.where(chosen & (how >= 0.8) & (how < 0.9), random, corrupted)
    return corrupted, chosen


def masked_loss(logits: torch.Tensor, tokens: torch.Tensor, chosen: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of ``(B, L, V)`` logits against the original ``(B, L)`` tokens at the ``(B, L)`` chosen
    positions only (0 when none is chosen)."""
    total = F.cross_entropy(logits[chosen], tokens[chosen], reduction="sum")
    return total / max(int(chosen.sum()), 1)


class StructureModel(nn.Module, Pretrained):
    """Step 2: ``(B, L)`` residue-contact logits for (molecule, protein) pairs; see the module docstring.

    The chemical and protein encoders are built as :class:`CPIModel` builds them, so their weights carry over.
    """

    config_class = CPIConfig

    def __init__(self, config: CPIConfig | None = None) -> None:
        super().__init__()
        self.config = config or CPIConfig()
        self.config.check()
        self.chemical = chemical_encoder(self.config)
        self.protein = protein_encoder(self.config)
        self.residue_projection = nn.Linear(self.config.protein_channels, CONTACT_WIDTH)
        self.chemical_projection = nn.Linear(self.config.gin_hidden, CONTACT_WIDTH)
        self.contact = nn.Sequential(
            nn.Linear(CONTACT_WIDTH, CONTACT_WIDTH), nn.ReLU(), nn.Linear(CONTACT_WIDTH, 1)
        )

    def pooled_chemical(self, molecules: GraphBatch | torch.Tensor) -> torch.Tensor:
        """``(B, d_c)``: the mean atom state of each molecule (GIN) or the fingerprint MLP's output."""
        if not isinstance(molecules, GraphBatch):
            return self.chemical(molecules.to(self.chemical_projection.weight.dtype))
        if self.config.chemical != "gin":
            raise InputError("this model encodes fingerprints; pass a (B, bits) tensor")
        states = self.chemical(molecules)  # (N, d_c)
        sums = states.new_zeros(molecules.size, states.shape[1]).index_add_(0, molecules.batch, states)
        counts = torch.bincount(molecules.batch, minlength=molecules.size).clamp(min=1)
        return sums / counts[:, None]

    def forward(
        self, molecules: GraphBatch | torch.Tensor, tokens: torch.Tensor, residue_mask: torch.Tensor
    ) -> torch.Tensor:
        """``(B, L)`` contact logits for molecules (a :class:`GraphBatch` or ``(B, bits)`` fingerprints) and
        ``(B, L)`` residue tokens with their mask."""
        residues = self.residue_projection(self.protein(tokens, residue_mask))  # (B, L, w)
        chemical = self.chemical_projection(self.pooled_chemical(molecules))  # (B, w)
        return self.contact(residues * chemical[:, None, :]).squeeze(-1)


def read_contacts(path: str | Path) -> dict[str, list[int]]:
    """Each protein's contact residues from a CSV with the header ``protein,contact_positions``: the protein's id
    (as in the records' ``protein`` column) and its 0-based residue positions, separated by spaces.

    Raises:
        InputError: the file is missing, its header differs, or a row has another number of fields, no protein,
            a protein seen before or a position that is not a non-negative integer (naming ``file:line``).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError as error:
        raise InputError(f"{path}: not a UTF-8 text file ({error.reason})") from None
    rows = list(csv.reader(lines))
    if not rows or tuple(h.strip().lower() for h in rows[0]) != CONTACTS_HEADER:
        found = ",".join(rows[0]) if rows else "an empty file"
        raise InputError(f"{path}:1: expected the header {','.join(CONTACTS_HEADER)}, got {found[:120]}")
    contacts: dict[str, list[int]] = {}
    for number, row in enumerate(rows[1:], start=2):
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) != len(CONTACTS_HEADER):
            raise InputError(f"{path}:{number}: {len(row)} fields, expected {len(CONTACTS_HEADER)}")
        protein, positions = row[0].strip(), row[1].split()
        if not protein:
            raise InputError(f"{path}:{number}: no protein id")
        if protein in contacts:
            raise InputError(f"{path}:{number}: protein {protein!r} is listed twice")
        bad = [p for p in positions if not p.isdigit()]
        if bad:
            raise InputError(
                f"{path}:{number}: {bad[0]!r} is not a residue position (a non-negative integer)"
            )
        contacts[protein] = sorted({int(p) for p in positions})
    return contacts


def freeze(model: nn.Module, groups: Sequence[str]) -> list[str]:
    """Stop the gradient (``requires_grad = False``) of the parameters in the named :data:`FREEZE_GROUPS`.

    Works on any model with :class:`CPIModel`'s encoder names (``CPIModel``, :class:`StructureModel`,
    :class:`ProteinMLM`). Train it with :func:`~portal_learning.model.train_mode` so that frozen BatchNorms keep their statistics.

    Returns:
        The names of the frozen parameters.

    Raises:
        InputError: a group is not one of :data:`FREEZE_GROUPS` (the message lists them).
    """
    return _freeze(model, groups)


def _freeze(model: nn.Module, groups: Sequence[str]) -> list[str]:
    unknown = [g for g in groups if g not in FREEZE_GROUPS]
    if unknown:
        raise InputError(f"--freeze {unknown[0]!r}: unknown group; the groups are {', '.join(FREEZE_GROUPS)}")
    prefixes = tuple(f"{prefix}." for g in groups for prefix in FREEZE_GROUPS[g])
    frozen = []
    for name, parameter in model.named_parameters():
        if name.startswith(prefixes):
            parameter.requires_grad_(False)
            frozen.append(name)
    return frozen


def _model_folder(path: Path) -> Path:
    """A step's model folder from itself or from its run folder."""
    if (path / MODEL_DIR / "config.json").is_file() and not (path / "model.safetensors").is_file():
        return path / MODEL_DIR
    return path


def _folder_step(folder: Path, accept: Sequence[str]) -> str:
    """Which step wrote the model folder; an :class:`InputError` unless it is one of ``accept``."""
    if not (folder / "config.json").is_file() or not (folder / "model.safetensors").is_file():
        raise InputError(f"{folder}: not a saved model folder (config.json and model.safetensors are needed)")
    stored = read_json(folder / "config.json", "model config")
    step = (stored.get("extra") or {}).get("step")
    if step not in accept:
        written = (
            f"step {step!r}"
            if step
            else f"a {(stored.get('architectures') or ['unknown'])[0]} without a step"
        )
        wanted = " or ".join(f"{s!r}" for s in accept)
        raise InputError(f"{folder}: holds {written}, not the model of a transfer step {wanted}")
    return step


def _load_encoders(model: nn.Module, folder: str | Path, accept: Sequence[str]) -> list[str]:
    from safetensors.torch import load_file

    folder = _model_folder(Path(folder))
    encoders = ENCODERS[_folder_step(folder, accept)]
    stored = {k: v for k, v in load_file(folder / "model.safetensors").items() if k.split(".")[0] in encoders}
    target = {k: v for k, v in model.state_dict().items() if k.split(".")[0] in encoders}
    for name in [*target, *(k for k in stored if k not in target)]:  # the model's order
        if name not in target:
            raise InputError(f"{folder}: holds {name}, which the model's config has no place for")
        if name not in stored:
            raise InputError(f"{folder}: has no {name}, which the model's config needs")
        if stored[name].shape != target[name].shape:
            raise InputError(
                f"{folder}: {name} is {tuple(stored[name].shape)}, the model's config needs {tuple(target[name].shape)}"
            )
    model.load_state_dict(stored, strict=False)
    return sorted(stored)


def initialise_from(model: nn.Module, folder: str | Path) -> list[str]:
    """Load the encoders a transfer step saved into ``model`` (a :class:`CPIModel`, or any model with its
    encoder names): step 1's protein encoder, or step 2's protein and chemical encoders, buffers included.

    Args:
        folder: the step's ``model`` folder or its run folder.

    Returns:
        The names of the loaded tensors (state-dict keys).

    Raises:
        InputError: ``folder`` is not the model folder of a transfer step, or a tensor's shape (or presence)
            does not fit the model's config (the message names the folder and the parameter).
    """
    return _load_encoders(model, folder, tuple(ENCODERS))


@dataclass
class StepResult:
    """What a transfer step measured: ``metrics`` (also in ``metrics.json``), the per-epoch ``history``, the run
    folder ``out`` and the saved ``model`` folder."""

    metrics: dict[str, Any]
    history: list[dict[str, Any]]
    seconds: float
    out: Path
    model: Path


def _check_training(epochs: int, batch_size: int, lr: float, holdout: float) -> None:
    if epochs < 1:
        raise InputError(f"--epochs must be at least 1, got {epochs}")
    if batch_size < 2:
        raise InputError(f"--batch-size must be at least 2 (BatchNorm), got {batch_size}")
    if not (lr > 0 and math.isfinite(lr)):
        raise InputError(f"--lr must be a positive number, got {lr}")
    if not 0.0 < holdout < 1.0:
        raise InputError(f"--holdout must lie in (0, 1), got {holdout}")


def _digest(values: Any) -> str:
    return hashlib.sha256(json.dumps(values).encode("utf-8")).hexdigest()


def _batches(order: np.ndarray, size: int) -> list[np.ndarray]:
    """Consecutive batches of ``size``; a last batch of one item joins the one before (BatchNorm needs two)."""
    batches = [order[k : k + size] for k in range(0, len(order), size)]
    if len(batches) > 1 and len(batches[-1]) < 2:
        batches[-2:] = [np.concatenate(batches[-2:])]
    return batches


def _held_out(groups: Sequence[str], share: float, seed: int) -> set[str]:
    """A seeded ``share`` of the distinct ``groups`` (at least one, never all)."""
    distinct = list(dict.fromkeys(groups))
    order = np.random.default_rng(seed).permutation(len(distinct))
    count = min(max(1, round(share * len(distinct))), len(distinct) - 1)
    return {distinct[i] for i in order[:count]}


def _fit(
    out: Path,
    resolved: dict[str, Any],
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    epochs: int,
    start: Callable[[], dict[str, Any]],
    epoch: Callable[[int], dict[str, Any]],
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The epoch loop both steps share: resume from the last checkpoint or call ``start`` (which prepares a fresh
    model and returns the metrics before training), run ``epoch`` for the epochs left and checkpoint after each.

    Returns the metrics before training and the per-epoch history.
    """
    run = RunDir(out)
    checkpoint = resume_run(run, resolved, list(resolved), model, optimizer)
    if checkpoint is not None:
        done, before, history = checkpoint.step, checkpoint.extra["before"], run.metrics()
    else:
        done, before, history = 0, start(), []
    for index in range(done, epochs):
        history.append(run.log(index + 1, **epoch(index)))
        LOG.info("%s epoch %d: loss %.4f", resolved["step"], index + 1, history[-1]["loss"])
        save_checkpoint(run.checkpoints, index + 1, model, optimizer=optimizer, config=resolved,
                        extra={"before": before}, keep=1)  # fmt: skip
    return before, history


def _finish(
    out: Path, model: Pretrained, step: str, metrics: dict[str, Any], history: list, started: float
) -> StepResult:
    folder = model.save_pretrained(out / MODEL_DIR, extra={"step": step})
    write_json(out / METRICS_FILE, {"step": step, **metrics, "history": history})
    return StepResult(metrics, history, time.perf_counter() - started, out, folder)


@torch.no_grad()
def _masked_scores(
    model: ProteinMLM, sequences: Sequence[str], seed: int, device: torch.device, batch_size: int
) -> dict[str, float]:
    """Masked-token accuracy and loss on ``sequences`` under masks drawn once from ``seed``."""
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    right = total = 0
    loss = 0.0
    for k in range(0, len(sequences), batch_size):
        tokens, mask = residue_tokens(sequences[k : k + batch_size], model.config.max_length)
        corrupted, chosen = mask_residues(tokens, mask, generator)
        logits = model(corrupted.to(device), mask.to(device))
        tokens, chosen = tokens.to(device), chosen.to(device)
        right += int((logits.argmax(-1)[chosen] == tokens[chosen]).sum())
        loss += float(F.cross_entropy(logits[chosen], tokens[chosen], reduction="sum"))
        total += int(chosen.sum())
    return {
        "masked_accuracy": right / max(total, 1),
        "masked_loss": loss / max(total, 1),
        "masked_tokens": total,
    }


def pretrain_protein(
    sequences: Sequence[str],
    out: str | Path,
    *,
    model_config: CPIConfig | None = None,
    epochs: int = 10,
    batch_size: int = 32,
    lr: float = 1e-3,
    holdout: float = 0.1,
    seed: int = 0,
    device: str = "cpu",
) -> StepResult:
    """Step 1: masked-residue pretraining of the protein encoder on ``sequences`` (resumable).

    Distinct sequences are used once each per epoch (Adam, shuffled and masked afresh from ``seed`` and the
    epoch); a seeded ``holdout`` share of them is kept apart to measure masked-token accuracy and loss before
    and after training, under one fixed draw of masks. Writes the run folder described in the module docstring.

    Raises:
        InputError: fewer than three distinct sequences, one that is not a protein sequence, or bad settings.
    """
    model_config = model_config or CPIConfig()
    model_config.check()
    _check_training(epochs, batch_size, lr, holdout)
    distinct = list(dict.fromkeys(sequences))
    for index, sequence in enumerate(distinct):
        if (why := check_sequence(sequence)) is not None:
            raise InputError(f"sequence {index + 1}: {why}")
    if len(distinct) < 3:
        raise InputError(f"pretraining needs at least 3 distinct sequences, got {len(distinct)}")
    held = _held_out(distinct, holdout, seed)
    train = [s for s in distinct if s not in held]
    heldout = [s for s in distinct if s in held]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    settings = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "holdout": holdout, "seed": seed}
    resolved = {"step": STEP_PROTEIN, "model": asdict(model_config), "pretrain": settings,
                "sequences": _digest(distinct)}  # fmt: skip
    dev = torch.device(device)
    torch.manual_seed(seed)
    model = ProteinMLM(model_config).to(dev)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    started = time.perf_counter()

    def one_epoch(index: int) -> dict[str, Any]:
        generator = torch.Generator().manual_seed(
            int(np.random.SeedSequence([seed, index]).generate_state(1)[0])
        )
        order = np.random.default_rng([seed, index]).permutation(len(train))
        losses = []
        train_mode(model)
        for rows in _batches(order, batch_size):
            tokens, mask = residue_tokens([train[i] for i in rows], model_config.max_length)
            corrupted, chosen = mask_residues(tokens, mask, generator)
            logits = model(corrupted.to(dev), mask.to(dev))
            loss = masked_loss(logits, tokens.to(dev), chosen.to(dev))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        return {"epoch": index + 1, "loss": float(np.mean(losses)), "seconds": time.perf_counter() - started}

    def evaluate() -> dict[str, float]:
        return _masked_scores(model, heldout, seed, dev, 256)

    before, history = _fit(out, resolved, model, optimizer, epochs, evaluate, one_epoch)
    after = evaluate()
    metrics = {
        "sequences": len(train),
        "heldout_sequences": len(heldout),
        "before": before,
        "after": after,
    }
    LOG.info("masked-token accuracy %.4f → %.4f on %d held-out sequences", before["masked_accuracy"],
             after["masked_accuracy"], len(heldout))  # fmt: skip
    return _finish(out, model, STEP_PROTEIN, metrics, history, started)


class _ContactData:
    """Featurised pairs (:class:`PairData`) with each pair's ``(L_max,)`` contact labels, gathered per batch."""

    def __init__(
        self, records: Sequence[Interaction], contacts: dict[str, list[int]], model_config: CPIConfig
    ) -> None:
        self.pairs = PairData(records, model_config)
        proteins = list(dict.fromkeys(r.protein for r in records))
        lengths = {r.protein: len(r.sequence) for r in records}
        width = min(max(lengths.values()), model_config.max_length)
        labels = torch.zeros(len(proteins), width)
        for row, protein in enumerate(proteins):
            positions = contacts[protein]
            if positions and positions[-1] >= lengths[protein]:
                raise InputError(
                    f"contacts of {protein}: position {positions[-1]} lies beyond its {lengths[protein]} residues"
                )
            kept = [p for p in positions if p < width]  # residues past max_length are cut off
            labels[row, kept] = 1.0
        self.labels = labels
        index = {p: i for i, p in enumerate(proteins)}
        self.protein_rows = torch.tensor([index[r.protein] for r in records])

    def batch(self, rows: Sequence[int], device: torch.device) -> tuple[tuple, torch.Tensor]:
        """The model's inputs for ``rows`` and their ``(B, L)`` contact labels."""
        molecules, tokens, mask = self.pairs.batch(rows, device)
        labels = self.labels[self.protein_rows[list(rows)], : tokens.shape[1]]
        return (molecules, tokens, mask), labels.to(device)


@torch.no_grad()
def _contact_auc(
    model: StructureModel, data: _ContactData, rows: Sequence[int], device: torch.device, batch_size: int
) -> float:
    """ROC-AUC of the contact logits over every real residue of the pairs ``rows``."""
    model.eval()
    scores, labels = [], []
    for k in range(0, len(rows), batch_size):
        inputs, target = data.batch(rows[k : k + batch_size], device)
        real = inputs[2]
        scores.append(model(*inputs)[real].cpu())
        labels.append(target[real].cpu())
    return roc_auc(torch.cat(labels).numpy(), torch.cat(scores).numpy())


def train_structure(
    records: Sequence[Interaction],
    contacts: dict[str, list[int]],
    out: str | Path,
    *,
    model_config: CPIConfig | None = None,
    init: str | Path | None = None,
    freeze: Sequence[str] = (),
    epochs: int = 10,
    batch_size: int = 32,
    lr: float = 1e-3,
    holdout: float = 0.2,
    seed: int = 0,
    device: str = "cpu",
) -> StepResult:
    """Step 2: residue-contact training of the encoders on (molecule, protein) pairs (resumable).

    Args:
        records: the pairs; those whose protein has no entry in ``contacts`` are left out.
        contacts: each protein's contact residue positions (:func:`read_contacts`).
        init: a step-1 folder (its run or model folder) whose protein encoder is loaded before training.
        freeze: :data:`FREEZE_GROUPS` to keep as initialised.
        holdout: the share of families (proteins, for records without one) whose pairs are kept apart to measure
            the contact ROC-AUC before and after training.

    Raises:
        InputError: no record's protein has contacts, a contact lies beyond its sequence, ``init`` is not a
            step-1 folder that fits ``model_config``, or bad settings.
    """
    model_config = model_config or CPIConfig()
    model_config.check()
    _check_training(epochs, batch_size, lr, holdout)
    if init is not None:
        _folder_step(_model_folder(Path(init)), (STEP_PROTEIN,))
    kept = [r for r in records if r.protein in contacts]
    if not kept:
        raise InputError("no record's protein has contacts; the protein ids must match the contacts file")
    if len(kept) < len(records):
        LOG.warning("%d of %d pairs have no contacts for their protein and are left out",
                    len(records) - len(kept), len(records))  # fmt: skip
    groups = [r.family or r.protein for r in kept]
    if len(set(groups)) < 2:
        raise InputError("structure training needs pairs of at least two families (one is held out)")
    held = _held_out(groups, holdout, seed)
    train_rows = np.array([i for i, g in enumerate(groups) if g not in held])
    heldout_rows = [i for i, g in enumerate(groups) if g in held]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    settings = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "holdout": holdout, "seed": seed,
                "init": None if init is None else str(init), "freeze": list(freeze)}  # fmt: skip
    data_digest = _digest(
        [[(r.smiles, r.sequence, r.protein, r.family) for r in kept], sorted(contacts.items())]
    )
    resolved = {
        "step": STEP_STRUCTURE,
        "model": asdict(model_config),
        "structure": settings,
        "data": data_digest,
    }
    dev = torch.device(device)
    torch.manual_seed(seed)
    model = StructureModel(model_config).to(dev)
    frozen = _freeze(model, freeze)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    data = _ContactData(kept, contacts, model_config)
    started = time.perf_counter()

    def start() -> dict[str, Any]:
        loaded = [] if init is None else _load_encoders(model, init, (STEP_PROTEIN,))
        return {"contact_roc_auc": _contact_auc(model, data, heldout_rows, dev, 256), "initialised": loaded}

    def one_epoch(index: int) -> dict[str, Any]:
        order = np.random.default_rng([seed, index]).permutation(train_rows)
        losses = []
        train_mode(model)
        for rows in _batches(order, batch_size):
            inputs, labels = data.batch(rows.tolist(), dev)
            real = inputs[2]
            loss = F.binary_cross_entropy_with_logits(model(*inputs)[real], labels[real])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        return {"epoch": index + 1, "loss": float(np.mean(losses)), "seconds": time.perf_counter() - started}

    before, history = _fit(out, resolved, model, optimizer, epochs, start, one_epoch)
    after = {"contact_roc_auc": _contact_auc(model, data, heldout_rows, dev, 256)}
    metrics = {
        "pairs": len(train_rows),
        "heldout_pairs": len(heldout_rows),
        "heldout_groups": sorted(held),
        "frozen": frozen,
        "before": before,
        "after": after,
    }
    LOG.info("contact ROC-AUC %.4f → %.4f on %d held-out pairs", before["contact_roc_auc"],
             after["contact_roc_auc"], len(heldout_rows))  # fmt: skip
    return _finish(out, model, STEP_STRUCTURE, metrics, history, started)
