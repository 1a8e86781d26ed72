"""Chemical–protein interaction records: ``(SMILES, protein sequence, family, label)`` from CSV or TSV files.

Column names are recognised in the shapes of the common exports (case-insensitive): ChEMBL activity downloads
(``canonical_smiles``, ``target_sequence``...), BindingDB's TSV (``Ligand SMILES``, ``BindingDB Target Chain
Sequence``) and plain files (``smiles``, ``sequence``, ``family``, ``label``). SMILES are parsed by RDKit and
sequences checked against the IUPAC amino-acid alphabet; an invalid row is counted and written to a rejects file
(or, with ``strict``, is an error naming its line). The family column is optional: without it the split clusters
the sequences (:func:`portal_learning.splits.cluster_sequences`).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from papers_common import InputError, atomic_path

AMINO_ACIDS = frozenset("ACDEFGHIKLMNPQRSTVWY")
"""The twenty standard residues."""
IUPAC_EXTRA = frozenset("BXZUO")
"""Ambiguity codes and the rare residues (selenocysteine, pyrrolysine) that real sequence files contain."""

COLUMNS: dict[str, tuple[str, ...]] = {
    "smiles": ("smiles", "canonical_smiles", "ligand smiles", "compound_smiles", "drug"),
    "sequence": (
        "sequence",
        "target_sequence",
        "protein_sequence",
        "bindingdb target chain sequence",
        "target",
    ),
    "family": ("family", "pfam", "pfam_id", "cluster", "target_family", "family_id"),
    "label": ("label", "active", "y", "activity_label"),
    "protein": ("protein", "protein_id", "uniprot", "uniprot_id", "target_chembl_id", "target_id"),
}
REQUIRED = ("smiles", "sequence", "label")
TRUE_LABELS, FALSE_LABELS = (
    frozenset({"1", "true", "active", "yes"}),
    frozenset({"0", "false", "inactive", "no"}),
)


@dataclass(frozen=True)
class Interaction:
    """One labelled chemical–protein pair.

    Attributes:
        smiles: the molecule as RDKit's canonical SMILES.
        sequence: the protein's residues (upper case).
        family: the protein family (Pfam id, cluster...); ``None`` when the file has none.
        label: 1 for an interaction (active), 0 for none, -1 when unknown (a file read for prediction).
        protein: the protein's id (the sequence itself when the file names none).
        line: the line of the source file it came from (1 is the header).
    """

    smiles: str
    sequence: str
    family: str | None
    label: int
    protein: str
    line: int = 0


@dataclass(frozen=True)
class ReadResult:
    """The valid records of a file and what was rejected (``line``, ``field``, ``reason``)."""

    records: list[Interaction]
    rejected: list[tuple[int, str, str]]


def _delimiter(path: Path, header: str) -> str:
    if path.suffix.lower() in (".tsv", ".tab") or header.count("\t") > header.count(","):
        return "\t"
    return ","


def _find(header: Sequence[str], field: str) -> int | None:
    names = [h.strip().lower() for h in header]
    for alias in COLUMNS[field]:
        if alias in names:
            return names.index(alias)
    return None


def check_sequence(sequence: str) -> str | None:
    """Why ``sequence`` is not a protein sequence, or ``None`` when it is."""
    if not sequence:
        return "empty sequence"
    bad = sorted(set(sequence) - AMINO_ACIDS - IUPAC_EXTRA)
    return f"characters outside the amino-acid alphabet: {''.join(bad)[:20]!r}" if bad else None


FASTA_SUFFIXES = (".fa", ".fasta", ".faa", ".fas")


def read_sequences(path: str | Path) -> list[str]:
    """Protein sequences from a FASTA file (``.fa``, ``.fasta``, ``.faa``, ``.fas``: ``>`` header lines, the
    sequence on the lines after, upper-cased) or from an interaction CSV/TSV's sequence column. A FASTA entry that
    is not a protein sequence is an error naming its header's line."""
    path = Path(path)
    if path.suffix.lower() not in FASTA_SUFFIXES:
        return [r.sequence for r in read_interactions(path, labelled=False).records]
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except UnicodeDecodeError as error:
        raise InputError(f"{path}: not a UTF-8 text file ({error.reason})") from None
    entries: list[tuple[int, list[str]]] = []
    for number, line in enumerate(lines, start=1):
        if line.startswith(">"):
            entries.append((number, []))
        elif line.strip():
            if not entries:
                raise InputError(f"{path}:{number}: sequence before the first '>' header (not FASTA)")
            entries[-1][1].append(line.strip().upper())
    found = []
    for number, parts in entries:
        sequence = "".join(parts)
        if (why := check_sequence(sequence)) is not None:
            raise InputError(f"{path}:{number}: {why}")
        found.append(sequence)
    if not found:
        raise InputError(f"{path}: no FASTA entries")
    return found


