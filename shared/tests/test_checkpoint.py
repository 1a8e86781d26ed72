"""Checkpoints: bit-exact round trips, exact resumption, and refusal of partial, corrupt or unsafe files."""

# These tests use NumPy's global generator on purpose: it is one of the states that checkpoints save and restore.
# ruff: noqa: NPY002

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open

import papers_common
from papers_common import UnsafeCheckpointError
from papers_common.checkpoint import (
    capture_rng,
    checkpoint_paths,
    latest_checkpoint,
    load_checkpoint,
    load_state_dict,
    restore_rng,
    save_checkpoint,
)
from papers_common.errors import InputError


def bits(t: torch.Tensor) -> torch.Tensor:
    """The raw bytes of a tensor, so that NaN payloads and signed zeros count too."""
    return t.detach().cpu().contiguous().reshape(-1).view(torch.uint8)


def assert_bit_equal(a: torch.Tensor, b: torch.Tensor) -> None:
    assert a.dtype == b.dtype
    assert a.shape == b.shape
    assert torch.equal(bits(a), bits(b))


def special_floats(dtype: torch.dtype) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    values = torch.randn(4, 5, generator=g, dtype=torch.float64)
    values[0, :4] = torch.tensor([float("nan"), -0.0, float("inf"), -float("inf")])
    values[1, 0] = 1e-300  # subnormal or zero after the cast, whichever the dtype gives
    return values.to(dtype)


def state_with_many_dtypes() -> dict[str, torch.Tensor]:
    return {
        "f32": special_floats(torch.float32),
        "f64": special_floats(torch.float64),
        "f16": special_floats(torch.float16),
        "bf16": special_floats(torch.bfloat16),
        "i64": torch.tensor([-(2**63), -1, 0, 2**63 - 1], dtype=torch.int64),
        "i32": torch.arange(-3, 3, dtype=torch.int32).reshape(2, 3),
        "u8": torch.arange(0, 256, 51, dtype=torch.uint8),
        "bool": torch.tensor([[True, False], [False, True]]),
        "scalar": torch.tensor(3.25),
        "transposed": torch.arange(12.0).reshape(3, 4).t(),  # not contiguous
        "empty": torch.zeros(0, 3),
    }


def test_tensors_of_every_dtype_round_trip_bit_exact(tmp_path: Path) -> None:
    state = state_with_many_dtypes()
    sidecar = save_checkpoint(tmp_path, 7, state, rng=False)
    assert sidecar == tmp_path / "step-00000007.json"
    ckpt = load_checkpoint(sidecar)
    assert ckpt.step == 7
    assert set(ckpt.model) == set(state)
    for name, tensor in state.items():
        assert_bit_equal(ckpt.model[name], tensor)


