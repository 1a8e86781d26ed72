"""Checkpoints that are safe to load and safe to interrupt.

A checkpoint at step ``s`` is two files in one directory::

    step-00000s.safetensors   every tensor: model weights, optimizer moments, RNG states
    step-00000s.json          the sidecar: step, config, the optimizer's non-tensor state, RNG states,
                              the weights file's size and SHA-256, and free-form ``extra``

The weights are written first and the sidecar last, each atomically, so a checkpoint counts as complete only when
its sidecar exists and the weights file has the recorded size. :func:`latest_checkpoint` skips anything else, and
:func:`load_checkpoint` checks the SHA-256 before reading a byte of weights. Nothing is ever unpickled: tensors
come from safetensors and everything else from JSON.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from papers_common import atomic
from papers_common.errors import InputError, UnsafeCheckpointError

if TYPE_CHECKING:
    import torch

FORMAT = "papers-common-checkpoint/1"
_SIDECAR = re.compile(r"^step-(\d+)\.json$")
_TENSOR = "__tensor__"
_ITEMS = "__items__"
_TUPLE = "__tuple__"


def checkpoint_paths(directory: str | os.PathLike[str], step: int) -> tuple[Path, Path]:
    """The ``(weights, sidecar)`` paths of the checkpoint at ``step`` in ``directory``."""
    stem = Path(directory) / f"step-{step:08d}"
    return stem.with_suffix(".safetensors"), stem.with_suffix(".json")


@dataclass
class Checkpoint:
    """A loaded checkpoint. Tensors live on the device given to :func:`load_checkpoint`."""

    path: Path
    step: int
    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any] | None = None
    rng: dict[str, Any] | None = None
    config: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def restore(
        self,
        model: torch.nn.Module | None = None,
        optimizer: torch.optim.Optimizer | None = None,
        *,
        rng: bool = True,
        strict: bool = True,
    ) -> None:
        """Load the weights into ``model``, the state into ``optimizer`` and, with ``rng``, every RNG state."""
        if model is not None:
            model.load_state_dict(self.model, strict=strict)
        if optimizer is not None:
            if self.optimizer is None:
                raise InputError(f"{self.path}: this checkpoint holds no optimizer state")
            optimizer.load_state_dict(self.optimizer)
        if rng and self.rng is not None:
            restore_rng(self.rng)


def capture_rng() -> dict[str, Any]:
    """The states of Python's, NumPy's and torch's global generators (CUDA too when it is initialised)."""
    import numpy as np
    import torch

    version, internal, gauss_next = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()  # noqa: NPY002 - the global generator's state
    state: dict[str, Any] = {
        "python": [version, list(internal), gauss_next],
        "numpy": [name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = list(torch.cuda.get_rng_state_all())
    return state


def restore_rng(state: Mapping[str, Any]) -> None:
    """Inverse of :func:`capture_rng`."""
    import numpy as np
    import torch

    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.cpu().numpy().astype(np.uint32), pos, has_gauss, cached))  # noqa: NPY002
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def save_checkpoint(
    directory: str | os.PathLike[str],
    step: int,
    model: torch.nn.Module | Mapping[str, torch.Tensor],
    *,
    optimizer: torch.optim.Optimizer | Mapping[str, Any] | None = None,
    config: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
    rng: bool = True,
    keep: int | None = None,
) -> Path:
    """Write a complete checkpoint atomically and return its sidecar path.

    Args:
        directory: where checkpoints live; created if needed.
        step: the training step (non-negative); names the files.
        model: a module (its ``state_dict()`` is saved) or a mapping of name to tensor. Tied weights are stored
            once and restored as equal tensors.
        optimizer: an optimizer or its ``state_dict()``: tensors go to safetensors, the rest to JSON.
        config: the run's resolved configuration (JSON values).
        extra: anything else to keep (scheduler state, best metric, data cursor): JSON values and tensors,
            nested in dicts, lists and tuples.
        rng: also save the global RNG states, so that a resumed run draws the same numbers.
        keep: when given, delete all but the ``keep`` newest complete checkpoints afterwards.
    """
    from safetensors.torch import save_file

    if step < 0:
        raise ValueError(f"step must be non-negative, got {step}")
    weights_path, sidecar_path = checkpoint_paths(directory, step)
    state = model.state_dict() if hasattr(model, "state_dict") and not isinstance(model, Mapping) else model
    optim_state = optimizer.state_dict() if hasattr(optimizer, "state_dict") else optimizer

    tensors: dict[str, torch.Tensor] = {}
    sidecar: dict[str, Any] = {
        "format": FORMAT,
        "step": step,
        "config": _encode(dict(config or {}), "config", tensors, allow_tensors=False),
        "model": _encode_model(state, tensors),
        "optimizer": None if optim_state is None else _encode(optim_state, "optimizer", tensors),
        "rng": _encode(capture_rng(), "rng", tensors) if rng else None,
        "extra": _encode(dict(extra or {}), "extra", tensors),
    }
    with atomic.atomic_path(weights_path) as tmp:
        save_file(tensors, tmp)
    sidecar["weights"] = {
        "file": weights_path.name,
        "bytes": weights_path.stat().st_size,
        "sha256": _sha256(weights_path),
    }
    atomic.write_text(sidecar_path, json.dumps(sidecar, indent=1) + "\n")
    if keep is not None:
        _prune(Path(directory), keep)
    return sidecar_path


