"""With a fixed ``--threads``, the same seed gives the same numbers whatever the number of cores."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CORES = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []


@pytest.mark.skipif(
    shutil.which("taskset") is None or len(CORES) < 2, reason="needs taskset and at least 2 cores"
)
def test_training_repeats_on_one_core_and_on_two(tmp_path: Path) -> None:
    data = tmp_path / "ring"
    data.mkdir()
    rows = [f"e{i}\tnext\te{(i + 1) % 12}\n" for i in range(12)] + [
        f"e{(i + 1) % 12}\tprev\te{i}\n" for i in range(12)
    ]
    for split, lines in (("train", rows[:20]), ("valid", rows[20:22]), ("test", rows[22:])):
        (data / f"{split}.txt").write_text("".join(lines), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    env["HF_HUB_OFFLINE"] = "1"

    def start(cores: list[int]) -> tuple[Path, subprocess.Popen[str]]:
        out = tmp_path / f"run-{len(cores)}"
        command = ["taskset", "-c", ",".join(map(str, cores)), sys.executable, "-c",
                   "from house_kge.cli import main; main()", "train", "--dataset", str(data), "--out", str(out),
                   "--dim", "16", "--k", "4", "--steps", "40", "--batch-size", "16", "--negatives", "4",
                   "--eval-every", "10", "--device", "cpu", "--threads", "1", "--seed", "3", "--quiet"]  # fmt: skip
        return out, subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    def measured(out: Path, process: subprocess.Popen[str]) -> tuple[dict, list[dict], bytes]:
        _, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        logged = [
            {k: v for k, v in json.loads(line).items() if k != "time"}  # wall clock
            for line in (out / "metrics.jsonl").read_text().splitlines()
        ]
        final = json.loads((out / "final_metrics.json").read_text())
        return final, logged, (out / "model" / "model.safetensors").read_bytes()

    runs = [start(CORES[:1]), start(CORES[:2])]  # side by side, to halve the time
    one, two = (measured(*run) for run in runs)
    assert [r["step"] for r in one[1]] == [10, 20, 30, 40]  # validation metrics every 10 steps, the last loss
    assert 0 < one[0]["mrr"] <= 1
    assert one == two  # test metrics, logged validation metrics and loss, trained weights: bit for bit
