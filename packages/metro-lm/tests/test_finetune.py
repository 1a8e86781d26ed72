"""Fine-tuning: GLUE metrics, reading GLUE-format folders (and naming what is wrong), training, predicting."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from metro_lm import MetroForPreTraining, MetroForSequenceClassification, MetroPreTrainedModel
from metro_lm.finetune import (
    TASKS,
    FinetuneConfig,
    TaskData,
    average_ranks,
    encode,
    finetune,
    label_names,
    metrics,
    predict,
    read_task,
    read_test,
)
from metro_lm.pipeline import model_config
from metro_lm.tokenizer import load_tokenizer, train_tokenizer
from papers_common import InputError

WORDS = ["the", "a", "big", "small", "old", "cat", "dog", "bird", "tree", "house", "runs", "sits", "sees", "near",
         "on", "green", "blue", "red", "mat", "quick"]  # fmt: skip
TINY = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64,
        "generator_layers": 1}  # fmt: skip
FAST = {"batch_size": 16, "lr": 1e-3, "max_length": 24, "eval_batch_size": 64}


def sentences(count: int, *, seed: int, without: tuple[str, ...] = ()) -> list[list[str]]:
    rng = random.Random(seed)
    pool = [w for w in WORDS if w not in without]
    return [rng.choices(pool, k=rng.randint(4, 8)) for _ in range(count)]


def red_task(count: int, *, seed: int) -> TaskData:
    """Label ``"has-red"`` when the sentence holds the word "red", else ``"no-red"``; half of each."""
    rng = random.Random(seed)
    texts, labels = [], []
    for i, words in enumerate(sentences(count, seed=seed, without=("red",))):
        if i % 2:
            words.insert(rng.randrange(len(words) + 1), "red")
        texts.append(" ".join(words))
        labels.append("has-red" if i % 2 else "no-red")
    return TaskData(texts, None, labels)


def blue_task(count: int, *, seed: int) -> TaskData:
    """A sentence pair whose target is how often "blue" occurs in the second sentence (0 to 3)."""
    rng = random.Random(seed)
    first = sentences(count, seed=seed + 1)
    second, targets = [], []
    for words in sentences(count, seed=seed, without=("blue",)):
        blues = rng.randint(0, 3)
        for _ in range(blues):
            words.insert(rng.randrange(len(words) + 1), "blue")
        second.append(" ".join(words))
        targets.append(float(blues))
    return TaskData([" ".join(w) for w in first], second, targets)


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory):
    corpus = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    corpus.write_text("\n".join(" ".join(w) for w in sentences(400, seed=1)) + "\n", encoding="utf-8")
    return train_tokenizer([corpus], vocab_size=300, kind="wordpiece", model_max_length=64)


def pretrained_model(tokenizer, objective: str = "metro", **overrides: object) -> MetroForPreTraining:
    """A tiny model drawn from a seed no fine-tuning here uses, so that no backbone equals it by coincidence."""
    torch.manual_seed(1234)
    return MetroForPreTraining(model_config("tiny", objective, tokenizer, 64, {**TINY, **overrides}))


@pytest.fixture(scope="module")
def pretrained(tokenizer, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, MetroForPreTraining]:
    """A folder laid out as pretraining leaves ``run/model``: the MetroForPreTraining and its tokenizer."""
    folder = tmp_path_factory.mktemp("pretrained") / "model"
    model = pretrained_model(tokenizer)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(str(folder))
    return folder, model


def write_tsv(path: Path, rows: list[list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join("\t".join(row) + "\n" for row in rows), encoding="utf-8")


# --- metrics -------------------------------------------------------------------------------------------------


def test_accuracy_and_f1_of_class_1():
    labels = np.array([1, 1, 1, 0, 0, 0, 0, 1])
    predictions = np.array([1, 1, 0, 1, 1, 0, 0, 1])  # TP 3, FN 1, FP 2, TN 2
    found = metrics(("accuracy", "f1"), predictions, labels)
    assert found["accuracy"] == pytest.approx(5 / 8)
    assert found["f1"] == pytest.approx(2 * 3 / (2 * 3 + 2 + 1))
    assert metrics(("f1",), np.zeros(4), np.zeros(4))["f1"] == 0.0


def test_matthews_of_binary_and_three_class_confusion_matrices():
    binary = metrics(("matthews",), np.array([1, 0, 1, 0, 0, 1, 0, 1]), np.array([1, 1, 1, 0, 0, 0, 0, 1]))
    assert binary["matthews"] == pytest.approx((3 * 3 - 1 * 1) / np.sqrt(4 * 4 * 4 * 4))
    # rows: true class, columns: predicted class; c = 7, s = 10, t = p = (4, 3, 3): (70 − 34) / (100 − 34)
    confusion = np.array([[3, 1, 0], [0, 2, 1], [1, 0, 2]])
    labels, predictions = np.nonzero(confusion)
    counts = confusion[labels, predictions]
    labels, predictions = np.repeat(labels, counts), np.repeat(predictions, counts)
    assert metrics(("matthews",), predictions, labels)["matthews"] == pytest.approx(36 / 66)
    assert metrics(("matthews",), np.ones(5, dtype=int), np.array([0, 1, 0, 1, 1]))["matthews"] == 0.0


def test_pearson_and_spearman_with_ties():
    x = np.array([0.3, 1.7, 2.2, 0.9, 5.0, 3.1])
    y = np.array([0.1, 2.0, 1.9, 1.2, 4.2, 2.5])
    assert metrics(("pearson",), x, y)["pearson"] == pytest.approx(np.corrcoef(x, y)[0, 1])
    np.testing.assert_allclose(average_ranks(np.array([3.0, 1.0, 2.0, 2.0])), [4, 1, 2.5, 2.5])
    # ranks (1, 2.5, 2.5, 4) against (1, 3, 2, 4): Σdxdy = 4.5, Σdx² = 4.5, Σdy² = 5
    rho = metrics(("spearman",), np.array([1.0, 2.0, 2.0, 3.0]), np.array([1.0, 3.0, 2.0, 4.0]))["spearman"]
    assert rho == pytest.approx(4.5 / np.sqrt(4.5 * 5))
    with pytest.raises(InputError, match="unknown metric"):
        metrics(("bleu",), x, y)


@pytest.mark.parametrize("seed", range(5))
def test_metrics_equal_scikit_learn_and_scipy_on_random_inputs(seed):
    from scipy.stats import pearsonr, spearmanr
    from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

    rng = np.random.default_rng(seed)
    classes = 2 + seed % 3
    labels, predictions = rng.integers(0, classes, 200), rng.integers(0, classes, 200)
    found = metrics(("accuracy", "matthews"), predictions, labels)
    assert found["accuracy"] == pytest.approx(accuracy_score(labels, predictions))
    assert found["matthews"] == pytest.approx(matthews_corrcoef(labels, predictions))
    binary = labels % 2, predictions % 2
    assert metrics(("f1",), binary[1], binary[0])["f1"] == pytest.approx(f1_score(binary[0], binary[1]))
    x = rng.normal(size=150)
    y = x + rng.normal(size=150)
    y_tied, x_tied = np.round(y), np.round(x * 2) / 2  # many ties, as in STS-B's 0-5 scores
    found = metrics(("pearson", "spearman"), x, y)
    assert found["pearson"] == pytest.approx(pearsonr(x, y)[0])
    assert found["spearman"] == pytest.approx(spearmanr(x, y)[0])
    tied = metrics(("spearman",), x_tied, y_tied)["spearman"]
    assert tied == pytest.approx(spearmanr(x_tied, y_tied)[0])


# --- reading tasks -------------------------------------------------------------------------------------------


def test_headerless_cola_folder(tmp_path):
    rows = [["gj04", "1", "", "Our friends won't buy this analysis."], ["gj04", "0", "*", "They drank the pub."],
            ["cj99", "1", "", "The sailors rode the breeze clear of the rocks."]]  # fmt: skip
    write_tsv(tmp_path / "CoLA" / "train.tsv", rows)
    write_tsv(tmp_path / "CoLA" / "dev.tsv", rows[:2])
    fmt, train, dev = read_task(tmp_path / "CoLA")
    assert fmt is TASKS["cola"]
    assert fmt.metrics == ("matthews",)
    assert train.texts_a == [r[3] for r in rows]
    assert train.texts_b is None
    assert train.labels == ["1", "0", "1"]
    assert len(dev) == 2


def test_sst2_folder_with_header(tmp_path):
    write_tsv(
        tmp_path / "SST-2" / "train.tsv", [["sentence", "label"], ["a gorgeous film ", "1"], ["dull", "0"]]
    )
    write_tsv(tmp_path / "SST-2" / "dev.tsv", [["sentence", "label"], ["it 's a charming journey .", "1"]])
    fmt, train, dev = read_task(tmp_path / "SST-2")
    assert fmt.name == "sst-2"
    assert train.texts_a == ["a gorgeous film ", "dull"]
    assert train.labels == ["1", "0"]
    assert dev.texts_a == ["it 's a charming journey ."]


def test_mrpc_pairs(tmp_path):
    header = ["Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"]
    rows = [header, ["1", "702876", "702977", "Amrozi accused his brother .", "Referring to him , Amrozi ..."],
            ["0", "2108705", "2108831", "Yucaipa owned Dominick 's .", "Yucaipa bought Dominick 's ."]]  # fmt: skip
    write_tsv(tmp_path / "MRPC" / "train.tsv", rows)
    write_tsv(tmp_path / "MRPC" / "dev.tsv", rows)
    fmt, train, _ = read_task(tmp_path / "MRPC")
    assert fmt.metrics == ("accuracy", "f1")
    assert train.texts_a == ["Amrozi accused his brother .", "Yucaipa owned Dominick 's ."]
    assert train.texts_b == ["Referring to him , Amrozi ...", "Yucaipa bought Dominick 's ."]
    assert train.labels == ["1", "0"]


def test_stsb_is_regression(tmp_path):
    header = ["index", "genre", "filename", "year", "old_index", "source1", "source2", "sentence1", "sentence2",
              "score"]  # fmt: skip
    rows = [header, ["0", "main-captions", "MSRvid", "2012test", "0001", "none", "none", "A plane is taking off.",
                     "An air plane is taking off.", "5.000"],
            ["1", "main-captions", "MSRvid", "2012test", "0004", "none", "none", "A man is playing a flute.",
             "A man is playing a flute.", "3.800"]]  # fmt: skip
    write_tsv(tmp_path / "STS-B" / "train.tsv", rows)
    write_tsv(tmp_path / "STS-B" / "dev.tsv", rows)
    fmt, train, _ = read_task(tmp_path / "STS-B")
    assert fmt.regression
    assert fmt.metrics == ("pearson", "spearman")
    assert train.labels == [5.0, 3.8]
    assert train.texts_b == ["An air plane is taking off.", "A man is playing a flute."]


def test_mnli_reads_dev_matched_and_keeps_label_strings(tmp_path):
    train_header = ["index", "promptID", "pairID", "genre", "sentence1_binary_parse", "sentence2_binary_parse",
                    "sentence1_parse", "sentence2_parse", "sentence1", "sentence2", "label1", "gold_label"]  # fmt: skip
    dev_header = [*train_header[:-1], "label2", "label3", "label4", "label5", "gold_label"]
    parse = ["( x )", "( y )", "(ROOT x)", "(ROOT y)"]
    labels = ["neutral", "entailment", "contradiction"]
    write_tsv(tmp_path / "MNLI" / "train.tsv",
              [train_header, *([str(i), "1", "1n", "gov", *parse, f"premise {i}", f"hyp {i}", lab, lab]
                               for i, lab in enumerate(labels))])  # fmt: skip
    write_tsv(tmp_path / "MNLI" / "dev_matched.tsv",
              [dev_header, ["0", "2", "2e", "fiction", *parse, "The new rights.", "Everyone loves them.", "neutral",
                            "neutral", "neutral", "neutral", "entailment", "entailment"]])  # fmt: skip
    fmt, train, dev = read_task(tmp_path / "MNLI")
    assert fmt.dev_file == "dev_matched.tsv"
    assert train.labels == labels
    assert train.texts_a[0] == "premise 0"
    assert dev.labels == ["entailment"]
    assert dev.texts_b == ["Everyone loves them."]


def test_task_inferred_from_folder_name_or_given(tmp_path):
    for name in ("sst2", "my-sentiment"):
        write_tsv(tmp_path / name / "train.tsv", [["sentence", "label"], ["fine", "pos"], ["bad", "neg"]])
        write_tsv(tmp_path / name / "dev.tsv", [["sentence", "label"], ["good", "pos"]])
    assert read_task(tmp_path / "sst2")[0].name == "sst-2"
    assert read_task(tmp_path / "my-sentiment")[0].name == "generic"
    pairs = [["sentence1", "sentence2", "label"], ["a b", "c", "0.5"], ["d", "e f", "2"]]
    write_tsv(tmp_path / "pairs" / "train.tsv", pairs)
    write_tsv(tmp_path / "pairs" / "dev.tsv", pairs)
    fmt, train, _ = read_task(tmp_path / "pairs")
    assert (fmt.name, fmt.text_a, fmt.text_b, fmt.regression) == ("generic", "sentence1", "sentence2", False)
    assert train.texts_b == ["c", "e f"]
    assert train.labels == ["0.5", "2"]
    fmt, train, _ = read_task(tmp_path / "pairs", regression=True)
    assert (fmt.regression, fmt.metrics, train.labels) == (True, ("pearson", "spearman"), [0.5, 2.0])
    assert read_task(tmp_path / "my-sentiment", "SST_2")[0].name == "sst-2"
    with pytest.raises(InputError, match="unknown task 'glue'"):
        read_task(tmp_path / "sst2", "glue")


def test_task_data_needs_as_many_texts_as_labels():
    with pytest.raises(InputError, match="as many texts as labels"):
        TaskData(["a", "b"], None, ["x"])
    with pytest.raises(InputError, match="as many texts as labels"):
        TaskData(["a", "b"], ["c"], ["x", "y"])


def test_label_ids_follow_sorted_order_numeric_when_numbers():
    assert label_names(["10", "2", "1", "2"]) == ["1", "2", "10"]
    assert label_names(["neutral", "entailment", "contradiction"]) == ["contradiction", "entailment", "neutral"]  # fmt: skip


# --- bad input -----------------------------------------------------------------------------------------------


def sst2(tmp_path: Path, dev_rows: list[list[str]], *, name: str = "SST-2") -> Path:
    folder = tmp_path / name
    write_tsv(folder / "train.tsv", [["sentence", "label"], ["good", "1"], ["bad", "0"]])
    write_tsv(folder / "dev.tsv", dev_rows)
    return folder


def test_row_with_too_few_columns_names_file_and_line(tmp_path):
    folder = sst2(tmp_path, [["sentence", "label"], ["fine", "1"], ["no label here"]])
    with pytest.raises(InputError, match=r"dev\.tsv:3: expected 2 columns, found 1"):
        read_task(folder)


def test_header_without_the_label_column_is_named(tmp_path):
    folder = sst2(tmp_path, [["sentence", "polarity"], ["fine", "1"]])
    with pytest.raises(
        InputError, match=r"dev\.tsv:1: expected a 'label' column in the header; found 'sentence'"
    ):
        read_task(folder)


def test_empty_label_and_empty_split(tmp_path):
    with pytest.raises(InputError, match=r"dev\.tsv:2: empty label in column 'label'"):
        read_task(sst2(tmp_path, [["sentence", "label"], ["fine", " "]]))
    with pytest.raises(InputError, match=r"dev\.tsv: no examples"):
        read_task(sst2(tmp_path, [["sentence", "label"]], name="sst-2b"), "sst-2")


def test_non_utf8_file_is_named(tmp_path):
    folder = sst2(tmp_path, [["sentence", "label"], ["fine", "1"]])
    (folder / "train.tsv").write_bytes("sentence\tlabel\ncaf\xe9\t1\n".encode("latin-1"))
    with pytest.raises(InputError, match=r"train\.tsv:2: not UTF-8"):
        read_task(folder)


def test_dev_label_unseen_in_train(tmp_path):
    folder = sst2(tmp_path, [["sentence", "label"], ["fine", "1"], ["meh", "2"]])
    with pytest.raises(
        InputError, match=r"dev\.tsv:3: label '2' does not occur in train\.tsv \(its labels: '0', '1'\)"
    ):
        read_task(folder)


def test_regression_label_must_be_a_number(tmp_path):
    header = ["sentence1", "sentence2", "score"]
    write_tsv(tmp_path / "STS-B" / "train.tsv", [header, ["a", "b", "1.5"]])
    write_tsv(tmp_path / "STS-B" / "dev.tsv", [header, ["a", "b", "2"], ["c", "d", "high"]])
    with pytest.raises(InputError, match=r"dev\.tsv:3: expected a number in column 'score', found 'high'"):
        read_task(tmp_path / "STS-B")


def test_missing_file_lists_what_the_folder_holds(tmp_path):
    write_tsv(
        tmp_path / "MNLI" / "train.tsv", [["sentence1", "sentence2", "gold_label"], ["a", "b", "neutral"]]
    )
    write_tsv(tmp_path / "MNLI" / "dev_mismatched.tsv", [["sentence1", "sentence2", "gold_label"]])
    with pytest.raises(
        InputError, match=r"dev_matched\.tsv: no such file; .* holds dev_mismatched\.tsv, train\.tsv"
    ):
        read_task(tmp_path / "MNLI")
    with pytest.raises(InputError, match="no such task folder"):
        read_task(tmp_path / "absent")


# --- encoding and settings -----------------------------------------------------------------------------------


def test_batches_are_padded_to_their_own_longest_example(tokenizer):
    first, second = ["the cat", "a big old dog sits on the mat", "red"], ["sees", "the tree", "a b c"]
    encoded = encode(tokenizer, first, second, max_length=8)
    expected = tokenizer(first, second, truncation=True, max_length=8)
    assert encoded.lengths.tolist() == [len(ids) for ids in expected["input_ids"]]
    assert max(encoded.lengths) == 8
    batch = encoded.batch(torch.tensor([2, 0]), pad_id=0)
    width = max(len(expected["input_ids"][i]) for i in (0, 2))
    assert batch["input_ids"].shape == (2, width)
    for row, i in enumerate((2, 0)):
        n = len(expected["input_ids"][i])
        assert batch["input_ids"][row, :n].tolist() == expected["input_ids"][i]
        assert batch["token_type_ids"][row, :n].tolist() == expected["token_type_ids"][i]
        assert batch["attention_mask"][row].tolist() == [1] * n + [0] * (width - n)
        assert batch["input_ids"][row, n:].eq(0).all()


@pytest.mark.parametrize(
    ("field", "value"),
    [("epochs", -1.0), ("batch_size", 0), ("lr", 0.0), ("warmup_fraction", 1.0), ("max_length", 2),
     ("clip_norm", -0.5), ("seed", -1)],
)  # fmt: skip
def test_bad_settings_are_named(field, value):
    with pytest.raises(InputError, match=rf"^{field} must"):
        FinetuneConfig(**{field: value}).check()


# --- fine-tuning ---------------------------------------------------------------------------------------------


def test_finetune_learns_a_word_detector_and_predict_agrees(pretrained, tmp_path):
    folder, _ = pretrained
    train, dev = red_task(320, seed=0), red_task(100, seed=1)
    fmt = TASKS["sst-2"]
    result = finetune(folder, None, train, dev, fmt, FinetuneConfig(epochs=8, **FAST), out=tmp_path / "run")
    assert result.label_names == ["has-red", "no-red"]
    assert result.metrics["accuracy"] >= 0.9, result.history
    assert [r["epoch"] for r in result.history] == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    best = max(r["dev_accuracy"] for r in result.history)
    assert result.metrics["accuracy"] == best
    assert result.kept_epoch == next(r["epoch"] for r in result.history if r["dev_accuracy"] == best)

    saved = predict(tmp_path / "run" / "model", dev.texts_a)
    assert set(saved) <= {"has-red", "no-red"}
    assert saved == predict(result.model, dev.texts_a, tokenizer=load_tokenizer(tmp_path / "run" / "model"))
    assert np.mean([p == y for p, y in zip(saved, dev.labels, strict=True)]) == pytest.approx(result.metrics["accuracy"])  # fmt: skip

    report = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert report["task"] == "sst-2"
    assert report["metrics"] == result.metrics
    assert report["kept_epoch"] == result.kept_epoch
    assert report["config"]["epochs"] == 8
    resolved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert (resolved["train_examples"], resolved["dev_examples"], resolved["task"]) == (320, 100, "sst-2")
    assert resolved["finetune"]["lr"] == FAST["lr"]


def test_regression_on_pairs_from_an_in_memory_model(tokenizer):
    model = pretrained_model(tokenizer, hidden_dropout_prob=0.0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    train, dev = blue_task(320, seed=0), blue_task(100, seed=1)
    result = finetune(model, tokenizer, train, dev, TASKS["sts-b"], FinetuneConfig(epochs=8, **FAST))
    assert result.label_names is None
    assert result.metrics["pearson"] > 0.5, result.history
    assert result.history[-1]["train_loss"] < 0.5 * result.history[0]["train_loss"]
    values = predict(result.model, dev.texts_a, dev.texts_b, tokenizer=tokenizer)
    assert all(isinstance(v, float) for v in values)
    assert np.corrcoef(values, dev.labels)[0, 1] == pytest.approx(result.metrics["pearson"], abs=1e-4)
    # the source model is left untouched, the fine-tuned copy has moved away from it
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    assert not torch.equal(result.model.metro.embeddings.word_embeddings.weight,
                           model.metro.embeddings.word_embeddings.weight)  # fmt: skip


def backbone_equal(classifier: MetroForSequenceClassification, model: MetroPreTrainedModel) -> bool:
    ours, theirs = classifier.metro.state_dict(), model.metro.state_dict()
    return ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)


def test_backbone_takes_the_pretrained_weights_from_a_folder(pretrained):
    folder, model = pretrained
    data = red_task(8, seed=2)
    result = finetune(folder, None, data, data, TASKS["sst-2"], FinetuneConfig(epochs=0, max_length=24))
    assert backbone_equal(result.model, model)
    assert result.history == []
    assert set(result.metrics) == {"accuracy"}


@pytest.mark.parametrize("objective", ["mlm", "electra", "metro"])
def test_backbone_takes_the_weights_of_an_in_memory_model_of_each_objective(tokenizer, objective):
    model = pretrained_model(tokenizer, objective)
    data = red_task(8, seed=2)
    result = finetune(model, tokenizer, data, None, TASKS["sst-2"], FinetuneConfig(epochs=0, max_length=24))
    assert backbone_equal(result.model, model)
    assert result.model.config.id2label == {0: "has-red", 1: "no-red"}
    assert result.metrics == {}


def test_an_earlier_finetune_can_be_finetuned_again_with_other_labels(pretrained, tmp_path):
    folder, _ = pretrained
    binary = red_task(8, seed=2)
    first = finetune(
        folder, None, binary, None, TASKS["sst-2"], FinetuneConfig(epochs=0), out=tmp_path / "first"
    )
    three = TaskData(binary.texts_a, None, ["a", "b", "c", "a", "b", "c", "a", "b"])
    second = finetune(
        tmp_path / "first" / "model", None, three, None, TASKS["mnli"], FinetuneConfig(epochs=0)
    )
    assert second.model.classifier.weight.shape == (3, 32)
    assert second.model.config.id2label == {0: "a", 1: "b", 2: "c"}
    assert backbone_equal(second.model, first.model)


def test_a_fractional_epoch_ends_part_way_through_the_last_pass(tokenizer):
    data = red_task(32, seed=3)  # 2 steps per epoch of 16
    config = FinetuneConfig(epochs=1.5, batch_size=16, max_length=24)
    result = finetune(pretrained_model(tokenizer), tokenizer, data, data, TASKS["sst-2"], config)
    assert [(r["epoch"], r["step"]) for r in result.history] == [(1.0, 2), (1.5, 3)]
    assert all("dev_accuracy" in r for r in result.history)


def test_head_initialisation_follows_the_seed(pretrained):
    folder, _ = pretrained
    data = red_task(8, seed=2)
    heads = [finetune(folder, None, data, None, TASKS["sst-2"], FinetuneConfig(epochs=0, seed=s)).model.classifier.weight
             for s in (3, 3, 4)]  # fmt: skip
    assert torch.equal(heads[0], heads[1])
    assert not torch.equal(heads[0], heads[2])


def test_tokenizer_must_match_the_model_vocabulary(tokenizer, pretrained, tmp_path):
    data = red_task(8, seed=2)
    model = pretrained_model(tokenizer, vocab_size=len(tokenizer) + 7)
    with pytest.raises(
        InputError, match=rf"tokenizer's vocabulary has {len(tokenizer)} tokens but the model's has"
    ):
        finetune(model, tokenizer, data, None, TASKS["sst-2"])
    corpus = tmp_path / "other.txt"
    corpus.write_text("\n".join(f"other words number {i} here" for i in range(50)), encoding="utf-8")
    other = train_tokenizer([corpus], vocab_size=280, kind="bpe")
    assert len(other) != len(tokenizer)
    with pytest.raises(InputError, match="vocabulary"):
        finetune(pretrained[0], other, data, None, TASKS["sst-2"])
    with pytest.raises(InputError, match="max_length 600 is beyond the model's max_position_embeddings 512"):
        finetune(pretrained[0], None, data, None, TASKS["sst-2"], FinetuneConfig(max_length=600))


def test_unseen_dev_label_and_non_metro_folders_are_refused(pretrained, tmp_path):
    folder, _ = pretrained
    train = red_task(8, seed=2)
    dev = TaskData(["red cat"], None, ["maybe"])
    with pytest.raises(InputError, match=r"dev label\(s\) 'maybe' do not occur in the training labels"):
        finetune(folder, None, train, dev, TASKS["sst-2"])
    with pytest.raises(InputError, match="at least 2 labels"):
        finetune(folder, None, TaskData(["red", "cat"], None, ["x", "x"]), None, TASKS["sst-2"])
    with pytest.raises(InputError, match="dev split has no examples"):
        finetune(folder, None, train, TaskData([], None, []), TASKS["sst-2"])
    (tmp_path / "bert").mkdir()
    (tmp_path / "bert" / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(InputError, match="model_type is 'bert', expected 'metro'"):
        finetune(tmp_path / "bert", None, train, None, TASKS["sst-2"])
    with pytest.raises(InputError, match="not a fine-tuned model"):
        predict(folder, ["red cat"])


def test_the_epoch_with_the_best_dev_score_is_kept_unless_told_last(pretrained, monkeypatch):
    import copy
    import importlib

    module = importlib.import_module("metro_lm.finetune")  # the package's name `finetune` is the function
    folder, _ = pretrained
    scores = iter([0.5, 0.9, 0.7] * 2)
    snapshots: list[dict[str, torch.Tensor]] = []
    real_logits = module._logits

    def snapshot_logits(classifier, *args, **kwargs):
        snapshots.append(copy.deepcopy(classifier.state_dict()))
        return real_logits(classifier, *args, **kwargs)

    monkeypatch.setattr(module, "_logits", snapshot_logits)
    monkeypatch.setattr(module, "metrics", lambda names, predictions, labels: {"accuracy": next(scores)})
    train, dev = red_task(32, seed=0), red_task(16, seed=1)
    best = finetune(folder, None, train, dev, TASKS["sst-2"], FinetuneConfig(epochs=3, **FAST))
    assert (best.kept_epoch, best.metrics) == (2.0, {"accuracy": 0.9})
    kept = best.model.state_dict()
    assert all(torch.equal(kept[name], value) for name, value in snapshots[1].items())
    assert not all(torch.equal(kept[name], value) for name, value in snapshots[2].items())
    last = finetune(folder, None, train, dev, TASKS["sst-2"], FinetuneConfig(epochs=3, keep="last", **FAST))
    assert (last.kept_epoch, last.metrics) == (3.0, {"accuracy": 0.7})


def test_a_task_file_names_the_columns_and_the_scoring(tmp_path):
    folder = tmp_path / "reviews"
    for name, count in (("train.tsv", 6), ("dev.tsv", 3)):
        write_tsv(folder / name, [["stars", "review"]] + [[str(i % 5), f"text {i}"] for i in range(count)])
    (folder / "task.json").write_text(json.dumps({"text_a": "review", "label": "stars", "regression": True}))
    fmt, train, dev = read_task(folder)
    assert (fmt.regression, fmt.metrics, fmt.text_a) == (True, ("pearson", "spearman"), "review")
    assert train.texts_a[1] == "text 1"
    assert dev.labels == [0.0, 1.0, 2.0]
    headerless = tmp_path / "headerless"
    for name in ("train.tsv", "dev.tsv"):
        write_tsv(headerless / name, [["x", "a b c", "pos"], ["y", "d e", "neg"]])
    (headerless / "task.json").write_text(json.dumps({"header": False, "text_a": 1, "label": 2,
                                                      "metrics": ["accuracy", "matthews"]}))  # fmt: skip
    fmt, train, _ = read_task(headerless)
    assert (train.texts_a, train.labels, fmt.metrics) == (
        ["a b c", "d e"],
        ["pos", "neg"],
        ("accuracy", "matthews"),
    )


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"text_a": "review", "colour": "red"}, "unknown key.*colour"),
        ({"text_a": 1, "label": "stars"}, "'text_a' must be a header name"),
        ({"header": False, "text_a": "review", "label": 0}, "'text_a' must be a 0-based column index"),
        ({"header": False, "label": 0}, "needs 'text_a' and 'label'"),
        ({"metrics": ["bleu"]}, "'metrics' must be a non-empty list"),
        ({"regression": "yes"}, "'regression' must be true or false"),
    ],
)
def test_a_bad_task_file_is_named_with_its_key(tmp_path, settings, message):
    (tmp_path / "task.json").write_text(json.dumps(settings))
    with pytest.raises(InputError, match=message):
        read_task(tmp_path)


def test_test_split_ids_and_texts_follow_the_glue_layout(tmp_path):
    write_tsv(tmp_path / "CoLA" / "test.tsv", [["index", "sentence"], ["0", "a b"], ["1", "c d e"]])
    ids, texts_a, texts_b = read_test(tmp_path / "CoLA", TASKS["cola"])
    assert (ids, texts_a, texts_b) == (["0", "1"], ["a b", "c d e"], None)
    write_tsv(tmp_path / "QQP" / "test.tsv", [["id", "question1", "question2"], ["7", "q", "r"]])
    assert read_test(tmp_path / "QQP", TASKS["qqp"]) == (["7"], ["q"], ["r"])
    assert read_test(tmp_path / "none", TASKS["sst-2"]) is None
    write_tsv(tmp_path / "bad" / "test.tsv", [["index", "text"], ["0", "a"]])
    with pytest.raises(InputError, match=r"test\.tsv:1: expected a 'sentence' column"):
        read_test(tmp_path / "bad", TASKS["sst-2"])


def test_the_command_writes_predictions_for_the_test_file(pretrained, tmp_path, capsys):
    from metro_lm.cli import app

    folder, _ = pretrained
    task = tmp_path / "SST-2"
    for name, data in (("train.tsv", red_task(64, seed=0)), ("dev.tsv", red_task(16, seed=1))):
        write_tsv(task / name, [["sentence", "label"]] + [[t, y] for t, y in zip(data.texts_a, data.labels, strict=True)])  # fmt: skip
    test = red_task(5, seed=2)
    write_tsv(
        task / "test.tsv", [["index", "sentence"]] + [[str(10 + i), t] for i, t in enumerate(test.texts_a)]
    )
    status = app.main(["finetune", "--model", str(folder), "--task-dir", str(task), "--epochs", "1",
                       "--batch-size", "16", "--max-length", "24", "--out", str(tmp_path / "run")])  # fmt: skip
    out = capsys.readouterr()
    assert status == 0, out.err
    lines = (tmp_path / "run" / "test_predictions.tsv").read_text().splitlines()
    assert lines[0] == "index\tprediction"
    assert [line.split("\t")[0] for line in lines[1:]] == ["10", "11", "12", "13", "14"]
    assert {line.split("\t")[1] for line in lines[1:]} <= {"has-red", "no-red"}
    assert json.loads(out.out.strip().splitlines()[-1])["test_predictions"].endswith("test_predictions.tsv")
