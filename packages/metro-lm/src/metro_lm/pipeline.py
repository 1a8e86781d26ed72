"""From text files to a pretrained model: size presets, settings fitted to the corpus, one call per run.

:func:`pretrain_from_files` is what ``metro-lm pretrain`` runs: it trains a tokenizer when none is given, tokenises
the corpus into the run directory (reused when the same files and tokenizer come back), fits the settings nobody
gave to the corpus size (:func:`fit_settings`), builds the model from a size preset and calls
:func:`metro_lm.train.pretrain`. Everything resolved is written to the run's ``config.json``.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from metro_lm.configuration import MetroConfig
from metro_lm.data import CorpusInfo, Mode, PackedDataset, build_corpus, corpus_files
from metro_lm.tokenizer import Kind, load_tokenizer, train_tokenizer
from metro_lm.train import PretrainResult, TrainConfig, pretrain
from papers_common import InputError, join_process_group

LOGGER = logging.getLogger(__name__)

Size = Literal["auto", "tiny", "small", "base"]
Objective = Literal["metro", "electra", "mlm"]

SIZES: dict[str, dict[str, int]] = {
    # A laptop model for smoke runs and the quick reproduction.
    "tiny": {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 256,
             "generator_layers": 1},
    # ELECTRA-small's main model (12 × 256, 4 heads); COCO-LM's small auxiliary depth.
    "small": {"hidden_size": 256, "num_hidden_layers": 12, "num_attention_heads": 4, "intermediate_size": 1024,
              "generator_layers": 2},
    # BERT/METRO base (12 × 768, 12 heads) with METRO-T0's 4-layer generator.
    "base": {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072,
             "generator_layers": 4},
}  # fmt: skip
SIZE_THRESHOLDS = ((5_000_000, "tiny"), (500_000_000, "small"))
"""``size="auto"``: tiny below 5M training tokens, small below 500M, base above."""


@dataclass
class Settings:
    """What a pretraining run can be told; ``None`` is fitted to the corpus by :func:`fit_settings`.

    Attributes:
        objective: ``"metro"`` (RTD + generator MLM + corrective LM), ``"electra"`` or ``"mlm"``.
        size: a key of :data:`SIZES`, or ``"auto"`` (by the training tokens, :data:`SIZE_THRESHOLDS`).
        seq_len: tokens per packed sequence, [CLS] and [SEP] included.
        batch_size, steps, warmup_steps, lr: as in :class:`~metro_lm.train.TrainConfig`.
        model: MetroConfig fields that override the preset (``position_embedding``, ``layer_norm``, ...).
    """

    objective: Objective = "metro"
    size: Size = "auto"
    seq_len: int | None = None
    batch_size: int | None = None
    steps: int | None = None
    warmup_steps: int | None = None
    lr: float | None = None
    model: dict[str, Any] = field(default_factory=dict)


def resolve_size(size: Size, train_tokens: int) -> str:
    """The preset name ``size`` stands for on a corpus of ``train_tokens`` tokens."""
    if size != "auto":
        if size not in SIZES:
            raise InputError(f"size must be auto or one of {', '.join(SIZES)}, got {size!r}")
        return size
    return next((name for limit, name in SIZE_THRESHOLDS if train_tokens < limit), "base")


def fit_settings(settings: Settings, train_tokens: int, *, epochs: float = 10.0) -> dict[str, Any]:
    """Fill the settings left ``None`` from the corpus size, so that a small corpus trains in seconds.

    - ``seq_len``: 128 (ELECTRA-small's), shortened to the corpus when it holds fewer than 16 such sequences;
    - ``batch_size``: 32 (64 for small, 256 for base), at most a quarter of the training sequences, at least 2;
      a given one larger than the number of training sequences is an :class:`InputError`;
    - ``steps``: ``epochs`` passes over the training sequences, at least 20 and at most 125,000 (METRO-T0's);
    - ``warmup_steps``: 6% of the steps (at most 10,000, ELECTRA's and METRO-T0's);
    - ``lr``: 5e-4 for tiny and small (ELECTRA-small), 4e-4 for base (METRO-T0).

    Returns:
        the resolved ``size``, ``seq_len``, ``batch_size``, ``steps``, ``warmup_steps``, ``lr`` and ``sequences``.
    """
    size = resolve_size(settings.size, train_tokens)
    seq_len = settings.seq_len
    if seq_len is None:
        seq_len = 128 if train_tokens >= 16 * 126 else max(8, 2 + math.ceil(train_tokens / 16))
    if seq_len < 3:
        raise InputError(f"seq_len must be at least 3 ([CLS], a token, [SEP]), got {seq_len}")
    sequences = max(1, math.ceil(train_tokens / (seq_len - 2)))
    batch = settings.batch_size
    if batch is None:
        batch = max(2, min({"tiny": 32, "small": 64, "base": 256}[size], sequences // 4))
    elif batch > sequences:
        raise InputError(f"batch_size {batch} is more than the {sequences} training sequences of {seq_len} tokens "
                         "in this corpus; give a smaller batch, shorter sequences or more text")  # fmt: skip
    steps = settings.steps
    if steps is None:
        steps = int(min(125_000, max(20, math.ceil(epochs * sequences / batch))))
    warmup = (
        settings.warmup_steps if settings.warmup_steps is not None else min(10_000, max(1, steps * 6 // 100))
    )
    lr = settings.lr if settings.lr is not None else (4e-4 if size == "base" else 5e-4)
    return {"size": size, "seq_len": seq_len, "batch_size": batch, "steps": steps, "warmup_steps": warmup,
            "lr": lr, "sequences": sequences}  # fmt: skip


def model_config(
    size: str, objective: str, tokenizer: Any, seq_len: int, overrides: dict[str, Any] | None = None
) -> MetroConfig:
    """The :class:`MetroConfig` of preset ``size`` for ``tokenizer``'s vocabulary and special tokens.

    Raises:
        InputError: an override that is not a MetroConfig field or not valid, or ``seq_len`` beyond the
            position range (``max_position_embeddings``).
    """
    values: dict[str, Any] = {
        **SIZES[size],
        "objective": objective,
        "max_position_embeddings": max(512, seq_len),
    }
    values.update(
        vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, cls_token_id=tokenizer.cls_token_id,
        sep_token_id=tokenizer.sep_token_id, mask_token_id=tokenizer.mask_token_id,
        special_token_ids=sorted(set(tokenizer.all_special_ids)),
    )  # fmt: skip
    known = set(MetroConfig().to_dict())
    for key in overrides or {}:
        if key not in known:
            raise InputError(f"model setting {key!r} is not a MetroConfig field")
    values.update(overrides or {})
    try:
        config = MetroConfig(**values)
    except (ValueError, TypeError) as error:
        raise InputError(f"model settings: {error}") from None
    if seq_len > config.max_position_embeddings:
        raise InputError(
            f"seq_len {seq_len} is beyond the position range of the model (max_position_embeddings="
            f"{config.max_position_embeddings}); shorten seq_len or raise max_position_embeddings"
        )
    return config


def _files_key(files: list[Path], mode: str, seed: int, valid_fraction: float) -> str:
    digest = hashlib.sha256(f"{mode}|{seed}|{valid_fraction}".encode())
    for path in files:
        stat = path.stat()
        digest.update(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def prepare_corpus(
    files: list[Path], tokenizer: Any, out_dir: Path, *, mode: Mode = "file", valid_fraction: float = 0.05,
    seed: int = 0, strict: bool = False,
) -> CorpusInfo:  # fmt: skip
    """Tokenise ``files`` into ``out_dir`` unless it already holds them tokenised by ``tokenizer``."""
    key = _files_key(files, mode, seed, valid_fraction)
    stamp = out_dir / "files.sha256"
    if stamp.is_file() and stamp.read_text().strip() == key:
        try:
            info = CorpusInfo.load(out_dir)
            info.check_tokenizer(tokenizer)
            LOGGER.info("reusing the tokenised corpus in %s", out_dir)
            return info
        except InputError:
            pass
    stamp.unlink(missing_ok=True)
    info = build_corpus(files, tokenizer, out_dir, mode=mode, valid_fraction=valid_fraction, seed=seed,
                        strict=strict)  # fmt: skip
    stamp.write_text(key + "\n")
    return info


def tokenizer_vocab_size(corpus_bytes: int) -> int:
    """A vocabulary that fits the corpus: 8k (the spec's CPU plan) above 4 MB, down to byte-level BPE's 512 on
    small corpora, and 32k above 400 MB (METRO-T0's sentencepiece size)."""
    if corpus_bytes >= 400_000_000:
        return 32_000
    return int(min(8_000, max(512, corpus_bytes // 500)))


@dataclass
class Pretrained:
    """A finished pretraining run: its directory, the tokenizer folder, the resolved settings and the result."""

    out: Path
    tokenizer_dir: Path
    resolved: dict[str, Any]
    result: PretrainResult


def pretrain_from_files(
    paths: list[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    settings: Settings,
    *,
    tokenizer: str | os.PathLike[str] | None = None,
    vocab_size: int | None = None,
    tokenizer_kind: Kind = "bpe",
    mode: Mode = "file",
    exclude: tuple[str, ...] = (),
    valid_fraction: float = 0.05,
    strict: bool = False,
    train: TrainConfig | None = None,
    device: str = "cpu",
) -> Pretrained:
    """Pretrain on text files (or folders of ``*.txt``) into the run directory ``out``.

    Args:
        paths: corpus files or folders.
        out: the run directory; its ``model/`` holds the pretrained model and a copy of the tokenizer, so the
            run no longer needs the corpus or the tokenizer folder once it has finished.
        settings: objective, size and the settings that :func:`fit_settings` fills when left ``None``.
        tokenizer: a tokenizer folder; ``None`` trains one (``vocab_size``, :func:`tokenizer_vocab_size` by
            default) into ``out/tokenizer``.
        mode: one document per file or per non-empty line.
        exclude: file names to leave out (e.g. ``METADATA.txt``).
        train: the remaining optimisation settings (``steps``, ``batch_size``, ``lr``, ``warmup_steps`` are
            replaced by the resolved ones).
    """
    import torch

    from metro_lm.modeling import MetroForPreTraining

    out = Path(out)
    files = corpus_files(paths, exclude=exclude)
    dist = join_process_group(device)
    tokenizer_dir = out / "tokenizer" if tokenizer is None else Path(tokenizer)
    seed = train.seed if train else 0
    if dist.is_main:  # the other processes wait, then read what it made
        if tokenizer is None and not (tokenizer_dir / "tokenizer.json").is_file():
            size = vocab_size or tokenizer_vocab_size(sum(p.stat().st_size for p in files))
            train_tokenizer(files, vocab_size=size, kind=tokenizer_kind, strict=strict, out=tokenizer_dir)
        prepare_corpus(files, load_tokenizer(tokenizer_dir), out / "corpus", mode=mode,
                       valid_fraction=valid_fraction, seed=seed, strict=strict)  # fmt: skip
    dist.barrier()
    tok = load_tokenizer(tokenizer_dir)
    info = CorpusInfo.load(out / "corpus")
    info.check_tokenizer(tok)
    fitted = fit_settings(settings, info.tokens["train"])
    config = model_config(fitted["size"], settings.objective, tok, fitted["seq_len"], settings.model)
    train_config = TrainConfig(**{**asdict(train or TrainConfig()), "steps": fitted["steps"],
                                  "batch_size": fitted["batch_size"], "lr": fitted["lr"],
                                  "warmup_steps": fitted["warmup_steps"]})  # fmt: skip
    train_set = PackedDataset.from_corpus(out / "corpus", "train", fitted["seq_len"])
    valid_set = PackedDataset.from_corpus(out / "corpus", "valid", fitted["seq_len"])
    resolved = {
        "model": config.to_diff_dict() | {"objective": settings.objective},
        "settings": fitted,
        "corpus": {"files": len(files), "tokens": info.tokens, "documents": info.documents, "mode": mode,
                   "skipped": len(info.skipped)},
        "tokenizer": {"vocab_size": len(tok), "fingerprint": info.vocab_fingerprint},
    }  # fmt: skip
    LOGGER.info(
        "pretraining a %s %s model (%s): %d steps × %d sequences of %d tokens on %d training tokens",
        fitted["size"], settings.objective, config.position_embedding, fitted["steps"], fitted["batch_size"],
        fitted["seq_len"], info.tokens["train"],
    )  # fmt: skip
    torch.manual_seed(train_config.seed)
    model = MetroForPreTraining(config)
    result = pretrain(
        model, train_set, train_config, out, valid=valid_set, run_config=resolved, device=device
    )
    if dist.is_main:
        tok.save_pretrained(str(out / "model"))
    return Pretrained(out, tokenizer_dir, {"train": asdict(train_config), **resolved}, result)
