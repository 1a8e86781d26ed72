"""The command line: transcribe in every format, and one-line errors for bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from vad_asr.cli import main

SPEECH = Path(__file__).parent / "data" / "quickstart" / "speech.wav"


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    out, err = capsys.readouterr()
    return exit_info.value.code, out, err


@pytest.fixture(scope="module")
def json_transcript(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("cli") / "t.json"
    with pytest.raises(SystemExit) as exit_info:
        main(["transcribe", str(SPEECH), "--policy", "vadoi", "--window", "6", "--vad", "energy", "--out", str(out),
              "--no-progress"])  # fmt: skip
    assert exit_info.value.code == 0
    return json.loads(out.read_text())


def test_transcribe_writes_words_windows_and_compute(json_transcript):
    assert json_transcript["words"]
    assert json_transcript["text"]
    compute = json_transcript["compute"]
    assert compute["engine_calls"] == len(json_transcript["windows"]) >= 3
    assert compute["audio_s"] == pytest.approx(14.05, abs=0.01)
    assert 1.0 <= compute["ratio"] <= 2.0
    assert json_transcript["settings"]["policy"] == "vadoi"


def test_ctm_and_srt(tmp_path, capsys):
    code, out, _ = run(["transcribe", str(SPEECH), "--policy", "fixed", "--window", "8", "--format", "ctm",
                        "--no-progress"], capsys)  # fmt: skip
    assert code == 0
    fields = [line.split() for line in out.splitlines()]
    assert fields
    assert all(f[0] == "speech" and f[1] == "1" and float(f[3]) >= 0 for f in fields)
    code, out, _ = run(["transcribe", "--audio", str(SPEECH), "--policy", "fixed", "--window", "8", "--format",
                        "srt", "--no-progress"], capsys)  # fmt: skip
    assert code == 0
    assert out.startswith("1\n00:00:")
    assert " --> " in out


@pytest.mark.parametrize(
    ("make", "extra", "message"),
    [
        (lambda p: None, [], "no such audio file"),
        (lambda p: p.write_text("hello"), [], "not a readable audio file"),
        (lambda p: sf.write(p, np.zeros(0), 16_000), [], "holds no samples"),
        (lambda p: shutil.copy(SPEECH, p), ["--window", "0"], "--window must be positive"),
        (lambda p: shutil.copy(SPEECH, p), ["--overlap", "1.5"], "--overlap must lie in"),
        (lambda p: shutil.copy(SPEECH, p), ["--engine", "hf"], "--engine hf needs --model"),
        (lambda p: shutil.copy(SPEECH, p), ["--engine", "ctc", "--device", "tpu"], "--device: expected"),
        (
            lambda p: shutil.copy(SPEECH, p),
            ["--engine", "ctc", "--model", "missing-folder"],
            "not a readable vad-asr CTC model",
        ),
        (lambda p: shutil.copy(SPEECH, p), ["--decoder", "greedy"], "--decoder applies to --engine ctc only"),
        (
            lambda p: shutil.copy(SPEECH, p),
            ["--engine", "ctc", "--lm", "missing.arpa"],
            "missing.arpa is not a file",
        ),
        (
            lambda p: shutil.copy(SPEECH, p),
            ["--engine", "ctc", "--beam-width", "0"],
            "--beam-width must be at least 1",
        ),
        (
            lambda p: shutil.copy(SPEECH, p),
            ["--engine", "ctc", "--decoder", "best"],
            "--decoder must be one of",
        ),
    ],
)
def test_bad_input_gives_one_line(tmp_path, capsys, make, extra, message):
    path = tmp_path / "in.wav"
    make(path)
    code, _out, err = run(["transcribe", str(path), "--no-progress", *extra], capsys)
    assert code == 2
    assert message in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("case", ["silent", "stereo-48k", "8k"])
def test_silent_stereo_and_other_rates_transcribe(tmp_path, capsys, case):
    speech, rate = sf.read(SPEECH, dtype="float32")
    path = tmp_path / f"{case}.wav"
    if case == "silent":
        sf.write(path, np.zeros(rate * 3, dtype=np.float32), rate)
    elif case == "stereo-48k":
        from vad_asr.audio import resample

        up = resample(speech[: rate * 4], rate, 48_000)
        sf.write(path, np.stack([up, up], axis=1), 48_000)
    else:
        from vad_asr.audio import resample

        sf.write(path, resample(speech[: rate * 4], rate, 8_000), 8_000)
    code, out, _ = run(
        ["transcribe", str(path), "--policy", "overlap", "--window", "2", "--no-progress"], capsys
    )
    assert code == 0
    result = json.loads(out)
    assert result["compute"]["audio_s"] == pytest.approx(3.0 if case == "silent" else 4.0, abs=0.01)
    if case == "silent":
        assert result["words"] == [] or all(w["text"] for w in result["words"])


def test_reproduce_refuses_an_output_path_that_is_a_file(capsys, tmp_path):
    (tmp_path / "r").write_text("x")
    code, _, err = run(["reproduce", "--out", str(tmp_path / "r")], capsys)
    assert code == 2
    assert "--out" in err


def test_train_ctc_then_transcribe_with_it(tmp_path, capsys):
    texts = tmp_path / "texts"
    texts.mkdir()
    (texts / "a.txt").write_text("The ship sailed at noon. A cold wind blew all day. She read the letter twice. "
                                 "We walked home slowly. It rained all night long. The dog slept by the fire.")  # fmt: skip
    code, out, _ = run(["train-ctc", "--text-dir", str(texts), "--out", str(tmp_path / "run"), "--steps", "2",
                        "--batch-size", "2", "--channels", "16", "--blocks", "1", "--save-every", "1"], capsys)  # fmt: skip
    assert code == 0
    assert "trained 2 steps" in out
    assert (tmp_path / "run" / "model" / "lm.arpa.gz").is_file()  # the word model of its training text
    code, out, _ = run(["build-lm", "--text-dir", str(texts), "--out", str(tmp_path / "own.arpa")], capsys)
    assert code == 0
    assert "bigrams" in out
    code, out, _ = run(["transcribe", str(SPEECH), "--engine", "ctc", "--lm", str(tmp_path / "own.arpa"),
                        "--beam-width", "4", "--policy", "fixed", "--no-progress"], capsys)  # fmt: skip
    assert code == 0
    code, _, err = run(["build-lm", "--text-dir", str(texts), "--out", str(tmp_path), "--min-bigram-count", "1"],
                       capsys)  # fmt: skip
    assert code == 2
    assert "--out" in err
    code, out, _ = run(["transcribe", str(SPEECH), "--engine", "ctc", "--model", str(tmp_path / "run" / "model"),
                        "--policy", "fixed", "--window", "8", "--no-progress"], capsys)  # fmt: skip
    assert code == 0
    assert json.loads(out)["compute"]["engine_calls"] == 2
    code, _, err = run(
        ["train-ctc", "--text-dir", str(texts), "--out", str(tmp_path / "r2"), "--steps", "0"], capsys
    )
    assert code == 2
    assert "--steps must be at least 1" in err


def test_corpus_flags_are_checked(tmp_path, capsys):
    texts = tmp_path / "texts"
    texts.mkdir()
    (texts / "a.txt").write_text("The ship sailed at noon. A cold wind blew all day.")
    code, _, err = run(["corpus", "synth", "--text-dir", str(texts), "--out", str(tmp_path / "c"), "--noise-db", "6"],
                       capsys)  # fmt: skip
    assert code == 2
    assert "--noise-db is a level below full scale" in err
    code, _, err = run(
        ["corpus", "synth", "--text-dir", str(tmp_path / "none"), "--out", str(tmp_path / "c")], capsys
    )
    assert code == 2
    assert "not a folder" in err
    code, _, err = run(["evaluate", "--corpus", str(texts), "--engine", "ctc"], capsys)
    assert code == 2
    assert "no recordings" in err
