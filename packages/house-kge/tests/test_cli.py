"""The ``house-kge`` command line on a tiny dataset directory: train, evaluate, predict, resume, bad input, saved
model folders, progress lines on a redirected stderr, the reproduce extra."""

from __future__ import annotations

import importlib.util
import json
import logging
import re
import shutil
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


def test_evaluate_and_predict_need_only_the_saved_model_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Copy a run's model/ elsewhere, delete the data and the run: evaluate and predict give the same answers."""
    data = write_dataset(tmp_path / "ring")
    out = tmp_path / "run"
    assert app.main(["train", "--dataset", str(data), "--out", str(out), *SMALL]) == 0
    capsys.readouterr()
    assert sorted(p.name for p in (out / "model").iterdir()) == [
        "config.json",
        "model.safetensors",
        "triples.safetensors",
    ]
    evaluate = ["evaluate", "--device", "cpu", "--split", "valid"]
    predict = ["predict", "--tail", "e3", "--relation", "prev", "--top", "4"]
    before = {}
    for where in (out, out / "model"):
        assert app.main([*evaluate, "--checkpoint", str(where)]) == 0
        assert app.main([*predict, "--checkpoint", str(where)]) == 0
        before[where] = capsys.readouterr().out
    assert before[out] == before[out / "model"]

    moved = shutil.copytree(out / "model", tmp_path / "elsewhere" / "house")
    shutil.rmtree(data)
    shutil.rmtree(out)
    assert app.main([*evaluate, "--checkpoint", str(moved)]) == 0
    assert app.main([*predict, "--checkpoint", str(moved)]) == 0
    after = capsys.readouterr().out
    assert after == before[out / "model"]
    lines = after.strip().splitlines()
    assert len(lines) == 5  # the metrics, then four heads of (?, prev, e3) by name
    assert 0 < json.loads(lines[0])["mrr"] <= 1
    assert "e4" not in [line.split("\t")[0] for line in lines[1:]]  # (e4, prev, e3) is known: left out


