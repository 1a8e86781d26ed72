"""3D atomic systems for Graphormer-3D (spec §3.3): items, padded batches, standardisation and an SDF reader.

An :class:`AtomsItem` is one system (a molecule, or an OC20 slab + adsorbate after :mod:`graphormer2.pbc` has added
its periodic images); :func:`collate_atoms` pads a list of them into an :class:`AtomsBatch`, the input of
:class:`graphormer2.model3d.Graphormer3D`. Atom types are atomic numbers of real elements, ``1 … 118`` (0 is
padding), so the metals of OC20's catalysts (Pt, Au, Ir ... up to Bi) are systems like any other; the model embeds
atomic numbers below its ``atom_types`` (default :data:`ATOM_TYPES`) and rejects larger ones in its forward pass.

Tags follow OC20: 0 sub-surface (fixed), 1 surface, 2 adsorbate (free). Molecules are all tag 2, so every atom counts
in the energy sum and in the Δpos loss.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import torch
from torch.nn.utils.rnn import pad_sequence

from papers_common import InputError

MAX_ATOMIC_NUMBER = 118
"""The largest atomic number of a known element (oganesson)."""

ATOM_TYPES = 128
"""Default size of Graphormer-3D's atom-type vocabulary, indexed by atomic number (0 = padding): every element, in
the 128 entries of the official code's atomic-number table (``AtomDataset.atom_mapper``, which maps OC20's 56
elements onto the 64 rows of its embedding instead)."""

TAGS = (0, 1, 2)
ADSORBATE_TAG = 2


@dataclass
class AtomsItem:
    """One 3D system of n atoms (the contract shared with the model and the PBC expansion).

    Attributes:
        atoms: long ``(n,)`` atomic numbers in ``[1, 118]``.
        tags: long ``(n,)`` in {0 sub-surface, 1 surface, 2 adsorbate}; molecules use 2.
        pos: float ``(n, 3)`` initial positions (Å).
        real_mask: bool ``(n,)``; False for periodic images (they feed attention but no target).
        energy: the target energy (OC20: relaxed energy in eV; NaN when unknown).
        deltapos: float ``(n, 3)`` target displacement relaxed − initial (Å; 0 for images).
        name: where the system came from (``file:record``), used in error messages.

    Tensors are converted with ``torch.as_tensor`` (NumPy arrays and lists are accepted; floating positions keep
    their dtype, others become the default dtype, and Δpos follows the positions) and validated on construction:
    a bad shape, an atomic number outside ``[1, 118]`` or an unknown tag raises :class:`papers_common.InputError`
    naming ``name``.
    """

    atoms: torch.Tensor
    tags: torch.Tensor
    pos: torch.Tensor
    real_mask: torch.Tensor
    energy: float
    deltapos: torch.Tensor
    name: str = ""

    def __post_init__(self) -> None:
        self.atoms = torch.as_tensor(self.atoms, dtype=torch.long)
        self.tags = torch.as_tensor(self.tags, dtype=torch.long)
        self.pos = torch.as_tensor(self.pos)
        if not self.pos.is_floating_point():
            self.pos = self.pos.to(torch.get_default_dtype())
        self.real_mask = torch.as_tensor(self.real_mask, dtype=torch.bool)
        self.deltapos = torch.as_tensor(self.deltapos, dtype=self.pos.dtype)
        self.energy = float(self.energy)
        where = self.name or "AtomsItem"
        n = self.atoms.shape[0] if self.atoms.dim() == 1 else -1
        if n < 1:
            raise InputError(
                f"{where}: atoms must be a non-empty 1-D tensor, got shape {tuple(self.atoms.shape)}"
            )
        for field, shape in (("tags", (n,)), ("real_mask", (n,)), ("pos", (n, 3)), ("deltapos", (n, 3))):
            if tuple(getattr(self, field).shape) != shape:
                raise InputError(
                    f"{where}: {field} has shape {tuple(getattr(self, field).shape)}, expected {shape} for {n} atoms"
                )
        bad = (self.atoms < 1) | (self.atoms > MAX_ATOMIC_NUMBER)
        if bad.any():
            index = int(bad.nonzero()[0, 0])
            raise InputError(
                f"{where}: atom {index} has atomic number {int(self.atoms[index])}; atoms are elements, atomic "
                f"numbers 1 to {MAX_ATOMIC_NUMBER} (0 is padding)"
            )
        if ((self.tags < 0) | (self.tags > ADSORBATE_TAG)).any():
            raise InputError(f"{where}: tags must be 0, 1 or 2, got {sorted(set(self.tags.tolist()))}")
        if not torch.isfinite(self.pos).all():
            raise InputError(f"{where}: pos contains NaN or infinite coordinates")

    @classmethod
    def molecule(
        cls,
        atoms: torch.Tensor | Sequence[int],
        pos: torch.Tensor,
        *,
        energy: float = math.nan,
        deltapos: torch.Tensor | None = None,
        name: str = "",
    ) -> AtomsItem:
        """A free molecule: every atom real and tagged 2 (adsorbate-like), Δpos 0 unless given."""
        atoms = torch.as_tensor(atoms, dtype=torch.long)
        pos = torch.as_tensor(pos)
        n = atoms.shape[0]
        return cls(
            atoms=atoms,
            tags=torch.full((n,), ADSORBATE_TAG, dtype=torch.long),
            pos=pos,
            real_mask=torch.ones(n, dtype=torch.bool),
            energy=energy,
            deltapos=torch.zeros_like(pos) if deltapos is None else deltapos,
            name=name,
        )

    @property
    def target_mask(self) -> torch.Tensor:
        """bool ``(n,)``: the atoms that carry targets (real and tag > 0), as the official criterion."""
        return self.real_mask & (self.tags > 0)


@dataclass
class AtomsBatch:
    """B systems padded to N atoms (padding: atom 0, tag 0, position 0, real_mask False, Δpos 0).

    Attributes:
        atoms: long ``(B, N)``; tags: long ``(B, N)``; pos: float ``(B, N, 3)``; real_mask: bool ``(B, N)``;
        energy: float ``(B,)``; deltapos: float ``(B, N, 3)``.
    """

    atoms: torch.Tensor
    tags: torch.Tensor
    pos: torch.Tensor
    real_mask: torch.Tensor
    energy: torch.Tensor
    deltapos: torch.Tensor

    def __len__(self) -> int:
        return self.atoms.shape[0]

    @property
    def padding_mask(self) -> torch.Tensor:
        """bool ``(B, N)``: True at padded slots."""
        return self.atoms.eq(0)

    @property
    def target_mask(self) -> torch.Tensor:
        """bool ``(B, N)``: real atoms with tag > 0 (padding has tag 0, so it is excluded)."""
        return self.real_mask & (self.tags > 0)

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> AtomsBatch:
        """A copy on ``device``; ``dtype`` (optional) casts the floating tensors."""

        def move(value: torch.Tensor) -> torch.Tensor:
            if dtype is not None and value.is_floating_point():
                return value.to(device=device, dtype=dtype)
            return value.to(device)

        return AtomsBatch(**{f.name: move(getattr(self, f.name)) for f in fields(self)})


def collate_atoms(items: Sequence[AtomsItem]) -> AtomsBatch:
    """Pad ``items`` to the largest system into an :class:`AtomsBatch` (official ``pad_1d`` with zeros)."""
    if not items:
        raise InputError("collate_atoms: got an empty list of systems")

    def pad(name: str) -> torch.Tensor:
        return pad_sequence([getattr(item, name) for item in items], batch_first=True)

    return AtomsBatch(
        atoms=pad("atoms"),
        tags=pad("tags"),
        pos=pad("pos"),
        real_mask=pad("real_mask"),
        energy=torch.tensor([item.energy for item in items], dtype=items[0].pos.dtype),
        deltapos=pad("deltapos"),
    )


@dataclass(frozen=True)
class Standardisation:
    """Target standardisation of the IS2RE criterion: ê = (e − μ_e)/σ_e, Δp̂_c = (Δp_c − μ_c)/σ_c per axis c.

    The defaults are the OC20 IS2RE constants of the official criterion (spec §3.3): energies in eV, Δpos in Å.
    """

    energy_mean: float = -1.4729953244844094
    energy_std: float = 2.2707848125378405
    deltapos_mean: tuple[float, float, float] = (0.1353900283575058, 0.06877671927213669, 0.08111362904310226)
    deltapos_std: tuple[float, float, float] = (1.7862379550933838, 1.78688645362854, 0.8023099899291992)

    def __post_init__(self) -> None:
        object.__setattr__(self, "deltapos_mean", tuple(float(v) for v in self.deltapos_mean))
        object.__setattr__(self, "deltapos_std", tuple(float(v) for v in self.deltapos_std))
        if len(self.deltapos_mean) != 3 or len(self.deltapos_std) != 3:
            raise InputError("deltapos_mean and deltapos_std need one value per axis (3 each)")
        if not (self.energy_std > 0 and all(s > 0 for s in self.deltapos_std)):
            raise InputError(
                f"standard deviations must be positive, got energy_std={self.energy_std}, "
                f"deltapos_std={self.deltapos_std}"
            )

    @classmethod
    def fit(cls, items: Sequence[AtomsItem], *, isotropic: bool = False) -> Standardisation:
        """Constants from training systems: energy mean/std over systems, Δpos statistics over target atoms.

        ``isotropic=True`` uses mean 0 and one standard deviation (the RMS of all Δpos components) for the three
        axes, so that the standardisation commutes with rotations: right for free molecules, which have no
        preferred axis, unlike OC20 slabs (z is the surface normal).
        """
        if len(items) < 2:
            raise InputError(f"Standardisation.fit needs at least 2 training systems, got {len(items)}")
        energy = torch.tensor([item.energy for item in items], dtype=torch.float64)
        if not torch.isfinite(energy).all():
            raise InputError("Standardisation.fit: some training systems have no (finite) energy")
        deltapos = torch.cat([item.deltapos[item.target_mask] for item in items]).double()
        if isotropic:
            mean = (0.0, 0.0, 0.0)
            std = (max(float(deltapos.square().mean().sqrt()), 1e-8),) * 3
        else:
            mean = tuple(deltapos.mean(dim=0).tolist())
            std = tuple(max(s, 1e-8) for s in deltapos.std(dim=0, unbiased=False).tolist())
        return cls(
            energy_mean=float(energy.mean()),
            energy_std=max(float(energy.std(unbiased=False)), 1e-8),
            deltapos_mean=mean,
            deltapos_std=std,
        )

    def standardise_energy(self, energy: torch.Tensor) -> torch.Tensor:
        """(e − μ_e)/σ_e, any shape."""
        return (energy - self.energy_mean) / self.energy_std

    def destandardise_energy(self, energy: torch.Tensor) -> torch.Tensor:
        """ê·σ_e + μ_e, any shape: model output back to target units."""
        return energy * self.energy_std + self.energy_mean

    def standardise_deltapos(self, deltapos: torch.Tensor) -> torch.Tensor:
        """(Δp − μ)/σ per axis; ``deltapos`` ``(..., 3)``."""
        return (deltapos - deltapos.new_tensor(self.deltapos_mean)) / deltapos.new_tensor(self.deltapos_std)

    def destandardise_deltapos(self, deltapos: torch.Tensor) -> torch.Tensor:
        """Δp̂·σ + μ per axis; ``deltapos`` ``(..., 3)``."""
        return deltapos * deltapos.new_tensor(self.deltapos_std) + deltapos.new_tensor(self.deltapos_mean)


OC20_STANDARDISATION = Standardisation()


def read_sdf_3d(path: str | os.PathLike[str], energy_prop: str | None = None) -> list[AtomsItem]:
    """Molecules with 3D coordinates from an SDF file, hydrogens kept as written, as free molecules (tag 2).

    Args:
        path: the SDF file.
        energy_prop: an SD property holding the target energy; None leaves the energy NaN.

    Raises:
        InputError: the file is missing; a record cannot be parsed or has no atoms; its coordinates are 2D (a
            conformer not flagged 3D, or more than 3 atoms all at z = 0: "the 3D model needs 3D coordinates"); it
            lacks a numeric ``energy_prop``. The message names the file and
            the record index (0-based).
    """
    from rdkit import Chem

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such SDF file")
    items = []
    for index, mol in enumerate(Chem.SDMolSupplier(str(path), removeHs=False)):
        where = f"{path}: record {index}"
        if mol is None:
            raise InputError(f"{where}: RDKit could not parse this molecule")
        if mol.GetNumAtoms() == 0:
            raise InputError(f"{where}: the record has no atoms")
        conformer = mol.GetConformer()
        pos = torch.as_tensor(conformer.GetPositions(), dtype=torch.get_default_dtype())
        # up to 3 atoms always lie in a plane, which a 3D file may well put at z = 0
        if not conformer.Is3D() or (len(pos) > 3 and bool((pos[:, 2] == 0).all())):
            raise InputError(f"{where}: the coordinates are 2D; the 3D model needs 3D coordinates")
        energy = math.nan
        if energy_prop is not None:
            if not mol.HasProp(energy_prop):
                raise InputError(f"{where}: no SD property {energy_prop!r}")
            try:
                energy = float(mol.GetProp(energy_prop))
            except ValueError:
                raise InputError(
                    f"{where}: SD property {energy_prop!r} is not a number: {mol.GetProp(energy_prop)!r}"
                ) from None
        numbers = [atom.GetAtomicNum() for atom in mol.GetAtoms()]
        items.append(AtomsItem.molecule(numbers, pos, energy=energy, name=where))
    return items
