"""Seeds, deterministic settings and device selection."""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Iterator
from typing import TYPE_CHECKING

from papers_common.errors import InputError

if TYPE_CHECKING:
    import torch


def pin_threads(threads: int) -> None:
    """Run torch's CPU kernels on exactly ``threads`` threads, here and in child processes.

    How a CPU reduction is split depends on the thread count, and torch's default count is the number of cores the
    process may use, so the same seed gives different low-order bits on machines (or ``taskset`` masks) with other
    core counts. A fixed count makes a run repeat bit for bit on any machine of the same CPU type.

    Raises:
        InputError: ``threads`` is below 1 (the message names ``--threads``).
    """
    import torch

    if int(threads) < 1:
        raise InputError(f"--threads {threads}: must be a positive integer")
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = str(int(threads))  # read by child processes' torch at start-up
    torch.set_num_threads(int(threads))


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


@contextlib.contextmanager
def preserved_global_state() -> Iterator[None]:
    """Restore on exit what :func:`seed_everything` changes process-wide.

    That is the environment variables it sets, torch's deterministic-algorithm and cuDNN flags, and the
    Python, NumPy and torch (CPU) generator states. For tests, and for callers that seed a sub-task without
    leaking the settings into the rest of the program.
    """
    import numpy as np
    import torch

    env = {name: os.environ.get(name) for name in ("PYTHONHASHSEED", "CUBLAS_WORKSPACE_CONFIG")}
    enabled = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    cudnn = (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic)
    states = (random.getstate(), np.random.get_state(), torch.get_rng_state())  # noqa: NPY002
    try:
        yield
    finally:
        for name, value in env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        torch.use_deterministic_algorithms(enabled, warn_only=warn_only)
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = cudnn
        random.setstate(states[0])
        np.random.set_state(states[1])  # noqa: NPY002
        torch.set_rng_state(states[2])


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
