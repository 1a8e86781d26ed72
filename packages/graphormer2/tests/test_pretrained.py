"""Saved models of every model class: the ``save_pretrained`` folder, the committed 0.2.0 fixtures, old checkpoints.

``tests/fixtures/pretrained-0.2.0/<model>/`` holds, for each model class, a tiny seeded model as graphormer2 0.2.0
saved it (``config.json`` + ``model.safetensors``) and ``expected.safetensors``: the inputs (``input.<field>``) and
the outputs (``output.<name>``) that model gave. A later version that can no longer read 0.2.0 folders, or reads them
into a different model, fails here. The fixtures were written by :func:`write_fixtures`; regenerate them only for a
deliberate format change (and then keep the old ones under their own version)::

    cd packages/graphormer2 && python tests/test_pretrained.py
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from graphormer2.atoms import AtomsItem, collate_atoms
from graphormer2.collate import GraphBatch, collate
from graphormer2.datasets import from_smiles
from graphormer2.features import FEATURE_VERSION
from graphormer2.gin import GIN, GINConfig
from graphormer2.model import Graphormer, GraphormerConfig
from graphormer2.model3d import Graphormer3D, Graphormer3DConfig
from safetensors.torch import load_file, save_file

from papers_common import pretrained_extra, save_checkpoint, to_jsonable

torch.set_num_threads(1)

FIXTURES = Path(__file__).parent / "fixtures" / "pretrained-0.2.0"
SMILES = ["CC(=O)O", "c1ccncc1", "OCCN"]


def _spread_weights(model: torch.nn.Module, seed: int) -> None:
    """Weights at unit scale (the official N(0, 0.02) init makes every output nearly the same), seeded."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            scale = parameter.shape[-1] ** -0.5 if parameter.ndim >= 2 else 0.3
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * scale)
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm1d):  # eval mode reads the running statistics
                module.running_mean.copy_(torch.randn(module.num_features, generator=generator))
                module.running_var.copy_(torch.rand(module.num_features, generator=generator) + 0.5)


def _wrap(ids: torch.Tensor, size: int) -> torch.Tensor:
    """Ids > 0 folded into ``[1, size]`` (0 stays padding): real molecules' ids for a tiny vocabulary."""
    return torch.where(ids > 0, (ids - 1) % size + 1, 0)


def graphormer_case() -> tuple[Graphormer, dict[str, torch.Tensor]]:
    """A 1-layer Graphormer with tiny vocabularies and a batch of 3 molecules whose ids are folded into them."""
    config = GraphormerConfig(num_layers=1, hidden_dim=8, ffn_dim=8, num_heads=2, dropout=0.0, attention_dropout=0.0,
                              activation_dropout=0.0, num_classes=2, multi_hop_max_dist=3, num_atoms=64, num_edges=32,
                              num_degree=16, num_spatial=16, num_edge_dis=4, max_nodes=16)  # fmt: skip
    torch.manual_seed(0)
    model = Graphormer(config)
    _spread_weights(model, seed=1)
    batch = collate(list(from_smiles(SMILES, multi_hop_max_dist=3)))
    batch = dataclasses.replace(
        batch,
        x=_wrap(batch.x, config.num_atoms),
        in_degree=batch.in_degree.clamp(max=config.num_degree - 1),
        spatial_pos=batch.spatial_pos.clamp(max=config.num_spatial - 1),
        attn_edge_type=_wrap(batch.attn_edge_type, config.num_edges),
        edge_input=_wrap(batch.edge_input, config.num_edges),
    )
    return model.eval(), {f.name: getattr(batch, f.name) for f in dataclasses.fields(batch)}


def gin_case() -> tuple[GIN, dict[str, torch.Tensor]]:
    """A 2-layer GIN-VN on the first 2 atom features and the first bond feature, batch norms randomised."""
    torch.manual_seed(0)
    model = GIN(GINConfig(num_layers=2, hidden_dim=4, num_classes=1, dropout=0.0, num_atom_features=2,
                          num_bond_features=1))  # fmt: skip
    _spread_weights(model, seed=2)
    batch = collate(list(from_smiles(SMILES)))
    batch = dataclasses.replace(batch, x=batch.x[..., :2], attn_edge_type=batch.attn_edge_type[..., :1])
    return model.eval(), {f.name: getattr(batch, f.name) for f in dataclasses.fields(batch)}


