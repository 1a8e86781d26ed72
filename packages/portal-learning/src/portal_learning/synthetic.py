"""An offline out-of-family chemical–protein interaction benchmark.

Molecules are real: the NCI set that ships inside the RDKit wheel (``RDConfig.RDDataDir/NCI/first_5K.smi``),
described by Morgan fingerprints (radius 2, 2,048 bits). Proteins are synthetic families. Each family has a latent
function vector u_f (``profile_rank`` numbers) that shapes both its residue usage and what it binds — the way a
family's sequence statistics reflect its fold and function, which is what sequence pretraining on a database can
learn. The ancestor is ``length`` residues drawn from the family's usage and its 5–20 members redraw 5–20% of their
positions from it. Every family's binding pocket is the same ``pocket`` aligned positions (as in a family-HMM
alignment), with the member's own residues there.

The hidden activity rule couples substructures to the family's function through a shared low-rank space:

    usage_f = softmax(β E u_f / √q)                  u_f ~ N(0, I_q), E ∈ R^{20×q}: residue usage of family f
    s(m) = standardise(x_m B)                        x_m ∈ {0,1}^2048, B ∈ R^{2048×r}: r sparse substructure axes
    c(p) = tanh(A u_f + W φ(pocket residues of p)) + σ ε_f   φ: 5 physico-chemical properties per pocket position
    score(m, p) = s(m) · c(p);   active iff score > the family's (1 − active_fraction) quantile

E, A, W and B are shared by all families, so what a model learns about how a family's sequence selects
substructures transfers to families it never saw; ε_f (a per-family draw, σ = ``family_noise``) is the part that
does not. A model that scores molecules and proteins separately (a linear model over fingerprint and sequence
features) can only learn which molecules are active on average, which is why out-of-family prediction is possible
but not trivial. Besides the labelled families, ``unlabelled_families`` more are drawn the same way with sequences
only (``sequences.fasta``): the sequence database that masked-residue pretraining reads, as Pfam holds many more
families than have known ligands. The pocket positions are also written as residue-contact labels
(``contacts.csv``) for a structure step.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from papers_common import InputError, write_json
from portal_learning.records import Interaction, write_interactions

RESIDUES = "ACDEFGHIKLMNPQRSTVWY"
# Kyte–Doolittle hydropathy, charge at pH 7, side-chain volume (Å³, /100), aromatic, polar: one row per residue.
PROPERTIES = np.array([
    [1.8, 0, 0.89, 0, 0], [2.5, 0, 1.09, 0, 0], [-3.5, -1, 1.11, 0, 1], [-3.5, -1, 1.38, 0, 1],
    [2.8, 0, 1.90, 1, 0], [-0.4, 0, 0.60, 0, 0], [-3.2, 0.1, 1.53, 1, 1], [4.5, 0, 1.67, 0, 0],
    [-3.9, 1, 1.69, 0, 1], [3.8, 0, 1.67, 0, 0], [1.9, 0, 1.63, 0, 0], [-3.5, 0, 1.14, 0, 1],
    [-1.6, 0, 1.13, 0, 0], [-3.5, 0, 1.44, 0, 1], [-4.5, 1, 1.74, 0, 1], [-0.8, 0, 0.89, 0, 1],
    [-0.7, 0, 1.16, 0, 1], [4.2, 0, 1.40, 0, 0], [-0.9, 0, 2.28, 1, 0], [-1.3, 0, 1.94, 1, 1],
])  # fmt: skip
PROPERTIES = (PROPERTIES - PROPERTIES.mean(0)) / PROPERTIES.std(0)
FP_BITS, FP_RADIUS = 2048, 2


@dataclass(frozen=True)
class SynthSettings:
    """Sizes of the benchmark and of its rule."""

    families: int = 40
    members: tuple[int, int] = (5, 20)
    mutation: tuple[float, float] = (0.05, 0.20)
    length: int = 200
    pocket: int = 12
    molecules: int = 2000
    pairs_per_member: int = 40
    rank: int = 8
    bits_per_axis: int = 24
    profile_rank: int = 4
    profile_strength: float = 2.0
    function_weight: float = 1.5
    pocket_weight: float = 0.2
    family_noise: float = 0.6
    active_fraction: float = 0.3
    unlabelled_families: int = 200
    seed: int = 0

    def check(self) -> None:
        if self.families < 4:
            raise InputError(
                f"--families must be at least 4 (train, IID-dev, OOD-dev, OOD-test), got {self.families}"
            )
        if not 1 <= self.members[0] <= self.members[1]:
            raise InputError(f"members per family must satisfy 1 <= low <= high, got {self.members}")
        if not 0.0 <= self.mutation[0] <= self.mutation[1] < 1.0:
            raise InputError(f"mutation rates must satisfy 0 <= low <= high < 1, got {self.mutation}")
        if not 1 <= self.pocket <= self.length:
            raise InputError(f"the pocket ({self.pocket}) must fit the sequence length ({self.length})")
        if self.molecules < 10 or self.pairs_per_member < 2:
            raise InputError("--molecules must be at least 10 and --pairs-per-member at least 2")
        if self.unlabelled_families < 0:
            raise InputError(f"--unlabelled-families must be at least 0, got {self.unlabelled_families}")
        if self.profile_rank < 1:
            raise InputError(f"the profile rank must be at least 1, got {self.profile_rank}")
        if not 0.0 < self.active_fraction < 1.0:
            raise InputError(f"--active-fraction must lie in (0, 1), got {self.active_fraction}")


def nci_smiles(limit: int | None = None) -> list[str]:
    """Canonical SMILES of the NCI molecules in RDKit's data folder (parseable, at least 6 heavy atoms)."""
    from rdkit import Chem, RDConfig, RDLogger

    RDLogger.DisableLog("rdApp.*")
    path = Path(RDConfig.RDDataDir) / "NCI" / "first_5K.smi"
    if not path.is_file():
        raise InputError(f"RDKit's NCI molecule set is missing ({path}); reinstall the rdkit wheel")
    found: dict[str, None] = {}  # distinct, in file order
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split()
        mol = Chem.MolFromSmiles(parts[0]) if parts else None
        if mol is not None and mol.GetNumHeavyAtoms() >= 6:
            found[Chem.MolToSmiles(mol)] = None
        if limit is not None and len(found) >= limit:
            break
    return list(found)


