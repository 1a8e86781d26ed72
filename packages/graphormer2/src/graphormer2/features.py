"""OGB-style categorical atom and bond features of an RDKit molecule (spec §3.1, node and edge tokens).

This reimplements ``ogb.utils.features`` / ``ogb.utils.smiles2graph`` (ogb 1.3) with RDKit alone. Each feature is
the index of the RDKit value in an allowable list; a value outside the list goes to the list's last entry (the
``'misc'`` bucket where the list has one):

====================  =====================================================================  =====
atom feature          allowable values                                                       size
====================  =====================================================================  =====
atomic number         1, 2, …, 118, misc                                                     119
chirality             CHI_UNSPECIFIED, CHI_TETRAHEDRAL_CW, CHI_TETRAHEDRAL_CCW, CHI_OTHER,   5
                      misc
degree                ``GetTotalDegree()`` (hydrogens included): 0, 1, …, 10, misc           12
formal charge         −5, −4, …, 5, misc                                                     12
number of H           ``GetTotalNumHs()``: 0, 1, …, 8, misc                                  10
radical electrons     0, 1, 2, 3, 4, misc                                                    6
hybridisation         SP, SP2, SP3, SP3D, SP3D2, misc                                        6
is aromatic           False, True                                                            2
is in ring            False, True                                                            2
====================  =====================================================================  =====

====================  =====================================================================  =====
bond feature          allowable values                                                       size
====================  =====================================================================  =====
bond type             SINGLE, DOUBLE, TRIPLE, AROMATIC, misc                                 5
bond stereo           STEREONONE, STEREOZ, STEREOE, STEREOCIS, STEREOTRANS, STEREOANY        6
is conjugated         False, True                                                            2
====================  =====================================================================  =====

OGB looks chirality and stereo up with ``list.index`` and so raises on tags that newer RDKit releases added
(``CHI_TETRAHEDRAL``, ``CHI_ALLENE``, ``CHI_SQUAREPLANAR``, …, ``STEREOATROPCW``/``STEREOATROPCCW``). Here every list
uses OGB's ``safe_index`` rule instead: such a tag goes to the last entry (chirality ``misc``, stereo ``STEREOANY``).
For every molecule OGB can featurise, the result is identical.

The per-atom and per-bond RDKit calls are the only Python loop (atoms and bonds are fetched by index: RDKit's
``GetAtoms()`` sequence wrapper costs about as much again); mapping the raw values to indices is done with NumPy
look-up tables over the whole molecule at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rdkit import Chem, rdBase

from graphormer2.paths import UNREACHABLE

#: Bumped whenever the tables or the graph layout change; part of every dataset cache key.
FEATURE_VERSION = "ogb-smiles2graph-1"

CHIRALITY = ("CHI_UNSPECIFIED", "CHI_TETRAHEDRAL_CW", "CHI_TETRAHEDRAL_CCW", "CHI_OTHER", "misc")
HYBRIDISATION = ("SP", "SP2", "SP3", "SP3D", "SP3D2", "misc")
BOND_TYPE = ("SINGLE", "DOUBLE", "TRIPLE", "AROMATIC", "misc")
BOND_STEREO = ("STEREONONE", "STEREOZ", "STEREOE", "STEREOCIS", "STEREOTRANS", "STEREOANY")

#: Sizes of the nine atom features (OGB's ``get_atom_feature_dims()``).
ATOM_FEATURE_DIMS = (119, len(CHIRALITY), 12, 12, 10, 6, len(HYBRIDISATION), 2, 2)
#: Sizes of the three bond features (OGB's ``get_bond_feature_dims()``).
BOND_FEATURE_DIMS = (len(BOND_TYPE), len(BOND_STEREO), 2)
NUM_ATOM_FEATURES = len(ATOM_FEATURE_DIMS)
NUM_BOND_FEATURES = len(BOND_FEATURE_DIMS)


def _enum_table(enum: type, allowed: tuple[str, ...]) -> np.ndarray:
    """Index in ``allowed`` of every value of an RDKit enum, by the enum's integer code (unknown → last entry).

    One extra entry past the largest known code stands for codes that a newer RDKit may add.
    """
    codes = enum.values  # type: ignore[attr-defined]
    table = np.full(max(codes) + 2, len(allowed) - 1, dtype=np.int64)
    for code, value in codes.items():
        if str(value) in allowed:
            table[code] = allowed.index(str(value))
    return table


_CHIRALITY_TABLE = _enum_table(Chem.ChiralType, CHIRALITY)
_HYBRIDISATION_TABLE = _enum_table(Chem.HybridizationType, HYBRIDISATION)
_BOND_TYPE_TABLE = _enum_table(Chem.BondType, BOND_TYPE)
_BOND_STEREO_TABLE = _enum_table(Chem.BondStereo, BOND_STEREO)


def _lookup(table: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """``table[codes]``; codes past the table's end (enum values newer than this module) use its last entry."""
    return table[np.minimum(codes, len(table) - 1)]


