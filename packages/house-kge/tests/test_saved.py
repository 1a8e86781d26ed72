"""Saved model folders: ``save_trained``/``load_trained``, and the committed 0.2.0 folders that must stay readable.

``tests/fixtures/pretrained-0.2.0/`` holds three folders written by house-kge 0.2.0, each with an
``expected.safetensors`` of inputs and the outputs the model gave for them (eval mode, float32):

- ``house/``: ``HousE.save_pretrained`` of a HousE+ model (config.json + model.safetensors);
- ``rotate/``: ``RotatE.save_pretrained`` of a RotatE model;
- ``house-trained/``: ``save_trained`` of a HousE model with its graph (+ triples.safetensors and the vocabulary in
  config.json's ``extra``), as ``house-kge train`` leaves in ``<run>/model``.

They were generated (a few KB in all) from the package root with::

    python -c "import sys; sys.path.insert(0, 'tests'); import test_saved; test_saved.write_fixtures()"

A failure of the fixture tests means a later version can no longer read folders that 0.2.0 wrote.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from house_kge import (
    HousE,
    HousEConfig,
    KnowledgeGraph,
    RotatE,
    RotatEConfig,
    load_trained,
    save_trained,
)
from house_kge.saved import trained_folder
from safetensors.torch import load_file, save_file

from papers_common import InputError

FIXTURES = Path(__file__).parent / "fixtures" / "pretrained-0.2.0"


def fixture_graph() -> KnowledgeGraph:
    """Ten entities on a ring with ``next`` and ``prev``, and a region list (as Countries has)."""
    n = 10
    rows = [[i, 0, (i + 1) % n] for i in range(n)] + [[(i + 1) % n, 1, i] for i in range(n)]
    triples = torch.tensor(rows)
    return KnowledgeGraph(
        name="ring",
        entities=[f"node{i}" for i in range(n)],
        relations=["next", "prev"],
        train=triples[:16],
        valid=triples[16:18],
        test=triples[18:],
        skipped={"test": 1},
        regions=torch.tensor([0, 5]),
    )


def fixture_models() -> dict[str, HousE | RotatE]:
    """The models of the fixture folders, from fixed seeds (k_dir moved off its near-zero initialisation)."""
    torch.manual_seed(20261201)
    house = HousE(HousEConfig(num_entities=9, num_relations=3, dim=8, k=4, variant="house+", gamma=3.0))
    with torch.no_grad():
        house.k_dir_head.uniform_(-1, 1)
        house.k_dir_tail.uniform_(-1, 1)
    rotate = RotatE(RotatEConfig(num_entities=7, num_relations=2, dim=3, gamma=2.0))
    graph = fixture_graph()
    trained = HousE(
        HousEConfig(graph.num_entities, graph.num_relations, dim=8, k=4, variant="house", gamma=2.0)
    )
    with torch.no_grad():
        trained.k_dir_head.uniform_(-1, 1)
    return {"house": house, "rotate": rotate, "house-trained": trained}


def fixture_queries(model: HousE | RotatE) -> dict[str, torch.Tensor]:
    """Inputs (every (entity, relation) pair of the model's first entities) and the model's outputs for them."""
    known = torch.arange(model.config.num_entities).repeat(model.config.num_relations)
    relations = torch.arange(model.config.num_relations).repeat_interleave(model.config.num_entities)
    candidates = torch.stack([known.roll(1), known.roll(2)], 1)
    model.eval()
    with torch.no_grad():
        return {
            "known": known,
            "relations": relations,
            "candidates": candidates,
            "tail_scores": model.score_all(known, relations, "tail"),
            "head_scores": model.score_all(known, relations, "head"),
            "candidate_scores": model.score_candidates(known, relations, candidates, "tail"),
        }


def write_fixtures(root: Path = FIXTURES) -> None:
    """(Re)write the fixture folders (see the module docstring)."""
    models = fixture_models()
    for name, model in models.items():
        folder = root / name
        shutil.rmtree(folder, ignore_errors=True)
        if name == "house-trained":
            save_trained(model, fixture_graph(), folder)
        else:
            model.save_pretrained(folder)
        save_file(fixture_queries(model), str(folder / "expected.safetensors"))


def model_outputs(model: HousE | RotatE, expected: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    model.eval()
    known, relations = expected["known"], expected["relations"]
    with torch.no_grad():
        return {
            "tail_scores": model.score_all(known, relations, "tail"),
            "head_scores": model.score_all(known, relations, "head"),
            "candidate_scores": model.score_candidates(known, relations, expected["candidates"], "tail"),
        }


@pytest.mark.parametrize(("name", "cls"), [("house", HousE), ("rotate", RotatE)])
def test_folders_written_by_0_2_0_still_load(name: str, cls: type[HousE] | type[RotatE]) -> None:
    folder = FIXTURES / name
    assert {p.name for p in folder.iterdir()} == {"config.json", "model.safetensors", "expected.safetensors"}
    assert sum(p.stat().st_size for p in folder.iterdir()) < 20_000
    model = cls.from_pretrained(folder)
    expected = load_file(folder / "expected.safetensors")
    for key, value in model_outputs(model, expected).items():
        torch.testing.assert_close(value, expected[key], rtol=1e-5, atol=1e-5, msg=key)


def test_a_trained_folder_written_by_0_2_0_still_loads(capsys: pytest.CaptureFixture[str]) -> None:
    from house_kge.cli import app

    folder = FIXTURES / "house-trained"
    model, graph = load_trained(folder)
    reference = fixture_graph()
    assert isinstance(model, HousE)
    assert graph.entities == reference.entities
    assert graph.relations == reference.relations
    for split in ("train", "valid", "test"):
        assert torch.equal(getattr(graph, split), getattr(reference, split)), split
    assert torch.equal(graph.regions, reference.regions)
    assert graph.name == "ring"
    assert graph.skipped == {"test": 1}
    expected = load_file(folder / "expected.safetensors")
    for key, value in model_outputs(model, expected).items():
        torch.testing.assert_close(value, expected[key], rtol=1e-5, atol=1e-5, msg=key)

    # predict in names from the folder: the best tails of (node0, next) by the stored scores, known ones marked
    assert app.main(["predict", "--checkpoint", str(folder), "--head", "node0", "--relation", "next",
                     "--top", "3", "--known"]) == 0  # fmt: skip
    printed = [line.split("\t") for line in capsys.readouterr().out.strip().splitlines()]
    best = expected["tail_scores"][0].topk(3).indices.tolist()
    assert [row[0] for row in printed] == [f"node{i}" for i in best]
    assert [len(row) == 3 for row in printed] == [i == 1 for i in best]  # node1 is the known tail


def test_save_trained_round_trip(tmp_path: Path) -> None:
    models = fixture_models()
    model, graph = models["house-trained"], fixture_graph()
    folder = save_trained(model, graph, tmp_path / "saved")
    assert folder == tmp_path / "saved"
    assert {p.name for p in folder.iterdir()} == {"config.json", "model.safetensors", "triples.safetensors"}
    stored = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    assert stored["architectures"] == ["HousE"]
    assert stored["extra"]["entities"] == graph.entities
    assert stored["extra"]["relations"] == ["next", "prev"]
    assert stored["extra"]["regions"] == ["node0", "node5"]
    loaded, loaded_graph = load_trained(folder / "model.safetensors")  # a file in the folder names it too
    assert loaded.config == model.config
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name
    assert torch.equal(loaded_graph.all_triples(), graph.all_triples())
    assert trained_folder(tmp_path) is None
    shutil.copytree(folder, tmp_path / "run" / "model")
    assert trained_folder(tmp_path / "run") == tmp_path / "run" / "model"


def test_a_bare_save_pretrained_folder_is_not_enough_to_predict(tmp_path: Path) -> None:
    model = fixture_models()["rotate"]
    model.save_pretrained(tmp_path / "bare")
    with pytest.raises(InputError, match="lacks entities, relations"):
        load_trained(tmp_path / "bare")
    with pytest.raises(InputError, match="no saved house-kge model"):
        load_trained(tmp_path)


def test_save_trained_refuses_a_graph_of_another_size(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="entities"):
        save_trained(fixture_models()["house"], fixture_graph(), tmp_path / "x")
