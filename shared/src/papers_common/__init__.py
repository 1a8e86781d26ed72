"""papers_common: the thin common layer of the papers packages.

Seeds and devices, the torchrun process context, run directories, output paths checked where they enter, atomic writes, safe checkpoints, progress bars, the results/bench report
contract and a uniform command line; for the two PINN packages, their shared tanh MLP (with its exact forward
Laplacian) and the Cole–Hopf reference of their common HJB benchmark. No training loops live here.

Importing papers_common is cheap: torch, matplotlib, tqdm and jsonschema are imported only when a function needs them.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:
    __version__ = version("papers-common")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

_EXPORTS = {
    "app": ["App", "RunArgs", "option", "read_config_file"],
    "atomic": ["atomic_open", "atomic_path", "write_bytes", "write_text", "write_json", "append_line"],
    "checkpoint": [
        "Checkpoint",
        "save_checkpoint",
        "load_checkpoint",
        "latest_checkpoint",
        "load_state_dict",
        "capture_rng",
        "restore_rng",
    ],
    "colehopf": ["TestSet", "cole_hopf"],
    "distributed": ["DistributedContext", "distributed_context", "join_process_group"],
    "errors": ["InputError", "OutputError", "SchemaError", "UnsafeCheckpointError"],
    "isolation": ["run_isolated", "emit_result"],
    "plotting": ["plot_lines", "plot_bars"],
    "pretrained": ["Pretrained", "pretrained_extra"],
    "mlp": ["MLP", "MLPConfig"],
    "monitoring": ["configure_logging", "progress", "progress_enabled"],
    "outputs": ["check_output"],
    "report": [
        "Paper",
        "Baseline",
        "Claim",
        "Spread",
        "claim",
        "claim_over_seeds",
        "Results",
        "Anchor",
        "Measurement",
        "Bench",
        "machine_info",
        "validate",
        "write_results",
        "write_bench",
        "load_results",
        "load_bench",
    ],
    "positions": ["t5_relative_bucket"],
    "rundir": ["RunDir", "read_json", "read_jsonl", "resume_run", "to_jsonable"],
    "seeding": ["seed_everything", "pick_device", "pin_threads", "preserved_global_state"],
    "summary": ["write_report"],
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = ["__version__", *sorted(_WHERE)]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'papers_common' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"papers_common.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:
    from papers_common.app import App, RunArgs, option, read_config_file
    from papers_common.atomic import (
        append_line,
        atomic_open,
        atomic_path,
        write_bytes,
        write_json,
        write_text,
    )
    from papers_common.checkpoint import (
        Checkpoint,
        capture_rng,
        latest_checkpoint,
        load_checkpoint,
        load_state_dict,
        restore_rng,
        save_checkpoint,
    )
    from papers_common.colehopf import TestSet, cole_hopf
    from papers_common.distributed import DistributedContext, distributed_context, join_process_group
    from papers_common.errors import InputError, OutputError, SchemaError, UnsafeCheckpointError
    from papers_common.isolation import emit_result, run_isolated
    from papers_common.mlp import MLP, MLPConfig
    from papers_common.monitoring import configure_logging, progress, progress_enabled
    from papers_common.outputs import check_output
    from papers_common.plotting import plot_bars, plot_lines
    from papers_common.pretrained import Pretrained, pretrained_extra
    from papers_common.report import (
        Anchor,
        Baseline,
        Bench,
        Claim,
        Measurement,
        Paper,
        Results,
        Spread,
        claim,
        claim_over_seeds,
        load_bench,
        load_results,
        machine_info,
        validate,
        write_bench,
        write_results,
    )
    from papers_common.rundir import RunDir, read_json, read_jsonl, resume_run, to_jsonable
    from papers_common.seeding import pick_device, pin_threads, preserved_global_state, seed_everything
    from papers_common.summary import write_report
