"""Inputs of the encoders: molecular graphs from SMILES, residue tokens from sequences, batched without loops.

Atom and bond features follow the pretrain-gnns GIN (Hu et al., 2020), which the paper's chemical encoder uses —
an atom is (atomic number, chirality), a bond is (bond type, stereo); each graph gets a self-loop per atom with its
own bond type — except that chirality is the CIP label (R/S) and bond stereo the E/Z label: RDKit's chiral tags and
bond directions are relative to the atom order, so a renumbered molecule would get other features. Graphs of a batch are concatenated with offset edge indices and a ``batch`` vector
naming each atom's molecule, which is what the scatter-sum aggregation and pooling use.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from papers_common import InputError

ATOMIC_NUMBERS = 119  # 1..118, 0 for anything else
CHIRALITY = 4  # none, R, S, other
BOND_TYPES = 5  # single, double, triple, aromatic, self-loop
SELF_LOOP = 4
BOND_DIRECTIONS = 3  # bond stereo: none, E, Z
RESIDUES = "ACDEFGHIKLMNPQRSTVWY"
RESIDUE_VOCAB = len(RESIDUES) + 2  # 0 padding, 1 any other residue (X, B, Z, U, O)
_RESIDUE_INDEX = {r: i + 2 for i, r in enumerate(RESIDUES)}


@dataclass(frozen=True)
class Graph:
    """One molecule: ``atoms`` (n, 2) long (atomic number, chirality), ``edges`` (2, e) long (both directions),
    ``bonds`` (e, 2) long (type, stereo)."""

    atoms: torch.Tensor
    edges: torch.Tensor
    bonds: torch.Tensor


@dataclass(frozen=True)
class GraphBatch:
    """Concatenated graphs: ``atoms`` (N, 2), ``edges`` (2, E) with self-loops, ``bonds`` (E, 2), ``batch`` (N,)."""

    atoms: torch.Tensor
    edges: torch.Tensor
    bonds: torch.Tensor
    batch: torch.Tensor
    size: int

    def to(self, device: torch.device | str) -> GraphBatch:
        return GraphBatch(self.atoms.to(device), self.edges.to(device), self.bonds.to(device),
                          self.batch.to(device), self.size)  # fmt: skip


def mol_graph(smiles: str) -> Graph:
    """The graph of a molecule (hydrogens implicit)."""
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")
    mol = Chem.MolFromSmiles(smiles)
    if mol is None or mol.GetNumAtoms() == 0:
        raise InputError(f"RDKit cannot parse {smiles!r}")
    Chem.AssignStereochemistry(mol, cleanIt=True, force=True)
    cip = {"R": 1, "S": 2}
    atoms = [[min(a.GetAtomicNum(), ATOMIC_NUMBERS - 1),
              cip.get(a.GetProp("_CIPCode"), 3) if a.HasProp("_CIPCode") else 0] for a in mol.GetAtoms()]  # fmt: skip
    kinds = {
        Chem.BondType.SINGLE: 0,
        Chem.BondType.DOUBLE: 1,
        Chem.BondType.TRIPLE: 2,
        Chem.BondType.AROMATIC: 3,
    }
    stereo = {Chem.BondStereo.STEREOE: 1, Chem.BondStereo.STEREOTRANS: 1,
              Chem.BondStereo.STEREOZ: 2, Chem.BondStereo.STEREOCIS: 2}  # fmt: skip
    edges, bonds = [], []
    for bond in mol.GetBonds():
        i, j = bond.GetBeginAtomIdx(), bond.GetEndAtomIdx()
        feature = [kinds.get(bond.GetBondType(), 0), stereo.get(bond.GetStereo(), 0)]
        edges += [(i, j), (j, i)]
        bonds += [feature, feature]
    return Graph(torch.tensor(atoms, dtype=torch.long),
                 torch.tensor(edges, dtype=torch.long).reshape(-1, 2).T.contiguous(),
                 torch.tensor(bonds, dtype=torch.long).reshape(-1, 2))  # fmt: skip


def batch_graphs(graphs: Sequence[Graph]) -> GraphBatch:
    """Concatenate graphs, offsetting edge indices and adding one self-loop per atom."""
    sizes = torch.tensor([len(g.atoms) for g in graphs])
    offsets = torch.cumsum(sizes, 0) - sizes
    atoms = torch.cat([g.atoms for g in graphs])
    n = len(atoms)
    loops = torch.arange(n)
    edges = torch.cat(
        [*(g.edges + o for g, o in zip(graphs, offsets.tolist(), strict=True)), loops.expand(2, n)], 1
    )
    self_bonds = torch.tensor([[SELF_LOOP, 0]], dtype=torch.long).expand(n, 2)
    bonds = torch.cat([*(g.bonds for g in graphs), self_bonds])
    batch = torch.repeat_interleave(torch.arange(len(graphs)), sizes)
    return GraphBatch(atoms, edges, bonds, batch, len(graphs))


def residue_tokens(
    sequences: Sequence[str], max_length: int, length: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(B, L)`` token ids (0 pads) and ``(B, L)`` bool mask of real residues; sequences are cut at ``max_length``.
    ``L`` is the longest sequence's length (at most ``max_length``), or ``length`` when given."""
    length = length if length is not None else min(max(len(s) for s in sequences), max_length)
    tokens = torch.zeros(len(sequences), length, dtype=torch.long)
    for row, sequence in enumerate(sequences):
        ids = [_RESIDUE_INDEX.get(c, 1) for c in sequence[:length]]
        tokens[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
    return tokens, tokens > 0
