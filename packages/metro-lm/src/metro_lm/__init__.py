"""metro_lm: METRO pretraining (Bajaj et al., 2022) with model-generated denoising signals, as Hugging Face models.

Importing the package registers ``model_type="metro"`` with ``AutoConfig`` and the ``AutoModel*`` classes, so
``AutoModel.from_pretrained(path)`` and the Hugging Face ``Trainer`` work with saved METRO models.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from metro_lm.configuration import MetroConfig
from metro_lm.data import PackedDataset, build_corpus, corpus_files, read_documents
from metro_lm.evaluation import pretraining_metrics
from metro_lm.finetune import (
    TASKS,
    FinetuneConfig,
    FinetuneResult,
    TaskData,
    finetune,
    predict,
    read_task,
    read_test,
)
from metro_lm.modeling import (
    MetroForMaskedLM,
    MetroForPreTraining,
    MetroForPreTrainingOutput,
    MetroForSequenceClassification,
    MetroForTokenClassification,
    MetroModel,
    MetroPreTrainedModel,
    register_auto_classes,
)
from metro_lm.pipeline import Pretrained, Settings, pretrain_from_files
from metro_lm.tokenizer import load_tokenizer, train_tokenizer
from metro_lm.train import PretrainResult, TrainConfig, pretrain

try:
    __version__ = version("metro-lm")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

register_auto_classes()

__all__ = [
    "TASKS",
    "FinetuneConfig",
    "FinetuneResult",
    "MetroConfig",
    "MetroForMaskedLM",
    "MetroForPreTraining",
    "MetroForPreTrainingOutput",
    "MetroForSequenceClassification",
    "MetroForTokenClassification",
    "MetroModel",
    "MetroPreTrainedModel",
    "PackedDataset",
    "PretrainResult",
    "Pretrained",
    "Settings",
    "TaskData",
    "TrainConfig",
    "__version__",
    "build_corpus",
    "corpus_files",
    "finetune",
    "load_tokenizer",
    "predict",
    "pretrain",
    "pretrain_from_files",
    "pretraining_metrics",
    "read_documents",
    "read_task",
    "read_test",
    "register_auto_classes",
    "train_tokenizer",
]
