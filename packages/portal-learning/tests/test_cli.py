"""The CLI runs synth → split → baseline as the README shows, and bad input gets one line."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
from portal_learning.cli import app

README = Path(__file__).parents[1] / "README.md"


def run(argv, capsys):
    code = app.main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_the_readme_cli_lines_run_as_written(tmp_path, monkeypatch, capsys):
    section = README.read_text(encoding="utf-8").split("## CLI", 1)[1].split("\n## ", 1)[0]
    lines = [line for block in re.findall(r"```bash\n(.*?)```", section, flags=re.S) for line in block.splitlines()
             if line.startswith("portal-learning ")]  # fmt: skip
    assert len(lines) == 10
    monkeypatch.chdir(tmp_path)
    for line in lines:
        argv = shlex.split(line)[1:]  # exactly as written
        code, out, err = run(argv, capsys)
        assert code == 0, (line, err)
        if argv[0] == "compare":
            assert "selected on ood-dev:" in out
            assert {"erm", "portal"} <= {row.split()[0] for row in out.splitlines()[1:-1]}
    metrics = json.loads(Path("data/baseline.json").read_text())
    assert set(metrics) == {"ood_train", "iid_dev", "ood_dev", "ood_test"}
    assert Path("data/contacts.csv").read_text().startswith("protein,contact_positions")
    assert Path("data/sequences.fasta").read_text().count(">") > len({line.split(",")[3] for line in
                                                                     Path("data/pairs.csv").read_text().splitlines()})  # fmt: skip
    assert json.loads(Path("runs/portal/config.json").read_text())["freeze"] == ["protein-convs"]
    summary = json.loads(Path("runs/portal/summary.json").read_text())
    assert set(summary["selected"]) == {"ood-dev", "iid-dev"}
    assert summary["method"] == "ooc-fomaml"
    assert json.loads(Path("runs/portal/config.json").read_text())["init"] == "steps/structure/model"
    assert Path("runs/erm/model/config.json").is_file()
    assert Path("predictions.csv").read_text().startswith("line,smiles,protein,probability")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["synth", "--out", "d", "--families", "1"], "--families must be at least 4"),
        (["synth", "--out", "d", "--unlabelled-families", "-1"], "--unlabelled-families must be at least 0"),
        (["split", "--data", "missing.csv"], "missing.csv: no such file"),
        (["split", "--data", "pairs.csv", "--ood-test", "2"], "--ood-test must lie in"),
        (
            ["train", "--data", "pairs.csv", "--split", "s.json", "--out", "r", "--method", "fomaml"],
            "--method must be one of erm, ooc-fomaml",
        ),
        (
            ["train", "--data", "pairs.csv", "--split", "s.json", "--out", "r", "--inner-lr", "0"],
            "--inner-lr",
        ),
        (
            ["train", "--data", "pairs.csv", "--split", "s.json", "--out", "r", "--init", "nowhere"],
            "--init nowhere",
        ),
        (["pretrain-protein", "--sequences", "bad.fasta", "--out", "p"], "bad.fasta:1: characters outside"),
        (["structure", "--data", "pairs.csv", "--contacts", "missing.csv", "--out", "s"], "missing.csv"),
        (
            ["train", "--data", "pairs.csv", "--split", "s.json", "--out", "r", "--select", "test"],
            "--select must be",
        ),
        (["evaluate", "--model", "nowhere", "--data", "pairs.csv"], "nowhere"),
        (["compare", "--runs", "pairs.csv"], "not a folder"),
    ],
)
def test_bad_input_gives_one_line(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    Path("pairs.csv").write_text("smiles,sequence,label\nCCO,MKT,1\n")
    Path("bad.fasta").write_text(">p1\nMKT1\n")
    code, _, err = run(argv, capsys)
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1


def test_a_split_made_for_other_data_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert (
        run(
            ["synth", "--out", "a", "--families", "6", "--molecules", "100", "--pairs-per-member", "6"],
            capsys,
        )[0]
        == 0
    )
    assert run(["synth", "--out", "b", "--families", "6", "--molecules", "100", "--pairs-per-member", "6",
                "--seed", "1"], capsys)[0] == 0  # fmt: skip
    assert run(["split", "--data", "a/pairs.csv"], capsys)[0] == 0
    code, _, err = run(["baseline", "--data", "b/pairs.csv", "--split", "a/split.json"], capsys)
    assert code == 2
    assert "made for other records" in err
