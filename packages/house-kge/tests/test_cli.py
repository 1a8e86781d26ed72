"""The ``house-kge`` command line on a tiny dataset directory: train, evaluate, predict, resume, bad input."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from house_kge.cli import app

from papers_common import preserved_global_state

SMALL = ["--dim", "16", "--k", "4", "--steps", "30", "--batch-size", "16", "--negatives", "4", "--device", "cpu",
         "--checkpoint-every", "10"]  # fmt: skip


@pytest.fixture(autouse=True)
def _restore_torch_determinism() -> Iterator[None]:
    with preserved_global_state():
        yield


def write_dataset(root: Path, *, broken: str | None = None) -> Path:
    """A ring of 12 entities with a ``next`` relation and its inverse ``prev``."""
    root.mkdir(parents=True, exist_ok=True)
    rows = [(f"e{i}", "next", f"e{(i + 1) % 12}") for i in range(12)] + [
        (f"e{(i + 1) % 12}", "prev", f"e{i}") for i in range(12)
    ]
    splits = {"train": rows[:20], "valid": rows[20:22], "test": rows[22:]}
    for split, triples in splits.items():
        text = "".join(f"{h}\t{r}\t{t}\n" for h, r, t in triples)
        (root / f"{split}.txt").write_text(
            text + (broken or "") if split == "valid" else text, encoding="utf-8"
        )
    return root


def last_json(text: str) -> dict:
    return json.loads(text.strip().splitlines()[-1])


def test_train_evaluate_predict_and_resume(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = write_dataset(tmp_path / "ring")
    out = tmp_path / "run"
    args = ["train", "--dataset", str(data), "--out", str(out), *SMALL]
    assert app.main(args) == 0
    trained = last_json(capsys.readouterr().out)
    assert trained["steps"] == 30
    assert 0 < trained["mrr"] <= 1
    assert (out / "final_metrics.json").is_file()

    assert app.main(args) == 0  # finished: resumes at the end and evaluates the same weights
    assert last_json(capsys.readouterr().out)["mrr"] == pytest.approx(trained["mrr"])

    assert app.main(["evaluate", "--checkpoint", str(out), "--device", "cpu"]) == 0
    assert last_json(capsys.readouterr().out)["mrr"] == pytest.approx(trained["mrr"])

    assert (
        app.main(
            [
                "predict",
                "--checkpoint",
                str(out),
                "--head",
                "e0",
                "--relation",
                "next",
                "--top",
                "3",
                "--known",
            ]
        )
        == 0
    )
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3
    assert all(line.split("\t")[0].startswith("e") for line in lines)


def test_rotate_baseline_trains(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = write_dataset(tmp_path / "ring")
    assert (
        app.main(["train", "--dataset", str(data), "--model", "rotate", "--out", str(tmp_path / "r"), *SMALL])
        == 0
    )
    assert 0 < last_json(capsys.readouterr().out)["mrr"] <= 1


def test_a_malformed_line_names_the_file_and_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = write_dataset(tmp_path / "ring", broken="e1\tnext\n")
    assert app.main(["train", "--dataset", str(data), "--out", str(tmp_path / "run"), *SMALL]) == 2
    assert "valid.txt:3" in capsys.readouterr().err


def test_k_must_divide_the_dimension(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = write_dataset(tmp_path / "ring")
    args = ["train", "--dataset", str(data), "--out", str(tmp_path / "run"), *SMALL, "--k", "5"]
    assert app.main(args) == 2
    assert "not a multiple of the block size k=5" in capsys.readouterr().err


def test_predict_needs_exactly_one_known_entity(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = write_dataset(tmp_path / "ring")
    out = tmp_path / "run"
    assert app.main(["train", "--dataset", str(data), "--out", str(out), *SMALL]) == 0
    capsys.readouterr()
    assert app.main(["predict", "--checkpoint", str(out), "--relation", "next"]) == 2
    assert "exactly one" in capsys.readouterr().err
    assert app.main(["predict", "--checkpoint", str(out), "--relation", "nope", "--head", "e0"]) == 2
    assert "unknown relation" in capsys.readouterr().err
