"""The torchrun process context: single-process no-ops, environment checks, and a real two-process Gloo group."""

from __future__ import annotations

import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from papers_common import DistributedContext, InputError, distributed_context, join_process_group


def test_without_torchrun_the_context_is_one_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with distributed_context("cpu") as context:
        assert context == DistributedContext(device=torch.device("cpu"))
        assert context.is_main
        assert not context.distributed
        values = torch.tensor([1.0, 2.0])
        assert context.mean(values) is values
        context.barrier()
    assert not dist.is_initialized()


@pytest.mark.parametrize("name", ["WORLD_SIZE", "RANK", "LOCAL_RANK"])
def test_a_non_integer_launcher_variable_is_named(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv(name, "two")
    with pytest.raises(InputError, match=f"environment variable {name}: expected an integer, got 'two'"):
        join_process_group("cpu")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, port: int, results: dict[int, list[float]]) -> None:
    import os

    os.environ.update(WORLD_SIZE="2", RANK=str(rank), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))  # fmt: skip
    with distributed_context("cpu") as context:
        assert (context.rank, context.world_size, context.is_main) == (rank, 2, rank == 0)
        assert join_process_group("cpu") == context  # joining again keeps the running group
        context.barrier()
        results[rank] = context.mean(torch.tensor([float(rank), 10.0 * rank])).tolist()
    assert not dist.is_initialized()  # the group the context started is gone


def test_two_processes_average_their_values() -> None:
    with mp.Manager() as manager:
        results = manager.dict()
        mp.spawn(_worker, args=(_free_port(), results), nprocs=2, join=True)
        assert dict(results) == {0: [0.5, 5.0], 1: [0.5, 5.0]}
