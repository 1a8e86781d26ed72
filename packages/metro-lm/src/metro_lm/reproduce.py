"""``metro-lm reproduce``: the paper's claims at laptop scale, on a local text corpus.

1. At equal pretraining compute (the same tokens, the same main-model size) the downstream accuracy is ordered
   METRO ≥ ELECTRA ≥ MLM (Bajaj et al., 2022, Table 2 at base and large scale). Downstream task: telling
   original sentences of held-out documents from copies with two words swapped (a CoLA-like acceptability task
   built from the corpus), fine-tuned identically from each pretrained model; a randomly initialised model,
   fine-tuned the same way, is reported beside them.
2. The METRO discriminator separates replaced from original tokens of held-out text: RTD AUC >= 0.8 and accuracy
   above the trivial "nothing was replaced" baseline.
3. Stability (§4.3, the scaled initialisation of Post-LN): at a high learning rate, a deeper Post-LN METRO model
   with the scaled initialisation trains to a lower held-out loss than the same model without it, which
   diverges or trails; both curves are plotted.

Arms: MLM is BERT's objective with absolute positions and the plain N(0, 0.02²) initialisation; ELECTRA adds the
shallow generator and replaced-token detection (absolute positions, plain initialisation); METRO is the full
recipe (T5 relative position buckets, Post-LN with the scaled initialisation, corrective LM). Every arm sees the
same sequences in the same order, so they differ only by the recipe. Every arm, fine-tuning and stability run is
repeated over consecutive seeds (quick 2, full 3: initialisation, data order, masking, sampling and fine-tuning all
follow the seed); each comparison is decided over the seeds, paired by seed, and holds only when the mean advantage
exceeds its seed-to-seed standard deviation (:func:`papers_common.claim_over_seeds`).

The default corpus is CPython's own documentation (``pydoc_data.topics``, about 0.5 MB of English prose and code, one
document per topic, shipped with every Python), so the command runs with no arguments and no download;
``--data-dir`` takes any folder of ``.txt`` files (``METADATA.txt`` is left out).
"""

from __future__ import annotations

import logging
import math
import random
import re
import statistics
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch

from metro_lm import __version__
from metro_lm.data import CorpusInfo, PackedDataset, corpus_files, read_documents
from metro_lm.evaluation import pretraining_metrics
from metro_lm.finetune import TASKS, FinetuneConfig, TaskData, finetune
from metro_lm.modeling import MetroForPreTraining
from metro_lm.pipeline import model_config, prepare_corpus
from metro_lm.tokenizer import load_tokenizer, train_tokenizer
from metro_lm.train import PretrainResult, TrainConfig, iterate_losses, pretrain
from papers_common import (
    Claim,
    InputError,
    Paper,
    Results,
    RunDir,
    claim_over_seeds,
    plot_bars,
    plot_lines,
    progress,
    write_results,
)

LOG = logging.getLogger(__name__)
PAPER = Paper("METRO: Efficient Denoising Pretraining of Large Scale Autoencoding Language Models with "
              "Model Generated Signals", "2204.06644")  # fmt: skip
ARMS = {
    "mlm": {"objective": "mlm", "position_embedding": "absolute", "scaled_init": False},
    "electra": {"objective": "electra", "position_embedding": "absolute", "scaled_init": False},
    "metro": {"objective": "metro", "position_embedding": "relative", "scaled_init": True},
}
EXCLUDE = ("METADATA.txt",)
# Where each claim stands in the paper; it reports no number at this scale, so each says why there is none.
PAPER_SOURCES = {
    "order": "qualitative: METRO ahead of ELECTRA-style baselines on GLUE/SuperGLUE at base scale and above; "
    "not reported at this scale",
    "electra": "not in this paper (ELECTRA's own result, Clark et al., 2020, at small scale and above); not "
    "reported at this scale",
    "rtd": "not reported in the paper (held-out RTD is not measured there); the target is ours",
    "stability": "qualitative: Post-LN with the scaled initialisation trains stably at scale; no curve at this "
    "scale",
}


