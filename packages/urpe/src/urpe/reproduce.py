"""``urpe reproduce``: the paper's synthetic evidence that RPE Transformers are not universal and URPE ones are.

Every model is trained once per seed (``Plan.num_seeds`` consecutive seeds from ``--seed``). Claims are computed
from the measured numbers: comparisons of two methods by :func:`papers_common.claim_over_seeds` (paired by seed,
holding only when the mean advantage beats the margin by more than its seed-to-seed spread), the rest by
:func:`papers_common.claim`:

1. Position identification: URPE and absolute positions reach high accuracy (mean over the seeds); RPE cannot (its
   attention rows are probability vectors, so a position-independent input gives every position the same output)
   and no position encoding at all stays at chance; URPE beats RPE over the seeds.
2. Even-token prediction: URPE solves it (mean over the seeds) and beats RPE by a wide margin over the seeds.
3. Theory check on the models trained with the first seed: every RPE attention row sums to 1; URPE rows do not.
4. Full mode with ``--data-dir``: a causal byte-level language model with URPE reaches a lower validation
   perplexity than RPE at equal steps and parameters, over the seeds.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from papers_common import (
    Claim,
    InputError,
    Paper,
    Results,
    RunDir,
    claim,
    claim_over_seeds,
    plot_bars,
    plot_lines,
    progress,
    write_results,
)
from urpe import __version__
from urpe.experiment import ModelSize, language_model, synthetic_model
from urpe.model import Position, TransformerModel
from urpe.tasks import SyntheticTask
from urpe.text import TextCorpus
from urpe.train import Schedule, train_lm, train_synthetic

PAPER = Paper("Your Transformer May Not be as Powerful as You Expect", "2205.13401")
POSITIONS: tuple[Position, ...] = ("none", "absolute", "rpe", "urpe")

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Plan:
    """Sizes and budgets of one reproduction mode; every model is trained with ``num_seeds`` seeds."""

    seq_len: int
    vocab: int
    size: ModelSize
    pi: Schedule
    etp: Schedule
    lm: Schedule
    lm_seq_len: int
    num_seeds: int

    def __post_init__(self) -> None:
        if self.num_seeds < 2:
            raise InputError(
                f"a comparison over seeds needs at least 2 seeds, got num_seeds={self.num_seeds}"
            )

    def seeds(self, first: int) -> list[int]:
        """The seeds of a run started with ``--seed first``: ``first, first + 1, ...``."""
        return [first + k for k in range(self.num_seeds)]


# Quick mode trains every model with 2 seeds. Even-token runs use batches of 32 instead of 64 (3000 steps), which
# halves their cost, so the whole mode costs little more than a single seed did.
QUICK = Plan(
    seq_len=16,
    vocab=10,
    size=ModelSize(d_model=64, num_heads=4, num_layers=3, ffn_dim=128),
    pi=Schedule(steps=600, batch_size=32, lr=2e-3, warmup=50, eval_batches=20),
    etp=Schedule(steps=3000, batch_size=32, lr=2e-3, warmup=100, eval_batches=20),
    lm=Schedule(steps=300, batch_size=16, lr=1e-3, warmup=30, eval_batches=8),
    lm_seq_len=64,
    num_seeds=2,
)
FULL = Plan(
    seq_len=32,
    vocab=10,
    size=ModelSize(d_model=64, num_heads=4, num_layers=3, ffn_dim=128),
    pi=Schedule(steps=2000, batch_size=64, lr=2e-3, warmup=200, eval_batches=50),
    etp=Schedule(steps=8000, batch_size=64, lr=2e-3, warmup=500, eval_batches=50),
    lm=Schedule(steps=3000, batch_size=32, lr=1e-3, warmup=200, eval_batches=50),
    lm_seq_len=128,
    num_seeds=3,
)


def row_sum_deviation(model: TransformerModel, tokens: torch.Tensor) -> float:
    """Largest ``|sum_j W_ij - 1|`` over every layer, head and row of the model's attention weights ``W``."""
    with torch.no_grad():
        maps = model.attention_maps(tokens)
    return max(float((w.sum(-1) - 1).abs().max()) for w in maps)


