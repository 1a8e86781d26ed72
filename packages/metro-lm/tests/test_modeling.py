from __future__ import annotations

import math

import pytest
import torch
from conftest import clean_ids, tiny_config
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForMaskedLM,
    AutoModelForPreTraining,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
)

from metro_lm import (
    MetroConfig,
    MetroForMaskedLM,
    MetroForPreTraining,
    MetroForSequenceClassification,
    MetroForTokenClassification,
    MetroModel,
)
from metro_lm.model_files import weight_shapes
from metro_lm.modeling import ResidualProjection
from metro_lm.randomness import sequence_keys


def keys(n: int, step: int = 0) -> torch.Tensor:
    return sequence_keys(0, step, torch.arange(n))


@pytest.mark.parametrize("scaled", [True, False])
def test_scaled_init_gives_the_stated_weight_scales(scaled: bool) -> None:
    torch.manual_seed(0)
    config = MetroConfig(vocab_size=300, hidden_size=128, num_hidden_layers=8, num_attention_heads=4,
                         intermediate_size=256, generator_layers=2, scaled_init=scaled)  # fmt: skip
    model = MetroForPreTraining(config)
    for prefix, depth in (("metro.encoder.", 8), ("generator.", 2)):
        for name, module in model.named_modules():
            if name.startswith(prefix) and isinstance(module, ResidualProjection):
                want = 0.02 / math.sqrt(2 * depth) if scaled else 0.02
                assert module.num_layers == depth
                assert module.weight.std().item() == pytest.approx(want, rel=0.05), name
                assert torch.all(module.bias == 0)
    qkv = model.metro.encoder.layer[0].attention.query_key_value.weight
    assert qkv.std().item() == pytest.approx(0.02, rel=0.05)
    assert model.metro.embeddings.word_embeddings.weight.std().item() == pytest.approx(0.02, rel=0.05)
    assert torch.all(model.metro.encoder.layer[3].output_norm.weight == 1)


def test_losses_combine_with_the_paper_weights(config: MetroConfig) -> None:
    model = MetroForPreTraining(config)
    out = model(clean_ids(pad_last=5), sequence_keys=keys(4))
    total = out.mlm_loss + 50.0 * out.rtd_loss + 1.0 * out.clm_loss
    assert torch.allclose(out.loss, total)
    assert out.scl_loss is None
    assert out.mlm_loss.item() == pytest.approx(math.log(200), rel=0.1)  # untrained: about uniform


def test_rtd_labels_are_zero_where_the_sample_equals_the_original() -> None:
    # 7 tokens, 2 of them ordinary: the generator often samples the original back
    config = tiny_config(vocab_size=7)
    model = MetroForPreTraining(config)
    ids = torch.randint(5, 7, (64, 40), generator=torch.Generator().manual_seed(0))
    ids[:, 0], ids[:, -1] = 2, 3
    out = model(ids, sequence_keys=keys(64))
    masked = out.masked_positions
    same = masked & (out.corrupted_ids == ids)
    assert same.sum() > 20
    assert (masked & (out.corrupted_ids != ids)).sum() > 20
    assert torch.all(out.rtd_labels[same] == 0)
    assert torch.all(out.rtd_labels[~masked] == 0)
    assert torch.equal(out.rtd_labels.bool(), out.corrupted_ids != ids)


def test_no_gradient_flows_from_the_discriminator_into_the_generator(config: MetroConfig) -> None:
    model = MetroForPreTraining(config)
    out = model(clean_ids(), sequence_keys=keys(4))
    out.rtd_loss.backward(retain_graph=True)
    for name, parameter in model.named_parameters():
        if name.startswith(("generator.", "generator_head.")):
            assert parameter.grad is None or torch.all(parameter.grad == 0), name
    assert model.metro.encoder.layer[0].attention.query_key_value.weight.grad.abs().sum() > 0
    model.zero_grad()
    out.mlm_loss.backward()
    assert model.generator.layer[0].feed_forward.output.weight.grad.abs().sum() > 0


