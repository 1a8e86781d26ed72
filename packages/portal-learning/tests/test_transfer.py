"""Step-wise transfer: masked-residue pretraining, contact training and loading each step's encoders onward."""

from __future__ import annotations

import json
from dataclasses import replace

import portal_learning.transfer as transfer
import pytest
import torch
import torch.nn.functional as F
from portal_learning.featurize import residue_tokens
from portal_learning.model import CPIConfig, CPIModel
from portal_learning.transfer import (
    FREEZE_GROUPS,
    MASK_TOKEN,
    StructureModel,
    freeze,
    initialise_from,
    mask_residues,
    masked_loss,
    pretrain_protein,
    read_contacts,
    train_structure,
)
from safetensors.torch import load_file

from papers_common import InputError

TINY = CPIConfig(chemical="fingerprint", fingerprint_bits=512, gin_hidden=32, protein_embedding=16,
                 protein_channels=24, protein_layers=1, protein_kernel=5)  # fmt: skip


def _weights(folder):
    return load_file(folder / "model.safetensors")


@pytest.fixture(scope="module")
def steps(small, tmp_path_factory):
    """Step 1 on the benchmark's sequences, then step 2 from it with the protein embeddings frozen."""
    root = tmp_path_factory.mktemp("transfer")
    small.write(root / "data")
    first = pretrain_protein([r.sequence for r in small.records], root / "step1", model_config=TINY, epochs=2,
                             batch_size=16, lr=3e-3)  # fmt: skip
    contacts = read_contacts(root / "data" / "contacts.csv")
    second = train_structure(small.records, contacts, root / "step2", model_config=TINY, init=first.out,
                             freeze=["protein-embeddings"], epochs=2, batch_size=32, lr=3e-3)  # fmt: skip
    return first, second


def test_masking_chooses_15_percent_of_real_residues_and_never_padding(small):
    sequences = list(dict.fromkeys(r.sequence for r in small.records))
    sequences = [s[: 60 + (17 * i) % 140] for i, s in enumerate(sequences)]  # ragged: padding in most rows
    tokens, mask = residue_tokens(sequences, 512)
    corrupted, chosen = mask_residues(tokens, mask, torch.Generator().manual_seed(0))
    assert not chosen[~mask].any()
    assert torch.equal(corrupted[~mask], tokens[~mask])  # padding stays padding
    assert torch.equal(corrupted[~chosen], tokens[~chosen])
    assert chosen.sum() / mask.sum() == pytest.approx(0.15, abs=0.01)
    replaced = corrupted[chosen] == MASK_TOKEN
    kept = corrupted[chosen] == tokens[chosen]
    assert replaced.float().mean() == pytest.approx(0.8, abs=0.02)
    assert kept.float().mean() == pytest.approx(
        0.1 + 0.1 / 20, abs=0.02
    )  # a random residue may be the same one
    again, _ = mask_residues(tokens, mask, torch.Generator().manual_seed(0))
    assert torch.equal(again, corrupted)


def test_the_mlm_loss_counts_the_masked_positions_only():
    generator = torch.Generator().manual_seed(1)
    tokens = torch.randint(2, 22, (4, 30), generator=generator)
    chosen = torch.rand(4, 30, generator=generator) < 0.3
    logits = torch.randn(4, 30, 22, generator=generator)
    loss = masked_loss(logits, tokens, chosen)
    assert loss == pytest.approx(float(F.cross_entropy(logits[chosen], tokens[chosen])))
    elsewhere = logits.clone()
    elsewhere[~chosen] = 100 * torch.randn(int((~chosen).sum()), 22, generator=generator)
    assert masked_loss(elsewhere, tokens, chosen) == loss
    assert masked_loss(logits, tokens, torch.zeros_like(chosen)) == 0


def test_a_few_mlm_epochs_lower_the_masked_token_loss(steps):
    first, _ = steps
    before, after = first.metrics["before"], first.metrics["after"]
    assert after["masked_loss"] < before["masked_loss"]
    assert after["masked_accuracy"] > before["masked_accuracy"]
    assert first.history[-1]["loss"] < first.history[0]["loss"]
    saved = json.loads((first.out / "metrics.json").read_text())
    assert saved["step"] == "pretrain-protein"
    assert saved["after"] == after
    assert json.loads((first.model / "config.json").read_text())["extra"] == {"step": "pretrain-protein"}


