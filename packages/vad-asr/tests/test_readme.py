"""The README's examples run as written: its Python blocks, and its CLI lines in a fresh directory."""

from __future__ import annotations

import json
import re
import shlex
import shutil
from pathlib import Path

import pytest
import soundfile as sf
from conftest import espeak
from test_engines import tiny_ctc  # noqa: F401  (a fixture: the README's Hugging Face checkpoint)

from vad_asr.cli import _positional_audio, app

README = Path(__file__).parents[1] / "README.md"
TALE = """It was the best of times, it was the worst of times. It was the age of wisdom, it was the age of
foolishness. It was the epoch of belief, it was the epoch of incredulity. It was the season of Light, it was the
season of Darkness. It was the spring of hope, it was the winter of despair."""
SPEECH = Path(__file__).parent / "data" / "quickstart" / "speech.wav"


def section(name: str) -> str:
    return README.read_text(encoding="utf-8").split(f"## {name}", 1)[1].split("\n## ", 1)[0]


def test_the_quickstart_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    shutil.copy(SPEECH, "speech.wav")
    blocks = re.findall(r"```python\n(.*?)```", section("Quickstart"), flags=re.S)
    assert len(blocks) == 2
    for block in blocks:
        namespace: dict[str, object] = {}
        exec(compile(block, str(README), "exec"), namespace)  # the README's own code
        assert namespace["result"].words  # type: ignore[attr-defined]


def test_the_cli_lines_run_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_ctc: str) -> None:  # noqa: F811
    lines = [line for name in ("CLI", "The CTC engine")
             for block in re.findall(r"```bash\n(.*?)```", section(name), flags=re.S)
             for line in block.splitlines() if line.startswith("vad-asr ")]  # fmt: skip
    assert len(lines) == 10
    monkeypatch.chdir(tmp_path)
    shutil.copy(SPEECH, "speech.wav")
    shutil.copytree(tiny_ctc, "my-wav2vec2-checkpoint")
    Path("my_texts").mkdir()
    Path("my_texts/tale.txt").write_text(TALE)
    chapter = Path("LibriSpeech/test-clean/84/121123")
    chapter.mkdir(parents=True)
    sf.write(chapter / "84-121123-0000.flac", espeak("hello there"), 16_000)
    (chapter / "84-121123.trans.txt").write_text("84-121123-0000 HELLO THERE\n")
    for line in lines:
        assert app.main(_positional_audio(shlex.split(line)[1:])) == 0, line
    assert Path("speech.srt").read_text().startswith("1\n")
    assert Path("speech-ctc.srt").read_text().startswith("1\n")
    assert json.loads(Path("overlap.json").read_text())["compute_ratio"] > 1.8
    assert Path("librispeech-long/84-121123.json").is_file()
    assert Path("my-words.arpa.gz").is_file()