def test_the_corrective_lm_weight_is_detached(config: MetroConfig) -> None:
    model = MetroForPreTraining(config)
    out = model(clean_ids(), sequence_keys=keys(4))
    out.clm_loss.backward()
    assert all(p.grad is None or torch.all(p.grad == 0) for p in model.rtd_head.parameters())
    assert model.lm_head.dense.weight.grad.abs().sum() > 0


def test_clm_is_the_sigmoid_weighted_masked_cross_entropy(config: MetroConfig) -> None:
    model = MetroForPreTraining(config).eval()
    ids = clean_ids()
    out = model(ids, sequence_keys=keys(4))
    hidden = model.metro(out.corrupted_ids).last_hidden_state[out.masked_positions]
    logits = model.lm_head(hidden, model.metro.embeddings.word_embeddings.weight)
    ce = torch.nn.functional.cross_entropy(logits, ids[out.masked_positions], reduction="none")
    weights = torch.sigmoid(out.rtd_logits[out.masked_positions])
    assert torch.allclose(out.clm_loss, (weights * ce).mean(), atol=1e-6)


def test_padding_changes_nothing(config: MetroConfig) -> None:
    model = MetroForPreTraining(config).eval()
    ids = clean_ids(3, 20)
    padded = torch.cat([ids, torch.zeros(3, 9, dtype=torch.long)], dim=1)
    a = model(ids, sequence_keys=keys(3))
    b = model(padded, sequence_keys=keys(3))
    for name in ("loss", "mlm_loss", "rtd_loss", "clm_loss"):
        assert torch.allclose(getattr(a, name), getattr(b, name), atol=1e-5), name
    assert torch.allclose(a.rtd_logits, b.rtd_logits[:, :20], atol=1e-5)
    assert not b.masked_positions[:, 20:].any()
    assert torch.all(b.rtd_labels[:, 20:] == 0)


def test_masking_and_sampling_follow_the_keys_not_the_batch_layout(config: MetroConfig) -> None:
    model = MetroForPreTraining(config).eval()
    ids = clean_ids(6, 16)
    whole = model(ids, sequence_keys=keys(6))
    parts = [model(ids[i : i + 2], sequence_keys=keys(6)[i : i + 2]) for i in (0, 2, 4)]
    assert torch.equal(whole.corrupted_ids, torch.cat([p.corrupted_ids for p in parts]))


def test_sampling_is_dropout_free_when_the_generator_has_dropout() -> None:
    config = tiny_config(generator_dropout=0.5)
    model = MetroForPreTraining(config)
    ids = clean_ids(8, 30)
    reference = model.eval()(ids, sequence_keys=keys(8)).corrupted_ids
    model.train()
    for _ in range(3):
        assert torch.equal(model(ids, sequence_keys=keys(8)).corrupted_ids, reference)
    # the training pass itself does use dropout (its MLM loss varies)
    losses = {round(model(ids, sequence_keys=keys(8)).mlm_loss.item(), 6) for _ in range(3)}
    assert len(losses) > 1


def test_mlm_objective_trains_the_main_model_alone() -> None:
    model = MetroForPreTraining(tiny_config(objective="mlm"))
    assert not hasattr(model, "generator")
    assert not hasattr(model, "rtd_head")
    out = model(clean_ids(), sequence_keys=keys(4))
    assert torch.equal(out.loss, out.mlm_loss)
    assert out.rtd_loss is None
    assert torch.all(out.corrupted_ids[out.masked_positions] == 4)


def test_electra_objective_has_no_corrective_lm() -> None:
    model = MetroForPreTraining(tiny_config(objective="electra", position_embedding="absolute"))
    assert not hasattr(model, "lm_head")
    assert model.metro.embeddings.position_embeddings is not None
    out = model(clean_ids(), sequence_keys=keys(4))
    assert out.clm_loss is None
    assert torch.allclose(out.loss, out.mlm_loss + 50 * out.rtd_loss)