def run(
    out: Path,
    *,
    quick: bool = True,
    seed: int = 0,
    device: str | torch.device = "cpu",
    data_dir: Path | None = None,
) -> Results:
    """Run every experiment of the chosen mode, write ``results.json``, ``results.md`` and figures into ``out``.

    Every model is trained once per seed of ``plan.seeds(seed)``; each run has its own directory
    ``<out>/runs/<task>-<position>-seed<seed>``.
    """
    if not quick and data_dir is None:
        raise InputError("--full needs --data-dir: a folder of .txt files for the language-model claim")
    plan = QUICK if quick else FULL
    seeds = plan.seeds(seed)
    started = time.perf_counter()
    out = Path(out)
    runs = RunDir(out)
    config: dict[str, Any] = {
        "mode": "quick" if quick else "full",
        "seed": seed,
        "seeds": seeds,
        "plan": asdict(plan),
    }
    runs.write_config({**config, "data_dir": data_dir})

    # accuracy[task][position][k]: held-out accuracy of the model trained with seeds[k]
    accuracy: dict[str, dict[str, list[float]]] = {}
    models: dict[str, TransformerModel] = {}
    pi = SyntheticTask("position-identification", plan.seq_len, plan.vocab)
    etp = SyntheticTask("even-token", plan.seq_len, plan.vocab)
    experiments = [(pi, plan.pi, position) for position in POSITIONS]
    experiments += [(etp, plan.etp, position) for position in ("rpe", "urpe")]
    lm_runs = 0 if quick else 2 * len(seeds)
    # one unit per training run, then the row-sum measurement and the figures; each run reports its own steps
    with progress(
        total=len(seeds) * len(experiments) + lm_runs + 2, desc="reproduce", unit="stage"
    ) as stages:
        for run_seed in seeds:
            for task, schedule, position in experiments:
                name = f"{task.name}-{position}-seed{run_seed}"
                stages.set_postfix(stage=name)
                logger.info("reproduce: training %s (%d steps)", name, schedule.steps)
                torch.manual_seed(run_seed)
                model = synthetic_model(task, position, plan.size)
                result = train_synthetic(
                    model, task, schedule, seed=run_seed, device=device, run=RunDir(out / "runs" / name)
                )
                accuracy.setdefault(task.name, {}).setdefault(position, []).append(result.metrics["accuracy"])
                if task is pi and run_seed == seeds[0]:
                    models[position] = model
                stages.update()

        stages.set_postfix(stage="row sums")
        logger.info(
            "reproduce: measuring attention row sums of the trained RPE and URPE models (seed %d)", seeds[0]
        )
        probe = pi.sample(plan.pi.batch_size, torch.Generator().manual_seed(seeds[0] + 20_000), device).tokens
        deviation = {position: row_sum_deviation(models[position], probe) for position in ("rpe", "urpe")}
        rows = {
            position: models[position].attention_maps(probe[:1])[0][0, 0].sum(-1).tolist()
            for position in ("rpe", "urpe")
        }
        stages.update()

        claims = _synthetic_claims(pi, etp, seeds, accuracy, deviation)
        stages.set_postfix(stage="figures")
        over = f"mean over {len(seeds)} seeds"
        pi_mean = {p: statistics.fmean(v) for p, v in accuracy[pi.name].items()}
        etp_mean = {p: statistics.fmean(v) for p, v in accuracy[etp.name].items()}
        figures = [
            plot_bars(out / "position_identification.png", pi_mean, ylabel=f"accuracy ({over})", title=f"Position identification (L={pi.seq_len})",
                      reference=pi.chance, reference_label="chance").name,
            plot_bars(out / "even_token.png", etp_mean, ylabel=f"accuracy, i < L/2 ({over})", title=f"Even-token prediction (L={etp.seq_len})",
                      reference=etp.chance, reference_label="chance").name,
            plot_lines(out / "row_sums.png", {p.upper(): (list(range(len(r))), r) for p, r in rows.items()}, xlabel="query position i",
                       ylabel="sum_j of attention weights", title=f"Row sums, layer 1, head 1 (trained on position identification, seed {seeds[0]})").name,
        ]  # fmt: skip
        stages.update()
        if not quick:
            assert data_dir is not None
            perplexity = _language_model(plan, data_dir, seeds, device, out, stages)
            claims.append(_language_model_claim(seeds, perplexity))
            config["data_dir"] = str(data_dir)
    results = Results(
        "urpe",
        __version__,
        PAPER,
        "quick" if quick else "full",
        config,
        time.perf_counter() - started,
        claims,
        figures,
    )
    write_results(results, out)
    return results


# The paper's synthetic results (L = 128, width 768, 40k updates) are qualitative here: no exact
# per-task numbers are quoted (the spec's recollection of them is unverified).
PAPER_SYNTHETIC = "synthetic tasks, L = 128"


