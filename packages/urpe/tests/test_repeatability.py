"""With a fixed thread count, a run gives the same numbers whatever the number of cores it may use."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

CORES = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
TRAIN = [
    "train", "--task", "even-token", "--position", "urpe", "--seq-len", "8", "--steps", "20", "--d-model", "16",
    "--num-heads", "2", "--num-layers", "2", "--ffn-dim", "32", "--batch-size", "16", "--warmup", "5",
    "--eval-batches", "2", "--device", "cpu", "--threads", "1",
]  # fmt: skip


@pytest.mark.skipif(shutil.which("taskset") is None, reason="needs taskset (util-linux)")
@pytest.mark.skipif(len(CORES) < 2, reason="needs at least 2 available cores")
def test_a_training_run_repeats_exactly_on_one_core_and_on_two(tmp_path: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PAPERS_PROGRESS": "off"}
    runs = {}
    for cores in (CORES[:1], CORES[:2]):  # both at once, which halves the wall time
        out = tmp_path / f"cores-{len(cores)}"
        command = [
            "taskset",
            "-c",
            ",".join(map(str, cores)),
            sys.executable,
            "-c",
            "from urpe.cli import main; main()",
        ]
        runs[out] = subprocess.Popen(
            [*command, *TRAIN, "--out", str(out)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
    numbers = []
    for out, process in runs.items():
        stdout, stderr = process.communicate(timeout=600)
        assert process.returncode == 0, stderr
        records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
        weights = load_file(out / "model" / "model.safetensors")
        numbers.append(
            {
                "printed": {k: v for k, v in json.loads(stdout.splitlines()[-1]).items() if k != "seconds"},
                "final_metrics": json.loads((out / "final_metrics.json").read_text()),
                "losses": [r["loss"] for r in records if "loss" in r],
                # bit for bit (the file's header may list tied tensor names in another order)
                "weights": {name: tensor.view(-1).tolist() for name, tensor in sorted(weights.items())},
            }
        )
    assert numbers[0]["losses"]  # something was logged
    assert numbers[0] == numbers[1]