@pytest.mark.parametrize("layer_norm", ["post", "pre"])
def test_both_layer_norm_placements_run_in_train_and_eval_mode(layer_norm: str) -> None:
    model = MetroForPreTraining(tiny_config(layer_norm=layer_norm, hidden_dropout_prob=0.1, scl_weight=0.5))
    for mode in (True, False):
        model.train(mode)
        out = model(clean_ids(pad_last=3), sequence_keys=keys(4))
        assert torch.isfinite(out.loss)
        assert out.scl_loss is not None
    assert (model.metro.encoder.final_norm is not None) == (layer_norm == "pre")


def test_bf16_autocast_forward_and_backward() -> None:
    model = MetroForPreTraining(tiny_config())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(clean_ids(pad_last=4), sequence_keys=keys(4))
    out.loss.backward()
    assert torch.isfinite(out.loss)


def test_sequence_longer_than_the_position_range_is_refused(config: MetroConfig) -> None:
    with pytest.raises(ValueError, match="longer than max_position_embeddings=64"):
        MetroModel(config)(clean_ids(1, 65))


def test_bad_config_values_name_the_field() -> None:
    with pytest.raises(ValueError, match="objective"):
        MetroConfig(objective="bert")
    with pytest.raises(ValueError, match="multiple of num_attention_heads"):
        MetroConfig(hidden_size=30, num_attention_heads=4)
    with pytest.raises(ValueError, match=r"generator_layers must be between 1 and num_hidden_layers \(2\)"):
        MetroConfig(num_hidden_layers=2, generator_layers=3)
    assert MetroConfig(num_hidden_layers=2, generator_layers=3, objective="mlm").generator_layers == 3


def test_save_and_load_through_the_auto_classes_gives_identical_logits(tmp_path, config: MetroConfig) -> None:
    torch.manual_seed(1)
    model = MetroForPreTraining(config).eval()
    model.save_pretrained(tmp_path)
    assert AutoConfig.from_pretrained(tmp_path).model_type == "metro"
    ids = clean_ids(pad_last=6)
    again = AutoModelForPreTraining.from_pretrained(tmp_path).eval()
    assert isinstance(again, MetroForPreTraining)
    a, b = model(ids, sequence_keys=keys(4)), again(ids, sequence_keys=keys(4))
    assert torch.equal(a.rtd_logits, b.rtd_logits)
    assert torch.equal(a.loss, b.loss)
    base = AutoModel.from_pretrained(tmp_path).eval()
    assert isinstance(base, MetroModel)
    assert torch.equal(base(ids).last_hidden_state, model.metro(ids).last_hidden_state)

    classifier = AutoModelForSequenceClassification.from_pretrained(tmp_path, num_labels=3).eval()
    assert isinstance(classifier, MetroForSequenceClassification)
    assert torch.equal(classifier.metro.embeddings.word_embeddings.weight,
                       model.metro.embeddings.word_embeddings.weight)  # fmt: skip
    classifier.save_pretrained(tmp_path / "cls")
    reloaded = AutoModelForSequenceClassification.from_pretrained(tmp_path / "cls").eval()
    assert torch.equal(reloaded(ids).logits, classifier(ids).logits)
    tagger = AutoModelForTokenClassification.from_pretrained(tmp_path, num_labels=5)
    assert isinstance(tagger, MetroForTokenClassification)
    assert tagger(ids).logits.shape == (4, 24, 5)


def test_classification_losses_follow_the_problem_type(config: MetroConfig) -> None:
    ids = clean_ids()
    regression = MetroForSequenceClassification(tiny_config(num_labels=1))
    out = regression(ids, labels=torch.tensor([0.5, 1.0, 2.0, 3.0]))
    assert torch.allclose(
        out.loss, ((out.logits.squeeze(-1) - torch.tensor([0.5, 1.0, 2.0, 3.0])) ** 2).mean()
    )
    classifier = MetroForSequenceClassification(tiny_config(num_labels=3))
    out = classifier(ids, labels=torch.tensor([0, 1, 2, 1]))
    assert torch.allclose(out.loss, torch.nn.functional.cross_entropy(out.logits, torch.tensor([0, 1, 2, 1])))
    tagger = MetroForTokenClassification(tiny_config(num_labels=2))
    labels = torch.full((4, 24), -100)
    labels[:, 1] = 1
    out = tagger(ids, labels=labels)
    want = torch.nn.functional.cross_entropy(out.logits[:, 1], torch.ones(4, dtype=torch.long))
    assert torch.allclose(out.loss, want)


