"""Seeding and device selection."""

# NumPy's global generator is used on purpose: seed_everything seeds it.
# ruff: noqa: NPY002

from __future__ import annotations

import os
import random

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
