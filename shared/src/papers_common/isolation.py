"""Benchmark measurements in fresh processes: each one pays its own imports and owns its thread settings.

A benchmark script calls :func:`run_isolated` for every measurement; the child (the same script started with
``--worker JSON``) does the work and reports with :func:`emit_result`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from typing import Any

RESULT_PREFIX = "RESULT "


def emit_result(result: Mapping[str, Any]) -> None:
    """Print the child's result as the ``RESULT {json}`` line that :func:`run_isolated` reads."""
    print(RESULT_PREFIX + json.dumps(dict(result)), flush=True)


def run_isolated(script: str | os.PathLike[str], payload: Mapping[str, Any], label: str) -> dict[str, Any]:
    """Run ``python script --worker JSON(payload)`` in a fresh process and return its last ``RESULT`` line.

    Progress goes to stderr (``measuring <label> ...`` and the time taken), and so does the child's own stderr,
    as it is written, so its progress records show while it runs. A child that fails or prints no result ends the
    benchmark with ``SystemExit`` naming ``label``, after echoing the end of its standard output.
    """
    print(f"measuring {label} ...", file=sys.stderr, flush=True)
    began = time.perf_counter()
    done = subprocess.run(
        [sys.executable, os.fspath(script), "--worker", json.dumps(dict(payload))],
        stdout=subprocess.PIPE,
        text=True,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if done.returncode or not lines:
        sys.stderr.write(done.stdout[-4000:])
        raise SystemExit(f"{label}: the measuring process failed (exit code {done.returncode})")
    print(f"  done in {time.perf_counter() - began:.1f} s", file=sys.stderr, flush=True)
    return json.loads(lines[-1][len(RESULT_PREFIX) :])
