"""Saved models: the ``model/`` folder a run ends with, what its ``extra`` holds, and reading 0.2.0 folders.

``tests/fixtures/pretrained-0.2.0/mlp/`` is a committed folder written by pinn-stein 0.2.0 (``config.json`` +
``model.safetensors``) with ``expected.safetensors`` (an input and the network's output). It was made by
:func:`write_fixture`; to make it again (only if the format is meant to change)::

    python packages/pinn-stein/tests/test_trained.py
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from papers_common import InputError, pretrained_extra, save_checkpoint
from pinn_stein import (
    HJBLQG,
    MLP,
    Heat,
    HJBLin,
    MLPConfig,
    Poisson,
    Smoothing,
    load_trained,
    make_test_set,
    pde_from_description,
    save_trained,
)
from pinn_stein.trained import model_location

FIXTURE = Path(__file__).parent / "fixtures" / "pretrained-0.2.0" / "mlp"


def fixture_model() -> MLP:
    torch.manual_seed(0)
    return MLP(MLPConfig(5, 8, 2))


def write_fixture(folder: Path = FIXTURE) -> None:
    """The committed fixture: a seeded 5-8-8-1 MLP for Heat d = 4 trained with stein-vr, and its outputs."""
    g = fixture_model().eval()
    save_trained(
        g,
        folder,
        pde=Heat(4),
        method="stein-vr",
        smoothing=Smoothing(0.01, 0.01, 16),
        test=make_test_set(Heat(4), 8, seed=1),
    )
    z = torch.randn(6, 5, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        save_file({"input": z, "output": g(z)}, folder / "expected.safetensors")


def test_a_0_2_0_folder_still_loads_and_predicts_the_same():
    expected = load_file(FIXTURE / "expected.safetensors")
    g = MLP.from_pretrained(FIXTURE).eval()
    assert g.config == MLPConfig(5, 8, 2)
    with torch.no_grad():
        torch.testing.assert_close(g(expected["input"]), expected["output"])
    trained = load_trained(FIXTURE)
    assert trained.pde.describe() == {"pde": "heat", "dim": 4}
    assert trained.method == "stein-vr"
    assert trained.smoothing == Smoothing(0.01, 0.01, 16)
    assert trained.test_recipe == {"pde": "heat", "dim": 4, "seed": 1, "points": 8}
    torch.testing.assert_close(trained.regenerate_test_set().u, make_test_set(Heat(4), 8, seed=1).u)


def test_save_trained_writes_exactly_the_two_files_and_loads_identically(tmp_path):
    torch.manual_seed(3)
    g = MLP(MLPConfig(4, 6, 3)).eval()
    pde = HJBLQG(3, mu=0.5)
    folder = save_trained(
        g, tmp_path / "model", pde=pde, method="pinn-forward", smoothing=Smoothing(0.02, 0.03, 32)
    )
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    config = json.loads((folder / "config.json").read_text())
    assert config["architectures"] == ["MLP"]
    assert {k: config[k] for k in ("in_dim", "width", "depth")} == {"in_dim": 4, "width": 6, "depth": 3}
    assert pretrained_extra(folder) == {
        "pde": {"pde": "hjb", "dim": 3, "mu": 0.5, "T": 1.0},
        "method": "pinn-forward",
        "smoothing": {"sigma_x": 0.02, "sigma_t": 0.03, "samples": 32},
    }
    z = torch.randn(7, 4, generator=torch.Generator().manual_seed(0))
    trained = load_trained(folder)
    assert not trained.g.training
    assert trained.test_recipe is None
    assert torch.equal(trained.g(z), g(z))
    assert torch.equal(trained.predict(z[:, :3], z[:, 3]), g(z).squeeze(-1))
    for source in (folder / "config.json", folder / "model.safetensors"):
        assert torch.equal(MLP.from_pretrained(source).eval()(z), g(z))


def test_a_test_set_read_from_a_file_is_not_a_recipe(tmp_path):
    pde = Heat(2)
    test = make_test_set(pde, 5, seed=2)
    test.meta = {"source": "the paper's pickle"}
    folder = save_trained(fixture_model(), tmp_path, pde=pde, method="pinn", smoothing=Smoothing(), test=test)
    assert "test_set" not in pretrained_extra(folder)
    with pytest.raises(InputError, match="give --test-set"):
        load_trained(folder).regenerate_test_set()


def test_old_training_checkpoints_still_load(tmp_path):
    """Runs written before 0.2.0 have no model/ folder: the network and its settings come from checkpoints/."""
    g = fixture_model()
    run = tmp_path / "run"
    recorded = {
        "pde": {"pde": "poisson", "dim": 4},
        "network": asdict(g.config),
        "train": {"method": "stein", "sigma_x": 0.05, "sigma_t": 0.01, "eval_samples": 64},
    }
    sidecar = save_checkpoint(run / "checkpoints", 12, g, config=recorded, rng=False)
    z = torch.randn(3, 5, generator=torch.Generator().manual_seed(2))
    for source in (run / "checkpoints", sidecar, sidecar.with_suffix(".safetensors")):
        assert torch.equal(MLP.from_pretrained(source)(z), g(z))
    for source in (run, run / "checkpoints", sidecar):
        trained = load_trained(source)
        assert isinstance(trained.pde, Poisson)
        assert trained.method == "stein"
        assert trained.smoothing == Smoothing(0.05, 0.01, 64)
        assert model_location(source)[1] == run
    assert load_trained(run, eval_samples=8).smoothing.samples == 8


def test_a_run_directory_resolves_to_its_model_folder(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    save_trained(fixture_model(), run / "model", pde=Heat(4), method="pinn", smoothing=Smoothing())
    assert model_location(run) == (run / "model", run)
    assert model_location(run / "model") == (run / "model", run)
    moved = tmp_path / "elsewhere"
    shutil.copytree(run / "model", moved)
    assert model_location(moved) == (moved, None)
    assert model_location(moved / "config.json") == (moved, None)


def test_a_folder_without_pinn_stein_settings_is_refused(tmp_path):
    folder = fixture_model().save_pretrained(tmp_path / "plain")
    with pytest.raises(InputError, match="not a model saved by `pinn-stein train`"):
        load_trained(folder)


@pytest.mark.parametrize(
    "pde", [Poisson(3), Heat(2), HJBLQG(5, mu=2.0, horizon=0.5), HJBLin(4, exponent=1.5)]
)
def test_pde_descriptions_rebuild_the_problem(pde):
    rebuilt = pde_from_description(pde.describe())
    assert type(rebuilt) is type(pde)
    assert rebuilt.describe() == pde.describe()


def test_a_bad_pde_description_is_an_input_error():
    with pytest.raises(InputError, match="not a PDE description"):
        pde_from_description({"pde": "heat", "dim": 2, "alpha": 1.0})


if __name__ == "__main__":
    write_fixture()
