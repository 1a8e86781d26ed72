"""Official microsoft/Graphormer (fairseq) checkpoints <-> graphormer2: names, round trips, bad files, the CLI.

The official key lists below are written from the official module definitions (graphormer/models/graphormer.py,
graphormer/modules/graphormer_graph_encoder.py, graphormer_layers.py, graphormer_graph_encoder_layer.py,
multihead_attention.py and graphormer/models/graphormer_3d.py), independently of the conversion's name table.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import torch
from graphormer2.cli import app
from graphormer2.collate import collate
from graphormer2.datasets import from_smiles
from graphormer2.fairseq_checkpoint import (
    fairseq_names,
    from_fairseq,
    graphormer2_names,
    load_fairseq,
    to_fairseq,
)
from graphormer2.model import Graphormer, GraphormerConfig
from graphormer2.model3d import Graphormer3D, Graphormer3DConfig
from graphormer2.predictor import load_predictor

from papers_common import InputError, preserved_global_state

SMILES = ["CCO", "c1ccccc1O", "CC(=O)NC", "OCC(N)C(=O)O"]


@pytest.fixture(autouse=True)
def _restore_global_state():
    with preserved_global_state():
        yield


class Opaque:
    """An arbitrary class: unpickling it needs full pickle."""

    def __init__(self) -> None:
        self.value = 1


def official_keys(
    layers: int, dim: int, ffn: int, heads: int, *, classes: int = 1, pre_ln: bool = False,
    multi_hop: bool = True, num_atoms: int = 512 * 9, num_edges: int = 512 * 3, degree: int = 512,
    spatial: int = 512, edge_dis: int = 128,
) -> dict[str, tuple[int, ...]]:  # fmt: skip
    """The state dict of the official GraphormerModel (keys and shapes), with encoder_normalize_before=True."""
    g = "encoder.graph_encoder."
    keys = {
        g + "graph_node_feature.atom_encoder.weight": (num_atoms + 1, dim),
        g + "graph_node_feature.in_degree_encoder.weight": (degree, dim),
        g + "graph_node_feature.out_degree_encoder.weight": (degree, dim),
        g + "graph_node_feature.graph_token.weight": (1, dim),
        g + "graph_attn_bias.edge_encoder.weight": (num_edges + 1, heads),
        g + "graph_attn_bias.spatial_pos_encoder.weight": (spatial, heads),
        g + "graph_attn_bias.graph_token_virtual_distance.weight": (1, heads),
        g + "emb_layer_norm.weight": (dim,),
        g + "emb_layer_norm.bias": (dim,),
        "encoder.masked_lm_pooler.weight": (dim, dim),
        "encoder.masked_lm_pooler.bias": (dim,),
        "encoder.lm_head_transform_weight.weight": (dim, dim),
        "encoder.lm_head_transform_weight.bias": (dim,),
        "encoder.layer_norm.weight": (dim,),
        "encoder.layer_norm.bias": (dim,),
        "encoder.embed_out.weight": (classes, dim),
        "encoder.lm_output_learned_bias": (1,),
    }
    if multi_hop:
        keys[g + "graph_attn_bias.edge_dis_encoder.weight"] = (edge_dis * heads * heads, 1)
    if pre_ln:
        keys[g + "final_layer_norm.weight"] = (dim,)
        keys[g + "final_layer_norm.bias"] = (dim,)
    for i in range(layers):
        layer = f"{g}layers.{i}."
        for proj in ("k_proj", "v_proj", "q_proj", "out_proj"):
            keys[f"{layer}self_attn.{proj}.weight"] = (dim, dim)
            keys[f"{layer}self_attn.{proj}.bias"] = (dim,)
        for norm in ("self_attn_layer_norm", "final_layer_norm"):
            keys[f"{layer}{norm}.weight"] = (dim,)
            keys[f"{layer}{norm}.bias"] = (dim,)
        keys.update({f"{layer}fc1.weight": (ffn, dim), f"{layer}fc1.bias": (ffn,), f"{layer}fc2.weight": (dim, ffn),
                     f"{layer}fc2.bias": (dim,)})  # fmt: skip
    return keys


def official_keys_3d(layers: int, dim: int, ffn: int, heads: int, kernels: int) -> dict[str, tuple[int, ...]]:
    """The state dict of the official Graphormer3D (64 atom types, 64² pair types)."""
    keys: dict[str, tuple[int, ...]] = {
        "atom_encoder.weight": (64, dim), "tag_encoder.weight": (3, dim),
        "final_ln.weight": (dim,), "final_ln.bias": (dim,),
        "engergy_proj.layer1.weight": (dim, dim), "engergy_proj.layer1.bias": (dim,),
        "engergy_proj.layer2.weight": (1, dim), "engergy_proj.layer2.bias": (1,),
        "energe_agg_factor.weight": (3, 1),
        "gbf.means.weight": (1, kernels), "gbf.stds.weight": (1, kernels),
        "gbf.mul.weight": (64 * 64, 1), "gbf.bias.weight": (64 * 64, 1),
        "bias_proj.layer1.weight": (kernels, kernels), "bias_proj.layer1.bias": (kernels,),
        "bias_proj.layer2.weight": (heads, kernels), "bias_proj.layer2.bias": (heads,),
        "edge_proj.weight": (dim, kernels), "edge_proj.bias": (dim,),
    }  # fmt: skip
    for proj in ("q_proj", "k_proj", "v_proj"):
        keys[f"node_proc.{proj}.weight"], keys[f"node_proc.{proj}.bias"] = (dim, dim), (dim,)
    for axis in (1, 2, 3):
        keys[f"node_proc.force_proj{axis}.weight"], keys[f"node_proc.force_proj{axis}.bias"] = (1, dim), (1,)
    for i in range(layers):
        layer = f"layers.{i}."
        keys.update({
            layer + "self_attn.in_proj.weight": (3 * dim, dim), layer + "self_attn.in_proj.bias": (3 * dim,),
            layer + "self_attn.out_proj.weight": (dim, dim), layer + "self_attn.out_proj.bias": (dim,),
            layer + "self_attn_layer_norm.weight": (dim,), layer + "self_attn_layer_norm.bias": (dim,),
            layer + "fc1.weight": (ffn, dim), layer + "fc1.bias": (ffn,),
            layer + "fc2.weight": (dim, ffn), layer + "fc2.bias": (dim,),
            layer + "final_layer_norm.weight": (dim,), layer + "final_layer_norm.bias": (dim,),
        })  # fmt: skip
    return keys


def tiny_2d(**overrides) -> Graphormer:
    torch.manual_seed(0)
    settings = {
        "num_layers": 2,
        "hidden_dim": 16,
        "ffn_dim": 24,
        "num_heads": 4,
        "num_classes": 2,
        **overrides,
    }
    model = Graphormer(GraphormerConfig(**settings)).eval()
    with torch.no_grad():  # LayerNorms and biases away from their initial values, so that a mix-up shows
        for name, param in model.named_parameters():
            if "norm" in name or name.endswith("bias"):
                param.add_(0.1 * torch.randn_like(param))
    return model


def tiny_3d(**overrides) -> Graphormer3D:
    torch.manual_seed(0)
    settings = {"layers": 2, "blocks": 2, "embed_dim": 16, "ffn_embed_dim": 24, "attention_heads": 4,
                "num_kernel": 8, **overrides}  # fmt: skip
    model = Graphormer3D(Graphormer3DConfig(**settings)).eval()
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.05 * torch.randn_like(param))
    return model


def batch_2d():
    return collate(list(from_smiles(SMILES)))


def inputs_3d() -> tuple[torch.Tensor, ...]:
    torch.manual_seed(1)
    atoms = torch.tensor([[6, 1, 1, 8, 1, 0], [7, 6, 6, 8, 1, 1], [78, 78, 6, 8, 0, 0]])  # H C N O Pt
    tags = torch.where(atoms > 0, torch.tensor([2, 1, 0, 2, 2, 0]).expand_as(atoms), 0)
    return atoms, tags, 2 * torch.randn(3, 6, 3), atoms > 0


def shapes(state: dict[str, torch.Tensor]) -> dict[str, tuple[int, ...]]:
    return {name: tuple(tensor.shape) for name, tensor in state.items()}


# ------------------------------------------------------------------------------------------------ names


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, {"classes": 2}),
        ({"norm_first": True}, {"classes": 2, "pre_ln": True}),
        ({"edge_type": "single_hop"}, {"classes": 2, "multi_hop": False}),
    ],
)
def test_export_writes_exactly_the_official_keys_and_shapes(overrides: dict, expected: dict) -> None:
    model = tiny_2d(**overrides)
    assert shapes(to_fairseq(model)["model"]) == official_keys(2, 16, 24, 4, **expected)


def test_import_consumes_exactly_the_official_keys() -> None:
    model = tiny_2d()
    state = to_fairseq(model)["model"]
    found = load_fairseq({"model": state})
    assert set(found.ignored) == {"encoder.masked_lm_pooler.weight", "encoder.masked_lm_pooler.bias"}
    used = set(graphormer2_names(model.config))
    assert used | set(found.ignored) == set(official_keys(2, 16, 24, 4, classes=2))
    assert set(fairseq_names(model.config)) == set(model.state_dict())


def test_3d_export_writes_exactly_the_official_keys_and_shapes() -> None:
    for projection in ("per_axis", "shared"):
        model = tiny_3d(deltapos_projection=projection)
        assert shapes(to_fairseq(model)["model"]) == official_keys_3d(2, 16, 24, 4, 8)


def test_args_name_the_official_arguments() -> None:
    cfg = to_fairseq(tiny_2d(norm_first=True))["cfg"]["model"]
    assert {k: cfg[k] for k in ("encoder_layers", "encoder_embed_dim", "encoder_ffn_embed_dim",
                                "encoder_attention_heads", "num_classes", "pre_layernorm", "edge_type")} == {
        "encoder_layers": 2, "encoder_embed_dim": 16, "encoder_ffn_embed_dim": 24, "encoder_attention_heads": 4,
        "num_classes": 2, "pre_layernorm": True, "edge_type": "multi_hop"}  # fmt: skip
    cfg3 = to_fairseq(tiny_3d())["cfg"]["model"]
    assert (cfg3["layers"], cfg3["blocks"], cfg3["embed_dim"], cfg3["num_kernel"]) == (2, 2, 16, 8)


# ------------------------------------------------------------------------------------------------ round trips


@pytest.mark.parametrize("overrides", [{}, {"norm_first": True}, {"edge_type": "single_hop"}])
def test_2d_round_trip_through_a_file(tmp_path: Path, overrides: dict) -> None:
    model = tiny_2d(**overrides)
    torch.save(to_fairseq(model), tmp_path / "ck.pt")
    back = from_fairseq(tmp_path / "ck.pt")
    assert isinstance(back, Graphormer)
    assert back.config == model.config
    batch = batch_2d()
    with torch.no_grad():
        torch.testing.assert_close(back(batch), model(batch), atol=1e-6, rtol=0)


@pytest.mark.parametrize("projection", ["per_axis", "shared"])
def test_3d_round_trip_through_a_file(tmp_path: Path, projection: str) -> None:
    model = tiny_3d(deltapos_projection=projection)
    torch.save(to_fairseq(model), tmp_path / "ck.pt")
    back = from_fairseq(tmp_path / "ck.pt")
    assert isinstance(back, Graphormer3D)
    assert back.config.deltapos_projection == "per_axis"
    assert back.config.standardisation == model.config.standardisation
    with torch.no_grad():
        for got, want in zip(back(*inputs_3d()), model(*inputs_3d()), strict=True):
            torch.testing.assert_close(got, want, atol=1e-6, rtol=0)


def test_3d_atomic_numbers_map_to_the_official_compact_ids() -> None:
    model = tiny_3d()
    state = to_fairseq(model)["model"]
    embedding = model.atom_encoder.weight.detach()
    assert torch.equal(state["atom_encoder.weight"][3], embedding[6])  # C is OC20 element 3
    assert torch.equal(
        state["atom_encoder.weight"][57], torch.zeros(16)
    )  # the unknown id keeps its initial zeros
    mul = model.gaussian.mul.weight.detach()
    assert torch.equal(state["gbf.mul.weight"][3 * 64 + 5], mul[6 * 128 + 8])  # (C, O)
    back = from_fairseq({"model": state})
    assert torch.equal(back.atom_encoder.weight[9], torch.zeros(16))  # F has no official id: the unknown row


def test_export_folds_target_scaling_into_the_head() -> None:
    model = tiny_2d(num_classes=1)
    scaled = from_fairseq(to_fairseq(model, target_mean=[3.0], target_std=[2.0]))
    with torch.no_grad():
        torch.testing.assert_close(scaled(batch_2d()), 3.0 + 2.0 * model(batch_2d()), atol=1e-5, rtol=0)
    with pytest.raises(InputError, match="one output bias"):
        to_fairseq(tiny_2d(), target_mean=[0.0, 1.0], target_std=[1.0, 1.0])


def test_missing_arguments_are_inferred_from_shapes() -> None:
    model = tiny_2d(norm_first=True, num_edge_dis=7, multi_hop_max_dist=5)
    found = load_fairseq(to_fairseq(model)["model"])  # a bare state dict: no arguments at all
    assert found.model.config == model.config
    assert found.assumed == ("multi_hop_max_dist=5", "max_nodes=128")
    model3 = tiny_3d(blocks=4)
    assert from_fairseq({"model": to_fairseq(model3)["model"]}).config.blocks == 4


def test_namespace_args_are_read_and_win_over_defaults(tmp_path: Path) -> None:
    model = tiny_2d(multi_hop_max_dist=3, max_nodes=64)
    checkpoint = to_fairseq(model)
    args = argparse.Namespace(**checkpoint.pop("cfg")["model"], criterion="binary_logloss")
    torch.save({**checkpoint, "args": args}, tmp_path / "legacy.pt")
    found = load_fairseq(tmp_path / "legacy.pt")  # no trust_pickle: a Namespace is allowed
    assert found.model.config == model.config
    assert found.assumed == ()
    assert found.criterion == "binary_logloss"


# ------------------------------------------------------------------------------------------------ bad input


def test_unknown_and_missing_keys_are_named() -> None:
    state = dict(to_fairseq(tiny_2d())["model"])
    state["encoder.graph_encoder.layers.0.self_attn.extra.weight"] = torch.zeros(1)
    del state["encoder.graph_encoder.layers.1.fc2.bias"]
    with pytest.raises(InputError) as info:
        from_fairseq({"model": state})
    message = str(info.value)
    assert "unknown key(s) encoder.graph_encoder.layers.0.self_attn.extra.weight" in message
    assert "missing key(s) encoder.graph_encoder.layers.1.fc2.bias" in message
    assert "\n" not in message


def test_shapes_that_contradict_the_arguments_are_named() -> None:
    checkpoint = to_fairseq(tiny_2d())
    checkpoint["cfg"]["model"]["encoder_ffn_embed_dim"] = 32
    with pytest.raises(InputError, match=r"layers\.0\.fc1\.weight \(24, 16\) \(expected \(32, 16\)\)"):
        from_fairseq(checkpoint)


def test_a_file_that_is_not_a_checkpoint_is_named(tmp_path: Path) -> None:
    text = tmp_path / "notes.pt"
    text.write_text("not a checkpoint\n", encoding="utf-8")
    with pytest.raises(InputError, match=f"^{text}: not a readable PyTorch checkpoint"):
        from_fairseq(text)
    tensor = tmp_path / "tensor.pt"
    torch.save(torch.zeros(3), tensor)
    with pytest.raises(InputError, match=f"^{tensor}: not a fairseq checkpoint"):
        from_fairseq(tensor)
    with pytest.raises(InputError, match="no such checkpoint file"):
        from_fairseq(tmp_path / "absent.pt")


def test_arbitrary_objects_need_trust_pickle(tmp_path: Path) -> None:
    checkpoint = to_fairseq(tiny_2d())
    path = tmp_path / "opaque.pt"
    torch.save({**checkpoint, "extra_state": {"meter": Opaque()}}, path)
    with pytest.raises(InputError) as info:
        from_fairseq(path)
    message = str(info.value)
    assert "--trust-pickle" in message
    assert "arbitrary code" in message
    assert "Opaque" in message
    assert "\n" not in message
    assert isinstance(from_fairseq(path, trust_pickle=True), Graphormer)


# ------------------------------------------------------------------------------------------------ CLI


def test_cli_convert_then_export(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = tiny_2d(num_classes=1)
    checkpoint = tmp_path / "official.pt"
    torch.save(to_fairseq(model), checkpoint)
    out = tmp_path / "converted"
    assert app.main(["convert-fairseq", "--checkpoint", str(checkpoint), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "converted Graphormer (2 layers, D 16, FFN 24, 4 heads, Post-LN" in printed
    assert f"{model.num_parameters():,} parameters" in printed
    loaded = Graphormer.from_pretrained(out).eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(batch_2d()), model(batch_2d()), atol=1e-6, rtol=0)
    predicted = load_predictor(out, device="cpu").predict(SMILES).values
    with torch.no_grad():
        torch.testing.assert_close(predicted.float(), model(batch_2d()), atol=1e-5, rtol=0)

    exported = tmp_path / "back.pt"
    assert app.main(["export-fairseq", "--model", str(out), "--out", str(exported)]) == 0
    assert f"wrote {exported}" in capsys.readouterr().out
    assert shapes(torch.load(exported, weights_only=True)["model"]) == official_keys(2, 16, 24, 4)

    assert (
        app.main(["export-fairseq", "--model", str(out), "--out", str(tmp_path)]) == 2
    )  # a folder, not a file
    assert app.main(["export-fairseq", "--model", str(tmp_path / "nothing"), "--out", str(exported)]) == 2
    assert "--model" in capsys.readouterr().err
    assert app.main(["convert-fairseq", "--checkpoint", str(tmp_path / "nothing.pt"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--checkpoint" in err
    assert "no such checkpoint file" in err


def test_cli_refuses_untrusted_pickles_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "opaque.pt"
    torch.save({**to_fairseq(tiny_3d()), "extra_state": Opaque()}, path)
    out = tmp_path / "converted"
    assert app.main(["convert-fairseq", "--checkpoint", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "--trust-pickle" in err
    assert not out.exists()
    assert app.main(["convert-fairseq", "--checkpoint", str(path), "--out", str(out), "--trust-pickle"]) == 0
    assert "converted Graphormer3D" in capsys.readouterr().out
    assert isinstance(Graphormer3D.from_pretrained(out), Graphormer3D)