def latest_checkpoint(directory: str | os.PathLike[str]) -> Path | None:
    """The sidecar of the newest *complete* checkpoint in ``directory``, or ``None``.

    Partial files (a missing or unreadable sidecar, weights of the wrong size, stray temp files) are skipped.
    """
    for _, sidecar in sorted(_sidecars(Path(directory)), reverse=True):
        if _is_complete(sidecar):
            return sidecar
    return None


def load_checkpoint(path: str | os.PathLike[str], *, map_location: str | torch.device = "cpu") -> Checkpoint:
    """Load a checkpoint from its sidecar, its weights file, or a directory (its latest complete checkpoint).

    Raises:
        InputError: nothing loadable is there.
        UnsafeCheckpointError: the weights do not match the SHA-256 recorded in the sidecar.
    """
    from safetensors.torch import load_file

    sidecar_path = _resolve(Path(path))
    meta = _read_sidecar(sidecar_path)
    weights_path = sidecar_path.with_name(meta["weights"]["file"])
    if not weights_path.is_file():
        raise InputError(f"{sidecar_path}: its weights file {weights_path.name} is missing")
    if _sha256(weights_path) != meta["weights"]["sha256"]:
        raise UnsafeCheckpointError(
            f"{weights_path}: contents do not match the SHA-256 in {sidecar_path.name}; the file is corrupt"
        )
    tensors = load_file(weights_path, device=str(map_location))
    model = {name: tensors[key] for name, key in meta["model"].items()}
    return Checkpoint(
        path=sidecar_path,
        step=int(meta["step"]),
        model=model,
        optimizer=_decode(meta["optimizer"], tensors),
        rng=_decode(meta["rng"], tensors),
        config=meta["config"],
        extra=_decode(meta["extra"], tensors),
    )


