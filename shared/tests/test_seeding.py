"""Seeding and device selection."""

# NumPy's global generator is used on purpose: seed_everything seeds it.
# ruff: noqa: NPY002

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from papers_common import InputError, pick_device, seed_everything

pytestmark = pytest.mark.usefixtures("restore_torch_determinism")


def draws() -> tuple[list[float], list[float], torch.Tensor]:
    return [random.random() for _ in range(3)], np.random.rand(3).tolist(), torch.rand(3)


def test_same_seed_gives_same_draws() -> None:
    seed_everything(1234)
    first = draws()
    seed_everything(1234)
    second = draws()
    assert first[:2] == second[:2]
    assert torch.equal(first[2], second[2])


def test_different_seeds_give_different_draws() -> None:
    seed_everything(1)
    first = draws()
    seed_everything(2)
    second = draws()
    assert first[0] != second[0]
    assert first[1] != second[1]
    assert not torch.equal(first[2], second[2])


def test_returned_generator_is_seeded() -> None:
    generator = seed_everything(77)
    expected = torch.rand(4, generator=torch.Generator().manual_seed(77))
    assert torch.equal(torch.rand(4, generator=generator), expected)


def test_large_seed_is_accepted_and_reproducible() -> None:
    seed_everything(2**63 - 1)
    a = np.random.rand(2).tolist()
    seed_everything(2**63 - 1)
    assert np.random.rand(2).tolist() == a


def test_deterministic_settings() -> None:
    torch.use_deterministic_algorithms(False)
    seed_everything(0)
    assert torch.are_deterministic_algorithms_enabled()
    assert torch.is_deterministic_algorithms_warn_only_enabled()
    assert torch.backends.cudnn.deterministic is True
    assert torch.backends.cudnn.benchmark is False
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    assert os.environ["PYTHONHASHSEED"] == "0"


def test_non_deterministic_mode_leaves_torch_flags_alone() -> None:
    torch.use_deterministic_algorithms(False)
    seed_everything(5, deterministic=False)
    assert not torch.are_deterministic_algorithms_enabled()
    assert "CUBLAS_WORKSPACE_CONFIG" not in os.environ
    assert os.environ["PYTHONHASHSEED"] == "5"


@pytest.mark.parametrize("seed", [-1, 2**63])
def test_out_of_range_seed(seed: int) -> None:
    with pytest.raises(InputError, match=r"--seed: expected an integer in \[0, 2\*\*63\)"):
        seed_everything(seed)


def test_pick_device_cpu_and_auto_without_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device() == torch.device("cpu")
    assert pick_device("auto") == torch.device("cpu")


def test_pick_device_auto_prefers_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert pick_device("auto") == torch.device("cuda")


@pytest.mark.parametrize("name", ["cuda", "cuda:0", "cuda:1"])
def test_pick_device_cuda_unavailable(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(InputError, match=f"--device {name}: CUDA is not available"):
        pick_device(name)


def test_pick_device_cuda_on_this_machine() -> None:
    if torch.cuda.is_available():
        assert pick_device("cuda").type == "cuda"
    else:
        with pytest.raises(InputError, match="CUDA is not available"):
            pick_device("cuda")


def test_pick_device_cuda_index_beyond_visible(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert pick_device("cuda:0") == torch.device("cuda:0")
    with pytest.raises(InputError, match=r"--device cuda:3: only 1 CUDA device\(s\) are visible"):
        pick_device("cuda:3")


@pytest.mark.parametrize("name", ["bogus", "gpu", "CPU", "mps", ""])
def test_pick_device_unknown_name(name: str) -> None:
    with pytest.raises(
        InputError, match=f"--device: expected 'auto', 'cpu', 'cuda' or 'cuda:N', got {name!r}"
    ):
        pick_device(name)


def test_preserved_global_state_undoes_seed_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    import random

    import torch

    from papers_common import preserved_global_state, seed_everything

    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    torch.use_deterministic_algorithms(False)
    random.seed(123)
    expected_next = random.random()
    random.seed(123)
    with preserved_global_state():
        seed_everything(7)
        assert torch.are_deterministic_algorithms_enabled()
        random.random()
    assert not torch.are_deterministic_algorithms_enabled()
    assert "CUBLAS_WORKSPACE_CONFIG" not in os.environ
    assert random.random() == expected_next


def test_threads_are_pinned_before_the_command_runs(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from papers_common import App, RunArgs

    seen: list[int] = []
    app = App("demo", description="d", version="1")

    @app.command("run", RunArgs, help="a run")
    def run(args: RunArgs) -> None:
        seen.append(torch.get_num_threads())

    before = torch.get_num_threads()
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.setenv(name, "7")
    try:
        assert app.main(["run", "--threads", "1", "--out", str(tmp_path / "r")]) == 0
        assert seen == [1]
        assert os.environ["OMP_NUM_THREADS"] == "1"
        assert app.main(["run", "--threads", "0", "--out", str(tmp_path / "r")]) == 2
        assert capsys.readouterr().err.strip() == "demo: error: --threads 0: must be a positive integer"
        assert seen == [1]
    finally:
        torch.set_num_threads(before)


REDUCTION = """
import sys
import torch
from papers_common import pin_threads
if sys.argv[1] != "default":
    pin_threads(int(sys.argv[1]))
x = torch.randn(20_000_000, generator=torch.Generator().manual_seed(0))
print(torch.get_num_threads(), x.sum().item().hex())  # a parallel reduction: split by the thread count
"""


@pytest.mark.skipif(
    shutil.which("taskset") is None or len(os.sched_getaffinity(0)) < 2, reason="needs taskset and two cores"
)
def test_a_pinned_count_gives_the_same_bits_on_one_core_and_on_two() -> None:
    def run(cores: str, threads: str) -> tuple[str, str]:
        done = subprocess.run(
            ["taskset", "-c", cores, sys.executable, "-c", REDUCTION, threads],
            capture_output=True,
            text=True,
            check=True,
        )
        count, bits = done.stdout.split()
        return count, bits

    one, two = run("0", "2"), run("0,1", "2")
    assert one[0] == two[0] == "2"
    assert one[1] == two[1]
    # unpinned, torch follows the cores it may use, and the sum's low bits follow the thread count
    assert run("0", "default")[0] == "1"