class Tied(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(5, 3)
        self.head = torch.nn.Linear(3, 5, bias=False)
        self.head.weight = self.embed.weight


def test_tied_weights_are_stored_once_and_restore_tied(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = Tied()
    sidecar = save_checkpoint(tmp_path, 1, model, rng=False)
    weights, _ = checkpoint_paths(tmp_path, 1)
    with safe_open(str(weights), "pt") as f:
        assert sorted(f.keys()) == ["model/embed.weight"]
    ckpt = load_checkpoint(sidecar)
    assert set(ckpt.model) == {"embed.weight", "head.weight"}
    assert_bit_equal(ckpt.model["head.weight"], model.head.weight)
    assert_bit_equal(ckpt.model["embed.weight"], model.embed.weight)

    torch.manual_seed(1)
    fresh = Tied()
    assert not torch.equal(fresh.embed.weight, model.embed.weight)
    ckpt.restore(fresh)
    assert_bit_equal(fresh.embed.weight, model.embed.weight)
    assert fresh.head.weight is fresh.embed.weight


def test_views_sharing_storage_round_trip(tmp_path: Path) -> None:
    base = torch.arange(10.0)
    state = {"full": base, "alias": base, "prefix": base[:4], "strided": base[::2]}
    ckpt = load_checkpoint(save_checkpoint(tmp_path, 0, state, rng=False))
    for name, tensor in state.items():
        assert_bit_equal(ckpt.model[name], tensor)


def test_rng_states_restore_bit_exact(tmp_path: Path) -> None:
    random.seed(11)
    np.random.seed(12)
    torch.manual_seed(13)
    random.gauss(0, 1)  # leaves a cached second Gaussian in Python's state
    np.random.standard_normal()  # and in NumPy's
    torch.randn(3)

    save_checkpoint(tmp_path, 0, {"w": torch.zeros(1)}, rng=True)

    def draws() -> tuple:
        return (
            [random.random() for _ in range(3)],
            random.gauss(0, 1),
            np.random.standard_normal(),
            np.random.rand(4).tolist(),
            np.random.randint(0, 2**31, size=3).tolist(),
            torch.rand(5),
            torch.randn(2, 2),
        )

    expected = draws()
    for _ in range(5):  # move every generator well past the saved point
        draws()
    ckpt = load_checkpoint(tmp_path)
    ckpt.restore()
    got = draws()
    assert got[:5] == expected[:5]
    assert_bit_equal(got[5], expected[5])
    assert_bit_equal(got[6], expected[6])


def test_capture_and_restore_rng_without_files() -> None:
    state = capture_rng()
    a = (random.random(), float(np.random.rand()), torch.rand(2))
    restore_rng(state)
    b = (random.random(), float(np.random.rand()), torch.rand(2))
    assert a[:2] == b[:2]
    assert torch.equal(a[2], b[2])


def test_restore_without_rng_leaves_generators_alone(tmp_path: Path) -> None:
    torch.manual_seed(0)
    save_checkpoint(tmp_path, 0, {"w": torch.zeros(1)})
    first = torch.rand(3)
    load_checkpoint(tmp_path).restore(rng=False)
    assert not torch.equal(torch.rand(3), first)


class Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = torch.nn.Sequential(
            torch.nn.Linear(6, 16), torch.nn.Tanh(), torch.nn.Dropout(0.2), torch.nn.Linear(16, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def train(model: Net, optimizer: torch.optim.Optimizer, steps: int) -> None:
    """Steps that draw their data from the global torch and NumPy generators, and use dropout."""
    for _ in range(steps):
        x = torch.randn(8, 6)
        noise = torch.from_numpy(np.random.standard_normal((8, 1)).astype(np.float32))
        y = x.sum(dim=1, keepdim=True) + 0.1 * noise
        loss = torch.nn.functional.mse_loss(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def test_adam_resumed_from_checkpoint_matches_uninterrupted_run(tmp_path: Path) -> None:
    torch.manual_seed(0)
    np.random.seed(0)
    model = Net()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2, weight_decay=1e-3)
    train(model, optimizer, 3)
    save_checkpoint(tmp_path, 3, model, optimizer=optimizer, config={"lr": 1e-2})
    train(model, optimizer, 5)
    uninterrupted = {k: v.clone() for k, v in model.state_dict().items()}

    torch.manual_seed(123)  # a different process state: other initial weights, other generator positions
    np.random.seed(123)
    resumed = Net()
    resumed_opt = torch.optim.Adam(resumed.parameters(), lr=1e-2, weight_decay=1e-3)
    ckpt = load_checkpoint(tmp_path)
    assert ckpt.step == 3
    assert ckpt.config == {"lr": 1e-2}
    ckpt.restore(resumed, resumed_opt)
    train(resumed, resumed_opt, 5)

    after = resumed.state_dict()
    assert set(after) == set(uninterrupted)
    for name, tensor in uninterrupted.items():
        assert_bit_equal(after[name], tensor)
    # The optimizer's own state continued too.
    assert resumed_opt.state_dict()["state"][0]["step"].item() == 8


def test_optimizer_state_dict_round_trips(tmp_path: Path) -> None:
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.5, betas=(0.8, 0.9))
    model(torch.ones(1, 3)).sum().backward()
    optimizer.step()
    saved = optimizer.state_dict()
    ckpt = load_checkpoint(save_checkpoint(tmp_path, 1, model, optimizer=optimizer, rng=False))
    assert ckpt.optimizer is not None
    assert ckpt.optimizer["param_groups"] == saved["param_groups"]
    assert ckpt.optimizer["param_groups"][0]["betas"] == (0.8, 0.9)
    assert set(ckpt.optimizer["state"]) == {0, 1}  # integer keys stay integers
    for index, state in saved["state"].items():
        for key, value in state.items():
            assert_bit_equal(ckpt.optimizer["state"][index][key], value)


def test_extra_with_nested_containers_round_trips(tmp_path: Path) -> None:
    extra = {
        "best": 0.25,
        "epoch": 4,
        "done": False,
        "nothing": None,
        "cursor": (3, (4, 5), [6, (7,)]),
        "by_epoch": {1: 0.5, 2: {"t": torch.arange(3), 3: (torch.ones(2, dtype=torch.bfloat16),)}},
        "names": ["a", "b"],
        "path": Path("data/train.bin"),
        "np": np.float64(2.5),
    }
    ckpt = load_checkpoint(save_checkpoint(tmp_path, 2, {"w": torch.zeros(1)}, extra=extra, rng=False))
    got = ckpt.extra
    assert got["best"] == 0.25
    assert got["epoch"] == 4
    assert got["done"] is False
    assert got["nothing"] is None
    assert got["cursor"] == (3, (4, 5), [6, (7,)])
    assert isinstance(got["cursor"][1], tuple)
    assert isinstance(got["cursor"][2], list)
    assert set(got["by_epoch"]) == {1, 2}
    assert got["by_epoch"][1] == 0.5
    assert set(got["by_epoch"][2]) == {"t", 3}
    assert_bit_equal(got["by_epoch"][2]["t"], torch.arange(3))
    assert isinstance(got["by_epoch"][2][3], tuple)
    assert_bit_equal(got["by_epoch"][2][3][0], torch.ones(2, dtype=torch.bfloat16))
    assert got["names"] == ["a", "b"]
    assert got["path"] == "data/train.bin"
    assert got["np"] == 2.5


def test_extra_tensors_whose_paths_coincide_stay_distinct(tmp_path: Path) -> None:
    extra = {
        "by_key": {1: torch.tensor([1.0]), "1": torch.tensor([2.0])},
        "a/b": torch.tensor([3.0]),
        "a": {"b": torch.tensor([4.0])},
    }
    got = load_checkpoint(save_checkpoint(tmp_path, 0, {"w": torch.zeros(1)}, extra=extra, rng=False)).extra
    assert got["by_key"][1].item() == 1.0
    assert got["by_key"]["1"].item() == 2.0
    assert got["a/b"].item() == 3.0
    assert got["a"]["b"].item() == 4.0


def test_unstorable_values_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="config/t"):
        save_checkpoint(tmp_path, 0, {"w": torch.zeros(1)}, config={"t": torch.ones(1)})
    with pytest.raises(TypeError, match="extra/obj"):
        save_checkpoint(tmp_path, 0, {"w": torch.zeros(1)}, extra={"obj": object()})
    with pytest.raises(TypeError, match="'w'"):
        save_checkpoint(tmp_path, 0, {"w": [1, 2]})
    with pytest.raises(ValueError, match="non-negative"):
        save_checkpoint(tmp_path, -1, {"w": torch.zeros(1)})
    assert latest_checkpoint(tmp_path) is None


def test_loading_by_weights_path_and_by_directory(tmp_path: Path) -> None:
    for step in (1, 2):
        save_checkpoint(tmp_path, step, {"w": torch.full((2,), float(step))}, rng=False)
    weights, sidecar = checkpoint_paths(tmp_path, 1)
    assert load_checkpoint(weights).path == sidecar
    assert load_checkpoint(weights).model["w"].tolist() == [1.0, 1.0]
    assert load_checkpoint(tmp_path).step == 2


def test_restore_optimizer_from_checkpoint_without_one(tmp_path: Path) -> None:
    model = torch.nn.Linear(2, 2)
    ckpt = load_checkpoint(save_checkpoint(tmp_path, 0, model, rng=False))
    with pytest.raises(InputError, match="no optimizer state"):
        ckpt.restore(model, torch.optim.SGD(model.parameters(), lr=0.1))


def test_nothing_loadable_raises_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no complete checkpoint"):
        load_checkpoint(tmp_path)
    with pytest.raises(InputError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "step-00000001.json")
    (tmp_path / "step-00000001.json").write_text('{"format": "something-else"}', encoding="utf-8")
    with pytest.raises(InputError, match="not a papers-common-checkpoint/1 sidecar"):
        load_checkpoint(tmp_path / "step-00000001.json")


def test_missing_weights_file_is_reported(tmp_path: Path) -> None:
    sidecar = save_checkpoint(tmp_path, 1, {"w": torch.zeros(1)}, rng=False)
    checkpoint_paths(tmp_path, 1)[0].unlink()
    with pytest.raises(InputError, match=r"weights file step-00000001\.safetensors is missing"):
        load_checkpoint(sidecar)


# --- partial and corrupt checkpoints -----------------------------------------------------------------------


def three_checkpoints(directory: Path) -> list[Path]:
    return [
        save_checkpoint(directory, step, {"w": torch.full((64,), float(step))}, rng=False)
        for step in (1, 2, 3)
    ]


def test_latest_checkpoint_is_the_newest_complete(tmp_path: Path) -> None:
    assert latest_checkpoint(tmp_path / "absent") is None
    sidecars = three_checkpoints(tmp_path)
    assert latest_checkpoint(tmp_path) == sidecars[-1]


def test_latest_checkpoint_skips_truncated_weights(tmp_path: Path) -> None:
    sidecars = three_checkpoints(tmp_path)
    weights, _ = checkpoint_paths(tmp_path, 3)
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    assert latest_checkpoint(tmp_path) == sidecars[1]
    assert load_checkpoint(tmp_path).step == 2


def test_latest_checkpoint_skips_missing_sidecar(tmp_path: Path) -> None:
    sidecars = three_checkpoints(tmp_path)
    sidecars[2].unlink()  # killed after the weights, before the sidecar
    assert latest_checkpoint(tmp_path) == sidecars[1]


def test_latest_checkpoint_skips_truncated_sidecar(tmp_path: Path) -> None:
    sidecars = three_checkpoints(tmp_path)
    text = sidecars[2].read_bytes()
    sidecars[2].write_bytes(text[: len(text) // 2])
    assert latest_checkpoint(tmp_path) == sidecars[1]
    sidecars[1].write_bytes(b"")
    assert latest_checkpoint(tmp_path) == sidecars[0]


def test_latest_checkpoint_ignores_stray_temporary_files(tmp_path: Path) -> None:
    sidecars = three_checkpoints(tmp_path)
    # Leftovers of writes killed half-way, for a step newer than any complete checkpoint.
    (tmp_path / f".step-00000009.safetensors{papers_common.atomic.TMP_MARKER}abc123.safetensors").write_bytes(
        b"x" * 10
    )
    (tmp_path / f".step-00000009.json{papers_common.atomic.TMP_MARKER}def456.json").write_text(
        sidecars[2].read_text(encoding="utf-8"), encoding="utf-8"
    )
    assert latest_checkpoint(tmp_path) == sidecars[2]


def test_same_size_corruption_raises_unsafe_checkpoint_error(tmp_path: Path) -> None:
    sidecars = three_checkpoints(tmp_path)
    weights, _ = checkpoint_paths(tmp_path, 3)
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF  # inside the last tensor's bytes: the file still parses and has the recorded size
    weights.write_bytes(bytes(data))
    assert latest_checkpoint(tmp_path) == sidecars[2]  # the size matches, so it looks complete
    with pytest.raises(UnsafeCheckpointError, match="SHA-256") as err:
        load_checkpoint(sidecars[2])
    assert str(weights) in str(err.value)


def test_keep_prunes_old_complete_checkpoints(tmp_path: Path) -> None:
    for step in range(5):
        save_checkpoint(tmp_path, step, {"w": torch.zeros(2)}, rng=False, keep=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "step-00000003.json",
        "step-00000003.safetensors",
        "step-00000004.json",
        "step-00000004.safetensors",
    ]
    save_checkpoint(tmp_path, 5, {"w": torch.zeros(2)}, rng=False, keep=0)  # always keeps the newest
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-00000005.json", "step-00000005.safetensors"]


# --- pickles ---------------------------------------------------------------------------------------------


class CustomObject:
    """A harmless Python object that a weights-only loader must still refuse."""

    def __init__(self) -> None:
        self.value = 42


def make_marker(path: str) -> None:
    Path(path).write_text("payload ran", encoding="utf-8")


class Malicious:
    """Unpickling this object calls ``make_marker``: a stand-in for arbitrary code."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple:
        return (make_marker, (self.marker,))


def test_pickle_with_custom_object_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "custom.pt"
    torch.save({"w": torch.ones(2), "obj": CustomObject()}, path)
    with pytest.raises(papers_common.UnsafeCheckpointError) as err:
        papers_common.load_state_dict(path)
    assert str(path) in str(err.value)


def test_malicious_pickle_is_refused_and_payload_does_not_run(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"w": torch.ones(2), "evil": Malicious(marker)}, path)
    with pytest.raises(papers_common.UnsafeCheckpointError) as err:
        papers_common.load_state_dict(path)
    assert str(path) in str(err.value)
    assert not marker.exists()
    # The payload is live: an unrestricted unpickler does run it.
    torch.load(path, weights_only=False)
    assert marker.read_text(encoding="utf-8") == "payload ran"


def test_plain_tensor_pickle_loads(tmp_path: Path) -> None:
    path = tmp_path / "plain.pt"
    state = {"w": torch.randn(3, 2), "b": torch.arange(4), "half": torch.ones(2, dtype=torch.bfloat16)}
    torch.save(state, path)
    loaded = load_state_dict(path)
    assert set(loaded) == set(state)
    for name, tensor in state.items():
        assert_bit_equal(loaded[name], tensor)


def test_safetensors_file_loads(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    state = {"w": torch.randn(2, 2), "flag": torch.tensor([True])}
    save_file(state, tmp_path / "w.safetensors")
    loaded = load_state_dict(tmp_path / "w.safetensors")
    for name, tensor in state.items():
        assert_bit_equal(loaded[name], tensor)


def test_load_state_dict_rejects_missing_corrupt_and_non_mapping_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such weights file"):
        load_state_dict(tmp_path / "absent.pt")
    (tmp_path / "garbage.pt").write_bytes(b"\x00not a pickle at all" * 5)
    with pytest.raises(UnsafeCheckpointError, match=r"garbage\.pt"):
        load_state_dict(tmp_path / "garbage.pt")
    torch.save(torch.ones(2), tmp_path / "tensor.pt")
    with pytest.raises(InputError, match="expected a mapping"):
        load_state_dict(tmp_path / "tensor.pt")


def test_sidecar_is_json_with_weights_digest(tmp_path: Path) -> None:
    import hashlib

    sidecar = save_checkpoint(tmp_path, 4, {"w": torch.ones(3)}, config={"name": "x"}, rng=False)
    meta = json.loads(sidecar.read_text(encoding="utf-8"))
    weights = tmp_path / "step-00000004.safetensors"
    assert meta["format"] == "papers-common-checkpoint/1"
    assert meta["step"] == 4
    assert meta["config"] == {"name": "x"}
    assert meta["weights"] == {
        "file": weights.name,
        "bytes": weights.stat().st_size,
        "sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
    }
