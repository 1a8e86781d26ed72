"""``metro-lm reproduce``: the downstream task it builds, and a whole run at a toy size writing every report."""

from __future__ import annotations

import json

from conftest import write_documents

from metro_lm.finetune import FinetuneConfig
from metro_lm.reproduce import QUICK, Plan, acceptability_task, default_corpus, run, sentences
from papers_common import load_results, validate

TOY = Plan(vocab_size=300, valid_fraction=0.3, model=(("hidden_size", 32), ("num_hidden_layers", 1),
           ("num_attention_heads", 2), ("intermediate_size", 64), ("generator_layers", 1)), seq_len=32,
           batch_size=8, steps=6, lr=1e-3, warmup_steps=1, sentences=(60, 40),
           finetune=FinetuneConfig(epochs=1, batch_size=16, lr=1e-3), stability_layers=2, stability_lr=1e-2,
           stability_warmup=1, stability_steps=4, seeds=2)  # fmt: skip


def test_sentences_keep_six_to_thirty_words():
    text = "One two three. " + " ".join(["word"] * 8) + ". Short one! " + " ".join(["x"] * 31) + "."
    assert sentences([text]) == [" ".join(["word"] * 8) + "."]


def test_acceptability_task_swaps_two_words_in_half_the_sentences():
    texts = [" ".join(f"w{i}{j}" for j in range(8)) + "." for i in range(100)]
    task = acceptability_task(texts, 60, seed=0)
    assert len(task.labels) == 60
    assert task.texts_b is None
    originals = set(sentences(texts))
    for text, label in zip(task.texts_a, task.labels, strict=True):
        assert (text in originals) == (label == "1")
        if label == "0":
            near = [o for o in originals if sorted(o.split()) == sorted(text.split())]
            assert len(near) == 1
            assert sum(a != b for a, b in zip(near[0].split(), text.split(), strict=True)) == 2
    assert task.labels.count("0") == 30
    assert acceptability_task(texts, 60, seed=0) == task
    assert acceptability_task(texts, 60, seed=1) != task


def test_default_corpus_is_pythons_own_documentation(tmp_path):
    folder = default_corpus(tmp_path)
    files = sorted(folder.glob("*.txt"))
    assert len(files) > 50
    assert sum(f.stat().st_size for f in files) > 300_000
    assert QUICK.steps * QUICK.batch_size * QUICK.seq_len > 1_000_000  # the quick plan is not a smoke run


def test_reproduce_writes_every_claim_table_and_figure(tmp_path):
    data = write_documents(tmp_path / "text", files=8, sentences=30)
    results = run(tmp_path / "out", data_dir=data, plan=TOY)
    out = tmp_path / "out"
    validate(json.loads((out / "results.json").read_text()), "results")
    ids = [c.id for c in load_results(out / "results.json").claims]
    assert ids == ["order-metro-electra", "order-electra-mlm", "rtd-auc", "rtd-accuracy", "stability"]
    assert all(c.ours is not None for c in results.claims)
    assert all(c.spread is not None and len(c.spread.ours) == 2 for c in results.claims)
    for figure in results.figures:
        assert (out / figure).stat().st_size > 1000
    assert {"curves_mlm_loss.png", "downstream.png", "stability.png"} <= set(results.figures)
    tables = (out / "tables.md").read_text()
    for arm in ("| mlm |", "| electra |", "| metro |", "random init"):
        assert arm in tables
    config = json.loads((out / "config.json").read_text())
    assert config["plan"]["steps"] == 6
    assert config["corpus"] == "text"
    measured = json.loads((out / "measurements.json").read_text())
    assert measured["task"]["train"] == 60
    assert set(measured["downstream"]) == {"mlm", "electra", "metro", "random init"}
    assert measured["seeds"] == [0, 1]
    assert set(measured["pretraining"]["metro"]) == {"0", "1"}
    assert measured["downstream"]["metro"]["0"] != measured["downstream"]["metro"]["1"] or (
        measured["pretraining"]["metro"]["0"] != measured["pretraining"]["metro"]["1"]
    )  # the seeds give different runs
    assert (out / "runs" / "metro-seed1" / "model" / "model.safetensors").is_file()
    assert config["seeds"] == [0, 1]
    # A second run reuses the finished pretraining runs instead of training again.
    again = run(tmp_path / "out", data_dir=data, plan=TOY)
    assert [c.ours for c in again.claims] == [c.ours for c in results.claims]