def test_works_inside_the_hugging_face_trainer(tmp_path, config: MetroConfig) -> None:
    from transformers import Trainer, TrainingArguments

    class Texts(torch.utils.data.Dataset):
        def __init__(self) -> None:
            self.ids = clean_ids(16, 24, seed=3)

        def __len__(self) -> int:
            return len(self.ids)

        def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
            return {"input_ids": self.ids[i]}

    torch.manual_seed(0)
    model = MetroForPreTraining(config)
    args = TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=8, max_steps=4,
                             learning_rate=1e-3, use_cpu=True, report_to=[], save_strategy="no",
                             logging_steps=1, disable_tqdm=True)  # fmt: skip
    before = model.rtd_head.out.weight.detach().clone()
    result = Trainer(model=model, args=args, train_dataset=Texts()).train()
    assert math.isfinite(result.training_loss)
    assert not torch.equal(before, model.rtd_head.out.weight)


@pytest.mark.parametrize("objective", ["metro", "electra"])
def test_masked_lm_is_the_generator_of_a_pretraining_checkpoint(tmp_path, objective: str) -> None:
    torch.manual_seed(2)
    model = MetroForPreTraining(tiny_config(objective=objective, generator_layers=1)).eval()
    model.save_pretrained(tmp_path)
    generator, info = AutoModelForMaskedLM.from_pretrained(tmp_path, output_loading_info=True)
    assert isinstance(generator, MetroForMaskedLM)
    assert not info["missing_keys"]
    assert not info["unexpected_keys"]
    ids = clean_ids(pad_last=5)
    masked_positions = torch.zeros_like(ids, dtype=torch.bool)
    masked_positions[:, [3, 8, 11]] = True
    masked = ids.masked_fill(masked_positions, 4)
    attention = (ids != 0).long()
    want = model._generator_logits(masked, attention, None, masked_positions)
    got = generator.eval()(masked).logits
    assert got.shape == (4, 24, 200)
    assert torch.allclose(got[masked_positions], want, atol=1e-6)
    # Saved alone it keeps the shared embeddings and the generator, not the main encoder or its heads.
    generator.save_pretrained(tmp_path / "generator")
    shapes = weight_shapes(tmp_path / "generator")
    assert not [n for n in shapes if n.startswith(("metro.encoder.", "rtd_head.", "lm_head."))]
    assert [n for n, shape in shapes.items() if shape == (200, 32)] == [
        "metro.embeddings.word_embeddings.weight"
    ]
    again = AutoModelForMaskedLM.from_pretrained(tmp_path / "generator").eval()
    assert torch.equal(again(masked).logits, got)


def test_masked_lm_of_an_mlm_checkpoint_is_the_main_model_and_its_head(tmp_path) -> None:
    torch.manual_seed(3)
    model = MetroForPreTraining(tiny_config(objective="mlm")).eval()
    model.save_pretrained(tmp_path)
    predictor = MetroForMaskedLM.from_pretrained(tmp_path).eval()
    ids = clean_ids()
    hidden = model.metro(ids).last_hidden_state
    want = model.lm_head(hidden, model.metro.embeddings.word_embeddings.weight)
    assert torch.allclose(predictor(ids).logits, want, atol=1e-6)


def test_masked_lm_loss_averages_over_labelled_positions_only(config: MetroConfig) -> None:
    predictor = MetroForMaskedLM(config).eval()
    ids = clean_ids()
    labels = torch.full_like(ids, -100)
    labels[:, 5] = ids[:, 5]
    out = predictor(ids.masked_fill(labels != -100, 4), labels=labels)
    want = torch.nn.functional.cross_entropy(out.logits[:, 5], ids[:, 5])
    assert torch.allclose(out.loss, want)
