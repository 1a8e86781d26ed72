"""Fine-tuning a pretrained METRO model on a GLUE-format sentence(-pair) task, and predicting with the result.

The flow is ``read_task → finetune → predict``:

- :func:`read_task` reads the ``train`` and ``dev`` TSV files of one task folder laid out as in the GLUE
  distribution (:data:`TASKS`: tab-separated, no quoting, a header row except for CoLA), or a ``generic`` folder
  whose header names ``sentence`` (or ``sentence1`` and ``sentence2``) and ``label``;
- :func:`finetune` puts a fresh [CLS] classification (or regression) head on the main model of a pretraining
  checkpoint (the generator and pretraining heads are dropped), trains the whole network with AdamW, linear
  warm-up and linear decay, and evaluates the task's :func:`metrics` on ``dev`` after every epoch;
- :func:`predict` labels new texts with a fine-tuned model, in the label strings of the training file.

Shapes: N examples, B batch, L the longest sequence of a batch, C classes (1 for regression).
"""

from __future__ import annotations

import copy
import csv
import io
import itertools
import logging
import math
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch

from metro_lm.model_files import check_weights, model_folder
from metro_lm.modeling import MetroForSequenceClassification, MetroModel, MetroPreTrainedModel
from metro_lm.tokenizer import load_tokenizer
from metro_lm.train import TrainConfig, learning_rate_factor, make_optimizer
from papers_common import InputError, progress, read_json, write_json

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

LOGGER = logging.getLogger(__name__)
Column = str | int
"""A TSV column: its header name, or its 0-based index in a file without a header."""
REGRESSION_METRICS = ("pearson", "spearman")
CLASSIFICATION_METRICS = ("accuracy",)


@dataclass
class TaskData:
    """One split of a task, ``N`` examples.

    Attributes:
        texts_a: the first (or only) sentence of each example.
        texts_b: the second sentence of each example; ``None`` for single-sentence tasks.
        labels: label strings for classification, floats for regression.
    """

    texts_a: list[str]
    texts_b: list[str] | None
    labels: list[str] | list[float]

    def __post_init__(self) -> None:
        counts = {"texts_a": len(self.texts_a), "labels": len(self.labels)}
        if self.texts_b is not None:
            counts["texts_b"] = len(self.texts_b)
        if len(set(counts.values())) > 1:
            raise InputError(f"TaskData needs as many texts as labels; got {counts}")

    def __len__(self) -> int:
        return len(self.texts_a)


@dataclass(frozen=True)
class TaskFormat:
    """How the TSV files of one task are laid out and scored.

    Attributes:
        name: the task's key in :data:`TASKS`.
        text_a, text_b, label: the columns of the first sentence, the second (``None``: single-sentence task) and
            the label, by header name or, when ``header`` is false, by 0-based index.
        header: whether the first row of each file names the columns.
        regression: real-valued labels (STS-B) scored by correlation; otherwise classes.
        metrics: names of :data:`METRICS` reported on ``dev``.
        train_file, dev_file, test_file: file names inside the task folder (the test file is optional and
            unlabelled; it has a header row naming the text columns, as in GLUE).
    """

    name: str
    text_a: Column
    text_b: Column | None
    label: Column
    header: bool = True
    regression: bool = False
    metrics: tuple[str, ...] = CLASSIFICATION_METRICS
    train_file: str = "train.tsv"
    dev_file: str = "dev.tsv"
    test_file: str = "test.tsv"

    def test_columns(self) -> tuple[str, str | None]:
        """The header names of the text columns in the test file (GLUE's CoLA test has a header: ``sentence``)."""
        a = self.text_a if isinstance(self.text_a, str) else "sentence"
        b = None if self.text_b is None else self.text_b if isinstance(self.text_b, str) else "sentence2"
        return a, b


GENERIC = TaskFormat("generic", "sentence", None, "label")
"""A header row naming ``sentence`` (or ``sentence1`` and ``sentence2``) and ``label``; classification unless
:func:`read_task` is told ``regression=True``."""

TASKS: dict[str, TaskFormat] = {
    # CoLA has no header: source, label, original judgement, sentence.
    "cola": TaskFormat("cola", 3, None, 1, header=False, metrics=("matthews",)),
    "sst-2": TaskFormat("sst-2", "sentence", None, "label"),
    "mrpc": TaskFormat("mrpc", "#1 String", "#2 String", "Quality", metrics=("accuracy", "f1")),
    "sts-b": TaskFormat("sts-b", "sentence1", "sentence2", "score", regression=True, metrics=REGRESSION_METRICS),
    "qqp": TaskFormat("qqp", "question1", "question2", "is_duplicate", metrics=("accuracy", "f1")),
    "mnli": TaskFormat("mnli", "sentence1", "sentence2", "gold_label", dev_file="dev_matched.tsv",
                       test_file="test_matched.tsv"),
    "qnli": TaskFormat("qnli", "question", "sentence", "label"),
    "rte": TaskFormat("rte", "sentence1", "sentence2", "label"),
    "wnli": TaskFormat("wnli", "sentence1", "sentence2", "label"),
    "generic": GENERIC,
}  # fmt: skip
"""The GLUE tasks (Wang et al., 2019) as laid out in its distribution, plus ``generic``; keys are lower-case."""