def morgan_fingerprints(smiles: list[str], bits: int = FP_BITS, radius: int = FP_RADIUS) -> np.ndarray:
    """``(n, bits)`` uint8 Morgan fingerprints."""
    from rdkit import Chem
    from rdkit.Chem import rdFingerprintGenerator

    generator = rdFingerprintGenerator.GetMorganGenerator(radius=radius, fpSize=bits)
    out = np.zeros((len(smiles), bits), dtype=np.uint8)
    for i, s in enumerate(smiles):
        mol = Chem.MolFromSmiles(s)
        if mol is None:
            raise InputError(f"RDKit cannot parse {s!r}")
        out[i] = generator.GetFingerprintAsNumPy(mol)
    return out


@dataclass
class Benchmark:
    """The generated records, the pocket positions, the settings, and ``sequences``: every member of every family,
    labelled and unlabelled, as ``(name, family, sequence)`` (the pretraining corpus)."""

    records: list[Interaction]
    pocket_positions: list[int]
    settings: SynthSettings
    sequences: list[tuple[str, str, str]]

    def write(self, out: str | Path) -> Path:
        """``pairs.csv``, ``contacts.csv`` (protein, pocket residue positions), ``sequences.fasta`` (every family's
        members, ``>name family=F``) and ``generator.json`` under ``out``."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        write_interactions(out / "pairs.csv", self.records)
        proteins = dict.fromkeys(r.protein for r in self.records)
        lines = ["protein,contact_positions"] + [
            f"{p},{' '.join(map(str, self.pocket_positions))}" for p in proteins
        ]
        (out / "contacts.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
        fasta = [f">{name} family={family}\n{sequence}" for name, family, sequence in self.sequences]
        (out / "sequences.fasta").write_text("\n".join(fasta) + "\n", encoding="utf-8")
        write_json(out / "generator.json", {"settings": asdict(self.settings), "pocket_positions": self.pocket_positions,
                                            "rule": __doc__.split("\n\n")[2].strip()})  # fmt: skip
        return out / "pairs.csv"


def generate(settings: SynthSettings | None = None) -> Benchmark:
    """Generate the benchmark (deterministic for ``settings.seed``)."""
    s = settings or SynthSettings()
    s.check()
    rng = np.random.default_rng(s.seed)
    smiles = nci_smiles(s.molecules)
    if len(smiles) < s.molecules:
        raise InputError(f"--molecules {s.molecules}: RDKit's NCI set has {len(smiles)} usable molecules")
    fingerprints = morgan_fingerprints(smiles).astype(np.float64)
    frequent = np.flatnonzero(fingerprints.mean(0) >= 0.02)
    basis = np.zeros((FP_BITS, s.rank))
    for axis in range(s.rank):
        bits = rng.choice(frequent, size=min(s.bits_per_axis, len(frequent)), replace=False)
        basis[bits, axis] = rng.normal(size=len(bits))
    axes = fingerprints @ basis
    axes = (axes - axes.mean(0)) / (axes.std(0) + 1e-9)  # (molecules, rank)
    pocket = sorted(rng.choice(s.length, size=s.pocket, replace=False).tolist())
    usage_map = rng.normal(size=(len(RESIDUES), s.profile_rank))  # E
    function = s.function_weight * rng.normal(size=(s.rank, s.profile_rank)) / np.sqrt(s.profile_rank)  # A
    mixing = (
        s.pocket_weight * rng.normal(size=(s.rank, s.pocket * PROPERTIES.shape[1])) / np.sqrt(s.pocket)
    )  # W
    records: list[Interaction] = []
    sequences: list[tuple[str, str, str]] = []
    for f in range(s.families + s.unlabelled_families):
        family = f"FAM{f:03d}"
        latent = rng.normal(size=s.profile_rank)  # u_f
        logits = s.profile_strength * usage_map @ latent / np.sqrt(s.profile_rank)
        usage = np.exp(logits - logits.max())
        usage /= usage.sum()
        members = [rng.choice(len(RESIDUES), size=s.length, p=usage)]
        for _ in range(int(rng.integers(s.members[0], s.members[1] + 1)) - 1):
            member = members[0].copy()
            redraw = rng.random(s.length) < rng.uniform(*s.mutation)
            member[redraw] = rng.choice(len(RESIDUES), size=int(redraw.sum()), p=usage)
            members.append(member)
        names = [f"{family}_P{k:02d}" for k in range(len(members))]
        texts = ["".join(RESIDUES[i] for i in member) for member in members]
        sequences += [(name, family, text) for name, text in zip(names, texts, strict=True)]
        if f >= s.families:  # an unlabelled family: sequences only
            continue
        noise = s.family_noise * rng.normal(size=s.rank)
        pairs: list[tuple[str, str, int, float]] = []
        for member, name, text in zip(members, names, texts, strict=True):
            rule = np.tanh(function @ latent + mixing @ PROPERTIES[member[pocket]].ravel()) + noise
            chosen = rng.choice(len(smiles), size=s.pairs_per_member, replace=False)
            pairs += [(text, name, int(m), float(axes[m] @ rule)) for m in chosen]
        threshold = np.quantile([p[3] for p in pairs], 1.0 - s.active_fraction)
        records += [Interaction(smiles[m], seq, family, int(score > threshold), protein)
                    for seq, protein, m, score in pairs]  # fmt: skip
    return Benchmark(records, pocket, s, sequences)
