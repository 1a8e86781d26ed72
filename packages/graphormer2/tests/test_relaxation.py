"""The mini relaxation task: ETKDGv3 → MMFF94 targets, rigid-motion removal, caching and splits."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from graphormer2.relaxation import RelaxationError, nci_smiles, relax_molecule, relaxation_task
from rdkit import Chem
from rdkit.Chem import rdDistGeom, rdForceFieldHelpers

from papers_common import InputError

torch.set_num_threads(1)


def mmff_energy(smiles: str, positions: torch.Tensor) -> float:
    """MMFF94 energy (kcal/mol) of the hydrogen-added molecule at ``positions``."""
    mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
    rdDistGeom.EmbedMolecule(mol, randomSeed=0)
    force_field = rdForceFieldHelpers.MMFFGetMoleculeForceField(
        mol, rdForceFieldHelpers.MMFFGetMoleculeProperties(mol)
    )
    return force_field.CalcEnergy(positions.double().flatten().tolist())


def test_relax_molecule_lowers_the_energy_and_removes_rigid_motion() -> None:
    smiles = "CC(=O)Nc1ccc(O)cc1"
    relaxation = relax_molecule(smiles, seed=0)
    n = len(relaxation.atoms)
    assert relaxation.atoms.tolist() == [
        a.GetAtomicNum() for a in Chem.AddHs(Chem.MolFromSmiles(smiles)).GetAtoms()
    ]
    assert relaxation.initial_pos.shape == relaxation.relaxed_pos.shape == (n, 3)
    assert relaxation.relaxed_energy < relaxation.initial_energy
    # the stored energies are the force field's at the stored positions: superposition is a rigid motion
    assert mmff_energy(smiles, relaxation.initial_pos) == pytest.approx(relaxation.initial_energy, abs=1e-6)
    assert mmff_energy(smiles, relaxation.relaxed_pos) == pytest.approx(relaxation.relaxed_energy, abs=1e-6)
    deltapos = relaxation.relaxed_pos - relaxation.initial_pos
    torch.testing.assert_close(deltapos.sum(dim=0), torch.zeros(3, dtype=torch.float64), atol=1e-9, rtol=0)
    # no rigid motion left: the squared deviation is the Kabsch minimum over all rotations (closed form by SVD)
    a = relaxation.initial_pos - relaxation.initial_pos.mean(dim=0)
    b = relaxation.relaxed_pos - relaxation.relaxed_pos.mean(dim=0)
    singular = torch.linalg.svdvals(b.T @ a)
    sign = torch.sign(torch.det(b.T @ a))
    minimum = a.square().sum() + b.square().sum() - 2 * (singular[0] + singular[1] + sign * singular[2])
    assert float(deltapos.square().sum()) == pytest.approx(float(minimum), rel=1e-6, abs=1e-9)
    assert float(deltapos.square().sum()) > 1e-3  # the relaxation itself moved atoms


def test_skipped_molecules_say_why() -> None:
    for smiles, reason, kwargs in (
        ("C1CC", "unparsable", {}),
        ("CCCCCC", "too_many_atoms", {"max_atoms": 10}),
        ("[Pt]", "no_mmff_parameters", {}),  # nor platinum ones: the 3D model would embed it
        ("CB(C)C", "no_mmff_parameters", {}),  # MMFF94 has no boron types
    ):
        with pytest.raises(RelaxationError) as info:
            relax_molecule(smiles, **kwargs)
        assert info.value.reason == reason


def test_relaxation_task_on_three_molecules(tmp_path: Path) -> None:
    task = relaxation_task(n=3, seed=0, cache_dir=tmp_path, split=(0.67, 0.0))
    assert not task.from_cache
    assert task.seconds > 0
    assert task.molecules_per_second > 0
    assert (len(task.train), len(task.valid), len(task.test)) == (2, 0, 1)
    first = nci_smiles()[:3]
    assert sorted(item.name for item in task.items) == sorted(f"NCI first_5K: {s}" for s in first)
    for item in task.items:
        smiles = item.name.removeprefix("NCI first_5K: ")
        relaxation = relax_molecule(smiles, seed=0)
        assert item.energy == pytest.approx(relaxation.relaxed_energy)
        assert item.energy <= relaxation.initial_energy
        n = len(item.atoms)
        assert item.pos.shape == item.deltapos.shape == (n, 3)
        assert item.pos.dtype == torch.float32
        assert bool(item.real_mask.all() and (item.tags == 2).all())
        torch.testing.assert_close(
            item.deltapos.double(), relaxation.relaxed_pos - relaxation.initial_pos, atol=1e-5, rtol=0
        )
    energies = torch.tensor([item.energy for item in task.train], dtype=torch.float64)
    assert task.standardisation.energy_mean == pytest.approx(float(energies.mean()))
    assert task.standardisation.deltapos_mean == (0.0, 0.0, 0.0)

    again = relaxation_task(n=3, seed=0, cache_dir=tmp_path, split=(0.67, 0.0), per_atom=True)
    assert again.from_cache
    assert again.cache_path == task.cache_path
    assert again.seconds == 0.0
    assert list(tmp_path.iterdir()) == [task.cache_path]
    for cached, fresh in zip(again.items, task.items, strict=True):
        assert cached.name == fresh.name
        assert cached.energy == pytest.approx(fresh.energy / len(fresh.atoms), rel=1e-12)
        assert torch.equal(cached.pos, fresh.pos)
        assert torch.equal(cached.deltapos, fresh.deltapos)
    released = relaxation_task(n=3, seed=0, cache_dir=tmp_path, split=(0.67, 0.0), energy_target="relaxation")
    assert released.from_cache
    for item, fresh in zip(released.items, task.items, strict=True):
        relaxation = relax_molecule(fresh.name.removeprefix("NCI first_5K: "), seed=0)
        assert item.energy == pytest.approx(relaxation.initial_energy - relaxation.relaxed_energy)
        assert item.energy >= 0
    other_seed = relaxation_task(n=3, seed=1, cache_dir=tmp_path, split=(0.67, 0.0))
    assert not other_seed.from_cache
    assert other_seed.cache_path != task.cache_path


def test_relaxation_task_rejects_bad_settings() -> None:
    with pytest.raises(InputError, match="at least 3"):
        relaxation_task(n=2)
    with pytest.raises(InputError, match="split"):
        relaxation_task(n=5, split=(0.9, 0.2))
    with pytest.raises(InputError, match="energy_target"):
        relaxation_task(n=5, energy_target="free")