def test_a_stopped_pretraining_resumes_to_the_same_weights(small, tmp_path, monkeypatch):
    sequences = list(dict.fromkeys(r.sequence for r in small.records))[:30]
    settings = {"model_config": TINY, "epochs": 2, "batch_size": 8}
    whole = pretrain_protein(sequences, tmp_path / "whole", **settings)
    saved = transfer.save_checkpoint

    def stop_after_first(*args, **kwargs):
        saved(*args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(transfer, "save_checkpoint", stop_after_first)
    with pytest.raises(KeyboardInterrupt):
        pretrain_protein(sequences, tmp_path / "parts", **settings)
    monkeypatch.setattr(transfer, "save_checkpoint", saved)
    parts = pretrain_protein(sequences, tmp_path / "parts", **settings)
    assert [h["loss"] for h in parts.history] == [h["loss"] for h in whole.history]
    theirs = _weights(whole.model)
    assert all(torch.equal(value, theirs[name]) for name, value in _weights(parts.model).items())
    with pytest.raises(InputError, match="other settings"):
        pretrain_protein(sequences, tmp_path / "parts", **{**settings, "lr": 0.5})


def test_step_two_starts_from_step_one_and_keeps_the_frozen_group(steps):
    first, second = steps
    one, two = _weights(first.model), _weights(second.model)
    frozen = second.metrics["frozen"]
    assert frozen == ["protein.embed.weight", "protein.positions.weight"]
    assert all(torch.equal(one[name], two[name]) for name in frozen)
    for name in ("protein.project.weight", "protein.convs.0.weight", "protein.norms.0.weight"):
        assert not torch.equal(one[name], two[name]), name
    initialised = second.metrics["before"]["initialised"]
    assert initialised
    assert all(name.startswith("protein.") for name in initialised)
    model = StructureModel.from_pretrained(second.model)
    tokens, mask = residue_tokens(["ACDEFGHIK", "ACD"], TINY.max_length)
    assert model.eval()(torch.zeros(2, TINY.fingerprint_bits), tokens, mask).shape == (2, 9)


def test_initialise_from_loads_the_encoders_of_each_step(steps):
    first, second = steps
    torch.manual_seed(5)
    model = CPIModel(TINY)
    fresh = {k: v.clone() for k, v in model.state_dict().items()}
    names = initialise_from(model, first.out)  # a step-1 run folder: protein weights only
    assert names
    assert all(name.startswith("protein.") for name in names)
    state = model.state_dict()
    assert all(torch.equal(state[k], _weights(first.model)[k]) for k in names)
    assert all(torch.equal(state[k], fresh[k]) for k in state if not k.startswith("protein."))
    names = initialise_from(model, second.model)
    assert {name.split(".")[0] for name in names} == {"protein", "chemical"}
    state, two = model.state_dict(), _weights(second.model)
    assert all(torch.equal(state[k], two[k]) for k in names)
    assert torch.equal(state["bilinear"], fresh["bilinear"])


def test_structure_training_learns_the_pocket_on_held_out_families(steps):
    _, second = steps
    assert second.metrics["heldout_pairs"] > 0
    assert second.metrics["after"]["contact_roc_auc"] > 0.8
    assert second.metrics["after"]["contact_roc_auc"] > second.metrics["before"]["contact_roc_auc"]


def test_an_encoder_that_does_not_fit_the_config_is_named(steps, tmp_path):
    first, second = steps
    with pytest.raises(InputError, match=r"protein\.project\.weight is \(24, 16, 1\)") as error:
        initialise_from(CPIModel(replace(TINY, protein_channels=32)), second.model)
    assert str(second.model) in str(error.value)
    with pytest.raises(InputError, match=r"protein\.positions\.weight"):
        initialise_from(CPIModel(replace(TINY, protein_positions=False)), first.model)
    CPIModel(TINY).save_pretrained(tmp_path / "erm")
    with pytest.raises(InputError, match="not the model of a transfer step"):
        initialise_from(CPIModel(TINY), tmp_path / "erm")
    with pytest.raises(InputError, match="structure"):
        train_structure([], {}, tmp_path / "run", model_config=TINY, init=second.out)


def test_freezing_names_its_groups():
    model = CPIModel(TINY)
    frozen = freeze(model, ["protein-convs", "chemical"])
    assert all(
        name.startswith(("protein.project", "protein.convs", "protein.norms", "chemical.")) for name in frozen
    )
    assert {n for n, p in model.named_parameters() if not p.requires_grad} == set(frozen)
    with pytest.raises(InputError, match="'pocket'") as error:
        freeze(model, ["pocket"])
    assert all(group in str(error.value) for group in FREEZE_GROUPS)


def test_a_malformed_contacts_file_names_its_line(small, tmp_path):
    path = tmp_path / "contacts.csv"
    path.write_text("protein,contact_positions\nP1,1 2 3\nP2,4 x 6\n")
    with pytest.raises(InputError, match=rf"{path}:3: 'x'"):
        read_contacts(path)
    path.write_text("protein,positions\nP1,1 2 3\n")
    with pytest.raises(InputError, match=rf"{path}:1: expected the header"):
        read_contacts(path)
    with pytest.raises(InputError, match="no such file"):
        read_contacts(tmp_path / "missing.csv")
    path.write_text("protein,contact_positions\nP1,1 2 3\n\nP2,\n")
    assert read_contacts(path) == {"P1": [1, 2, 3], "P2": []}
    records = small.records[::100]  # a few pairs of every family
    with pytest.raises(InputError, match="beyond"):
        train_structure(records, {r.protein: [10_000] for r in records}, tmp_path / "run", model_config=TINY)


def test_interaction_training_from_step_two_keeps_the_frozen_encoder(steps, small, tmp_path):
    """Step 3: `train_model(init=..., freeze=["protein"])` starts from step 2's encoders; the protein encoder
    (BatchNorm statistics included) leaves meta-training exactly as loaded, the chemical encoder learns."""
    from portal_learning import four_way_split
    from portal_learning.meta import MetaConfig
    from portal_learning.train import TrainConfig, train_model

    _, second = steps
    config = TrainConfig(method="ooc-fomaml", epochs=1, meta=MetaConfig(steps_per_round=3))
    result = train_model(small.records, four_way_split(small.records), tmp_path, model_config=TINY, config=config,
                         init=second.model, freeze=["protein"])  # fmt: skip
    trained, loaded = _weights(result.out / "model-ood-dev"), _weights(second.model)
    protein = [k for k in loaded if k.startswith("protein.")]
    assert protein
    assert all(torch.equal(trained[k], loaded[k]) for k in protein)
    assert not all(torch.equal(trained[k], loaded[k]) for k in loaded if k.startswith("chemical."))
    frozen = json.loads((result.out / "config.json").read_text())["frozen"]
    assert set(frozen) == {k for k in protein if "running" not in k and "num_batches" not in k}