def _canonical(name: str) -> str:
    """``"SST-2"``, ``"sst2"`` and ``"SST_2"`` all become ``"sst2"``."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


_TASK_KEYS = {_canonical(key): key for key in TASKS}


TASK_FILE = "task.json"
"""An optional file in a task folder naming its columns and scoring, e.g. ``{"text_a": "review", "label":
"stars", "regression": true}``; keys are :class:`TaskFormat`'s fields (``name`` excepted), missing ones default to
``generic``'s."""


def _task_file(path: Path) -> TaskFormat:
    settings = read_json(path, "task file")
    known = {f.name for f in fields(TaskFormat)} - {"name"}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise InputError(
            f"{path}: unknown key(s) {', '.join(unknown)}; expected some of {', '.join(sorted(known))}"
        )
    header = settings.get("header", True)
    if not isinstance(header, bool):
        raise InputError(f"{path}: 'header' must be true or false, got {header!r}")
    for key in ("text_a", "text_b", "label"):
        value = settings.get(key)
        if value is None and key != "text_b" and key in settings:
            raise InputError(f"{path}: '{key}' must name a column")
        if value is not None and not (
            isinstance(value, str) if header else isinstance(value, int) and value >= 0
        ):
            kind = "a header name (a string)" if header else "a 0-based column index (header is false)"
            raise InputError(f"{path}: '{key}' must be {kind}, got {value!r}")
    for key in ("train_file", "dev_file", "test_file"):
        if key in settings and not (isinstance(settings[key], str) and settings[key]):
            raise InputError(f"{path}: '{key}' must be a file name, got {settings[key]!r}")
    regression = settings.get("regression", False)
    if not isinstance(regression, bool):
        raise InputError(f"{path}: 'regression' must be true or false, got {regression!r}")
    scores = settings.get("metrics", list(REGRESSION_METRICS if regression else CLASSIFICATION_METRICS))
    if not (isinstance(scores, list) and scores and all(name in METRICS for name in scores)):
        raise InputError(
            f"{path}: 'metrics' must be a non-empty list of {', '.join(METRICS)}; got {scores!r}"
        )
    if header is False and not {"text_a", "label"} <= set(settings):
        raise InputError(f"{path}: a file without a header needs 'text_a' and 'label' column indices")
    return replace(GENERIC, name=f"task file {path.name}", **{**settings, "metrics": tuple(scores)})


def _task_format(folder: Path, task: str | None) -> TaskFormat:
    if task is None and (folder / TASK_FILE).is_file():
        return _task_file(folder / TASK_FILE)
    if task is None:
        return TASKS[_TASK_KEYS.get(_canonical(folder.resolve().name), "generic")]
    key = _TASK_KEYS.get(_canonical(task))
    if key is None:
        raise InputError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")
    return TASKS[key]


def _read_rows(path: Path) -> list[tuple[int, list[str]]]:
    """The non-empty rows of a UTF-8 TSV file (GLUE's convention: tabs, no quoting) with their line numbers."""
    if not path.is_file():
        held = sorted(p.name for p in path.parent.iterdir())
        raise InputError(f"{path}: no such file; {path.parent} holds {', '.join(held) or 'nothing'}")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise InputError(f"{path}:{line}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t", quoting=csv.QUOTE_NONE)
    try:
        return [(reader.line_num, row) for row in reader if row]
    except csv.Error as error:
        raise InputError(f"{path}:{reader.line_num}: {error}") from None


def _describe(column: Column) -> str:
    return f"column {column + 1}" if isinstance(column, int) else f"column {column!r}"


def _task_data(path: Path, rows: list[tuple[int, list[str]]], fmt: TaskFormat) -> tuple[TaskData, list[int]]:
    """One split from the rows of its file, and the line number of each example."""
    wanted = [fmt.text_a, fmt.text_b, fmt.label]
    if fmt.header:
        if not rows:
            raise InputError(f"{path}: empty file; expected a header row and examples")
        (line, header), rows = rows[0], rows[1:]
        names = [name.strip() for name in header]
        for column in wanted:
            if column is not None and column not in names:
                raise InputError(f"{path}:{line}: expected a {column!r} column in the header; found "
                                 f"{', '.join(map(repr, names))}")  # fmt: skip
        index = [None if c is None else names.index(c) for c in wanted]
    else:
        index = wanted
    if not rows:
        raise InputError(f"{path}: no examples")
    a, b, label = index
    needed = 1 + max(i for i in index if i is not None)
    texts_a, texts_b, labels, lines = [], [], [], []
    for line, row in rows:
        if len(row) < needed:
            raise InputError(f"{path}:{line}: expected {needed} columns, found {len(row)}")
        value = row[label].strip()
        if not value:
            raise InputError(f"{path}:{line}: empty label in {_describe(fmt.label)}")
        if fmt.regression:
            try:
                number = float(value)
            except ValueError:
                number = math.nan
            if not math.isfinite(number):
                raise InputError(
                    f"{path}:{line}: expected a number in {_describe(fmt.label)}, found {value!r}"
                )
            labels.append(number)
        else:
            labels.append(value)
        texts_a.append(row[a])
        if b is not None:
            texts_b.append(row[b])
        lines.append(line)
    return TaskData(texts_a, texts_b if b is not None else None, labels), lines


