"""OGB-style atom and bond features (graphormer2.features) against values OGB's smiles2graph gives and against a
plain per-atom re-implementation of ogb.utils.features (safe_index over the allowable lists)."""

from __future__ import annotations

from itertools import islice

import numpy as np
import pytest
import torch
from graphormer2.features import (
    ATOM_FEATURE_DIMS,
    BOND_FEATURE_DIMS,
    mol_to_graph,
    smiles_to_graph,
    topological_distance,
)
from graphormer2.paths import UNREACHABLE
from rdkit import Chem, RDConfig

torch.set_num_threads(1)

# ogb.utils.features.allowable_features, typed out independently of the module under test
OGB_LISTS = {
    "atomic_num": [*range(1, 119), "misc"],
    "chirality": ["CHI_UNSPECIFIED", "CHI_TETRAHEDRAL_CW", "CHI_TETRAHEDRAL_CCW", "CHI_OTHER", "misc"],
    "degree": [*range(11), "misc"],
    "formal_charge": [*range(-5, 6), "misc"],
    "num_h": [*range(9), "misc"],
    "radical_e": [*range(5), "misc"],
    "hybridization": ["SP", "SP2", "SP3", "SP3D", "SP3D2", "misc"],
    "aromatic": [False, True],
    "in_ring": [False, True],
    "bond_type": ["SINGLE", "DOUBLE", "TRIPLE", "AROMATIC", "misc"],
    "bond_stereo": ["STEREONONE", "STEREOZ", "STEREOE", "STEREOCIS", "STEREOTRANS", "STEREOANY"],
    "conjugated": [False, True],
}

EDGE_CASES = [
    "c1ccccc1",
    "CCO",
    "C[C@H](N)O",  # tetrahedral chirality
    "F/C=C/F",  # E stereo bond
    "F/C=C\\F",  # Z stereo bond
    "[CH2]C",  # radical
    "[NH4+]",
    "[O-][N+](=O)c1ccccc1",
    "S(F)(F)(F)(F)(F)F",  # degree 6, sp3d2
    "*C(=O)O",  # dummy atom: atomic number 0 -> misc
    "[2H]C([2H])([2H])[2H]",
    "C#N",
    "[Na+].[Cl-]",  # no bonds
    "[Fe+6]",  # formal charge beyond ±5 -> misc
    "[H][H]",
]


def safe_index(values: list, value: object) -> int:
    return values.index(value) if value in values else len(values) - 1


def reference_atom(atom: Chem.Atom) -> list[int]:
    return [
        safe_index(OGB_LISTS["atomic_num"], atom.GetAtomicNum()),
        safe_index(OGB_LISTS["chirality"], str(atom.GetChiralTag())),
        safe_index(OGB_LISTS["degree"], atom.GetTotalDegree()),
        safe_index(OGB_LISTS["formal_charge"], atom.GetFormalCharge()),
        safe_index(OGB_LISTS["num_h"], atom.GetTotalNumHs()),
        safe_index(OGB_LISTS["radical_e"], atom.GetNumRadicalElectrons()),
        safe_index(OGB_LISTS["hybridization"], str(atom.GetHybridization())),
        OGB_LISTS["aromatic"].index(atom.GetIsAromatic()),
        OGB_LISTS["in_ring"].index(atom.IsInRing()),
    ]


def reference_bond(bond: Chem.Bond) -> list[int]:
    return [
        safe_index(OGB_LISTS["bond_type"], str(bond.GetBondType())),
        safe_index(OGB_LISTS["bond_stereo"], str(bond.GetStereo())),
        OGB_LISTS["conjugated"].index(bond.GetIsConjugated()),
    ]


def reference_graph(mol: Chem.Mol) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """smiles2graph's loop: per atom, then both directions of each bond in bond order."""
    x = np.array([reference_atom(a) for a in mol.GetAtoms()], dtype=np.int64).reshape(-1, 9)
    edges, attrs = [], []
    for bond in mol.GetBonds():
        i, j = bond.GetBeginAtomIdx(), bond.GetEndAtomIdx()
        edges += [(i, j), (j, i)]
        attrs += [reference_bond(bond)] * 2
    edge_index = np.array(edges, dtype=np.int64).reshape(-1, 2).T
    return x, edge_index, np.array(attrs, dtype=np.int64).reshape(-1, 3)


def nci_smiles(count: int) -> list[str]:
    with open(f"{RDConfig.RDDataDir}/NCI/first_5K.smi", encoding="utf-8") as handle:
        return [line.split()[0] for line in islice(handle, count)]


def test_known_ogb_values() -> None:
    """Rows smiles2graph gives for benzene and ethanol (ogb 1.3)."""
    benzene = smiles_to_graph("c1ccccc1")
    assert benzene is not None
    np.testing.assert_array_equal(benzene.x, np.tile([5, 0, 3, 5, 1, 0, 1, 1, 1], (6, 1)))
    np.testing.assert_array_equal(benzene.edge_attr, np.tile([3, 0, 1], (12, 1)))
    ethanol = smiles_to_graph("CCO")
    assert ethanol is not None
    np.testing.assert_array_equal(
        ethanol.x, [[5, 0, 4, 5, 3, 0, 2, 0, 0], [5, 0, 4, 5, 2, 0, 2, 0, 0], [7, 0, 2, 5, 1, 0, 2, 0, 0]]
    )
    np.testing.assert_array_equal(ethanol.edge_index, [[0, 1, 1, 2], [1, 0, 2, 1]])
    np.testing.assert_array_equal(ethanol.edge_attr, np.zeros((4, 3)))