def graphormer3d_case() -> tuple[Graphormer3D, dict[str, torch.Tensor]]:
    """A tiny Graphormer-3D with its own target standardisation and two random H/C/N/O systems."""
    config = Graphormer3DConfig(layers=1, blocks=2, embed_dim=8, ffn_embed_dim=8, attention_heads=2, num_kernel=4,
                                atom_types=10, attention_dropout=0.0, head_dropout=0.0, deltapos_projection="shared",
                                energy_mean=-3.0, energy_std=2.5, deltapos_mean=(0.1, 0.0, -0.1),
                                deltapos_std=(0.5, 0.6, 0.7))  # fmt: skip
    torch.manual_seed(0)
    model = Graphormer3D(config)
    _spread_weights(model, seed=3)
    generator = torch.Generator().manual_seed(4)
    items = []
    for n in (4, 6):
        atoms = torch.tensor([1, 6, 7, 8])[torch.randint(0, 4, (n,), generator=generator)]
        items.append(AtomsItem.molecule(atoms, 1.5 * torch.randn(n, 3, generator=generator), energy=0.0))
    batch = collate_atoms(items).to("cpu", torch.float32)
    inputs = {"atoms": batch.atoms, "tags": batch.tags, "pos": batch.pos, "real_mask": batch.real_mask}
    return model.eval(), inputs


def graph_outputs(model: torch.nn.Module, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    with torch.no_grad():
        return {"prediction": model(GraphBatch(**inputs))}


def atoms_outputs(model: torch.nn.Module, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Energy and Δpos in target units: the standardisation stored in the config is applied, as ``predict`` does."""
    with torch.no_grad():
        energy, deltapos = model(inputs["atoms"], inputs["tags"], inputs["pos"], inputs["real_mask"])
    standard = model.standardisation
    return {
        "energy": standard.destandardise_energy(energy),
        "deltapos": standard.destandardise_deltapos(deltapos),
    }


CASES = {
    "graphormer": (Graphormer, graphormer_case, graph_outputs),
    "gin": (GIN, gin_case, graph_outputs),
    "graphormer3d": (Graphormer3D, graphormer3d_case, atoms_outputs),
}
EXTRA = {"graphormer": {"objective": "regression", "target_names": ["y1", "y2"], "target_mean": [1.0, -2.0],
                        "target_std": [0.5, 3.0], "max_nodes": 16, "multi_hop_max_dist": 3,
                        "features": FEATURE_VERSION, "step": 0}}  # fmt: skip


def write_fixtures(root: Path = FIXTURES) -> None:
    """Write ``root/<model>/`` (config.json, model.safetensors, expected.safetensors) for every case."""
    for name, (_, build, outputs) in CASES.items():
        model, inputs = build()
        folder = model.save_pretrained(root / name, extra=EXTRA.get(name))
        expected = {f"input.{k}": v.contiguous() for k, v in inputs.items()}
        expected.update({f"output.{k}": v.contiguous() for k, v in outputs(model, inputs).items()})
        save_file(expected, folder / "expected.safetensors")


@pytest.mark.parametrize("name", CASES)
def test_save_pretrained_writes_config_and_weights_only(tmp_path: Path, name: str) -> None:
    model_class, build, outputs = CASES[name]
    model, inputs = build()
    folder = model.save_pretrained(tmp_path / name, extra={"step": 3})
    assert folder == tmp_path / name
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    assert config["architectures"] == [model_class.__name__]
    assert pretrained_extra(folder) == {"step": 3}

    loaded = model_class.from_pretrained(folder).eval()
    assert loaded.config == model.config
    for key, value in outputs(model, inputs).items():
        assert torch.equal(outputs(loaded, inputs)[key], value), key


@pytest.mark.parametrize("name", CASES)
def test_a_folder_saved_by_0_2_0_loads_into_the_same_model(name: str) -> None:
    model_class, _, outputs = CASES[name]
    folder = FIXTURES / name
    assert sum(p.stat().st_size for p in folder.iterdir()) < 100_000  # tiny, as committed
    stored = load_file(folder / "expected.safetensors")
    inputs = {k.removeprefix("input."): v for k, v in stored.items() if k.startswith("input.")}
    model = model_class.from_pretrained(folder).eval()
    got = outputs(model, inputs)
    assert got.keys() == {k.removeprefix("output.") for k in stored if k.startswith("output.")}
    for key, value in got.items():
        torch.testing.assert_close(value, stored[f"output.{key}"], rtol=1e-4, atol=1e-5)
    assert pretrained_extra(folder) == EXTRA.get(name, {})


@pytest.mark.parametrize("name", CASES)
def test_training_checkpoints_still_load(tmp_path: Path, name: str) -> None:
    """The layout ``save_pretrained`` wrote before 0.2.0 and ``fit`` writes under ``checkpoints/``."""
    model_class, build, outputs = CASES[name]
    model, inputs = build()
    sidecar = save_checkpoint(
        tmp_path / "old", 7, model, config={"model": to_jsonable(model.config)}, rng=False
    )
    for where in (tmp_path / "old", sidecar, sidecar.with_suffix(".safetensors")):
        loaded = model_class.from_pretrained(where).eval()
        assert loaded.config == model.config
        for key, value in outputs(model, inputs).items():
            assert torch.equal(outputs(loaded, inputs)[key], value), (where, key)


if __name__ == "__main__":
    write_fixtures()
