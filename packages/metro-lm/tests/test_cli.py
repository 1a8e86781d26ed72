"""The command line: tokenizer → pretrain → finetune → predict on generated text, settings fitted to the corpus,
and bad input reported without a traceback."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import write_documents

from metro_lm.cli import app
from metro_lm.pipeline import SIZE_THRESHOLDS, Settings, fit_settings, model_config, resolve_size
from metro_lm.tokenizer import load_tokenizer, train_tokenizer
from papers_common import InputError, read_json


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    status = app.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def write_task(folder: Path, rows: int = 40) -> Path:
    """A generic two-class task: does the sentence mention "red"?"""
    folder.mkdir(parents=True, exist_ok=True)
    for name, count, offset in (("train.tsv", rows, 0), ("dev.tsv", rows // 2, 7)):
        lines = ["sentence\tlabel"]
        for i in range(count):
            colour = "red" if (i + offset) % 2 else "blue"
            lines.append(f"the {colour} box number {i}\t{int(colour == 'red')}")
        (folder / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as done:
        app.main(["--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    for command in ("tokenizer", "pretrain", "finetune", "predict", "info", "reproduce"):
        assert command in out


def test_fit_settings_follow_the_corpus_size():
    tiny = fit_settings(Settings(), 1000)
    assert tiny["size"] == "tiny"
    assert tiny["seq_len"] < 128
    assert tiny["batch_size"] >= 2
    assert tiny["steps"] >= 20
    assert tiny["sequences"] * (tiny["seq_len"] - 2) >= 1000
    large = fit_settings(Settings(), 10_000_000)
    assert (large["size"], large["seq_len"], large["batch_size"]) == ("small", 128, 64)
    assert large["warmup_steps"] == large["steps"] * 6 // 100
    given = fit_settings(Settings(size="base", seq_len=64, batch_size=8, steps=5, lr=1e-3), 10_000)
    assert (given["size"], given["seq_len"], given["batch_size"], given["steps"], given["lr"]) == (
        "base",
        64,
        8,
        5,
        1e-3,
    )
    assert resolve_size("auto", SIZE_THRESHOLDS[-1][0]) == "base"
    with pytest.raises(InputError, match="seq_len"):
        fit_settings(Settings(seq_len=2), 1000)


def test_model_config_rejects_unknown_fields_and_sequences_beyond_the_positions(tmp_path):
    tok = train_tokenizer(write_documents(tmp_path / "text", files=2).glob("*.txt"), vocab_size=300)
    config = model_config("tiny", "metro", tok, 64)
    assert (config.vocab_size, config.mask_token_id, config.hidden_size) == (len(tok), tok.mask_token_id, 64)
    with pytest.raises(InputError, match="not a MetroConfig field"):
        model_config("tiny", "metro", tok, 64, {"hiden_size": 3})
    with pytest.raises(InputError, match="position range"):
        model_config("tiny", "metro", tok, 128, {"max_position_embeddings": 64})


def test_tokenizer_pretrain_finetune_predict(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text = write_documents(tmp_path / "text")
    status, out, err = run_cli(capsys, "tokenizer", "--files", text, "--vocab-size", "300", "--out", "tok")
    assert status == 0, err
    assert json.loads(out)["vocab_size"] == len(load_tokenizer("tok")) <= 300

    status, out, err = run_cli(capsys, "pretrain", "--corpus", text, "--tokenizer", "tok", "--size", "tiny",
                               "--max-steps", "4", "--batch-size", "4", "--seq-len", "32", "--out", "run",
                               "--device", "cpu")  # fmt: skip
    assert status == 0, err
    summary = json.loads(out)
    assert summary["steps"] == 4
    assert summary["diverged_at"] is None
    assert "rtd_auc" in summary["final_eval"]
    resolved = read_json(tmp_path / "run" / "config.json")
    assert resolved["settings"]["seq_len"] == 32
    assert resolved["model"]["objective"] == "metro"
    saved = read_json(tmp_path / "run" / "model" / "config.json")
    assert (saved["model_type"], saved["position_embedding"], saved["scaled_init"]) == (
        "metro",
        "relative",
        True,
    )

    # The run's model folder is self-contained: it works after the corpus, the tokenizer and the run move.
    shutil.move(tmp_path / "run", tmp_path / "moved")
    shutil.rmtree(tmp_path / "tok")
    task = write_task(tmp_path / "colour")
    status, out, err = run_cli(capsys, "finetune", "--model", "moved/model", "--task-dir", task, "--epochs", "2",
                               "--batch-size", "8", "--lr", "1e-3", "--out", "ft")  # fmt: skip
    assert status == 0, err
    assert set(json.loads(out)["metrics"]) == {"accuracy"}
    status, out, err = run_cli(capsys, "predict", "--model", "ft/model", "--input", task / "dev.tsv")
    assert status == 0, err
    assert len(out.split()) == 20
    assert set(out.split()) <= {"0", "1"}


def test_electra_and_mlm_default_to_absolute_positions_and_plain_init(tmp_path, capsys):
    text = write_documents(tmp_path / "text", files=3)
    status, _, err = run_cli(capsys, "pretrain", "--corpus", text, "--objective", "mlm", "--size", "tiny",
                             "--max-steps", "2", "--batch-size", "2", "--seq-len", "16", "--vocab-size", "300",
                             "--out", tmp_path / "run")  # fmt: skip
    assert status == 0, err
    saved = read_json(tmp_path / "run" / "model" / "config.json")
    assert (saved["objective"], saved["position_embedding"], saved["scaled_init"]) == (
        "mlm",
        "absolute",
        False,
    )
    assert (tmp_path / "run" / "tokenizer" / "tokenizer.json").is_file()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["pretrain", "--corpus", "{empty}", "--out", "{tmp}/r"], "no .*txt"),
        (["pretrain", "--corpus", "{text}", "--lr", "-1", "--out", "{tmp}/r"], "--lr"),
        (["tokenizer", "--files", "{tmp}/missing.txt", "--out", "{tmp}/t"], "missing.txt"),
        (["finetune", "--model", "{tmp}", "--task-dir", "{task}", "--out", "{tmp}/f"], "dev.tsv:3"),
    ],
)
def test_bad_input_is_one_line_naming_the_cause(tmp_path, capsys, argv, message):
    (tmp_path / "empty").mkdir()
    text = write_documents(tmp_path / "text", files=1)
    task = write_task(tmp_path / "task")
    rows = (task / "dev.tsv").read_text().splitlines()
    rows[2] = "only one column"
    (task / "dev.tsv").write_text("\n".join(rows) + "\n")
    names = {"empty": tmp_path / "empty", "text": text, "tmp": tmp_path, "task": task}
    status, _, err = run_cli(capsys, *(a.format(**names) for a in argv))
    assert status == 2
    assert err.startswith("metro-lm: error:")
    assert "Traceback" not in err
    assert __import__("re").search(message, err), err


@pytest.fixture
def saved_pretraining(tmp_path: Path) -> Path:
    import torch
    from conftest import tiny_config

    from metro_lm import MetroForPreTraining

    torch.manual_seed(0)
    MetroForPreTraining(tiny_config()).save_pretrained(tmp_path / "model")
    return tmp_path / "model"


def test_info_counts_main_model_and_generator_and_checks_the_tie(saved_pretraining, capsys):
    status, out, err = run_cli(capsys, "info", "--model", saved_pretraining, "--json")
    assert status == 0, err
    found = json.loads(out)
    # Width 32, vocabulary 200, 64 positions unused (relative), 2 segments: embeddings 200·32 + 2·32 + LN 2·32.
    assert found["parameters"]["embeddings"] == 200 * 32 + 2 * 32 + 2 * 32
    layer = (32 * 96 + 96) + (32 * 32 + 32) + 2 * 32 + (32 * 64 + 64) + (64 * 32 + 32) + 2 * 32
    relative = 32 * 4
    assert found["parameters"]["main_encoder"] == 2 * layer + relative
    head = (32 * 32 + 32) + 2 * 32 + 200
    assert found["parameters"]["generator"] == layer + relative + head
    assert found["parameters"]["main_model"] == found["parameters"]["embeddings"] + 2 * layer + relative
    assert found["parameters"]["total"] == found["loaded_parameters"]
    assert found["embedding_matrices"] == ["metro.embeddings.word_embeddings.weight"]
    assert found["tied"] is True
    status, out, _ = run_cli(capsys, "info", "--model", saved_pretraining)
    assert "tied embeddings: yes" in out
    assert "parameters generator:" in out


def test_info_sees_an_untied_copy_of_the_embeddings(saved_pretraining, capsys):
    from safetensors.torch import load_file, save_file

    file = saved_pretraining / "model.safetensors"
    weights = load_file(file)
    weights["generator_head.decoder.weight"] = weights["metro.embeddings.word_embeddings.weight"].clone()
    save_file(weights, file, metadata={"format": "pt"})
    status, out, err = run_cli(capsys, "info", "--model", saved_pretraining, "--json")
    assert status == 0, err
    assert json.loads(out)["tied"] is False


@pytest.mark.parametrize("damage", ["truncate", "vocab", "heads", "generator", "missing"])
def test_info_names_what_is_wrong_with_a_model_folder(saved_pretraining, capsys, damage):
    config_file = saved_pretraining / "config.json"
    config = json.loads(config_file.read_text())
    message = {"truncate": "model.safetensors: not a readable safetensors file",
               "vocab": "is 200 x 32 but config.json has vocab_size 300",
               "heads": "hidden_size .32. must be a multiple of num_attention_heads .5.",
               "generator": "generator_layers must be between 1 and num_hidden_layers",
               "missing": "no such model folder"}[damage]  # fmt: skip
    model = saved_pretraining
    if damage == "truncate":
        data = (saved_pretraining / "model.safetensors").read_bytes()
        (saved_pretraining / "model.safetensors").write_bytes(data[: len(data) // 2])
    elif damage == "missing":
        model = saved_pretraining / "absent"
    else:
        field, value = {"vocab": ("vocab_size", 300), "heads": ("num_attention_heads", 5),
                        "generator": ("generator_layers", 7)}[damage]  # fmt: skip
        config[field] = value
        config_file.write_text(json.dumps(config))
    status, _, err = run_cli(capsys, "info", "--model", model)
    assert status == 2, err
    assert err.startswith("metro-lm: error:"), err
    assert len(err.strip().splitlines()) == 1, err
    assert __import__("re").search(message, err), err


@pytest.mark.parametrize("preset", ["tiny", "small", "base"])
def test_shipped_configs_are_pretrain_options(tmp_path, capsys, preset):
    status, _, err = run_cli(capsys, "config", "--preset", preset, "--out", tmp_path / f"{preset}.toml")
    assert status == 0, err
    _, args = app.resolve(["pretrain", "--config", str(tmp_path / f"{preset}.toml"), "--corpus", "text"])
    assert (args.objective, args.size) == ("metro", preset)
    assert args.max_steps == {"tiny": 300, "small": 1_000_000, "base": 125_000}[preset]
    assert args.seq_len == (512 if preset == "base" else 128)
    if preset == "base":
        assert args.batch_size % args.grad_accumulation == 0
        assert args.batch_size // args.grad_accumulation == 128  # one GPU: 16 micro-batches of 128 sequences


def test_the_tiny_config_trains_with_flags_winning(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_documents(tmp_path / "text", files=4, sentences=150)
    assert run_cli(capsys, "config", "--preset", "tiny", "--out", "tiny.toml")[0] == 0
    status, out, err = run_cli(capsys, "pretrain", "--config", "tiny.toml", "--corpus", "text", "--max-steps", "3",
                               "--vocab-size", "300", "--out", "run")  # fmt: skip
    assert status == 0, err
    resolved = read_json(tmp_path / "run" / "config.json")
    assert resolved["settings"]["steps"] == 3
    assert (resolved["settings"]["size"], resolved["settings"]["batch_size"]) == ("tiny", 32)
    assert json.loads(out.strip().splitlines()[-1])["steps"] == 3


def test_a_batch_larger_than_the_corpus_is_refused():
    with pytest.raises(InputError, match="batch_size 64 is more than the 10 training sequences of 12 tokens"):
        fit_settings(Settings(batch_size=64, seq_len=12), train_tokens=100)
    assert fit_settings(Settings(batch_size=10, seq_len=12), train_tokens=100)["batch_size"] == 10
