"""This process's place in a ``torchrun`` job: rank, world size, device, and the two collectives every trainer needs.

Outside ``torchrun`` (``WORLD_SIZE`` unset or 1) everything is a single-process no-op, so a trainer has one code path.
Under ``torchrun`` the default process group is started from the launcher's environment (``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR``/``MASTER_PORT``): NCCL on CUDA, where each process takes GPU ``LOCAL_RANK``, and Gloo
on CPU.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch

from papers_common.errors import InputError
from papers_common.seeding import pick_device


@dataclass(frozen=True)
class DistributedContext:
    """Where this process stands: its ``rank`` among ``world_size`` processes and the device it trains on."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes files and draws the progress bar."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """More than one process."""
        return self.world_size > 1

    def mean(self, values: torch.Tensor) -> torch.Tensor:
        """The element-wise mean of ``values`` over the processes (``values`` itself in a single process)."""
        if not self.distributed:
            return values
        import torch.distributed as dist

        total = values.clone()
        dist.all_reduce(total)
        return total / self.world_size

    def barrier(self) -> None:
        """Wait until every process gets here."""
        if self.distributed:
            import torch.distributed as dist

            dist.barrier()


def _environment_int(name: str, default: int) -> int:
    text = os.environ.get(name)
    if text is None:
        return default
    try:
        return int(text)
    except ValueError:
        raise InputError(f"environment variable {name}: expected an integer, got {text!r}") from None


def join_process_group(device: torch.device | str = "cpu") -> DistributedContext:
    """This process's context, joining the ``torchrun`` process group first when there is one (idempotent).

    Args:
        device: ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"auto"`` (see :func:`papers_common.pick_device`) or a
            ``torch.device``; under ``torchrun`` on CUDA it becomes ``cuda:LOCAL_RANK``.

    Raises:
        InputError: ``WORLD_SIZE``, ``RANK`` or ``LOCAL_RANK`` is not an integer.
    """
    resolved = device if isinstance(device, torch.device) else pick_device(device)
    world_size = _environment_int("WORLD_SIZE", 1)
    if world_size <= 1:
        return DistributedContext(device=resolved)
    import torch.distributed as dist

    rank, local_rank = _environment_int("RANK", 0), _environment_int("LOCAL_RANK", 0)
    if resolved.type == "cuda":
        resolved = torch.device("cuda", local_rank)
        torch.cuda.set_device(resolved)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if resolved.type == "cuda" else "gloo")
    return DistributedContext(rank=rank, world_size=world_size, local_rank=local_rank, device=resolved)


@contextlib.contextmanager
def distributed_context(device: torch.device | str = "cpu") -> Iterator[DistributedContext]:
    """:func:`join_process_group` for a ``with`` block: the process group it started is destroyed on exit."""
    import torch.distributed as dist

    running = dist.is_available() and dist.is_initialized()
    context = join_process_group(device)
    try:
        yield context
    finally:
        if context.distributed and not running:
            dist.destroy_process_group()