@dataclass(frozen=True)
class Plan:
    """Sizes of one reproduction mode.

    Attributes:
        vocab_size: BPE vocabulary trained on the corpus.
        valid_fraction: share of documents held out (pretraining evaluation and the downstream dev set).
        model: MetroConfig fields of the main model and generator of every arm.
        seq_len, batch_size, steps, lr, warmup_steps: pretraining of each arm (equal for all).
        sentences: most training / dev sentences of the acceptability task.
        finetune: its fine-tuning settings, the same for every arm.
        stability_layers, stability_lr, stability_warmup, stability_steps: claim 3's deeper model, its learning
            rate (several times the arms') and schedule; gradients are not clipped there, so that an unstable
            model shows it.
        seeds: how many consecutive seeds every run is repeated with (at least 2: claims are decided over them).
    """

    vocab_size: int
    valid_fraction: float
    model: tuple[tuple[str, Any], ...]
    seq_len: int
    batch_size: int
    steps: int
    lr: float
    warmup_steps: int
    sentences: tuple[int, int]
    finetune: FinetuneConfig
    stability_layers: int
    stability_lr: float
    stability_warmup: int
    stability_steps: int
    seeds: int = 2


TINY_MODEL = (("hidden_size", 64), ("num_hidden_layers", 2), ("num_attention_heads", 2), ("intermediate_size", 256),
              ("generator_layers", 1))  # fmt: skip
QUICK = Plan(vocab_size=1000, valid_fraction=0.2, model=TINY_MODEL, seq_len=64, batch_size=32, steps=700, lr=2e-3,
             warmup_steps=42, sentences=(2000, 1000), finetune=FinetuneConfig(epochs=3, batch_size=32, lr=3e-4),
             stability_layers=12, stability_lr=3e-3, stability_warmup=1, stability_steps=100, seeds=2)  # fmt: skip
FULL = Plan(vocab_size=1000, valid_fraction=0.2, model=TINY_MODEL, seq_len=64, batch_size=32, steps=3000, lr=2e-3,
            warmup_steps=180, sentences=(4000, 1000), finetune=FinetuneConfig(epochs=3, batch_size=32, lr=3e-4),
            stability_layers=12, stability_lr=3e-3, stability_warmup=1, stability_steps=300, seeds=3)  # fmt: skip


def default_corpus(out: Path) -> Path:
    """Write CPython's pydoc topics (one document per topic) under ``out`` and return the folder."""
    from pydoc_data.topics import topics

    folder = out / "text"
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in sorted(topics.items()):
        path = folder / f"{re.sub(r'[^A-Za-z0-9_-]+', '_', name)}.txt"
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
    return folder


SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def sentences(texts: list[str], *, low: int = 6, high: int = 30) -> list[str]:
    """Sentences of ``low``..``high`` words (white space normalised) of the given documents, in order."""
    found = []
    for text in texts:
        for piece in SENTENCE_END.split(text):
            words = piece.split()
            if low <= len(words) <= high:
                found.append(" ".join(words))
    return found


def acceptability_task(texts: list[str], limit: int, seed: int) -> TaskData:
    """Up to ``limit`` sentences of ``texts``, half of them with two different words swapped.

    Labels: ``"1"`` for an original sentence, ``"0"`` for a corrupted one (CoLA's convention). A sentence whose
    swap would not change it (all words equal) stays original.
    """
    rng = random.Random(seed)
    pool = sentences(texts)
    rng.shuffle(pool)
    pool = pool[:limit]
    out, labels = [], []
    for i, sentence in enumerate(pool):
        words = sentence.split()
        j, k = rng.sample(range(len(words)), 2)
        if i % 2 == 1 and words[j] != words[k]:
            words[j], words[k] = words[k], words[j]
            out.append(" ".join(words))
            labels.append("0")
        else:
            out.append(sentence)
            labels.append("1")
    return TaskData(out, None, labels)


def _split_texts(files: list[Path], info: CorpusInfo) -> tuple[list[str], list[str]]:
    valid = set(info.valid_documents)
    train, held_out = [], []
    for document in read_documents(files, mode=info.mode, strip_gutenberg=info.strip_gutenberg):
        (held_out if document.name in valid else train).append(document.text)
    return train, held_out


