"""With a fixed thread count, a run repeats exactly whatever the number of cores the process may use."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CORES = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()


@pytest.mark.skipif(shutil.which("taskset") is None or len(CORES) < 2, reason="needs taskset and 2 cores")
def test_a_run_repeats_on_one_core_and_on_two(tmp_path: Path) -> None:
    first, second = sorted(CORES)[:2]
    command = [sys.executable, "-m", "pinn_linf.cli", "train", "--pde", "hjb-lqg", "--dim", "4", "--loss",
               "adversarial", "--steps", "3", "--iterations", "20", "--width", "16", "--domain-batch", "16",
               "--terminal-batch", "16", "--test-points", "40", "--mc-samples", "1024", "--probe-points", "64",
               "--eval-every", "10", "--checkpoint-every", "0", "--device", "cpu", "--seed", "3", "--threads", "1",
               "--quiet"]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    runs = {"one": f"{first}", "two": f"{first},{second}"}
    # both at once, each with its own reference cache, so that neither reads what the other built
    procs = {
        name: subprocess.Popen(["taskset", "-c", cores, *command, "--out", str(tmp_path / name)],
                               env={**env, "PINN_LINF_CACHE": str(tmp_path / f"cache-{name}")},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for name, cores in runs.items()
    }  # fmt: skip
    for name, proc in procs.items():
        _out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, f"{name}: {err}"

    def numbers(name: str) -> tuple[dict, list[dict], bytes]:
        run = tmp_path / name
        final = json.loads((run / "final_metrics.json").read_text())
        logged = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        untimed = [{k: v for k, v in row.items() if k not in ("seconds", "time")} for row in logged]
        weights = (run / "model" / "model.safetensors").read_bytes()
        return {k: v for k, v in final.items() if k != "seconds"}, untimed, weights

    one, two = numbers("one"), numbers("two")
    assert one[0]["rel_w11"] > 0
    assert len(one[1]) >= 2
    assert one == two