def _bucket(values: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Index of each column of ``values`` ``(k, F)`` in its list ``low, low + 1, …, high, misc`` (``(F,)`` bounds):
    ``value − low``, or the ``misc`` index ``high − low + 1`` outside the range."""
    return np.where((values >= low) & (values <= high), values - low, high - low + 1)


# Per-column ranges of the atom allowable lists once the enum columns (chirality, hybridisation) have been mapped
# to their list indices, which are always in range.
_ATOM_LOW = np.array([1, 0, 0, -5, 0, 0, 0, 0, 0])
_ATOM_HIGH = np.array([118, len(CHIRALITY) - 1, 10, 5, 8, 4, len(HYBRIDISATION) - 1, 1, 1])


@dataclass
class MolGraph:
    """One molecule as an undirected graph with OGB categorical features (``smiles2graph``'s layout).

    Attributes:
        x: int64 ``(n, 9)`` atom feature indices (module docstring).
        edge_index: int64 ``(2, 2m)``; bond ``k`` gives columns ``2k`` (begin → end) and ``2k + 1`` (end → begin).
        edge_attr: int64 ``(2m, 3)`` bond feature indices, one row per column of ``edge_index``.
        num_nodes: ``n``, the number of (heavy, unless the molecule holds explicit hydrogens) atoms.
        distance: optional int64 ``(n, n)`` topological distances φ (510 between fragments); when present,
            preprocessing uses it instead of running its own breadth-first search (:mod:`graphormer2.paths`).
    """

    x: np.ndarray
    edge_index: np.ndarray
    edge_attr: np.ndarray
    num_nodes: int
    distance: np.ndarray | None = None


def atom_features(mol: Chem.Mol) -> np.ndarray:
    """The nine OGB atom features of every atom: int64 ``(n, 9)`` (OGB's ``atom_to_feature_vector``)."""
    raw = np.array(
        [
            (
                atom.GetAtomicNum(),
                int(atom.GetChiralTag()),
                atom.GetTotalDegree(),
                atom.GetFormalCharge(),
                atom.GetTotalNumHs(),
                atom.GetNumRadicalElectrons(),
                int(atom.GetHybridization()),
                atom.GetIsAromatic(),
                atom.IsInRing(),
            )
            for atom in map(mol.GetAtomWithIdx, range(mol.GetNumAtoms()))
        ],
        dtype=np.int64,
    ).reshape(-1, NUM_ATOM_FEATURES)
    raw[:, 1] = _lookup(_CHIRALITY_TABLE, raw[:, 1])
    raw[:, 6] = _lookup(_HYBRIDISATION_TABLE, raw[:, 6])
    return _bucket(raw, _ATOM_LOW, _ATOM_HIGH)


def bond_features(mol: Chem.Mol) -> tuple[np.ndarray, np.ndarray]:
    """Both directions of every bond and their three OGB bond features (OGB's ``bond_to_feature_vector``).

    Returns:
        ``edge_index`` int64 ``(2, 2m)`` and ``edge_attr`` int64 ``(2m, 3)``, ordered as in ``smiles2graph``:
        bond ``k`` is column ``2k`` (begin → end) and ``2k + 1`` (end → begin).
    """
    raw = np.array(
        [
            (
                bond.GetBeginAtomIdx(),
                bond.GetEndAtomIdx(),
                int(bond.GetBondType()),
                int(bond.GetStereo()),
                bond.GetIsConjugated(),
            )
            for bond in map(mol.GetBondWithIdx, range(mol.GetNumBonds()))
        ],
        dtype=np.int64,
    ).reshape(-1, 5)
    # the conjugation flag is already its index; the two enum columns are mapped through their tables
    attr = raw[:, 2:]
    attr[:, 0] = _lookup(_BOND_TYPE_TABLE, attr[:, 0])
    attr[:, 1] = _lookup(_BOND_STEREO_TABLE, attr[:, 1])
    edge_index = np.stack([raw[:, :2], raw[:, 1::-1]], axis=1).reshape(-1, 2).T
    return np.ascontiguousarray(edge_index), np.repeat(attr, 2, axis=0)


def topological_distance(mol: Chem.Mol) -> np.ndarray:
    """φ(i, j) in bonds between every pair of atoms, int64 ``(n, n)``, from RDKit's ``GetDistanceMatrix``.

    Atoms in different fragments (RDKit's 1e8) get :data:`~graphormer2.paths.UNREACHABLE` (510), as do distances
    above 510.
    """
    n = mol.GetNumAtoms()
    if n == 0:
        return np.zeros((0, 0), dtype=np.int64)
    dist = Chem.GetDistanceMatrix(mol)
    return np.where(dist < min(n, UNREACHABLE), dist, UNREACHABLE).astype(np.int64)


def mol_to_graph(mol: Chem.Mol) -> MolGraph:
    """The :class:`MolGraph` of an RDKit molecule (atoms as given: hydrogens stay implicit unless explicit), with
    its :func:`topological_distance`."""
    x = atom_features(mol)
    edge_index, edge_attr = bond_features(mol)
    return MolGraph(
        x=x,
        edge_index=edge_index,
        edge_attr=edge_attr,
        num_nodes=x.shape[0],
        distance=topological_distance(mol),
    )


def parse_smiles(smiles: str) -> Chem.Mol | None:
    """``Chem.MolFromSmiles`` without RDKit's log lines; ``None`` when RDKit cannot parse or sanitise it."""
    with rdBase.BlockLogs():
        return Chem.MolFromSmiles(smiles)


def smiles_to_graph(smiles: str) -> MolGraph | None:
    """OGB's ``smiles2graph``: the :class:`MolGraph` of a SMILES string, or ``None`` if RDKit rejects it.

    The caller decides what an invalid SMILES means (the dataset loaders count and report it).
    """
    mol = parse_smiles(smiles)
    return None if mol is None else mol_to_graph(mol)
