"""Predicting from saved models in the target's units: SMILES, RDKit molecules, SDF files, skipped molecules."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from graphormer2 import GIN, GINConfig, Graphormer, GraphormerConfig, Predictor, load_predictor
from graphormer2.collate import collate
from graphormer2.datasets import from_smiles
from graphormer2.model3d import Graphormer3D, Graphormer3DConfig
from rdkit import Chem

from papers_common import InputError

MOLECULES = ["CCO", "c1ccccc1O", "CC(=O)N"]
MEAN, STD = (100.0, -2.0), (25.0, 0.5)


def tiny_graphormer() -> Graphormer:
    torch.manual_seed(0)
    config = GraphormerConfig(num_layers=1, hidden_dim=16, ffn_dim=16, num_heads=2, num_classes=2,
                              attention_dropout=0.0, activation_dropout=0.0)  # fmt: skip
    return Graphormer(config).eval()


def raw_outputs(model: torch.nn.Module, smiles: list[str]) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(collate(list(from_smiles(smiles)))).double()


def test_predictions_are_in_target_units_for_smiles_molecules_and_sdf_files(tmp_path: Path) -> None:
    """y = μ + σ·ŷ per target (Predictor), the same after save_pretrained → load_predictor, for every input kind;
    a skipped molecule keeps its row, as NaN."""
    model = tiny_graphormer()
    expected = raw_outputs(model, MOLECULES) * torch.tensor(STD, dtype=torch.float64) + torch.tensor(MEAN)
    predictor = Predictor(model, target_names=["a", "b"], target_mean=MEAN, target_std=STD)
    folder = predictor.save_pretrained(tmp_path / "model")
    loaded = load_predictor(folder, device="cpu")
    assert (loaded.target_names, loaded.objective) == (["a", "b"], "regression")

    from_list = loaded.predict(MOLECULES)
    torch.testing.assert_close(from_list.values, expected, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(from_list["b"], expected[:, 1], rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(
        predictor.predict(MOLECULES, batch_size=2).values, expected, rtol=1e-6, atol=1e-6
    )
    with pytest.raises(KeyError, match="the targets are a, b"):
        from_list["c"]

    with_bad = loaded.predict(["CCO", "C1CC(", "c1ccccc1O", "CC(=O)N"])
    assert with_bad.values[1].isnan().all()
    torch.testing.assert_close(with_bad.values[[0, 2, 3]], expected, rtol=1e-6, atol=1e-6)
    assert [(r.row, r.smiles, r.reason) for r in with_bad.rejected] == [(2, "C1CC(", "invalid_smiles")]
    with pytest.raises(InputError, match=r"smiles\[1\].*C1CC\("):
        loaded.predict(["CCO", "C1CC("], strict=True)

    mols = [Chem.MolFromSmiles(s) for s in MOLECULES]
    from_mols = loaded.predict([mols[0], None, *mols[1:]])
    torch.testing.assert_close(from_mols.values[[0, 2, 3]], expected, rtol=1e-6, atol=1e-6)
    assert from_mols.smiles == ["CCO", "", "Oc1ccccc1", "CC(N)=O"]  # RDKit's canonical SMILES
    torch.testing.assert_close(loaded.predict(mols[0]).values, expected[:1], rtol=1e-6, atol=1e-6)

    sdf = tmp_path / "mols.sdf"
    with Chem.SDWriter(str(sdf)) as writer:
        for mol in mols:
            writer.write(mol)
    for path in (sdf, str(sdf)):
        torch.testing.assert_close(loaded.predict(path).values, expected, rtol=1e-6, atol=1e-6)

    # the folder alone, moved elsewhere, is enough
    moved = shutil.move(folder, tmp_path / "elsewhere")
    torch.testing.assert_close(
        load_predictor(moved).predict(MOLECULES).values, expected, rtol=1e-6, atol=1e-6
    )


def test_classification_predicts_probabilities(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = GIN(GINConfig(num_layers=1, hidden_dim=8, num_classes=1)).eval()
    folder = Predictor(model, target_names=["active"], objective="classification").save_pretrained(
        tmp_path / "g"
    )
    predictions = load_predictor(folder).predict(MOLECULES)
    torch.testing.assert_close(predictions.values, torch.sigmoid(raw_outputs(model, MOLECULES)))


def test_bad_inputs_and_folders_are_input_errors(tmp_path: Path) -> None:
    predictor = Predictor(tiny_graphormer(), target_names=["a", "b"], target_mean=MEAN, target_std=STD)
    with pytest.raises(InputError, match="no molecules to predict"):
        predictor.predict([])
    with pytest.raises(InputError, match=r"mols\[1\]: expected an RDKit Chem.Mol \(or None\), got int"):
        predictor.predict([Chem.MolFromSmiles("CCO"), 3])
    with pytest.raises(InputError, match="none of the 1 molecules can be used"):
        predictor.predict(["C1CC("])
    with pytest.raises(InputError, match="objective must be 'regression' or 'classification'"):
        Predictor(tiny_graphormer(), target_names=["a"], objective="ranking")
    with pytest.raises(InputError, match=r"no config\.json"):
        load_predictor(tmp_path)
    config = Graphormer3DConfig(
        layers=1, blocks=1, embed_dim=4, ffn_embed_dim=4, attention_heads=1, num_kernel=2
    )
    folder = Graphormer3D(config).save_pretrained(tmp_path / "g3d")
    with pytest.raises(InputError, match=r"a 'Graphormer3D' model.*Graphormer3D.from_pretrained"):
        load_predictor(folder)
    bare = tiny_graphormer().save_pretrained(tmp_path / "bare")
    with pytest.raises(InputError, match="has no objective, target_names, max_nodes, multi_hop_max_dist"):
        load_predictor(bare)
