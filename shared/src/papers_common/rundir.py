"""Run directories: where a run writes its resolved config, its metrics log, checkpoints and results.

Layout of a run directory::

    config.json        the resolved configuration (defaults < config file < flags), written first
    metrics.jsonl      one JSON object per logged step
    checkpoints/       see :mod:`papers_common.checkpoint`
    results.json/.md   see :mod:`papers_common.report`
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from papers_common import atomic
from papers_common.errors import InputError, OutputError
from papers_common.outputs import as_output_error

if TYPE_CHECKING:
    import torch

    from papers_common.checkpoint import Checkpoint


def to_jsonable(config: Any) -> Any:
    """A dataclass, mapping or sequence as plain JSON values (paths become strings, tuples lists)."""
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return {f.name: to_jsonable(getattr(config, f.name)) for f in dataclasses.fields(config)}
    if isinstance(config, Mapping):
        return {str(k): to_jsonable(v) for k, v in config.items()}
    if isinstance(config, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in config]
    if isinstance(config, os.PathLike):
        return os.fspath(config)
    if hasattr(config, "item") and getattr(config, "ndim", None) == 0:
        return config.item()
    return config


def read_json(path: str | os.PathLike[str], what: str = "JSON file") -> dict[str, Any]:
    """Read a file holding one JSON object; anything else is an :class:`InputError` naming the file.

    Args:
        what: how the message calls the file ("model config", "run config", ...).
    """
    file = Path(path)
    try:
        found = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(f"{file}: not a readable {what} ({err})") from None
    if not isinstance(found, dict):
        raise InputError(f"{file}: expected a JSON object in this {what}")
    return found


def read_jsonl(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read a JSON-lines log. Lines torn by a crash are skipped with a warning naming the file and line."""
    records = []
    with Path(path).open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                warnings.warn(f"{path}:{number}: skipping a torn or malformed log line", stacklevel=2)
    return records


class RunDir:
    """One run's output directory.

    Args:
        root: the directory (created if needed).

    Raises:
        OutputError: ``root`` cannot be a folder here (it or a part of it is a file, or the place is not writable).
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise (as_output_error(err, self.root, "cannot create the run folder") or err) from None
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise OutputError(f"{self.root}: the run folder is not writable")

    def __repr__(self) -> str:
        return f"RunDir({str(self.root)!r})"

    def path(self, name: str) -> Path:
        """A file inside the run directory."""
        return self.root / name

    @property
    def checkpoints(self) -> Path:
        """The checkpoint directory of this run."""
        return self.root / "checkpoints"

    @property
    def metrics_path(self) -> Path:
        return self.root / "metrics.jsonl"

    def write_config(self, config: Any) -> Path:
        """Write the resolved configuration (dataclass or mapping) to ``config.json`` atomically."""
        return atomic.write_json(self.root / "config.json", to_jsonable(config))

    def read_config(self) -> dict[str, Any]:
        return json.loads((self.root / "config.json").read_text(encoding="utf-8"))

    def log(self, step: int, **metrics: float) -> dict[str, Any]:
        """Append ``{"step": step, "time": unix_seconds, **metrics}`` to ``metrics.jsonl``; returns the record.

        Non-finite floats are written as ``null`` so that the log stays valid JSON.
        """
        values = {k: to_jsonable(v) for k, v in metrics.items()}
        values = {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in values.items()}
        record = {"step": int(step), "time": round(time.time(), 3), **values}
        atomic.append_line(self.metrics_path, json.dumps(record, allow_nan=False))
        return record

    def metrics(self) -> list[dict[str, Any]]:
        """Every logged record, in order (empty when nothing was logged)."""
        return read_jsonl(self.metrics_path) if self.metrics_path.exists() else []

    def truncate_metrics(self, after_step: int) -> None:
        """Drop records logged after ``after_step`` (used when resuming from an earlier checkpoint)."""
        kept = [r for r in self.metrics() if r.get("step", 0) <= after_step]
        atomic.write_text(self.metrics_path, "".join(json.dumps(r) + "\n" for r in kept))

    def write_json(self, name: str, obj: Any) -> Path:
        return atomic.write_json(self.root / name, to_jsonable(obj))

    def write_text(self, name: str, text: str) -> Path:
        return atomic.write_text(self.root / name, text)


def resume_run(
    run: RunDir,
    config: Mapping[str, Any],
    compared: Sequence[str],
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    *,
    map_location: str | torch.device = "cpu",
) -> Checkpoint | None:
    """Resume ``run`` from its newest complete checkpoint, or start it; either way write ``config.json``.

    The checkpoint's recorded config must equal ``config`` under every key in ``compared``; otherwise the run is
    refused with an :class:`InputError` that names the differing keys, and the directory is left as it was. On
    resume the model and optimizer are restored and metrics logged after the checkpoint's step are dropped.

    Returns:
        The checkpoint resumed from (its ``step`` and ``extra`` carry the caller's loop state), or None.
    """
    from papers_common.checkpoint import latest_checkpoint, load_checkpoint

    found = latest_checkpoint(run.checkpoints)
    checkpoint = None
    if found is not None:
        checkpoint = load_checkpoint(found, map_location=map_location)
        wanted = to_jsonable({key: config[key] for key in compared})
        differing = [key for key in compared if checkpoint.config.get(key) != wanted[key]]
        if differing:
            raise InputError(
                f"{run.root}: its checkpoint {found.name} was written with other settings (a different "
                f"{', '.join(differing)}); resume with the same settings or use a new output directory"
            )
        checkpoint.restore(model, optimizer)
        run.truncate_metrics(checkpoint.step)
    run.write_config(config)
    return checkpoint
