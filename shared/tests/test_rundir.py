"""Run directories: the resolved config, the metrics log (with torn lines) and JSON conversion."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch

from papers_common import RunDir, read_jsonl, to_jsonable


@dataclass
class Config:
    lr: float = 0.1
    out: Path = Path("runs/a")
    sizes: tuple[int, ...] = (1, 2)
    tags: set[str] = field(default_factory=lambda: {"x"})
    nested: dict[int, Path] = field(default_factory=lambda: {1: Path("p")})


def test_to_jsonable() -> None:
    assert to_jsonable(Config()) == {
        "lr": 0.1,
        "out": "runs/a",
        "sizes": [1, 2],
        "tags": ["x"],
        "nested": {"1": "p"},
    }
    assert to_jsonable({"a": np.float64(1.5), "b": torch.tensor(2), "c": [np.int64(3)]}) == {
        "a": 1.5,
        "b": 2,
        "c": [3],
    }
    assert type(to_jsonable(np.float32(0.5))) is float
    assert to_jsonable(None) is None


def test_config_round_trip(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "run")
    assert run.root.is_dir()
    path = run.write_config(Config(lr=0.25))
    assert path == tmp_path / "run" / "config.json"
    assert run.read_config() == {
        "lr": 0.25,
        "out": "runs/a",
        "sizes": [1, 2],
        "tags": ["x"],
        "nested": {"1": "p"},
    }
    run.write_config({"only": "mapping"})  # rewriting replaces the file
    assert run.read_config() == {"only": "mapping"}


def test_paths_of_a_run(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    assert run.path("results.json") == tmp_path / "results.json"
    assert run.checkpoints == tmp_path / "checkpoints"
    assert run.metrics_path == tmp_path / "metrics.jsonl"
    assert repr(run) == f"RunDir({str(tmp_path)!r})"


def test_log_and_read_metrics(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    assert run.metrics() == []
    record = run.log(1, loss=0.5, acc=np.float32(0.25), grad=torch.tensor(3.0))
    assert record["step"] == 1
    assert isinstance(record["time"], float)
    run.log(2, loss=float("nan"), other=float("inf"), count=3)
    records = run.metrics()
    assert [(r["step"], r.get("loss")) for r in records] == [(1, 0.5), (2, None)]
    assert records[0]["acc"] == 0.25
    assert records[0]["grad"] == 3.0
    assert records[1]["other"] is None
    assert records[1]["count"] == 3
    for line in run.metrics_path.read_text(encoding="utf-8").splitlines():
        json.loads(line)  # strict JSON: no NaN or Infinity tokens


def test_torn_last_line_is_skipped_and_next_append_stays_whole(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    run.log(1, loss=1.0)
    run.log(2, loss=0.5)
    with run.metrics_path.open("ab") as handle:
        handle.write(b'{"step": 3, "time": 1.0, "lo')  # a crash in the middle of a write
    with pytest.warns(UserWarning, match=r"metrics\.jsonl:3: skipping a torn"):
        assert [r["step"] for r in run.metrics()] == [1, 2]

    run.log(4, loss=0.25)
    with pytest.warns(UserWarning, match=r"metrics\.jsonl:3: skipping a torn"):
        records = run.metrics()
    assert [r["step"] for r in records] == [1, 2, 4]
    assert records[-1]["loss"] == 0.25
    assert run.metrics_path.read_text(encoding="utf-8").splitlines()[-1].startswith('{"step": 4,')


def test_read_jsonl_skips_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    path.write_text('{"a": 1}\n\n   \n{"a": 2}\n', encoding="utf-8")
    assert read_jsonl(path) == [{"a": 1}, {"a": 2}]


def test_truncate_metrics_drops_later_steps(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    for step in range(1, 6):
        run.log(step, loss=1.0 / step)
    run.truncate_metrics(after_step=3)
    assert [r["step"] for r in run.metrics()] == [1, 2, 3]
    run.log(4, loss=9.0)
    assert [(r["step"], r["loss"]) for r in run.metrics()][-2:] == [(3, 1.0 / 3), (4, 9.0)]


def test_write_json_and_text(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    run.write_json("summary.json", {"best": np.float64(0.5), "where": Path("x")})
    assert json.loads(run.path("summary.json").read_text(encoding="utf-8")) == {"best": 0.5, "where": "x"}
    run.write_text("notes.txt", "hello\n")
    assert run.path("notes.txt").read_text(encoding="utf-8") == "hello\n"


def test_read_json_names_the_file_when_it_is_not_one_json_object(tmp_path):
    from papers_common import InputError, read_json

    good = tmp_path / "good.json"
    good.write_text('{"a": 1}', encoding="utf-8")
    assert read_json(good) == {"a": 1}
    cases = {"list.json": ("[1, 2]", "expected a JSON object in this run config"),
             "torn.json": ('{"a": ', "not a readable run config"),
             "latin.json": (b"\xff\xfe{", "not a readable run config")}  # fmt: skip
    for name, (content, message) in cases.items():
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        with pytest.raises(InputError, match=rf"{re.escape(name)}: {message}"):
            read_json(path, "run config")
    with pytest.raises(InputError, match=r"missing\.json: not a readable"):
        read_json(tmp_path / "missing.json")
