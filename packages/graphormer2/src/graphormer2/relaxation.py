"""An offline "initial → relaxed" task for Graphormer-3D (spec §6 and §8.3): a mini IS2RE on NCI molecules.

For each SMILES of RDKit's ``NCI/first_5K.smi`` (in file order):

1. add hydrogens; embed one conformer with ETKDGv3 (``randomSeed`` = the task seed): the **initial** positions;
2. minimise it with the MMFF94 force field (RDKit, up to ``max_iters`` iterations): the **relaxed** positions;
3. remove rigid motion: the relaxed conformer is superposed onto the initial one (least-squares rotation and
   translation of all atoms, RDKit's quaternion alignment), so that Δpos = relaxed − initial holds only the
   internal relaxation. The minimiser already keeps the centroid (MMFF forces sum to zero), but its finite steps
   turn the molecule a little: for acetaminophen the rotation makes up about 12 % of Σ_i |Δpos_i|² before the
   superposition. Afterwards Σ_i Δpos_i = 0 and no rotation lowers Σ_i |Δpos_i|².

Targets: an MMFF94 energy in **kcal/mol** (optionally divided by the number of atoms) and Δpos in Å. The energy is
either the relaxed conformer's energy (``energy_target="relaxed"``, the IS2RE analogue) or the relaxation energy
E(initial) − E(relaxed) ≥ 0 (``"relaxation"``): the part of the energy that depends on the input geometry, which the
relaxed energy buries under composition terms (bond and angle reference energies of the molecule's atom types). All atoms are real and tagged 2, so all count in the energy sum and the Δpos loss. A molecule is skipped,
and counted by reason, when RDKit cannot parse it, it has more than ``max_atoms`` atoms (hydrogens included), it
fails to embed, MMFF has no parameters for it, or the minimisation does not converge.

Generated molecules are cached (safetensors, atomic writes) under a name keyed by every setting that changes them
(n, seed, max_atoms, max_iters, the RDKit version); splits and ``per_atom`` are applied after loading.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from graphormer2.atoms import AtomsItem, Standardisation
from papers_common import InputError, atomic_path, progress

CACHE_FORMAT = 1
LOGGER = logging.getLogger(__name__)

EnergyTarget = Literal["relaxed", "relaxation"]


class RelaxationError(Exception):
    """A molecule that cannot enter the task; ``reason`` is one of the skip counters' keys."""

    def __init__(self, reason: str, smiles: str) -> None:
        super().__init__(f"{smiles}: {reason}")
        self.reason = reason


@dataclass(frozen=True)
class Relaxation:
    """One molecule's initial and MMFF-relaxed conformers.

    Attributes:
        smiles: the input SMILES. atoms: long ``(n,)`` atomic numbers, hydrogens included.
        initial_pos: float64 ``(n, 3)`` ETKDGv3 positions (Å). relaxed_pos: float64 ``(n, 3)`` MMFF minimum,
        superposed onto ``initial_pos``. initial_energy, relaxed_energy: MMFF94 energies (kcal/mol).
    """

    smiles: str
    atoms: torch.Tensor
    initial_pos: torch.Tensor
    relaxed_pos: torch.Tensor
    initial_energy: float
    relaxed_energy: float

    def to_item(
        self, *, per_atom: bool = False, energy_target: EnergyTarget = "relaxed", name: str = ""
    ) -> AtomsItem:
        """The molecule as a training system (default float dtype): initial positions in; energy, Δpos out.

        ``energy_target``: ``"relaxed"`` (E of the relaxed conformer) or ``"relaxation"`` (E initial − E relaxed).
        """
        energy = self.relaxed_energy
        if energy_target == "relaxation":
            energy = self.initial_energy - self.relaxed_energy
        elif energy_target != "relaxed":
            raise InputError(f"energy_target must be 'relaxed' or 'relaxation', got {energy_target!r}")
        energy = energy / len(self.atoms) if per_atom else energy
        dtype = torch.get_default_dtype()
        deltapos = (self.relaxed_pos - self.initial_pos).to(dtype)
        return AtomsItem.molecule(
            self.atoms, self.initial_pos.to(dtype), energy=energy, deltapos=deltapos, name=name
        )