@pytest.mark.parametrize("smiles", EDGE_CASES)
def test_edge_cases_match_reference(smiles: str) -> None:
    mol = Chem.MolFromSmiles(smiles)
    graph = mol_to_graph(mol)
    x, edge_index, edge_attr = reference_graph(mol)
    np.testing.assert_array_equal(graph.x, x)
    np.testing.assert_array_equal(graph.edge_index, edge_index)
    np.testing.assert_array_equal(graph.edge_attr, edge_attr)
    assert graph.num_nodes == mol.GetNumAtoms()
    assert graph.x.dtype == graph.edge_index.dtype == graph.edge_attr.dtype == np.int64


def test_misc_buckets_are_used() -> None:
    """The edge cases reach the misc bucket of atomic number and formal charge, and real chirality/stereo tags."""
    dummy = smiles_to_graph("*C")
    iron = smiles_to_graph("[Fe+6]")
    chiral = smiles_to_graph("C[C@H](N)O")
    stereo = smiles_to_graph("F/C=C/F")
    assert dummy is not None
    assert iron is not None
    assert chiral is not None
    assert stereo is not None
    assert dummy.x[0, 0] == 118
    assert iron.x[0, 3] == 11
    assert chiral.x[1, 1] in (1, 2)
    assert (chiral.x[[0, 2, 3], 1] == 0).all()
    assert 2 in stereo.edge_attr[:, 1]  # STEREOE


def test_newer_rdkit_tags_go_to_the_last_entry() -> None:
    """Tags OGB's lists lack (and that make OGB raise) map to chirality misc and stereo STEREOANY."""
    mol = Chem.RWMol(Chem.MolFromSmiles("CC=CC"))
    mol.GetAtomWithIdx(0).SetChiralTag(Chem.ChiralType.CHI_ALLENE)
    mol.GetAtomWithIdx(3).SetChiralTag(Chem.ChiralType.CHI_OCTAHEDRAL)
    mol.GetBondWithIdx(1).SetStereo(Chem.BondStereo.STEREOATROPCW)
    graph = mol_to_graph(mol)
    assert graph.x[0, 1] == 4
    assert graph.x[3, 1] == 4
    assert graph.x[1, 1] == 0
    np.testing.assert_array_equal(graph.edge_attr[2:4, 1], [5, 5])
    np.testing.assert_array_equal(graph.edge_attr[[0, 1, 4, 5], 1], [0, 0, 0, 0])


def test_nci_molecules_match_reference_and_dims() -> None:
    checked = 0
    for smiles in nci_smiles(150):
        mol = Chem.MolFromSmiles(smiles)
        if mol is None:
            continue
        graph = mol_to_graph(mol)
        x, edge_index, edge_attr = reference_graph(mol)
        np.testing.assert_array_equal(graph.x, x)
        np.testing.assert_array_equal(graph.edge_index, edge_index)
        np.testing.assert_array_equal(graph.edge_attr, edge_attr)
        assert (graph.x < np.array(ATOM_FEATURE_DIMS)).all()
        assert (graph.x >= 0).all()
        if graph.edge_attr.size:
            assert (graph.edge_attr < np.array(BOND_FEATURE_DIMS)).all()
        checked += 1
    assert checked > 140


def test_invalid_smiles_gives_none() -> None:
    assert smiles_to_graph("C1CC") is None
    assert smiles_to_graph("not a molecule") is None
    assert smiles_to_graph("c1cccc1") is None  # cannot be kekulised


def test_no_bonds_gives_empty_edge_arrays() -> None:
    graph = smiles_to_graph("[Na+].[Cl-]")
    assert graph is not None
    assert graph.edge_index.shape == (2, 0)
    assert graph.edge_attr.shape == (0, 3)
    np.testing.assert_array_equal(graph.distance, [[0, UNREACHABLE], [UNREACHABLE, 0]])


def test_topological_distance_matches_rdkit_and_marks_fragments() -> None:
    mol = Chem.MolFromSmiles("CCC(C)O.OCC")
    dist = topological_distance(mol)
    rdkit = Chem.GetDistanceMatrix(mol)
    assert dist.dtype == np.int64
    np.testing.assert_array_equal(dist[:5, :5], rdkit[:5, :5])
    np.testing.assert_array_equal(dist[5:, 5:], rdkit[5:, 5:])
    assert (dist[:5, 5:] == UNREACHABLE).all()
    assert (dist[5:, :5] == UNREACHABLE).all()
    assert dist[0, 4] == 3
    assert dist[0, 3] == 3
    assert dist[1, 4] == 2
