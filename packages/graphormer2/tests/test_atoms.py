"""3D systems: validation, padding, standardisation and the SDF reader."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from graphormer2.atoms import (
    OC20_STANDARDISATION,
    AtomsItem,
    Standardisation,
    collate_atoms,
    read_sdf_3d,
)
from rdkit import Chem
from rdkit.Chem import rdDepictor, rdDistGeom

from papers_common import InputError

torch.set_num_threads(1)

F64 = torch.float64


def embedded(smiles: str, seed: int = 0) -> Chem.Mol:
    mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
    params = rdDistGeom.ETKDGv3()
    params.randomSeed = seed
    assert rdDistGeom.EmbedMolecule(mol, params) == 0
    return mol


def write_sdf(path: Path, mols: list[Chem.Mol]) -> Path:
    with Chem.SDWriter(str(path)) as writer:
        for mol in mols:
            writer.write(mol)
    return path


def test_collate_pads_with_zeros_and_false() -> None:
    a = AtomsItem(
        atoms=[8, 1, 1],
        tags=[2, 2, 2],
        pos=torch.arange(9.0).reshape(3, 3),
        real_mask=[True, True, True],
        energy=1.5,
        deltapos=torch.ones(3, 3),
    )
    b = AtomsItem(
        atoms=[6, 6, 1, 1, 1],
        tags=[0, 1, 2, 2, 2],
        pos=-torch.arange(15.0).reshape(5, 3),
        real_mask=[True, True, True, True, False],
        energy=-2.0,
        deltapos=torch.full((5, 3), 2.0),
    )
    batch = collate_atoms([a, b])
    assert batch.atoms.tolist() == [[8, 1, 1, 0, 0], [6, 6, 1, 1, 1]]
    assert batch.tags.tolist() == [[2, 2, 2, 0, 0], [0, 1, 2, 2, 2]]
    assert batch.real_mask.tolist() == [[True, True, True, False, False], [True, True, True, True, False]]
    assert batch.target_mask.tolist() == [[True, True, True, False, False], [False, True, True, True, False]]
    assert batch.padding_mask.tolist() == [[False] * 3 + [True] * 2, [False] * 5]
    torch.testing.assert_close(batch.pos[0, :3], a.pos)
    assert bool((batch.pos[0, 3:] == 0).all() and (batch.deltapos[0, 3:] == 0).all())
    assert batch.energy.tolist() == [1.5, -2.0]
    moved = batch.to("cpu", F64)
    assert moved.pos.dtype == F64
    assert moved.atoms.dtype == torch.long
    assert moved.real_mask.dtype == torch.bool
    assert len(moved) == 2


def test_items_reject_bad_input() -> None:
    pos = torch.zeros(2, 3)
    with pytest.raises(InputError, match="mol7: atom 1 has atomic number 119; atoms are elements"):
        AtomsItem.molecule([6, 119], pos, name="mol7")
    assert AtomsItem.molecule([78, 79], pos).atoms.tolist() == [78, 79]  # Pt, Au: elements like any other
    with pytest.raises(InputError, match="atomic number 0"):
        AtomsItem.molecule([0, 6], pos)
    with pytest.raises(InputError, match="pos has shape"):
        AtomsItem.molecule([6, 6, 6], pos)
    with pytest.raises(InputError, match="tags"):
        AtomsItem([6, 6], [0, 3], pos, [True, True], 0.0, pos)
    with pytest.raises(InputError, match="NaN"):
        AtomsItem.molecule([6, 6], torch.tensor([[0.0, 0.0, float("nan")], [1.0, 0.0, 0.0]]))
    with pytest.raises(InputError, match="empty"):
        collate_atoms([])


def test_standardisation_fit_and_round_trip() -> None:
    generator = torch.Generator().manual_seed(0)
    items = []
    for n, energy in ((3, 1.0), (4, 4.0), (2, -2.0)):
        item = AtomsItem.molecule([6] * n, torch.randn(n, 3, generator=generator, dtype=F64), energy=energy)
        item.deltapos = torch.randn(n, 3, generator=generator, dtype=F64) + torch.tensor(
            [1.0, 0.0, -1.0], dtype=F64
        )
        items.append(item)
    items[0].tags = torch.tensor([0, 2, 2])  # a fixed atom: not part of the Δpos statistics
    fitted = Standardisation.fit(items)
    assert fitted.energy_mean == pytest.approx(1.0)
    assert fitted.energy_std == pytest.approx((((0.0**2) + 3.0**2 + 3.0**2) / 3) ** 0.5)
    counted = torch.cat([items[0].deltapos[1:], items[1].deltapos, items[2].deltapos])
    assert fitted.deltapos_mean == pytest.approx(counted.mean(dim=0).tolist())
    assert fitted.deltapos_std == pytest.approx(counted.std(dim=0, unbiased=False).tolist())
    isotropic = Standardisation.fit(items, isotropic=True)
    assert isotropic.deltapos_mean == (0.0, 0.0, 0.0)
    assert isotropic.deltapos_std == pytest.approx([float(counted.square().mean().sqrt())] * 3)
    x = torch.randn(5, 3, dtype=F64)
    torch.testing.assert_close(fitted.destandardise_deltapos(fitted.standardise_deltapos(x)), x)
    standardised = fitted.standardise_deltapos(counted)
    torch.testing.assert_close(standardised.mean(dim=0), torch.zeros(3, dtype=F64), atol=1e-12, rtol=0)
    e = torch.tensor([1.0, 4.0, -2.0], dtype=F64)
    torch.testing.assert_close(fitted.destandardise_energy(fitted.standardise_energy(e)), e)
    assert OC20_STANDARDISATION.energy_mean == pytest.approx(-1.4730, abs=1e-4)
    assert OC20_STANDARDISATION.deltapos_std == pytest.approx((1.786, 1.787, 0.802), abs=1e-3)
    with pytest.raises(InputError, match="positive"):
        Standardisation(0.0, -1.0)


def test_read_sdf_3d_keeps_coordinates_and_energy(tmp_path: Path) -> None:
    mols = [embedded("CCO"), embedded("c1ccccc1O", seed=1)]
    for mol, energy in zip(mols, ("-1.25", "3.5"), strict=True):
        mol.SetProp("E", energy)
    items = read_sdf_3d(write_sdf(tmp_path / "ok.sdf", mols), energy_prop="E")
    assert [item.energy for item in items] == [-1.25, 3.5]
    for item, mol in zip(items, mols, strict=True):
        assert item.atoms.tolist() == [a.GetAtomicNum() for a in mol.GetAtoms()]
        torch.testing.assert_close(
            item.pos.double(), torch.tensor(mol.GetConformer().GetPositions()), atol=1e-4, rtol=0
        )
        assert bool((item.tags == 2).all() and item.real_mask.all() and (item.deltapos == 0).all())
    assert torch.isnan(torch.tensor(read_sdf_3d(tmp_path / "ok.sdf")[0].energy))


def test_read_sdf_3d_rejects_2d_records(tmp_path: Path) -> None:
    flat = Chem.MolFromSmiles("CCN")
    rdDepictor.Compute2DCoords(flat)
    path = write_sdf(tmp_path / "mixed.sdf", [embedded("CCO"), flat])
    with pytest.raises(InputError, match=r"mixed\.sdf: record 1: .*the 3D model needs 3D coordinates"):
        read_sdf_3d(path)
    # flagged 3D but every z is 0: still a flat drawing (more than 3 atoms, which could not be planar by chance)
    drawing = Chem.MolFromSmiles("CCNC(C)=O")
    rdDepictor.Compute2DCoords(drawing)
    drawing.GetConformer().Set3D(True)
    path = write_sdf(tmp_path / "zeros.sdf", [drawing])
    with pytest.raises(InputError, match=r"zeros\.sdf: record 0: .*3D coordinates"):
        read_sdf_3d(path)
    # water embedded in 3D lies in the z = 0 plane: 3 atoms are accepted
    water = embedded("O")
    assert bool((torch.tensor(water.GetConformer().GetPositions())[:, 2] == 0).all())
    assert len(read_sdf_3d(write_sdf(tmp_path / "water.sdf", [water]))) == 1


def test_read_sdf_3d_reports_bad_records(tmp_path: Path) -> None:
    mol = embedded("CCO")
    path = write_sdf(tmp_path / "noprop.sdf", [mol])
    with pytest.raises(InputError, match=r"noprop\.sdf: record 0: no SD property 'E'"):
        read_sdf_3d(path, energy_prop="E")
    mol.SetProp("E", "high")
    path = write_sdf(tmp_path / "text.sdf", [mol])
    with pytest.raises(InputError, match="not a number"):
        read_sdf_3d(path, energy_prop="E")
    heavy = Chem.RWMol(embedded("CC"))
    heavy.GetAtomWithIdx(0).SetAtomicNum(78)  # platinum is read like any element
    path = write_sdf(tmp_path / "pt.sdf", [embedded("N"), heavy])
    assert read_sdf_3d(path)[1].atoms[0] == 78
    with pytest.raises(InputError, match="no such SDF file"):
        read_sdf_3d(tmp_path / "missing.sdf")