def read_task(
    task_dir: str | os.PathLike[str], task: str | None = None, *, regression: bool | None = None
) -> tuple[TaskFormat, TaskData, TaskData]:
    """Read the train and dev splits of a GLUE-format task folder.

    Args:
        task_dir: the folder holding the task's ``train_file`` and ``dev_file``.
        task: a key of :data:`TASKS` (case and punctuation ignored: ``"SST-2"``, ``"sst2"``); ``None`` infers it
            from the folder's name, falling back to ``"generic"``.
        regression: make the task regression (``True``, scored by pearson and spearman) or classification
            (``False``, scored by accuracy) whatever its format says.

    Returns:
        The format (for ``generic``: with the columns its header names), the train split and the dev split.

    Raises:
        InputError: a missing folder or file, a file that is not UTF-8, a header without a needed column, a row
            with too few columns, an empty label, a regression label that is not a number, an empty split, or a
            dev label that train does not have; the message gives ``file:line`` where there is one.
    """
    folder = Path(task_dir)
    if not folder.is_dir():
        raise InputError(f"{folder}: no such task folder")
    fmt = _task_format(folder, task)
    train_path, dev_path = folder / fmt.train_file, folder / fmt.dev_file
    train_rows, dev_rows = _read_rows(train_path), _read_rows(dev_path)
    if fmt == GENERIC and train_rows and "sentence1" in [c.strip() for c in train_rows[0][1]]:
        fmt = replace(fmt, text_a="sentence1", text_b="sentence2")
    if regression is not None and regression != fmt.regression:
        scores = REGRESSION_METRICS if regression else CLASSIFICATION_METRICS
        fmt = replace(fmt, regression=regression, metrics=scores)
    train, _ = _task_data(train_path, train_rows, fmt)
    dev, dev_lines = _task_data(dev_path, dev_rows, fmt)
    if not fmt.regression:
        known = set(train.labels)
        for line, value in zip(dev_lines, dev.labels, strict=True):
            if value not in known:
                raise InputError(f"{dev_path}:{line}: label {value!r} does not occur in {fmt.train_file} (its "
                                 f"labels: {', '.join(map(repr, label_names(train.labels)))})")  # fmt: skip
    return fmt, train, dev


def read_inputs(path: str | os.PathLike[str]) -> tuple[list[str], list[str] | None]:
    """The texts to label in a TSV whose header names ``sentence`` (or ``sentence1`` and ``sentence2``); other
    columns (GLUE's ``index``, a ``label``) are ignored.

    Raises:
        InputError: a missing or non-UTF-8 file, a header without those columns, or a row that is too short.
    """
    path = Path(path)
    rows = _read_rows(path)
    if not rows:
        raise InputError(
            f"{path}: empty file; expected a header row naming 'sentence' (or 'sentence1', 'sentence2')"
        )
    names = [c.strip() for c in rows[0][1]]
    pair = "sentence1" in names and "sentence2" in names
    if not pair and "sentence" not in names:
        raise InputError(f"{path}:{rows[0][0]}: expected a 'sentence' column (or 'sentence1' and 'sentence2') in "
                         f"the header; found {', '.join(map(repr, names))}")  # fmt: skip
    columns = [names.index("sentence1"), names.index("sentence2")] if pair else [names.index("sentence")]
    texts: list[list[str]] = [[] for _ in columns]
    for line, row in rows[1:]:
        if len(row) <= max(columns):
            raise InputError(f"{path}:{line}: expected {max(columns) + 1} columns, found {len(row)}")
        for values, column in zip(texts, columns, strict=True):
            values.append(row[column])
    if not texts[0]:
        raise InputError(f"{path}: no rows after the header")
    return texts[0], texts[1] if pair else None