def canonical_smiles(smiles: str) -> str | None:
    """RDKit's canonical SMILES, or ``None`` when RDKit cannot parse it."""
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")
    mol = Chem.MolFromSmiles(smiles) if smiles else None
    return None if mol is None or mol.GetNumAtoms() == 0 else Chem.MolToSmiles(mol)


def read_interactions(
    path: str | Path, *, strict: bool = False, rejects: str | Path | None = None, labelled: bool = True
) -> ReadResult:
    """Read interaction records from a CSV or TSV file.

    Args:
        path: the file; its header names the columns (see :data:`COLUMNS`).
        strict: an invalid row is an :class:`~papers_common.InputError` naming its line, instead of a reject.
        rejects: where to write the rejected rows (CSV: line, field, reason), when any.
        labelled: the label column is required (``False``: optional, for prediction; missing labels are -1).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise InputError(f"{path}: not a UTF-8 text file ({error.reason})") from None
    lines = text.splitlines()
    if not lines:
        raise InputError(f"{path}: empty file (a header line is needed)")
    rows = list(csv.reader(lines, delimiter=_delimiter(path, lines[0])))
    header = rows[0]
    where = {field: _find(header, field) for field in COLUMNS}
    missing = [f for f in REQUIRED if where[f] is None and (labelled or f != "label")]
    if missing:
        raise InputError(
            f"{path}: missing column(s) {', '.join(missing)} (header: {', '.join(header)[:120]})"
        )
    records: list[Interaction] = []
    rejected: list[tuple[int, str, str]] = []
    smiles_cache: dict[str, str | None] = {}
    for number, row in enumerate(rows[1:], start=2):
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise InputError(f"{path}:{number}: {len(row)} fields, the header has {len(header)}")
        cell = {field: row[i].strip() for field, i in where.items() if i is not None}
        problem: tuple[str, str] | None = None
        raw = cell["smiles"]
        if raw not in smiles_cache:
            smiles_cache[raw] = canonical_smiles(raw)
        smiles = smiles_cache[raw]
        sequence = cell["sequence"].upper().replace(" ", "")
        label_text = cell["label"].lower() if "label" in cell else "-1"
        if smiles is None:
            problem = ("smiles", f"RDKit cannot parse {raw[:40]!r}")
        elif (why := check_sequence(sequence)) is not None:
            problem = ("sequence", why)
        elif label_text != "-1" and label_text not in TRUE_LABELS | FALSE_LABELS:
            problem = ("label", f"{cell['label']!r} is not 0/1, true/false or active/inactive")
        if problem is not None:
            if strict:
                raise InputError(f"{path}:{number}: {problem[0]}: {problem[1]}")
            rejected.append((number, *problem))
            continue
        family = cell.get("family") or None
        protein = cell.get("protein") or sequence
        label = -1 if label_text == "-1" else int(label_text in TRUE_LABELS)
        records.append(Interaction(smiles, sequence, family, label, protein, number))  # type: ignore[arg-type]
    if rejects is not None and rejected:
        write_rejects(rejects, rejected)
    return ReadResult(records, rejected)


def write_rejects(path: str | Path, rejected: Sequence[tuple[int, str, str]]) -> Path:
    """Write rejected rows as CSV (``line,field,reason``), atomically."""
    path = Path(path)
    with atomic_path(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["line", "field", "reason"])
        writer.writerows(rejected)
    return path


def write_interactions(path: str | Path, records: Sequence[Interaction]) -> Path:
    """Write records as CSV (``smiles,sequence,family,protein,label``), atomically."""
    path = Path(path)
    with atomic_path(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["smiles", "sequence", "family", "protein", "label"])
        writer.writerows((r.smiles, r.sequence, r.family or "", r.protein, r.label) for r in records)
    return path