def load_state_dict(
    path: str | os.PathLike[str], *, map_location: str | torch.device = "cpu"
) -> dict[str, torch.Tensor]:
    """Read a mapping of tensors from ``.safetensors`` or from a PyTorch pickle holding tensors only.

    Pickles are read with ``torch.load(weights_only=True)``, which refuses arbitrary Python objects.

    Raises:
        UnsafeCheckpointError: the pickle holds objects beyond tensors and plain containers.
    """
    import pickle

    import torch

    file = Path(path)
    if not file.is_file():
        raise InputError(f"{file}: no such weights file")
    if file.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(file, device=str(map_location))
    try:
        loaded = torch.load(file, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        raise UnsafeCheckpointError(
            f"{file}: refusing to load: the pickle holds Python objects beyond tensors and plain containers, "
            "and unpickling them could run arbitrary code. Re-save only the state_dict, or use safetensors."
        ) from err
    except (RuntimeError, EOFError) as err:
        raise UnsafeCheckpointError(f"{file}: not a readable PyTorch weights file ({err})") from err
    if not isinstance(loaded, Mapping):
        raise InputError(f"{file}: expected a mapping of names to tensors, found {type(loaded).__name__}")
    return dict(loaded)


def _encode_model(state: Mapping[str, torch.Tensor], tensors: dict[str, torch.Tensor]) -> dict[str, str]:
    """Put a state dict into ``tensors``; returns name -> safetensors key. Tied views are stored once."""
    import torch

    keys: dict[str, str] = {}
    seen: dict[tuple[Any, ...], str] = {}
    storages: set[int] = set()
    for name, tensor in state.items():
        if not isinstance(tensor, torch.Tensor):
            raise TypeError(f"model state {name!r} is a {type(tensor).__name__}, not a tensor")
        tensor = tensor.detach()
        view = (
            tensor.untyped_storage().data_ptr(),
            tensor.storage_offset(),
            tuple(tensor.shape),
            tensor.stride(),
            tensor.dtype,
        )
        if view in seen and tensor.numel() > 0:
            keys[name] = seen[view]
            continue
        storage = tensor.untyped_storage().data_ptr()
        stored = tensor.clone() if storage in storages else tensor
        storages.add(storage)
        key = f"model/{name}"
        tensors[key] = stored.cpu().contiguous()
        seen[view] = keys[name] = key
    return keys


def _encode(value: Any, where: str, tensors: dict[str, torch.Tensor], *, allow_tensors: bool = True) -> Any:
    """Turn nested containers into JSON, moving tensors into ``tensors`` and leaving ``{"__tensor__": key}``."""
    import torch

    if isinstance(value, torch.Tensor):
        if not allow_tensors:
            raise TypeError(f"{where}: tensors are not allowed here")
        key, n = where, 1
        while key in tensors:  # keys 1 and "1", or "a/b" and {"a": {"b": ...}}, give the same path
            key, n = f"{where}#{n}", n + 1
        tensors[key] = value.detach().cpu().contiguous().clone()
        return {_TENSOR: key}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:  # NumPy scalar
        return value.item()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, Mapping):
        if all(isinstance(k, str) for k in value):
            return {
                k: _encode(v, f"{where}/{k}", tensors, allow_tensors=allow_tensors) for k, v in value.items()
            }
        return {
            _ITEMS: [
                [k, _encode(v, f"{where}/{k}", tensors, allow_tensors=allow_tensors)]
                for k, v in value.items()
            ]
        }
    if isinstance(value, (list, tuple)):
        items = [
            _encode(v, f"{where}/{i}", tensors, allow_tensors=allow_tensors) for i, v in enumerate(value)
        ]
        return {_TUPLE: items} if isinstance(value, tuple) and allow_tensors else items
    raise TypeError(f"{where}: cannot store a value of type {type(value).__name__} in a checkpoint")


def _decode(value: Any, tensors: Mapping[str, torch.Tensor]) -> Any:
    if isinstance(value, dict):
        if set(value) == {_TENSOR}:
            return tensors[value[_TENSOR]]
        if set(value) == {_ITEMS}:
            return {k: _decode(v, tensors) for k, v in value[_ITEMS]}
        if set(value) == {_TUPLE}:
            return tuple(_decode(v, tensors) for v in value[_TUPLE])
        return {k: _decode(v, tensors) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v, tensors) for v in value]
    return value


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _sidecars(directory: Path) -> list[tuple[int, Path]]:
    if not directory.is_dir():
        return []
    return [(int(m.group(1)), p) for p in directory.iterdir() if (m := _SIDECAR.match(p.name))]


def _read_sidecar(path: Path) -> dict[str, Any]:
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(f"{path}: not a readable checkpoint sidecar ({err})") from err
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or "weights" not in meta:
        raise InputError(f"{path}: not a {FORMAT} sidecar")
    return meta


def _is_complete(sidecar: Path) -> bool:
    try:
        meta = _read_sidecar(sidecar)
        weights = sidecar.with_name(meta["weights"]["file"])
        return weights.is_file() and weights.stat().st_size == meta["weights"]["bytes"]
    except (InputError, KeyError, TypeError):
        return False


def _resolve(path: Path) -> Path:
    if path.is_dir():
        found = latest_checkpoint(path)
        if found is None:
            raise InputError(f"{path}: no complete checkpoint in this directory")
        return found
    if path.suffix == ".safetensors":
        path = path.with_suffix(".json")
    if not path.is_file():
        raise InputError(f"{path}: no such checkpoint")
    return path


def _prune(directory: Path, keep: int) -> None:
    complete = [(step, p) for step, p in sorted(_sidecars(directory), reverse=True) if _is_complete(p)]
    for _, sidecar in complete[max(keep, 1) :]:
        weights = sidecar.with_suffix(".safetensors")
        sidecar.unlink(
            missing_ok=True
        )  # sidecar first: a crash here leaves an incomplete, ignored checkpoint
        weights.unlink(missing_ok=True)
