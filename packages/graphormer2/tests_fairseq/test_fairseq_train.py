"""graphormer2 inside fairseq: the plugin trained by ``fairseq-train``, and official checkpoints in both directions.

Run by ``nox -s tests-graphormer2-fairseq`` (fairseq-fixed installed beside graphormer2); the README's commands
are run as written.
"""

from __future__ import annotations

import argparse
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
from graphormer2 import Graphormer, GraphormerConfig, from_fairseq, from_smiles
from graphormer2.cli import app
from graphormer2.datasets import rdkit_data_file
from rdkit import Chem
from rdkit.Chem import Descriptors

from papers_common import preserved_global_state

pytest.importorskip("fairseq")

README = Path(__file__).parents[1] / "README.md"
MOLECULES = 120


def readme_line(start: str) -> list[str]:
    """The one README command line starting with ``start``, split as a shell would."""
    blocks = re.findall(r"```bash\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
    lines = [line for block in blocks for line in block.splitlines() if line.startswith(start)]
    assert len(lines) == 1, lines
    return shlex.split(lines[0], comments=True)


def plugin_dir(capsys: pytest.CaptureFixture[str]) -> str:
    with preserved_global_state():
        assert app.main(["fairseq-user-dir"]) == 0
    return capsys.readouterr().out.strip()


def fairseq_model(checkpoint: Path, user_dir: str) -> tuple[torch.nn.Module, object]:
    """The model and task fairseq itself builds from ``checkpoint`` (eval mode)."""
    from fairseq import checkpoint_utils, utils

    utils.import_user_module(argparse.Namespace(user_dir=user_dir))
    with torch.serialization.safe_globals(
        [argparse.Namespace]
    ):  # fairseq stores its arguments as a Namespace
        models, _, task = checkpoint_utils.load_model_ensemble_and_task([str(checkpoint)])
    return models[0].eval(), task


@pytest.fixture(scope="module")
def data_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``data.pt``: the first NCI molecules with their TPSA, as `graphormer2 preprocess` writes it."""
    lines = rdkit_data_file("NCI/first_5K.smi").read_text(encoding="utf-8").splitlines()[:MOLECULES]
    smiles = [line.split()[0] for line in lines]
    tpsa = [[Descriptors.TPSA(Chem.MolFromSmiles(s))] for s in smiles]
    path = tmp_path_factory.mktemp("fairseq") / "data.pt"
    from_smiles(smiles, tpsa, target_names=["tpsa"], strict=True).save(path)
    return path


def test_fairseq_train_with_the_plugin_converts_to_equal_predictions(
    data_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The README's ``fairseq-train --user-dir ...`` line, run by bash as written next to ``data.pt``, trains
    graphormer2's model through fairseq; its checkpoint (official names) converts with the README's line, and the
    converted model predicts what fairseq's model predicts on the test split (1e-5)."""
    user_dir = plugin_dir(capsys)
    shutil.copy(data_file, tmp_path / "data.pt")
    line = next(
        line
        for block in re.findall(r"```bash\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
        for line in block.splitlines()
        if line.startswith("fairseq-train ")
    )
    done = subprocess.run(["bash", "-c", line], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    losses = [
        float(v) for v in re.findall(r"\| train \| epoch \d+ \| loss ([0-9.]+)", done.stdout + done.stderr)
    ]
    assert len(losses) == 3
    assert losses[-1] < losses[0]  # it trained
    monkeypatch.chdir(tmp_path)
    convert = readme_line("graphormer2 convert-fairseq")
    with preserved_global_state():
        assert app.main(convert[1:]) == 0
    model, task = fairseq_model(tmp_path / "checkpoints" / "checkpoint_best.pt", user_dir)
    task.load_dataset("test")
    test = task.datasets["test"]
    sample = test.collater([test[i] for i in range(len(test))])
    ours = Graphormer.from_pretrained(tmp_path / "graphormer-fairseq").eval()
    with torch.no_grad():
        expected = model(**sample["net_input"])
        torch.testing.assert_close(ours(sample["net_input"]["batched_data"]), expected, rtol=1e-5, atol=1e-5)
    assert len(test) == round(0.1 * MOLECULES)


def test_an_exported_model_is_loaded_by_fairseq_train(
    data_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A model trained here, exported with the README's line, is the starting point of ``fairseq-train
    --finetune-from-model``: fairseq loads every tensor (strict) and, after one update at lr 1e-12, its checkpoint
    still predicts what the exported model predicts."""
    user_dir = plugin_dir(capsys)
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    config = GraphormerConfig.preset(
        "slim", num_layers=2, dropout=0.0, attention_dropout=0.0, activation_dropout=0.0
    )
    trained = Graphormer(config).eval()
    trained.save_pretrained(tmp_path / "runs" / "tpsa")
    export = readme_line("graphormer2 export-fairseq")
    with preserved_global_state():
        assert app.main(export[1:]) == 0
    command = [
        "fairseq-train", "--user-dir", user_dir,
        "--task", "graphormer2_graph_prediction", "--graph-dataset", str(data_file), "--arch", "graphormer2_slim",
        "--encoder-layers", "2", "--dropout", "0", "--attention-dropout", "0", "--act-dropout", "0",
        "--criterion", "graphormer2_l1", "--optimizer", "adam", "--lr", "1e-12", "--batch-size", "16",
        "--max-update", "1", "--cpu", "--num-workers", "0", "--save-dir", str(tmp_path / "tuned"),
        "--finetune-from-model", str(tmp_path / "graphormer2-tpsa.pt"), "--no-epoch-checkpoints",
        "--disable-validation",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    model, task = fairseq_model(tmp_path / "tuned" / "checkpoint_last.pt", user_dir)
    task.load_dataset("valid")
    valid = task.datasets["valid"]
    batch = valid.collater([valid[i] for i in range(len(valid))])["net_input"]["batched_data"]
    with torch.no_grad():
        torch.testing.assert_close(model(batch), trained(batch), rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(from_fairseq(tmp_path / "graphormer2-tpsa.pt")(batch), trained(batch))


def oc20_lmdb(path: Path, systems: int, seed: int) -> None:
    """An OC20 IS2RE LMDB of ``systems`` random slab + adsorbate records (PyG ``Data``, as OC20 writes them)."""
    import pickle

    import lmdb
    from torch_geometric.data import Data

    g = torch.Generator().manual_seed(seed)
    env = lmdb.open(str(path), subdir=False, map_size=1 << 26)
    with env.begin(write=True) as txn:
        for k in range(systems):
            slab, adsorbate = 6, 2
            pos = torch.rand(slab + adsorbate, 3, generator=g) * torch.tensor([6.0, 6.0, 2.0])
            pos[slab:, 2] += 3.0
            tags = torch.tensor([0] * 3 + [1] * 3 + [2] * adsorbate)
            record = Data(
                pos=pos, cell=torch.tensor([[[6.0, 0.0, 0.0], [0.0, 6.0, 0.0], [0.0, 0.0, 20.0]]]),
                atomic_numbers=torch.tensor([78.0, 29.0, 78.0, 29.0, 78.0, 29.0, 6.0, 8.0]), natoms=slab + adsorbate,
                tags=tags, fixed=(tags == 0).float(), sid=k, y_init=0.0, y_relaxed=float(pos[slab:, 2].mean()) - 4.0,
                pos_relaxed=pos + 0.05 * torch.rand(slab + adsorbate, 3, generator=g),
            )  # fmt: skip
            txn.put(str(k).encode(), pickle.dumps(record, protocol=pickle.HIGHEST_PROTOCOL))
    env.close()


def test_graphormer3d_trains_in_fairseq_and_converts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The 3D task, model and criterion under ``fairseq-train`` on tiny OC20 LMDBs (read only with
    ``--trust-pickle``); ``convert-fairseq`` turns the checkpoint into a Graphormer-3D with equal outputs."""
    pytest.importorskip("lmdb")
    user_dir = plugin_dir(capsys)
    oc20_lmdb(tmp_path / "train.lmdb", 24, seed=0)
    oc20_lmdb(tmp_path / "valid.lmdb", 8, seed=1)
    base = [
        "fairseq-train", "--user-dir", user_dir, "--task", "graphormer2_is2re", "--train-lmdb", "train.lmdb",
        "--valid-lmdb", "valid.lmdb", "--arch", "graphormer2_3d_base", "--layers", "2", "--blocks", "1",
        "--embed-dim", "32", "--ffn-embed-dim", "32", "--attention-heads", "4", "--num-kernel", "16",
        "--criterion", "graphormer2_3d_loss", "--optimizer", "adam", "--lr", "1e-3", "--batch-size", "8",
        "--max-update", "9", "--cpu", "--num-workers", "0", "--save-dir", "checkpoints", "--no-epoch-checkpoints",
        "--seed", "1", "--log-format", "simple",
    ]  # fmt: skip
    refused = subprocess.run(base, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert refused.returncode != 0
    assert "--trust-pickle" in refused.stderr
    done = subprocess.run(
        [*base, "--trust-pickle"], cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    monkeypatch.chdir(tmp_path)
    with preserved_global_state():
        assert (
            app.main(["convert-fairseq", "--checkpoint", "checkpoints/checkpoint_last.pt", "--out", "g3d"])
            == 0
        )
    model, task = fairseq_model(tmp_path / "checkpoints" / "checkpoint_last.pt", user_dir)
    task.load_dataset("valid")
    valid = task.datasets["valid"]
    sample = valid.collater([valid[i] for i in range(len(valid))])
    from graphormer2 import Graphormer3D

    ours = Graphormer3D.from_pretrained(tmp_path / "g3d").eval()
    with torch.no_grad():
        for got, expected in zip(ours(**sample["net_input"]), model(**sample["net_input"]), strict=True):
            torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