def test_a_run_without_a_model_folder_loads_its_checkpoint_and_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Runs written by 0.1.0 (or interrupted) have no model/: the latest checkpoint and the recorded dataset serve."""
    data = write_dataset(tmp_path / "ring")
    out = tmp_path / "run"
    assert app.main(["train", "--dataset", str(data), "--out", str(out), *SMALL]) == 0
    trained = last_json(capsys.readouterr().out)
    shutil.rmtree(out / "model")
    for where in (out, out / "checkpoints"):
        assert app.main(["evaluate", "--checkpoint", str(where), "--device", "cpu"]) == 0
        assert last_json(capsys.readouterr().out)["mrr"] == pytest.approx(trained["mrr"])
    assert app.main(["predict", "--checkpoint", str(tmp_path), "--head", "e0", "--relation", "next"]) == 2
    assert "neither a saved model folder" in capsys.readouterr().err


def test_reproduce_without_its_extra_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, *args, **kwargs):
        return None if name.split(".")[0] == "matplotlib" else real(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    out = tmp_path / "report"
    assert app.main(["reproduce", "--quick", "--data-dir", str(tmp_path), "--out", str(out)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        "house-kge: error: 'house-kge reproduce' needs matplotlib from the 'reproduce' extra: "
        "pip install 'house-kge[reproduce]'\n"
    )
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def run_train(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *flags: str
) -> tuple[int, str, str]:
    """``house-kge train`` with stderr captured (not a terminal) and a progress record per update; (code, out, err).

    pytest's own log handlers are taken off the root logger for the call, so that ``App.main`` installs its stderr
    handler as it does in a shell.
    """
    data = write_dataset(tmp_path / "ring")
    monkeypatch.delenv("PAPERS_PROGRESS", raising=False)
    monkeypatch.setenv("PAPERS_PROGRESS_INTERVAL", "0")
    monkeypatch.setattr(logging.getLogger(), "handlers", [])
    capsys.readouterr()
    code = app.main(["train", "--dataset", str(data), "--out", str(tmp_path / "run"), *SMALL, *flags])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_train_logs_progress_when_stderr_is_redirected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_train(tmp_path, monkeypatch, capsys)
    assert code == 0, err
    steps = re.findall(r"ring/HousE: (\d+)/30 \(\d+%\), [\d.]+ step/s, elapsed", err)
    assert steps[-1] == "30"
    assert len(steps) >= 30  # every step (interval 0), and the final record
    assert re.search(r"ring/HousE: 30/30 .*loss=[\d.]+ \(done\)", err)
    assert re.search(r"test: \d+/\d+ \(100%\)", err)  # the final evaluation's batches
    assert "read " in err  # the data loading
    assert last_json(out)["steps"] == 30


def test_train_with_quiet_logs_no_progress(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_train(tmp_path, monkeypatch, capsys, "--quiet")
    assert code == 0, err
    assert "ring/HousE" not in err
    assert "step/s" not in err
    assert "test:" not in err
    assert last_json(out)["steps"] == 30


def test_a_latin1_byte_is_one_line_naming_the_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_dataset(tmp_path / "ring")
    train = data / "train.txt"
    train.write_bytes(train.read_bytes().replace(b"e3\tnext", b"e3\xe9\tnext"))  # latin-1 "é" on line 4
    assert app.main(["train", "--dataset", str(data), "--out", str(tmp_path / "run"), *SMALL]) == 2
    err = capsys.readouterr().err
    assert (
        err
        == f"house-kge: error: {train}:4: not UTF-8 text (byte 0xe9 at column 3); save the file as UTF-8\n"
    )


def test_unseen_test_entities_are_ranked_unless_dropped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The default ranks a test triple whose entity train never mentions; --unseen drop and error as asked."""
    data = write_dataset(tmp_path / "ring")
    with (data / "test.txt").open("a", encoding="utf-8") as handle:
        handle.write("e0\tnext\tstranger\n")
    assert app.main(["train", "--dataset", str(data), "--out", str(tmp_path / "keep"), *SMALL]) == 0
    out = capsys.readouterr().out
    assert "note: 1 test triples have entities or relations unseen in training: kept and ranked" in out
    model = json.loads((tmp_path / "keep" / "model" / "config.json").read_text())
    assert model["extra"]["dataset"]["test"] == 3
    assert "stranger" in model["extra"]["entities"]
    assert (
        app.main(
            ["train", "--dataset", str(data), "--out", str(tmp_path / "drop"), *SMALL, "--unseen", "drop"]
        )
        == 0
    )
    assert "skipped" in capsys.readouterr().out
    model = json.loads((tmp_path / "drop" / "model" / "config.json").read_text())
    assert model["extra"]["dataset"]["test"] == 2
    args = ["train", "--dataset", str(data), "--out", str(tmp_path / "error"), *SMALL, "--unseen", "error"]
    assert app.main(args) == 2
    assert "test.txt: triple 3 (e0, next, stranger)" in capsys.readouterr().err


def write_small_graph(root: Path) -> Path:
    """20 entities, 4 relations, 68 triples (52 train, 8 valid, 8 test): a ring ``r0`` plus random triples."""
    import random

    rng = random.Random(0)
    entities = [f"e{i}" for i in range(20)]
    ring = [(entities[i], "r0", entities[(i + 1) % 20]) for i in range(20)]
    rest: set[tuple[str, str, str]] = set()
    while len(rest) < 48:
        rest.add((rng.choice(entities), rng.choice(["r1", "r2", "r3"]), rng.choice(entities)))
    others = sorted(rest)
    rng.shuffle(others)
    root.mkdir(parents=True)
    for split, rows in (("valid", others[:8]), ("test", others[8:16]), ("train", ring + others[16:])):
        (root / f"{split}.txt").write_text("".join(f"{h}\t{r}\t{t}\n" for h, r, t in rows), encoding="utf-8")
    return root


def test_quick_training_on_a_small_graph_caps_batch_and_negatives(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The defaults (batch 512, 128 negatives) are capped at 52 training triples and 20 − 1 entities."""
    data = write_small_graph(tmp_path / "small")
    out = tmp_path / "run"
    assert app.main(["train", "--dataset", str(data), "--quick", "--out", str(out), "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "note: --batch-size 512 capped at 52 for small" in printed
    assert "note: --negatives 128 capped at 19 for small" in printed
    assert last_json(printed)["steps"] == 500
    config = json.loads((out / "config.json").read_text())
    assert (config["train"]["batch_size"], config["train"]["negatives"]) == (52, 19)
    assert config["capped"] == {"batch_size": [512, 52], "negatives": [128, 19]}