def relax_molecule(smiles: str, *, seed: int = 0, max_atoms: int = 64, max_iters: int = 2000) -> Relaxation:
    """ETKDGv3 embedding → MMFF94 minimisation → superposition (see the module docstring) for one SMILES.

    Raises:
        RelaxationError: the molecule is skipped; ``reason`` says why.
    """
    from rdkit import Chem, rdBase
    from rdkit.Chem import rdDistGeom, rdForceFieldHelpers
    from rdkit.Numerics import rdAlignment

    with (
        rdBase.BlockLogs()
    ):  # RDKit reports every unparametrised atom on stderr; the skip counters say it once
        mol = Chem.MolFromSmiles(smiles)
        if mol is None:
            raise RelaxationError("unparsable", smiles)
        mol = Chem.AddHs(mol)
        atoms = torch.tensor([atom.GetAtomicNum() for atom in mol.GetAtoms()], dtype=torch.long)
        if len(atoms) > max_atoms:
            raise RelaxationError("too_many_atoms", smiles)
        params = rdDistGeom.ETKDGv3()
        params.randomSeed = seed
        if rdDistGeom.EmbedMolecule(mol, params) != 0:
            raise RelaxationError("embedding_failed", smiles)
        properties = rdForceFieldHelpers.MMFFGetMoleculeProperties(mol)
        if properties is None:
            raise RelaxationError("no_mmff_parameters", smiles)
        force_field = rdForceFieldHelpers.MMFFGetMoleculeForceField(mol, properties)
        initial = np.array(mol.GetConformer().GetPositions())
        initial_energy = force_field.CalcEnergy()
        if force_field.Minimize(maxIts=max_iters) != 0:
            raise RelaxationError("not_converged", smiles)
        relaxed_energy = force_field.CalcEnergy()
        relaxed = np.array(force_field.Positions()).reshape(-1, 3)
    _, transform = rdAlignment.GetAlignmentTransform(initial, relaxed)
    aligned = relaxed @ transform[:3, :3].T + transform[:3, 3]
    return Relaxation(
        smiles=smiles,
        atoms=atoms,
        initial_pos=torch.from_numpy(initial),
        relaxed_pos=torch.from_numpy(aligned),
        initial_energy=float(initial_energy),
        relaxed_energy=float(relaxed_energy),
    )


@dataclass
class RelaxationTask:
    """The mini relaxation task, split into train / valid / test systems.

    Attributes:
        train, valid, test: the systems (energies in kcal/mol, or kcal/mol per atom).
        standardisation: constants fitted on ``train`` (isotropic Δpos, see :meth:`Standardisation.fit`); pass
            them to the model with ``Graphormer3DConfig.with_standardisation``.
        skipped: molecules left out, by reason. seconds: time spent generating (0 when read from the cache).
        cache_path: the cache file, or None when caching is off. from_cache: whether it was read from there.
    """

    train: list[AtomsItem]
    valid: list[AtomsItem]
    test: list[AtomsItem]
    standardisation: Standardisation
    skipped: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    cache_path: Path | None = None
    from_cache: bool = False

    @property
    def items(self) -> list[AtomsItem]:
        """All systems: train, then valid, then test."""
        return [*self.train, *self.valid, *self.test]

    @property
    def molecules_per_second(self) -> float:
        """Generation throughput (successful molecules per second; NaN on a cache hit)."""
        return len(self.items) / self.seconds if self.seconds > 0 else float("nan")


def nci_smiles() -> list[str]:
    """The SMILES of RDKit's ``NCI/first_5K.smi`` (4,999 lines: SMILES, then an id), in file order."""
    from rdkit import RDConfig

    path = Path(RDConfig.RDDataDir) / "NCI" / "first_5K.smi"
    if not path.is_file():
        raise InputError(f"{path}: not found; this RDKit install does not ship its NCI data")
    return [line.split()[0] for line in path.read_text().splitlines() if line.strip()]


def _generate(settings: dict[str, int]) -> tuple[list[Relaxation], Counter[str]]:
    relaxations: list[Relaxation] = []
    skipped: Counter[str] = Counter()
    smiles = nci_smiles()
    with progress(total=settings["n"], desc="ETKDG + MMFF", unit="mol") as bar:
        for text in smiles:
            if len(relaxations) == settings["n"]:
                break
            try:
                relaxations.append(
                    relax_molecule(
                        text,
                        seed=settings["seed"],
                        max_atoms=settings["max_atoms"],
                        max_iters=settings["max_iters"],
                    )
                )
            except RelaxationError as error:
                skipped[error.reason] += 1
                bar.set_postfix(skipped=sum(skipped.values()), refresh=False)
                bar.update(0)  # a record on time even through a run of skipped molecules
                continue
            bar.update()
    return relaxations, skipped


def _save(path: Path, relaxations: list[Relaxation], skipped: Counter[str], settings: dict[str, int]) -> None:
    from safetensors.torch import save_file

    tensors = {
        "atoms": torch.cat([r.atoms for r in relaxations]),
        "initial_pos": torch.cat([r.initial_pos for r in relaxations]),
        "relaxed_pos": torch.cat([r.relaxed_pos for r in relaxations]),
        "num_atoms": torch.tensor([len(r.atoms) for r in relaxations]),
        "initial_energy": torch.tensor([r.initial_energy for r in relaxations], dtype=torch.float64),
        "relaxed_energy": torch.tensor([r.relaxed_energy for r in relaxations], dtype=torch.float64),
    }
    metadata = {
        "settings": json.dumps(settings),
        "smiles": json.dumps([r.smiles for r in relaxations]),
        "skipped": json.dumps(dict(skipped)),
    }
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)