def read_test(
    task_dir: str | os.PathLike[str], fmt: TaskFormat
) -> tuple[list[str], list[str], list[str] | None] | None:
    """The unlabelled test split of a task folder, or ``None`` when it has no ``fmt.test_file``.

    Returns:
        Each row's id (the ``index`` or ``id`` column, else its 0-based row number), its first and second texts.

    Raises:
        InputError: a file that is not UTF-8, a header without the text columns, a row that is too short.
    """
    path = Path(task_dir) / fmt.test_file
    if not path.is_file():
        return None
    rows = _read_rows(path)
    if len(rows) < 2:
        raise InputError(f"{path}: expected a header row and at least one row")
    (line, header), rows = rows[0], rows[1:]
    names = [name.strip() for name in header]
    a, b = fmt.test_columns()
    for column in (a, b):
        if column is not None and column not in names:
            raise InputError(f"{path}:{line}: expected a {column!r} column in the header; found "
                             f"{', '.join(map(repr, names))}")  # fmt: skip
    key = next((names.index(k) for k in ("index", "id") if k in names), None)
    columns = [names.index(a)] + ([] if b is None else [names.index(b)]) + ([] if key is None else [key])
    ids, texts_a, texts_b = [], [], []
    for number, (line, row) in enumerate(rows):
        if len(row) <= max(columns):
            raise InputError(f"{path}:{line}: expected {max(columns) + 1} columns, found {len(row)}")
        ids.append(str(number) if key is None else row[key])
        texts_a.append(row[names.index(a)])
        if b is not None:
            texts_b.append(row[names.index(b)])
    return ids, texts_a, texts_b if b is not None else None


def label_names(labels: Sequence[str]) -> list[str]:
    """The distinct classification labels in id order: numerically sorted when all are numbers, else sorted."""
    names = set(labels)
    try:
        return sorted(names, key=float)
    except ValueError:
        return sorted(names)


def _accuracy(predictions: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(predictions == labels))


def _f1(predictions: np.ndarray, labels: np.ndarray) -> float:
    """Binary F1 = 2TP / (2TP + FP + FN) of class id 1; 0 when neither predictions nor labels hold it."""
    predicted, actual = predictions == 1, labels == 1
    tp = int(np.sum(predicted & actual))
    wrong = int(np.sum(predicted != actual))
    return 2 * tp / (2 * tp + wrong) if tp or wrong else 0.0


def _matthews(predictions: np.ndarray, labels: np.ndarray) -> float:
    """Multi-class Matthews correlation (Gorodkin, 2004) of the confusion matrix; 0 when it is undefined.

    With c correct of s examples, t_k the examples of class k and p_k the predictions of class k:
    MCC = (c·s − Σ p_k t_k) / √((s² − Σ p_k²)(s² − Σ t_k²)).
    """
    classes = int(max(predictions.max(), labels.max())) + 1
    t = np.bincount(labels.astype(np.int64), minlength=classes).astype(np.float64)
    p = np.bincount(predictions.astype(np.int64), minlength=classes).astype(np.float64)
    s, c = float(len(labels)), float(np.sum(predictions == labels))
    denominator = math.sqrt((s * s - p @ p) * (s * s - t @ t))
    return (c * s - p @ t) / denominator if denominator > 0 else 0.0


def _pearson(predictions: np.ndarray, labels: np.ndarray) -> float:
    """Pearson's r; 0 when either side is constant (r is undefined there, and JSON has no NaN)."""
    x, y = predictions - predictions.mean(), labels - labels.mean()
    denominator = math.sqrt(float(x @ x) * float(y @ y))
    return float(x @ y) / denominator if denominator > 0 else 0.0