def _synthetic_claims(
    pi: SyntheticTask,
    etp: SyntheticTask,
    seeds: Sequence[int],
    accuracy: dict[str, dict[str, list[float]]],
    deviation: dict[str, float],
) -> list[Claim]:
    """The synthetic-task claims from per-seed accuracies (``accuracy[task][position][k]`` for ``seeds[k]``) and the
    row-sum deviations of the models trained with ``seeds[0]``."""
    pi_acc, etp_acc = accuracy[pi.name], accuracy[etp.name]
    n = len(seeds)

    def mean(values: list[float]) -> float:
        return statistics.fmean(values)

    return [
        claim(
            "pi-urpe",
            f"Position identification (L={pi.seq_len}): URPE accuracy >= 0.95 (mean over {n} seeds)",
            metric=f"accuracy, mean over {n} seeds",
            ours=mean(pi_acc["urpe"]),
            target=0.95,
            paper_source=f"qualitative in the paper: URPE ≈ 100% ({PAPER_SYNTHETIC})",
        ),
        claim_over_seeds(
            "pi-urpe-vs-rpe",
            "Position identification: URPE beats RPE by more than 0.5 accuracy, beyond the seed-to-seed spread",
            metric="accuracy",
            seeds=seeds,
            ours=pi_acc["urpe"],
            baseline_name="RPE",
            baseline=pi_acc["rpe"],
            margin=0.5,
            paper_source=f"qualitative in the paper: URPE ≈ 100%, RPE near chance ({PAPER_SYNTHETIC})",
        ),
        claim(
            "pi-rpe",
            f"Position identification: RPE accuracy <= 0.5 (RPE is not universal; mean over {n} seeds)",
            metric=f"accuracy, mean over {n} seeds",
            ours=mean(pi_acc["rpe"]),
            higher_is_better=False,
            target=0.5,
            paper_source=f"qualitative in the paper: RPE far below, near chance ({PAPER_SYNTHETIC})",
        ),
        claim(
            "pi-absolute",
            f"Position identification: absolute position embeddings >= 0.95 (mean over {n} seeds)",
            metric=f"accuracy, mean over {n} seeds",
            ours=mean(pi_acc["absolute"]),
            target=0.95,
            paper_source=f"qualitative in the paper: APE ≈ 100% ({PAPER_SYNTHETIC})",
        ),
        claim(
            "pi-none",
            f"Position identification: no position encoding stays at chance (<= 2 x {pi.chance:.3g}; mean over {n} seeds)",
            metric=f"accuracy, mean over {n} seeds",
            ours=mean(pi_acc["none"]),
            higher_is_better=False,
            target=2 * pi.chance,
            paper_source=f"qualitative in the paper: no position encoding at chance ({PAPER_SYNTHETIC})",
        ),
        claim(
            "etp-urpe",
            f"Even-token prediction (L={etp.seq_len}): URPE accuracy >= 0.95 (mean over {n} seeds)",
            metric=f"accuracy, mean over {n} seeds",
            ours=mean(etp_acc["urpe"]),
            target=0.95,
            paper_source=f"qualitative in the paper: URPE ≈ 100% ({PAPER_SYNTHETIC})",
        ),
        claim_over_seeds(
            "etp-urpe-vs-rpe",
            "Even-token prediction: URPE beats RPE by more than 0.3 accuracy, beyond the seed-to-seed spread",
            metric="accuracy (positions i < L/2)",
            seeds=seeds,
            ours=etp_acc["urpe"],
            baseline_name="RPE",
            baseline=etp_acc["rpe"],
            margin=0.3,
            paper_source=f"qualitative in the paper: URPE ≈ 100%, RPE far below ({PAPER_SYNTHETIC})",
        ),
        claim(
            "rowsum-rpe",
            f"Theory: every RPE attention row sums to 1 (max |row sum - 1|; model of seed {seeds[0]})",
            metric="max |row sum - 1|",
            ours=deviation["rpe"],
            higher_is_better=False,
            target=1e-5,
            paper_source="a theorem in the paper (RPE rows are probability vectors); nothing measured",
        ),
        claim(
            "rowsum-urpe",
            f"Theory: URPE attention rows do not sum to 1 (max |row sum - 1| >= 0.05; model of seed {seeds[0]})",
            metric="max |row sum - 1|",
            ours=deviation["urpe"],
            target=0.05,
            paper_source="a theorem in the paper (URPE is universal); no row sums measured",
        ),
    ]


def _language_model_claim(seeds: Sequence[int], perplexity: dict[str, list[float]]) -> Claim:
    """URPE vs RPE validation perplexity, paired by seed (``perplexity[position][k]`` for ``seeds[k]``)."""
    return claim_over_seeds(
        "lm-perplexity",
        "Causal byte-level LM: URPE validation perplexity below RPE's at equal steps and parameters, beyond the "
        "seed-to-seed spread",
        metric="validation perplexity",
        seeds=seeds,
        ours=perplexity["urpe"],
        baseline_name="RPE",
        baseline=perplexity["rpe"],
        higher_is_better=False,
        paper_source="not reported for this data: the paper's language-model comparison is on WikiText-103",
    )


def _language_model(
    plan: Plan, data_dir: Path, seeds: Sequence[int], device: str | torch.device, out: Path, stages: Any
) -> dict[str, list[float]]:
    corpus = TextCorpus(data_dir)
    perplexity: dict[str, list[float]] = {}
    for run_seed in seeds:
        for position in ("rpe", "urpe"):
            name = f"lm-{position}-seed{run_seed}"
            stages.set_postfix(stage=name)
            logger.info("reproduce: training %s (%d steps)", name, plan.lm.steps)
            torch.manual_seed(run_seed)
            model = language_model(plan.lm_seq_len, position, plan.size)
            result = train_lm(
                model, corpus, plan.lm, seed=run_seed, device=device, run=RunDir(out / "runs" / name)
            )
            perplexity.setdefault(position, []).append(result.metrics["perplexity"])
            stages.update()
    return perplexity