def _pretrain_arm(
    name: str, overrides: dict[str, Any], plan: Plan, steps: int, lr: float, warmup: int, clip: float,
    tokenizer: Any, train: PackedDataset, valid: PackedDataset, out: Path, seed: int, device: str,
) -> PretrainResult:  # fmt: skip
    config = model_config("tiny", overrides["objective"], tokenizer, plan.seq_len,
                          {**dict(plan.model), **overrides})  # fmt: skip
    torch.manual_seed(seed)
    model = MetroForPreTraining(config)
    settings = TrainConfig(steps=steps, batch_size=plan.batch_size, lr=lr, warmup_steps=warmup, clip_norm=clip,
                           seed=seed, log_every=max(1, steps // 50), eval_every=max(1, steps // 10),
                           eval_sequences=128, stop_on_nonfinite=True)  # fmt: skip
    LOG.info("pretraining %s (%s)", name, ", ".join(f"{k}={v}" for k, v in overrides.items()))
    return pretrain(model, train, settings, out / "runs" / name, valid=valid,
                    run_config={"arm": name, "model": config.to_diff_dict()}, device=device)  # fmt: skip


def run(
    out: str | Path, *, quick: bool = True, data_dir: str | Path | None = None, seed: int = 0,
    device: str = "cpu", plan: Plan | None = None,
) -> Results:  # fmt: skip
    """Measure the three claims; write results.json/.md, tables.md, the figures and every run under ``out``.

    Args:
        out: output folder; its ``runs/`` hold each pretraining run (a rerun resumes or reuses them).
        quick: the minutes-on-a-CPU plan (:data:`QUICK`, 2 seeds) or :data:`FULL` (the same models, 3 seeds, about 4× the steps).
        data_dir: a folder of ``.txt`` documents; ``None``: CPython's pydoc topics.
        plan: replaces the mode's plan (tests use a smaller one).
    """
    plan = plan or (QUICK if quick else FULL)
    mode = "quick" if quick else "full"
    started = time.perf_counter()
    out = Path(out)
    record = RunDir(out)
    folder = default_corpus(out) if data_dir is None else Path(data_dir)
    if not folder.is_dir():
        raise InputError(f"--data-dir {folder}: not a folder")
    files = corpus_files([folder], exclude=EXCLUDE)
    corpus_name = "CPython pydoc topics" if data_dir is None else folder.name
    config = {"mode": mode, "seed": seed, "seeds": list(range(seed, seed + plan.seeds)), "device": device,
              "corpus": corpus_name, "files": len(files), "plan": asdict(plan), "arms": ARMS}  # fmt: skip
    record.write_config(config)
    bar = progress(total=1 + 3 * plan.seeds, desc="reproduce", unit="part")
    tokenizer_dir = out / "tokenizer"
    if not (tokenizer_dir / "tokenizer.json").is_file():
        train_tokenizer(files, vocab_size=plan.vocab_size, out=tokenizer_dir)
    tokenizer = load_tokenizer(tokenizer_dir)
    info = prepare_corpus(files, tokenizer, out / "corpus", valid_fraction=plan.valid_fraction, seed=seed)
    train = PackedDataset.from_corpus(out / "corpus", "train", plan.seq_len)
    valid = PackedDataset.from_corpus(out / "corpus", "valid", plan.seq_len)
    bar.update(1)

    seeds = list(range(seed, seed + plan.seeds))
    if len(seeds) < 2:
        raise InputError(f"the plan needs at least 2 seeds to decide its claims, got {plan.seeds}")
    train_texts, held_out = _split_texts(files, info)
    results: dict[str, dict[int, PretrainResult]] = {name: {} for name in ARMS}
    downstream: dict[str, dict[int, dict[str, float]]] = {name: {} for name in (*ARMS, "random init")}
    stability: dict[str, dict[int, PretrainResult]] = {"scaled init": {}, "plain init": {}}
    untrained: dict[int, float] = {}
    fmt = replace(TASKS["cola"], name="acceptability", metrics=("accuracy", "matthews"))
    for run_seed in seeds:
        for name, overrides in ARMS.items():
            results[name][run_seed] = _pretrain_arm(
                f"{name}-seed{run_seed}", overrides, plan, plan.steps, plan.lr, plan.warmup_steps, 1.0, tokenizer,
                train, valid, out, run_seed, device,
            )  # fmt: skip
        bar.update(1)

        task_train = acceptability_task(train_texts, plan.sentences[0], run_seed)
        task_dev = acceptability_task(held_out, plan.sentences[1], run_seed + 1)
        if min(len(task_train.labels), len(task_dev.labels)) < 20:
            raise InputError(
                f"{folder}: too few sentences of 6-30 words for the downstream task ({len(task_train.labels)} "
                f"train, {len(task_dev.labels)} dev); give a larger corpus"
            )
        for name in downstream:
            source = (
                out / "runs" / f"{name}-seed{run_seed}" / "model" if name in ARMS
                else _random_model(plan, tokenizer, run_seed)
            )  # fmt: skip
            # keep="last": the dev split is the only held-out split here, so no epoch is chosen on it.
            tuned = finetune(source, tokenizer, task_train, task_dev, fmt,
                             replace(plan.finetune, seed=run_seed, keep="last"), device=device)  # fmt: skip
            downstream[name][run_seed] = tuned.metrics
        bar.update(1)

        for scaled in (True, False):
            key = "scaled init" if scaled else "plain init"
            overrides = {**ARMS["metro"], "scaled_init": scaled, "num_hidden_layers": plan.stability_layers}
            stability[key][run_seed] = _pretrain_arm(
                f"stability-{'scaled' if scaled else 'plain'}-seed{run_seed}", overrides, plan,
                plan.stability_steps, plan.stability_lr, plan.stability_warmup, 0.0, tokenizer, train, valid, out,
                run_seed, device,
            )  # fmt: skip
        untrained[run_seed] = _untrained_loss(plan, tokenizer, valid, run_seed)
        bar.update(1)
    bar.close()
    found = {
        "corpus": {"name": corpus_name, "tokens": info.tokens, "documents": info.documents},
        "seeds": seeds,
        "task": {"train": len(task_train.labels), "dev": len(task_dev.labels)},
        "pretraining": {k: {str(s): _summary(r) for s, r in runs.items()} for k, runs in results.items()},
        "downstream": {k: {str(s): m for s, m in runs.items()} for k, runs in downstream.items()},
        "stability": {k: {str(s): _summary(r) for s, r in runs.items()} for k, runs in stability.items()},
        "stability_untrained_loss": {str(s): v for s, v in untrained.items()},
    }
    record.write_json("measurements.json", found)
    figures = _figures(out, {k: runs[seeds[0]] for k, runs in results.items()}, found["downstream"],
                       {k: runs[seeds[0]] for k, runs in stability.items()}, seeds)  # fmt: skip
    claims = _claims(plan, found)
    _write_tables(record, plan, found)
    summary = Results(
        "metro-lm", __version__, PAPER, mode, config, time.perf_counter() - started, claims, figures
    )
    write_results(summary, out)
    return summary


def _random_model(plan: Plan, tokenizer: Any, seed: int) -> MetroForPreTraining:
    torch.manual_seed(seed)
    return MetroForPreTraining(model_config("tiny", "metro", tokenizer, plan.seq_len, {**dict(plan.model),
                                                                                       **ARMS["metro"]}))  # fmt: skip


def _summary(result: PretrainResult) -> dict[str, Any]:
    return {"steps": result.steps, "diverged_at": result.diverged_at, "final_eval": result.final_eval,
            "tokens_per_second": result.tokens_per_second}  # fmt: skip


def _untrained_loss(plan: Plan, tokenizer: Any, valid: PackedDataset, seed: int) -> float:
    """Claim 3's held-out loss (50·RTD + CLM) of the stability model before any step: what a diverged run counts as."""
    config = model_config("tiny", "metro", tokenizer, plan.seq_len,
                          {**dict(plan.model), **ARMS["metro"], "num_hidden_layers": plan.stability_layers})  # fmt: skip
    torch.manual_seed(seed)
    final = pretraining_metrics(MetroForPreTraining(config).eval(), valid, max_sequences=128)
    return final["rtd_loss"] * 50.0 + final["clm_loss"]


def _held_out_loss(summary: dict[str, Any], untrained: float) -> float:
    """METRO's held-out objective without the generator, λ·RTD + corrective LM; a run that diverged counts at
    ``untrained``, the loss of the same model before training (it learned nothing that lasted)."""
    if summary["diverged_at"] is not None:
        return untrained
    final = summary["final_eval"]
    return final["rtd_loss"] * 50.0 + final["clm_loss"]


def _per_seed(found: dict[str, Any], part: str, name: str) -> list[dict[str, Any]]:
    return [found[part][name][str(s)] for s in found["seeds"]]


def _claims(plan: Plan, found: dict[str, Any]) -> list[Claim]:
    seeds = found["seeds"]
    accuracy = {
        name: [m["accuracy"] for m in _per_seed(found, "downstream", name)] for name in found["downstream"]
    }
    metro = [summary["final_eval"] for summary in _per_seed(found, "pretraining", "metro")]
    untrained = [found["stability_untrained_loss"][str(s)] for s in seeds]
    scaled = [
        _held_out_loss(r, u)
        for r, u in zip(_per_seed(found, "stability", "scaled init"), untrained, strict=True)
    ]
    plain = [
        _held_out_loss(r, u)
        for r, u in zip(_per_seed(found, "stability", "plain init"), untrained, strict=True)
    ]
    return [
        claim_over_seeds("order-metro-electra", "equal pretraining tokens and size: METRO's downstream accuracy "
                         "(acceptability of held-out sentences) >= ELECTRA's", metric="dev accuracy", seeds=seeds,
                         ours=accuracy["metro"], baseline_name="ELECTRA", baseline=accuracy["electra"],
                         paper_source=PAPER_SOURCES["order"]),
        claim_over_seeds("order-electra-mlm", "equal pretraining tokens and size: ELECTRA's downstream accuracy >= "
                         "MLM's", metric="dev accuracy", seeds=seeds, ours=accuracy["electra"], baseline_name="MLM",
                         baseline=accuracy["mlm"], paper_source=PAPER_SOURCES["electra"]),
        claim_over_seeds("rtd-auc", "the METRO discriminator's RTD AUC on held-out text is >= 0.8",
                         metric="RTD AUC", seeds=seeds, ours=[m.get("rtd_auc", math.nan) for m in metro],
                         baseline_name="target 0.8", baseline=[0.8] * len(seeds), paper_source=PAPER_SOURCES["rtd"]),
        claim_over_seeds("rtd-accuracy", "the METRO discriminator's RTD accuracy on held-out text is at least 0.01 "
                         "above the trivial 'nothing replaced' accuracy", metric="RTD accuracy", seeds=seeds,
                         ours=[m.get("rtd_accuracy", math.nan) for m in metro], baseline_name="trivial (all original)",
                         baseline=[m.get("trivial_rtd_accuracy", math.nan) for m in metro], margin=0.01,
                         paper_source=PAPER_SOURCES["rtd"]),
        claim_over_seeds("stability", f"{plan.stability_layers}-layer Post-LN METRO at lr {plan.stability_lr:g}, no "
                         "clipping: the scaled initialisation ends at a lower held-out loss (50·RTD + CLM) than the "
                         "plain one, which diverges (counted at its untrained loss) or trails",
                         metric="held-out 50·RTD + CLM loss", seeds=seeds, ours=scaled, higher_is_better=False,
                         baseline_name="plain initialisation", baseline=plain, paper_source=PAPER_SOURCES["stability"]),
    ]  # fmt: skip


def _figures(
    out: Path, results: dict[str, PretrainResult], downstream: dict[str, dict[str, dict[str, float]]],
    stability: dict[str, PretrainResult], seeds: list[int],
) -> list[str]:  # fmt: skip
    """Curves of the first seed's runs; downstream accuracy as the mean over seeds."""
    names = []
    for loss, label in (
        ("valid_mlm_loss", "held-out generator / MLM loss"),
        ("valid_rtd_auc", "held-out RTD AUC"),
    ):
        series = {name: _curve(r.history, loss) for name, r in results.items()}
        series = {name: xy for name, xy in series.items() if xy[0]}
        if series:
            path = plot_lines(out / f"curves_{loss.removeprefix('valid_')}.png", series, xlabel="step", ylabel=label,
                              title=f"Pretraining: {label} (seed {seeds[0]})")  # fmt: skip
            names.append(path.name)
    means = {
        name: statistics.fmean(m["accuracy"] for m in runs.values()) for name, runs in downstream.items()
    }
    path = plot_bars(out / "downstream.png", means, ylabel=f"dev accuracy, mean of {len(seeds)} seeds",
                     title="Acceptability of held-out sentences after fine-tuning",
                     reference=0.5, reference_label="chance")  # fmt: skip
    names.append(path.name)
    series = {f"{key}, train": _curve(r.history, "loss") for key, r in stability.items()}
    path = plot_lines(out / "stability.png", series, xlabel="step", ylabel="training loss (METRO objective)",
                      title=f"Post-LN at a high learning rate: scaled vs plain init (seed {seeds[0]})", logy=True)  # fmt: skip
    names.append(path.name)
    return names


def _curve(history: list[dict[str, Any]], name: str) -> tuple[list[int], list[float]]:
    points = [(s, v) for s, v in iterate_losses(history, name) if math.isfinite(v)]
    return [s for s, _ in points], [v for _, v in points]


def _mean_sd(values: list[float], digits: int = 3) -> str:
    """``mean ± sd`` of per-seed values (``—`` when none is finite)."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return "—"
    spread = statistics.stdev(finite) if len(finite) > 1 else 0.0
    return f"{statistics.fmean(finite):.{digits}f} ± {spread:.{digits}f}"


def _write_tables(record: RunDir, plan: Plan, found: dict[str, Any]) -> None:
    corpus, task, seeds = found["corpus"], found["task"], found["seeds"]
    lines = [
        f"Corpus: {corpus['name']}, {corpus['tokens']['train']:,} training / {corpus['tokens']['valid']:,} held-out "
        f"tokens ({corpus['documents']['train']} / {corpus['documents']['valid']} documents). Every arm: "
        f"{plan.steps} steps × {plan.batch_size} sequences of {plan.seq_len} tokens, lr {plan.lr:g}, model "
        + ", ".join(f"{k}={v}" for k, v in plan.model) + f". Mean ± sd over seeds {', '.join(map(str, seeds))}.",
        "",
        "| arm | held-out MLM loss | RTD accuracy | trivial RTD accuracy | RTD AUC | tokens/s | downstream accuracy "
        "| downstream MCC |",
        "|---|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for name in found["pretraining"]:
        finals = [r["final_eval"] for r in _per_seed(found, "pretraining", name)]
        down = _per_seed(found, "downstream", name)
        speed = statistics.fmean(r["tokens_per_second"] for r in _per_seed(found, "pretraining", name))
        cells = [_mean_sd([f.get(key, math.nan) for f in finals])
                 for key in ("mlm_loss", "rtd_accuracy", "trivial_rtd_accuracy", "rtd_auc")]  # fmt: skip
        lines.append(f"| {name} | {' | '.join(cells)} | {speed:,.0f} | {_mean_sd([d['accuracy'] for d in down])} | "
                     f"{_mean_sd([d['matthews'] for d in down])} |")  # fmt: skip
    random_init = _per_seed(found, "downstream", "random init")
    lines.append(f"| random init (no pretraining) | | | | | | {_mean_sd([d['accuracy'] for d in random_init])} | "
                 f"{_mean_sd([d['matthews'] for d in random_init])} |")  # fmt: skip
    lines += ["", f"Downstream task: {task['train']} training / {task['dev']} dev sentences, half with two words "
              "swapped (drawn per seed); fine-tuned " + f"{plan.finetune.epochs:g} epochs at lr {plan.finetune.lr:g} "
              "for every arm, the last epoch's model scored.", "",
              f"Stability: {plan.stability_layers}-layer Post-LN METRO, lr {plan.stability_lr:g}, warm-up "
              f"{plan.stability_warmup} step(s), no gradient clipping, {plan.stability_steps} steps.", "",
              "| initialisation | seed | diverged at | held-out 50·RTD + CLM | RTD AUC |", "|---|---|---|---|---|"]  # fmt: skip
    for key in found["stability"]:
        for run_seed, summary in zip(seeds, _per_seed(found, "stability", key), strict=True):
            untrained = found["stability_untrained_loss"][str(run_seed)]
            final = summary["final_eval"]
            lines.append(f"| {key} | {run_seed} | {summary['diverged_at'] or '—'} | "
                         f"{_held_out_loss(summary, untrained):.3f} | {final.get('rtd_auc', math.nan):.3f} |")  # fmt: skip
    record.write_text("tables.md", "\n".join(lines) + "\n")