def average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks of ``(n,)`` values, ties sharing the mean of their ranks: [1, 2, 2, 3] → [1, 2.5, 2.5, 4]."""
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    starts = np.concatenate([[True], ordered[1:] != ordered[:-1]])
    first = np.flatnonzero(starts)
    counts = np.diff(np.append(first, len(values)))
    ranks = np.empty(len(values))
    ranks[order] = (first + (counts + 1) / 2)[np.cumsum(starts) - 1]
    return ranks


def _spearman(predictions: np.ndarray, labels: np.ndarray) -> float:
    """Spearman's ρ: Pearson's r of the average ranks."""
    return _pearson(average_ranks(predictions), average_ranks(labels))


METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "accuracy": _accuracy, "f1": _f1, "matthews": _matthews, "pearson": _pearson, "spearman": _spearman,
}  # fmt: skip
"""GLUE's metrics: accuracy, F1 of class id 1 (MRPC, QQP), Matthews correlation (CoLA), Pearson and Spearman
correlation (STS-B)."""


def metrics(name_list: tuple[str, ...], predictions: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """The metrics ``name_list`` (keys of :data:`METRICS`) of ``(n,)`` predictions against ``(n,)`` labels.

    Classification takes class ids (F1 counts id 1 as the positive class), regression real values.
    """
    unknown = [name for name in name_list if name not in METRICS]
    if unknown:
        raise InputError(f"unknown metric(s) {', '.join(unknown)}; expected some of {', '.join(METRICS)}")
    predictions, labels = np.asarray(predictions).ravel(), np.asarray(labels).ravel()
    if len(predictions) != len(labels) or not len(labels):
        raise ValueError(
            f"need as many predictions as labels, at least one; got {len(predictions)}, {len(labels)}"
        )
    if any(name in ("pearson", "spearman") for name in name_list):
        predictions, labels = predictions.astype(np.float64), labels.astype(np.float64)
    return {name: float(METRICS[name](predictions, labels)) for name in name_list}


@dataclass
class FinetuneConfig:
    """Optimisation settings of one fine-tuning run.

    Attributes:
        epochs: passes over the training split (a fraction ends part-way through the last; 0: evaluate only).
        batch_size: training examples per step.
        lr: peak learning rate, reached after the warm-up and decayed linearly to 0 at the last step.
        warmup_fraction: the share of all steps spent warming up linearly from 0.
        weight_decay: AdamW decay of weight matrices and embeddings (not of biases and LayerNorms).
        max_length: tokens per example, [CLS] and [SEP] included; longer examples are truncated (pairs: the
            longer sentence first).
        clip_norm: global gradient-norm clip (0: off).
        eval_batch_size: examples per evaluation batch.
        seed: seeds the head's initialisation, the order of the training examples and dropout.
        keep: ``"best"``: the model of the epoch with the best dev score (the mean of the task's metrics, GLUE's
            convention for MRPC, QQP and STS-B) is the one returned and saved; ``"last"``: the last epoch's.
    """

    epochs: float = 3.0
    batch_size: int = 32
    lr: float = 1e-4
    warmup_fraction: float = 0.1
    weight_decay: float = 0.01
    max_length: int = 128
    clip_norm: float = 1.0
    eval_batch_size: int = 128
    seed: int = 0
    keep: Literal["best", "last"] = "best"

    def check(self) -> None:
        """Raise :class:`InputError` naming the first setting that cannot work."""
        for name in ("batch_size", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise InputError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.max_length < 3:
            raise InputError(f"max_length must be at least 3 ([CLS], a token, [SEP]), got {self.max_length}")
        if not (math.isfinite(self.epochs) and self.epochs >= 0):
            raise InputError(f"epochs must be finite and at least 0, got {self.epochs}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise InputError(f"lr must be positive and finite, got {self.lr}")
        if not 0.0 <= self.warmup_fraction < 1.0:
            raise InputError(f"warmup_fraction must lie in [0, 1), got {self.warmup_fraction}")
        for name in ("weight_decay", "clip_norm"):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) >= 0):
                raise InputError(f"{name} must be finite and at least 0, got {getattr(self, name)}")
        if not 0 <= self.seed < 2**63:
            raise InputError(f"seed must be an integer in [0, 2**63), got {self.seed}")
        if self.keep not in ("best", "last"):
            raise InputError(f"keep must be 'best' or 'last', got {self.keep!r}")


@dataclass
class FinetuneResult:
    """What a fine-tuning run did.

    Attributes:
        metrics: the dev metrics of the kept model (empty without a dev split).
        history: one record per epoch: ``epoch`` (fractional for a partial last one), ``step``, ``train_loss``
            (its mean over the epoch) and ``dev_<metric>``.
        label_names: the class of each output id (``None`` for regression).
        model: the fine-tuned model, in eval mode.
        out: the output folder, if one was written.
        kept_epoch: the epoch whose model was kept (``None`` without a dev split or without training).
    """

    metrics: dict[str, float]
    history: list[dict[str, Any]]
    label_names: list[str] | None
    model: MetroForSequenceClassification
    out: Path | None
    kept_epoch: float | None = None


@dataclass
class EncodedTexts:
    """The token ids of N examples, concatenated without padding.

    Attributes:
        ids: ``(T,)`` int64, T the total token count.
        token_types: ``(T,)`` int64 segment ids, or ``None`` when the tokenizer returns none.
        starts, lengths: ``(N,)`` int64, where each example begins in ``ids`` and how many tokens it has.
    """

    ids: torch.Tensor
    token_types: torch.Tensor | None
    starts: torch.Tensor
    lengths: torch.Tensor

    def __len__(self) -> int:
        return len(self.lengths)

    def batch(self, index: torch.Tensor, pad_id: int) -> dict[str, torch.Tensor]:
        """The examples ``index`` ``(B,)`` padded to the longest of them: ``input_ids``, ``attention_mask`` and
        (when there are segment ids) ``token_type_ids``, each ``(B, L)``."""
        lengths = self.lengths[index]
        offsets = torch.arange(int(lengths.max()))
        mask = offsets[None, :] < lengths[:, None]
        # positions past an example's end read its neighbour's tokens (or the last one), then get masked out
        positions = (self.starts[index, None] + offsets[None, :]).clamp_(max=len(self.ids) - 1)
        batch = {"input_ids": torch.where(mask, self.ids[positions], pad_id), "attention_mask": mask.long()}
        if self.token_types is not None:
            batch["token_type_ids"] = torch.where(mask, self.token_types[positions], 0)
        return batch


def encode(
    tokenizer: PreTrainedTokenizerBase,
    texts_a: list[str],
    texts_b: list[str] | None = None,
    *,
    max_length: int,
) -> EncodedTexts:
    """Tokenise texts (``[CLS] a [SEP]``) or pairs (``[CLS] a [SEP] b [SEP]``), truncated to ``max_length``."""
    if texts_b is not None and len(texts_b) != len(texts_a):
        raise InputError(f"need as many second texts as first ones; got {len(texts_b)} and {len(texts_a)}")
    encoding = tokenizer(
        texts_a, texts_b, truncation=True, max_length=max_length, return_attention_mask=False
    )
    rows = encoding["input_ids"]
    lengths = torch.tensor([len(row) for row in rows], dtype=torch.long)
    starts = torch.cumsum(lengths, 0) - lengths
    types = encoding.get("token_type_ids")
    return EncodedTexts(
        torch.tensor(list(itertools.chain.from_iterable(rows)), dtype=torch.long),
        None if types is None else torch.tensor(list(itertools.chain.from_iterable(types)), dtype=torch.long),
        starts, lengths,
    )  # fmt: skip


def _check_tokenizer(
    tokenizer: PreTrainedTokenizerBase, model: MetroPreTrainedModel, max_length: int
) -> None:
    vocab_size = model.config.vocab_size
    if len(tokenizer) != vocab_size:
        raise InputError(f"the tokenizer's vocabulary has {len(tokenizer)} tokens but the model's has {vocab_size} "
                         "(config.vocab_size); use the tokenizer the model was pretrained with")  # fmt: skip
    if max_length > model.config.max_position_embeddings:
        raise InputError(f"max_length {max_length} is beyond the model's max_position_embeddings "
                         f"{model.config.max_position_embeddings}")  # fmt: skip


def _classifier(
    model: str | os.PathLike[str] | MetroPreTrainedModel, tokenizer: PreTrainedTokenizerBase | None,
    names: list[str] | None, seed: int,
) -> tuple[MetroForSequenceClassification, PreTrainedTokenizerBase, str]:  # fmt: skip
    """A classifier whose backbone holds ``model``'s main-model weights, its tokenizer and where it came from.

    The head is drawn after ``torch.manual_seed(seed)``. A folder is loaded with ``from_pretrained`` (a
    fine-tuned folder keeps its head when the number of labels matches); an in-memory model gives a copy of its
    config and its backbone's weights (strictly), and always a new head.
    """
    id2label = {0: "LABEL_0"} if names is None else dict(enumerate(names))
    labels = {"id2label": id2label, "label2id": {name: i for i, name in id2label.items()},
              "problem_type": "regression" if names is None else "single_label_classification"}  # fmt: skip
    torch.manual_seed(seed)
    if isinstance(model, MetroPreTrainedModel):
        if tokenizer is None:
            raise InputError("an in-memory model needs its tokenizer; only a model folder supplies its own")
        config = copy.deepcopy(model.config)
        for key, value in labels.items():
            setattr(config, key, value)
        classifier = MetroForSequenceClassification(config)
        backbone = model if isinstance(model, MetroModel) else model.metro
        classifier.metro.load_state_dict(backbone.state_dict())
        return classifier, tokenizer, f"in-memory {type(model).__name__}"
    if not isinstance(model, (str, os.PathLike)):
        raise TypeError(f"model must be a folder or a MetroPreTrainedModel, not {type(model).__name__}")
    folder, saved = model_folder(model)
    check_weights(folder, saved)
    classifier, info = MetroForSequenceClassification.from_pretrained(
        str(folder), **labels, ignore_mismatched_sizes=True, output_loading_info=True, local_files_only=True
    )
    missing = sorted(key for key in info["missing_keys"] if key.startswith("metro."))
    if missing:
        raise InputError(f"{folder}: the checkpoint lacks {len(missing)} weight(s) of the main model, e.g. "
                         f"{', '.join(missing[:3])}")  # fmt: skip
    return classifier, tokenizer if tokenizer is not None else load_tokenizer(folder), str(folder)


def _label_tensor(data: TaskData, names: list[str] | None, split: str) -> torch.Tensor:
    """``(N,)`` int64 class ids (float32 targets for regression) of a split's labels."""
    if names is None:
        try:
            return torch.tensor([float(value) for value in data.labels], dtype=torch.float32)
        except (TypeError, ValueError):
            raise InputError(f"the {split} labels of a regression task must be numbers") from None
    ids = {name: i for i, name in enumerate(names)}
    unseen = sorted({str(value) for value in data.labels} - set(ids))
    if unseen:
        raise InputError(f"{split} label(s) {', '.join(map(repr, unseen))} do not occur in the training labels "
                         f"({', '.join(map(repr, names))})")  # fmt: skip
    return torch.tensor([ids[str(value)] for value in data.labels], dtype=torch.long)


