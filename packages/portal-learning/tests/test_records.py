"""Interaction files in the shapes of ChEMBL and BindingDB exports; invalid rows rejected or named."""

from __future__ import annotations

import pytest
from portal_learning.records import check_sequence, read_interactions, write_interactions

from papers_common import InputError

SEQ = "MKTAYIAKQRQISFVKSHFSRQ"


def test_a_quoted_csv_with_chembl_names(tmp_path):
    path = tmp_path / "chembl.csv"
    path.write_text(
        "canonical_smiles,target_sequence,pfam,target_chembl_id,active\n"
        f'"CC(=O)Oc1ccccc1C(=O)O",{SEQ},PF00001,CHEMBL1,1\n'
        f'"C1=CC=CC=C1",{SEQ.lower()},PF00001,CHEMBL1,0\n'
    )
    result = read_interactions(path)
    assert [r.label for r in result.records] == [1, 0]
    assert result.records[1].smiles == "c1ccccc1"  # canonical
    assert result.records[1].sequence == SEQ
    assert result.records[0].family == "PF00001"
    assert result.records[0].protein == "CHEMBL1"
    assert result.records[0].line == 2


def test_a_bindingdb_tsv_without_family(tmp_path):
    path = tmp_path / "bindingdb.tsv"
    path.write_text(
        f"Ligand SMILES\tBindingDB Target Chain Sequence\tlabel\nCCO\t{SEQ}\ttrue\nCCN\t{SEQ}\tfalse\n"
    )
    records = read_interactions(path).records
    assert [r.family for r in records] == [None, None]
    assert [r.label for r in records] == [1, 0]


def test_invalid_rows_are_rejected_and_written_or_an_error_under_strict(tmp_path):
    path = tmp_path / "pairs.csv"
    path.write_text(f"smiles,sequence,label\nCCO,{SEQ},1\nC1CC,{SEQ},0\nCCO,MKT123,1\nCCO,{SEQ},maybe\n")
    rejects = tmp_path / "rejects.csv"
    result = read_interactions(path, rejects=rejects)
    assert len(result.records) == 1
    assert [(line, field) for line, field, _ in result.rejected] == [
        (3, "smiles"),
        (4, "sequence"),
        (5, "label"),
    ]
    assert rejects.read_text().splitlines()[0] == "line,field,reason"
    with pytest.raises(InputError, match=r"pairs\.csv:3: smiles: RDKit cannot parse 'C1CC'"):
        read_interactions(path, strict=True)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("smiles,label\nCCO,1\n", r"missing column\(s\) sequence"),
        (f"smiles,sequence,label\nCCO,{SEQ},1,extra\n", r"pairs\.csv:2: 4 fields, the header has 3"),
        ("", "empty file"),
    ],
)
def test_malformed_files_are_named(tmp_path, content, message):
    path = tmp_path / "pairs.csv"
    path.write_text(content)
    with pytest.raises(InputError, match=message):
        read_interactions(path)
    with pytest.raises(InputError, match="no such file"):
        read_interactions(tmp_path / "missing.csv")


def test_round_trip_and_the_alphabet(tmp_path, small):
    path = write_interactions(tmp_path / "out.csv", small.records[:50])
    again = read_interactions(path).records
    assert [(r.smiles, r.sequence, r.family, r.protein, r.label) for r in again] == [
        (r.smiles, r.sequence, r.family, r.protein, r.label) for r in small.records[:50]
    ]
    assert check_sequence("ACDX") is None
    assert "alphabet" in check_sequence("AC1D")
