"""Seeds, deterministic settings and device selection."""

from __future__ import annotations

import os
import random
from typing import TYPE_CHECKING

from paperkit.errors import InputError

if TYPE_CHECKING:
    import torch


def seed_everything(seed: int, *, deterministic: bool = True) -> torch.Generator:
    """Seed Python's, NumPy's and torch's global generators (all devices) from one integer.

    Args:
        seed: any non-negative integer below 2**63.
        deterministic: also ask torch for deterministic kernels (``torch.use_deterministic_algorithms`` in
            warn-only mode, cuDNN benchmarking off, the cuBLAS workspace setting it requires).

    Returns:
        A fresh CPU ``torch.Generator`` seeded with ``seed``, for code that wants its own explicit stream.
    """
    import numpy as np
    import torch

    if not 0 <= int(seed) < 2**63:
        raise InputError(f"--seed: expected an integer in [0, 2**63), got {seed}")
    seed = int(seed)
    os.environ["PYTHONHASHSEED"] = str(
        seed
    )  # for subprocesses; this interpreter's hash seed is already fixed
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - code that uses NumPy's global generator must be seeded too
    torch.manual_seed(seed)  # seeds every CUDA device too
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    return torch.Generator().manual_seed(seed)


def pick_device(name: str = "auto") -> torch.device:
    """Resolve a device name: ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.

    Raises:
        InputError: the name is unknown or names an accelerator this machine does not have.
    """
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise InputError(
                f"--device {name}: CUDA is not available on this machine (use --device cpu or auto)"
            )
        device = torch.device(name)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise InputError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) are visible")
        return device
    raise InputError(f"--device: expected 'auto', 'cpu', 'cuda' or 'cuda:N', got {name!r}")