@torch.no_grad()
def _logits(
    model: MetroForSequenceClassification, encoded: EncodedTexts, batch_size: int, device: torch.device | str
) -> np.ndarray:
    """``(N, C)`` float32 logits in eval mode (batches of similar lengths, so little padding)."""
    was_training = model.training
    model.eval()
    order = torch.argsort(encoded.lengths)
    logits = torch.empty(len(encoded), model.config.num_labels)
    for start in range(0, len(encoded), batch_size):
        index = order[start : start + batch_size]
        batch = {
            name: value.to(device) for name, value in encoded.batch(index, model.config.pad_token_id).items()
        }
        logits[index] = model(**batch).logits.float().cpu()
    model.train(was_training)
    return logits.numpy()


def _predictions(logits: np.ndarray, regression: bool) -> np.ndarray:
    """``(N, C)`` logits → ``(N,)`` values (regression) or class ids."""
    return logits[:, 0] if regression else logits.argmax(axis=1)


def finetune(
    model: str | os.PathLike[str] | MetroPreTrainedModel,
    tokenizer: PreTrainedTokenizerBase | None,
    train: TaskData,
    dev: TaskData | None,
    fmt: TaskFormat,
    config: FinetuneConfig | None = None,
    *,
    out: str | os.PathLike[str] | None = None,
    device: str = "cpu",
) -> FinetuneResult:
    """Fine-tune the main model of a METRO checkpoint, with a [CLS] head, on one task.

    The head is new (drawn after ``torch.manual_seed(config.seed)``), except that a folder saved by an earlier
    fine-tuning keeps its head when it has as many outputs as this task needs.

    Classification labels get ids in :func:`label_names` order of the training labels; regression trains one
    output by MSE. AdamW (betas 0.9, 0.98, ε 1e-6, no decay of biases and LayerNorms) warms up linearly over
    ``warmup_fraction`` of the steps, then decays linearly to 0; the training examples are reshuffled every epoch
    from a generator seeded with ``config.seed``, and ``dev`` is evaluated after every epoch.

    Args:
        model: a model folder saved by pretraining (``run/model``, any objective) or by an earlier fine-tuning,
            or an in-memory METRO model (e.g. a :class:`~metro_lm.MetroForPreTraining`), which is left untouched.
        tokenizer: the model's tokenizer; ``None`` loads the one saved in the model folder.
        train, dev: the splits (``dev`` may be ``None``).
        fmt: the task's format: whether it is regression, which metrics to report.
        config: optimisation settings (defaults: :class:`FinetuneConfig`).
        out: when given, the folder to write ``model/`` (model and tokenizer, predicting the label strings),
            ``metrics.json`` (task, final metrics, history, settings) and ``config.json`` (settings, task, labels,
            example counts, where the weights came from).
        device: where to train.

    Raises:
        InputError: bad settings, an empty split, fewer than two classes, a dev label that train does
            not have, a tokenizer whose vocabulary differs from the model's, or a model folder that is not a METRO
            model.
    """
    config = config or FinetuneConfig()
    config.check()
    if not len(train):
        raise InputError("the training split has no examples")
    if dev is not None and not len(dev):
        raise InputError("the dev split has no examples (pass dev=None to train without one)")
    names = None if fmt.regression else label_names([str(value) for value in train.labels])
    if names is not None and len(names) < 2:
        raise InputError(
            f"a classification task needs at least 2 labels in its training split; found {names}"
        )
    train_labels = _label_tensor(train, names, "train")
    dev_labels = None if dev is None else _label_tensor(dev, names, "dev").numpy()
    classifier, tokenizer, source = _classifier(model, tokenizer, names, config.seed)
    _check_tokenizer(tokenizer, classifier, config.max_length)
    classifier.to(device)
    pad_id = classifier.config.pad_token_id
    train_set = encode(tokenizer, train.texts_a, train.texts_b, max_length=config.max_length)
    dev_set = (
        None if dev is None else encode(tokenizer, dev.texts_a, dev.texts_b, max_length=config.max_length)
    )

    def evaluate() -> dict[str, float]:
        if dev_set is None:
            return {}
        logits = _logits(classifier, dev_set, config.eval_batch_size, device)
        return metrics(fmt.metrics, _predictions(logits, fmt.regression), dev_labels)

    steps_per_epoch = math.ceil(len(train) / config.batch_size)
    total = math.ceil(config.epochs * steps_per_epoch)
    warmup = round(config.warmup_fraction * total)
    optimizer = make_optimizer(classifier, TrainConfig(lr=config.lr, weight_decay=config.weight_decay))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: learning_rate_factor(s, warmup=warmup, total=total)
    )
    generator = torch.Generator().manual_seed(config.seed)
    history: list[dict[str, Any]] = []
    final: dict[str, float] = {}
    kept: tuple[float, float, dict[str, torch.Tensor], dict[str, float]] | None = (
        None  # score, epoch, weights
    )
    done = 0
    bar = progress(total=total, desc=f"finetune {fmt.name}", unit="step")
    while done < total:
        order = torch.randperm(len(train), generator=generator)
        steps = min(steps_per_epoch, total - done)
        loss_sum = torch.zeros((), device=device)
        classifier.train()
        for k in range(steps):
            index = order[k * config.batch_size : (k + 1) * config.batch_size]
            batch = {name: value.to(device) for name, value in train_set.batch(index, pad_id).items()}
            loss = classifier(**batch, labels=train_labels[index].to(device)).loss
            loss.backward()
            if config.clip_norm > 0:
                torch.nn.utils.clip_grad_norm_(classifier.parameters(), config.clip_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            loss_sum += loss.detach()
            bar.update(1)
        done += steps
        final = evaluate()
        record = {"epoch": done / steps_per_epoch, "step": done, "train_loss": float(loss_sum) / steps,
                  **{f"dev_{name}": value for name, value in final.items()}}  # fmt: skip
        history.append(record)
        score = float(np.mean(list(final.values()))) if final else math.nan
        if config.keep == "best" and final and (kept is None or score > kept[0]):
            weights = {
                name: value.detach().to("cpu", copy=True) for name, value in classifier.state_dict().items()
            }
            kept = (score, record["epoch"], weights, final)
        bar.set_postfix(loss=record["train_loss"], **final)
        LOGGER.info("%s epoch %.2f: train loss %.4f%s", fmt.name, record["epoch"], record["train_loss"],
                    "".join(f", dev {name} {value:.4f}" for name, value in final.items()))  # fmt: skip
    bar.close()
    kept_epoch = history[-1]["epoch"] if history and final else None
    if kept is not None:
        classifier.load_state_dict(kept[2])
        kept_epoch, final = kept[1], kept[3]
        LOGGER.info("%s: keeping the model of epoch %.2f (dev %s)", fmt.name, kept_epoch,
                    ", ".join(f"{name} {value:.4f}" for name, value in final.items()))  # fmt: skip
    if not history:
        final = evaluate()
    classifier.eval()

    folder = None
    if out is not None:
        folder = Path(out)
        classifier.save_pretrained(folder / "model")
        tokenizer.save_pretrained(str(folder / "model"))
        write_json(folder / "metrics.json", {"task": fmt.name, "metrics": final, "kept_epoch": kept_epoch,
                                             "history": history, "config": asdict(config)})  # fmt: skip
        write_json(folder / "config.json", {
            "task": fmt.name, "regression": fmt.regression, "label_names": names, "train_examples": len(train),
            "dev_examples": 0 if dev is None else len(dev), "model": source, "finetune": asdict(config),
        })  # fmt: skip
    return FinetuneResult(final, history, names, classifier, folder, kept_epoch)


def predict(
    model: str | os.PathLike[str] | MetroForSequenceClassification,
    texts_a: list[str],
    texts_b: list[str] | None = None,
    *,
    tokenizer: PreTrainedTokenizerBase | None = None,
    batch_size: int = 128,
    max_length: int = 128,
    device: str = "cpu",
) -> list[str] | list[float]:
    """Label texts (or pairs) with a fine-tuned model.

    Args:
        model: a folder written by :func:`finetune` (its ``out/model``) or an in-memory fine-tuned model.
        tokenizer: the model's tokenizer; ``None`` loads the one saved in the model folder.

    Returns:
        One label string (``config.id2label``) per example for classification, one float for regression.
    """
    if isinstance(model, MetroForSequenceClassification):
        if tokenizer is None:
            raise InputError("an in-memory model needs its tokenizer; only a model folder supplies its own")
        classifier = model
    elif isinstance(model, (str, os.PathLike)):
        folder, saved = model_folder(model)
        if "MetroForSequenceClassification" not in saved.get("architectures", []):
            raise InputError(f"{folder}: not a fine-tuned model (its architectures are "
                             f"{saved.get('architectures')}); fine-tune it first")  # fmt: skip
        check_weights(folder, saved)
        classifier = MetroForSequenceClassification.from_pretrained(str(folder), local_files_only=True)
        tokenizer = tokenizer if tokenizer is not None else load_tokenizer(folder)
    else:
        raise TypeError(
            f"model must be a folder or a MetroForSequenceClassification, not {type(model).__name__}"
        )
    if batch_size < 1 or max_length < 3:
        raise InputError(f"need batch_size >= 1 and max_length >= 3; got {batch_size} and {max_length}")
    _check_tokenizer(tokenizer, classifier, max_length)
    if not texts_a:
        return []
    classifier.to(device)
    logits = _logits(
        classifier, encode(tokenizer, texts_a, texts_b, max_length=max_length), batch_size, device
    )
    if classifier.config.num_labels == 1:
        return [float(value) for value in logits[:, 0]]
    return [classifier.config.id2label[int(i)] for i in logits.argmax(axis=1)]