def _load(path: Path) -> tuple[list[Relaxation], Counter[str]]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata()
        # safe_open has no __iter__, hence keys()
        tensors = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118
    sizes = tensors["num_atoms"].tolist()
    parts = {name: torch.split(tensors[name], sizes) for name in ("atoms", "initial_pos", "relaxed_pos")}
    relaxations = [
        Relaxation(smiles, atoms, initial, relaxed, float(e0), float(e1))
        for smiles, atoms, initial, relaxed, e0, e1 in zip(
            json.loads(metadata["smiles"]),
            parts["atoms"],
            parts["initial_pos"],
            parts["relaxed_pos"],
            tensors["initial_energy"].tolist(),
            tensors["relaxed_energy"].tolist(),
            strict=True,
        )
    ]
    return relaxations, Counter(json.loads(metadata["skipped"]))


def relaxation_task(
    n: int = 1000,
    *,
    seed: int = 0,
    cache_dir: str | os.PathLike[str] | None = None,
    max_atoms: int = 64,
    max_iters: int = 2000,
    per_atom: bool = False,
    energy_target: EnergyTarget = "relaxed",
    split: tuple[float, float] = (0.8, 0.1),
) -> RelaxationTask:
    """Build (or read from the cache) the first ``n`` NCI molecules that relax, and split them.

    Args:
        n: molecules wanted (fewer when the file runs out first).
        seed: the ETKDGv3 random seed and the seed of the split permutation.
        cache_dir: directory of the cache file; None disables caching.
        max_atoms: skip molecules with more atoms, hydrogens included.
        max_iters: MMFF minimisation iterations; a molecule that has not converged by then is skipped.
        per_atom: energy target divided by the number of atoms.
        energy_target: ``"relaxed"`` (the relaxed conformer's energy) or ``"relaxation"`` (E initial − E relaxed).
        split: fractions of train and valid systems (test gets the rest), of a permutation drawn from ``seed``.
    """
    if n < 3:
        raise InputError(f"relaxation_task: n must be at least 3 (train, valid and test), got {n}")
    if max_atoms < 1 or max_iters < 1:
        raise InputError(
            f"relaxation_task: max_atoms and max_iters must be positive, got {max_atoms}, {max_iters}"
        )
    if energy_target not in ("relaxed", "relaxation"):
        raise InputError(
            f"relaxation_task: energy_target must be 'relaxed' or 'relaxation', got {energy_target!r}"
        )
    train_fraction, valid_fraction = split
    if not (train_fraction > 0 and valid_fraction >= 0 and train_fraction + valid_fraction <= 1):
        raise InputError(f"relaxation_task: split fractions {split} must be positive and sum to at most 1")
    from rdkit import __version__ as rdkit_version

    settings = {"format": CACHE_FORMAT, "n": n, "seed": seed, "max_atoms": max_atoms, "max_iters": max_iters}
    key = hashlib.sha256(
        json.dumps({**settings, "rdkit": rdkit_version}, sort_keys=True).encode()
    ).hexdigest()
    cache_path = None if cache_dir is None else Path(cache_dir) / f"nci_relaxation-{key[:16]}.safetensors"
    seconds = 0.0
    from_cache = cache_path is not None and cache_path.is_file()
    if from_cache:
        relaxations, skipped = _load(cache_path)
        LOGGER.info("relaxation task: read %d molecules from %s", len(relaxations), cache_path)
    else:
        start = time.perf_counter()
        relaxations, skipped = _generate(settings)
        seconds = time.perf_counter() - start
        if cache_path is not None:
            _save(cache_path, relaxations, skipped, settings)
    items = [
        r.to_item(per_atom=per_atom, energy_target=energy_target, name=f"NCI first_5K: {r.smiles}")
        for r in relaxations
    ]
    order = torch.randperm(len(items), generator=torch.Generator().manual_seed(seed)).tolist()
    n_train = max(2, int(train_fraction * len(items)))
    n_valid = int(valid_fraction * len(items))
    train = [items[i] for i in order[:n_train]]
    return RelaxationTask(
        train=train,
        valid=[items[i] for i in order[n_train : n_train + n_valid]],
        test=[items[i] for i in order[n_train + n_valid :]],
        standardisation=Standardisation.fit(train, isotropic=True),
        skipped=dict(skipped),
        seconds=seconds,
        cache_path=cache_path,
        from_cache=from_cache,
    )
