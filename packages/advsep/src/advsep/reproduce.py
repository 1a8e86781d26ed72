"""``advsep reproduce``: the paper's claims (§4–5), measured on this machine.

1. At initialisation (two-layer ReLU network, NTK parameterisation), a linear probe fitted on the FGSM noises of
   the training examples classifies the test examples' noises with accuracy >= 0.95, on digits and on mnist1d.
2. On mnist1d that accuracy is at least 0.3 above the same probe on the clean inputs.
3. Label control: noises built with shuffled labels are separable by those labels (>= 0.9) and not by the true
   ones (within 0.05 of chance).
4. Degradation, as the paper states it: separability weakens when the network moves far from initialisation
   (trained longer, or with a larger learning rate: the probe's accuracy at the farthest point is at least 0.05
   below the first point, with the relative distance ‖θ − θ₀‖ / ‖θ₀‖ reached stated in the claim), yet the noises
   stay easier to classify than the clean inputs at every point of each sweep.
5. Multi-layer networks in the NTK regime: at initialisation the noises of deeper NTK MLPs stay more separable
   than the clean inputs at every depth, on mnist1d and on the theorem's setting (a 10-class mixture on the
   sphere). Where they do not, the claim fails; the depth and the data are not chosen to make it hold.
6. Separability grows with width: the probe's accuracy at the widest network is at least 0.1 above the narrowest.

Every experiment behind a claim runs once per seed of the plan (``--seed`` plus 0, 1 in quick mode, plus 0, 1, 2
in full mode): the seed draws the network's initial weights, orders the training batches and shuffles the labels
of the control, and the probe is refitted on that seed's noises. The data are fixed (mnist1d's standard split;
digits' split and the mixture from ``--seed``), so the clean-input probe is the same for every seed. A claim that
compares two measurements of the run (the noise probe against the clean-input probe, the moved network against the
first point of its sweep, the widest network against the narrowest) is decided over the seeds, paired by seed
(:func:`papers_common.claim_over_seeds`): it holds when the mean advantage exceeds the margin by more than the
advantage's standard deviation across seeds. A claim on one method against a fixed number (the probe at
initialisation against 0.95, the label control against 0.9 and chance) is decided on the mean over the same seeds.

Sweeps run on mnist1d, where the clean-input probe is weak (digits are nearly linearly separable already, which
would hide the effect); each point is the mean over the seeds. The PGD-steps sweep (a figure, no claim) and the
comparison of the four probes run with the first seed only.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from advsep import __version__
from advsep.data import Dataset, digits, gaussian, mnist1d
from advsep.experiment import Axis, Setup, clean_probe, run_experiment, sweep_setup
from advsep.probe import BACKENDS
from papers_common import (
    Claim,
    Paper,
    Results,
    RunDir,
    claim,
    claim_over_seeds,
    plot_lines,
    progress,
    write_results,
)

PAPER = Paper("Adversarial Noises Are Linearly Separable for (Nearly) Random Neural Networks", "2206.04316")


@dataclass(frozen=True)
class Plan:
    """Sizes of one reproduction mode. ``seeds`` are added to ``--seed``; every experiment behind a claim runs
    once per seed, so a plan has at least two."""

    width: int
    widths: tuple[int, ...]
    epochs: tuple[int, ...]
    epochs_lr: float
    lrs: tuple[float, ...]
    lrs_epochs: int
    depths: tuple[int, ...]
    steps: tuple[int, ...]
    seeds: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(set(self.seeds)) < 2:
            raise ValueError(
                f"a plan needs at least two distinct seeds to decide its comparisons, got {self.seeds}"
            )


# In the NTK parameterisation a learning rate of order 1 moves the weights by a few percent of their norm in 50
# epochs, too little for the degradation to show; learning rates of 10-100 move them by 0.2-0.9 (quick mode, mnist1d, m = 1,024).
# Quick mode runs two seeds on shorter sweeps than 0.2.0's single seed (3 epochs and 3 learning rates instead of 4 and
# 5, 5 widths instead of 6), which keeps its time close to that of one seed on the longer sweeps.
QUICK = Plan(width=1024, widths=(2, 8, 32, 128, 2048), epochs=(0, 10, 50), epochs_lr=30.0, lrs=(1.0, 10.0, 100.0),
             lrs_epochs=10, depths=(2, 4, 8), steps=(1, 3, 10, 30), seeds=(0, 1))  # fmt: skip
FULL = Plan(width=4096, widths=(2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192),
            epochs=(0, 1, 2, 5, 10, 20, 50, 100), epochs_lr=30.0, lrs=(0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0),
            lrs_epochs=10, depths=(2, 3, 4, 6, 8), steps=(1, 2, 3, 5, 10, 20, 50), seeds=(0, 1, 2))  # fmt: skip
# The paper column of each claim. No table values of the paper's experiments (CIFAR-10, at initialisation and
# after training) are at hand, so no number of theirs is quoted: each claim says what the paper states, or that
# it has no such experiment.
NO_VALUES = "no table values available"
SEPARABLE = f"qualitative in the paper: random nets' noises are linearly separable (CIFAR-10); {NO_VALUES}"
EASIER = f"qualitative in the paper: noises far easier to classify than inputs; {NO_VALUES}"
CONTROL = "no random-label experiment in the paper's reported results"
DEGRADES = f"qualitative in the paper: separability weakens far from initialisation; {NO_VALUES}"
NTK = f"qualitative in the paper: its NTK-regime theorem for multi-layer nets; {NO_VALUES}"
NO_WIDTH = "no width sweep in the paper's reported results"
DEGRADE_MARGIN = 0.05  # a drop this large is several standard errors of an accuracy on 1,000 test signals


MEASURED = ("noise_train_accuracy", "noise_test_accuracy", "noise_test_accuracy_true_labels", "distance",
            "model_test_accuracy")  # fmt: skip


def _merge(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One experiment's row from its runs with different seeds: each measured number's mean, its per-seed values
    (``_seeds``, in the order of ``seeds``) and their sample standard deviation (``_sd``, 0 for one seed)."""
    merged = {k: v for k, v in runs[0].items() if k != "seed"}
    merged["seeds"] = [r["seed"] for r in runs]
    for key in MEASURED:
        values = [float(r[key]) for r in runs]
        merged[key] = statistics.fmean(values)
        merged[f"{key}_sd"] = statistics.stdev(values) if len(values) > 1 else 0.0
        merged[f"{key}_seeds"] = values
    return merged


def _same_computation(setup: Setup) -> Setup:
    """A setup that runs exactly the same computation as ``setup``: without training, the learning rate and the
    batch size never act, and the NTK MLP of depth 2 is the two-layer network."""
    if setup.epochs == 0:
        setup = replace(setup, lr=0.0, batch_size=0)
    if setup.model == "mlp" and setup.depth == 2:
        setup = replace(setup, model="two-layer")
    return setup


class _Runner:
    """Runs the experiments of one reproduction, each distinct computation once, and reports a progress line after
    every step (a dataset made, a probe fitted, an experiment run), so that the lines are seconds apart."""

    def __init__(self, total: int) -> None:
        self.bar = progress(total=total, desc="reproduce", unit="step", interval=0)
        self.bar.set_postfix(done="started")
        self.bar.update(0)  # a first line before the first dataset is made
        self.done: dict[tuple[str, Setup], dict[str, Any]] = {}

    def step(self, what: str) -> None:
        self.bar.set_postfix(done=what)
        self.bar.update(1)

    def make(self, what: str, build: Callable[[], Any]) -> Any:
        value = build()
        self.step(what)
        return value

    def measure(self, name: str, data: Dataset, setup: Setup, what: str) -> dict[str, Any]:
        """:func:`run_experiment` of ``setup`` on the dataset ``name``, with ``setup``'s own settings recorded."""
        key = (name, _same_computation(setup))
        if key not in self.done:
            self.done[key] = run_experiment(data, setup)
        self.step(f"{name}, {what}, seed {setup.seed}")
        return {**self.done[key], **asdict(setup)}

    def over_seeds(
        self, name: str, data: Dataset, setup: Setup, seeds: Sequence[int], what: str
    ) -> dict[str, Any]:
        return _merge([self.measure(name, data, replace(setup, seed=s), what) for s in seeds])

    def sweep(
        self, name: str, data: Dataset, base: Setup, axis: Axis, values: Sequence[Any], seeds: Sequence[int]
    ) -> list[dict[str, Any]]:
        return [{"axis": axis, "value": v, **self.over_seeds(name, data, sweep_setup(base, axis, v), seeds,
                                                             f"{axis} = {v:g}")} for v in values]  # fmt: skip

    def close(self) -> None:
        self.bar.close()


def _steps(plan: Plan) -> int:
    """The progress steps of a run: 3 datasets, 3 clean-input probes, the experiments per seed, the probes and the
    PGD sweep of the first seed."""
    per_seed = 3 + len(plan.widths) + len(plan.epochs) + len(plan.lrs) + 2 * len(plan.depths)
    return 6 + len(plan.seeds) * per_seed + len(BACKENDS) + len(plan.steps)


def run(out: Path, *, quick: bool = True, seed: int = 0) -> Results:
    """Measure every claim of the chosen mode on the CPU; write results.json/.md, sweeps.json, tables.md and the
    figures."""
    plan = QUICK if quick else FULL
    seeds = tuple(seed + s for s in plan.seeds)
    mode = "quick" if quick else "full"
    started = time.perf_counter()
    out = Path(out)
    record = RunDir(out)
    base = Setup(width=plan.width)
    config = {"mode": mode, "seed": seed, "seeds": list(seeds), "device": "cpu", "plan": asdict(plan),
              "setup": asdict(base)}  # fmt: skip
    record.write_config(config)
    runner = _Runner(_steps(plan))
    sets = {
        "digits": runner.make("digits data", lambda: digits(seed=seed)),
        "mnist1d": runner.make("mnist1d data", mnist1d),
        # the theorem's setting: 10 classes on the sphere of R^64
        "gaussian": runner.make("gaussian data", lambda: gaussian(seed=seed)),
    }
    clean = {name: runner.make(f"{name} clean-input probe", lambda d=data: clean_probe(d))
             for name, data in sets.items()}  # fmt: skip
    init = {name: runner.over_seeds(name, sets[name], base, seeds, "at initialisation")
            for name in ("digits", "mnist1d")}  # fmt: skip
    m1d = sets["mnist1d"]
    control = runner.over_seeds("mnist1d", m1d, replace(base, labels="shuffled"), seeds, "shuffled labels")
    sweeps = {
        "width": runner.sweep("mnist1d", m1d, base, "width", plan.widths, seeds),
        "epochs": runner.sweep(
            "mnist1d", m1d, replace(base, lr=plan.epochs_lr), "epochs", plan.epochs, seeds
        ),
        "lr": runner.sweep("mnist1d", m1d, replace(base, epochs=plan.lrs_epochs), "lr", plan.lrs, seeds),
        "depth": runner.sweep("mnist1d", m1d, base, "depth", plan.depths, seeds),
        "depth_gaussian": runner.sweep("gaussian", sets["gaussian"], base, "depth", plan.depths, seeds),
    }
    first = replace(base, seed=seeds[0])
    probes = {b: runner.measure("mnist1d", m1d, replace(first, probe=b), f"{b} probe")["noise_test_accuracy"]
              for b in BACKENDS}  # fmt: skip
    sweeps["steps"] = runner.sweep("mnist1d", m1d, base, "steps", plan.steps, seeds[:1])
    runner.close()
    found = {"seeds": list(seeds), "clean": clean, "init": init, "control": control, "probes": probes,
             "sweeps": sweeps}  # fmt: skip
    record.write_json("sweeps.json", found)
    figures = _figures(out, sweeps, clean)
    claims = _claims(plan, found)
    _write_table(record, plan, found)
    results = Results(
        "advsep", __version__, PAPER, mode, config, time.perf_counter() - started, claims, figures
    )
    write_results(results, out)
    return results


AXIS_LABELS = {
    "width": ("width m (hidden units)", True),
    "epochs": ("training epochs", False),
    "lr": ("learning rate", True),
    "depth": ("depth (weight layers)", False),
    "steps": ("PGD steps", True),
}


def _figures(out: Path, sweeps: dict[str, list[dict[str, Any]]], clean: dict[str, float]) -> list[str]:
    names = []
    for name, rows in sweeps.items():
        axis, _, dataset = name.partition("_")
        dataset = dataset or "mnist1d"
        x = [r["value"] for r in rows]
        label, logx = AXIS_LABELS[axis]
        series = {"noise probe (test)": (x, [r["noise_test_accuracy"] for r in rows]),
                  "clean-input probe": (x, [clean[dataset]] * len(x))}  # fmt: skip
        if axis in ("epochs", "lr"):
            series["network's own test accuracy"] = (x, [r["model_test_accuracy"] for r in rows])
            series["distance from init, ‖θ − θ₀‖/‖θ₀‖"] = (x, [r["distance"] for r in rows])
        attack = "PGD" if axis == "steps" else "FGSM"
        path = plot_lines(out / f"sweep_{name}.png", series, xlabel=label, ylabel="accuracy (distance)",
                          title=f"{dataset}: linear probe on {attack} noises vs {label}", logx=logx)  # fmt: skip
        names.append(path.name)
    return names


def _lowest(rows: list[dict[str, Any]]) -> list[float]:
    """Per seed, the probe's lowest test accuracy over the points of a sweep."""
    return [min(values) for values in zip(*(r["noise_test_accuracy_seeds"] for r in rows), strict=True)]


def _claims(plan: Plan, found: dict[str, Any]) -> list[Claim]:
    clean, init, control, sweeps = found["clean"], found["init"], found["control"], found["sweeps"]
    seeds = found["seeds"]
    m = plan.width
    chance = 0.1  # both datasets have 10 balanced classes
    mean = f"mean over seeds {', '.join(map(str, seeds))}"

    def clean_input(dataset: str) -> dict[str, Any]:
        # the data are fixed, so the clean-input probe measures the same in every seed
        return {"baseline_name": "clean-input probe", "baseline": [clean[dataset]] * len(seeds)}

    claims = [
        claim(f"init-{name}", f"{name}: two-layer ReLU net (m={m}) at initialisation, linear probe on FGSM noises: "
              f"test accuracy >= 0.95 ({mean})", metric=f"probe test accuracy, {mean}",
              ours=init[name]["noise_test_accuracy"], target=0.95, paper_source=SEPARABLE)
        for name in ("digits", "mnist1d")
    ]  # fmt: skip
    claims += [
        claim_over_seeds("mnist1d-vs-clean", "mnist1d: the noise probe's test accuracy is at least 0.3 above the "
                         "same probe on clean inputs", metric="probe test accuracy", seeds=seeds,
                         ours=init["mnist1d"]["noise_test_accuracy_seeds"], **clean_input("mnist1d"), margin=0.3,
                         paper_source=EASIER),
        claim("control-shuffled", "mnist1d: noises built with shuffled labels are separable by those labels "
              f"(test accuracy >= 0.9, {mean})", metric=f"probe test accuracy vs shuffled labels, {mean}",
              ours=control["noise_test_accuracy"], target=0.9, paper_source=CONTROL),
        claim("control-true", "mnist1d: the same noises are not separable by the true labels (test accuracy within "
              f"0.05 of chance, 0.1; {mean})", metric=f"probe test accuracy vs true labels, {mean}",
              ours=control["noise_test_accuracy_true_labels"], higher_is_better=False, target=chance + 0.05,
              paper_source=CONTROL),
    ]  # fmt: skip
    for axis, how in (("epochs", f"trained longer (epochs {plan.epochs[0]} → {plan.epochs[-1]} at lr "
                                  f"{plan.epochs_lr:g})"),
                      ("lr", f"trained with a larger learning rate (lr {plan.lrs[0]:g} → {plan.lrs[-1]:g}, "
                             f"{plan.lrs_epochs} epochs)")):  # fmt: skip
        rows = sweeps[axis]
        first, last = rows[0], rows[-1]
        claims += [
            claim_over_seeds(f"degrade-{axis}", f"mnist1d: separability weakens as the network moves from "
                             f"initialisation: {how}, relative distance {first['distance']:.2f} → "
                             f"{last['distance']:.2f}, lowers the noise probe's test accuracy by at least "
                             f"{DEGRADE_MARGIN}", metric="probe test accuracy", seeds=seeds,
                             ours=last["noise_test_accuracy_seeds"], baseline_name=f"{axis} = {first['value']:g}",
                             baseline=first["noise_test_accuracy_seeds"], higher_is_better=False,
                             margin=DEGRADE_MARGIN, paper_source=DEGRADES),
            claim_over_seeds(f"above-clean-{axis}", f"mnist1d: yet at every {axis} of the sweep (distance up to "
                             f"{max(r['distance'] for r in rows):.2f}) the noise probe stays above the clean-input "
                             "probe", metric="lowest probe test accuracy in the sweep", seeds=seeds,
                             ours=_lowest(rows), **clean_input("mnist1d"), paper_source=EASIER),
        ]  # fmt: skip
    for name, dataset, what in (("depth", "mnist1d", "mnist1d"),
                                ("depth_gaussian", "gaussian", "10-class mixture on the sphere of R^64")):  # fmt: skip
        rows = sweeps[name]
        claims.append(
            claim_over_seeds(f"ntk-{name.replace('_', '-')}", f"{what}: NTK MLPs at initialisation (depth "
                             f"{rows[0]['value']} → {rows[-1]['value']}, m = {m}): at every depth the noise probe "
                             "stays above the clean-input probe", metric="lowest probe test accuracy over depths",
                             seeds=seeds, ours=_lowest(rows), **clean_input(dataset), paper_source=NTK)
        )  # fmt: skip
    width = sweeps["width"]
    claims.append(
        claim_over_seeds("width", f"mnist1d: separability grows with width (m = {width[0]['value']} → "
                         f"{width[-1]['value']}: accuracy up by at least 0.1)", metric="probe test accuracy",
                         seeds=seeds, ours=width[-1]["noise_test_accuracy_seeds"],
                         baseline_name=f"m = {width[0]['value']}", baseline=width[0]["noise_test_accuracy_seeds"],
                         margin=0.1, paper_source=NO_WIDTH)
    )  # fmt: skip
    return claims


def _spread(row: dict[str, Any], key: str) -> str:
    """``mean ± sd`` of a measured number over the row's seeds (the mean alone for one seed)."""
    if len(row["seeds"]) < 2:
        return f"{row[key]:.3f}"
    return f"{row[key]:.3f} ± {row[f'{key}_sd']:.3f}"


def _write_table(record: RunDir, plan: Plan, found: dict[str, Any]) -> None:
    clean, init, control, seeds = found["clean"], found["init"], found["control"], found["seeds"]
    lines = [
        f"Clean-input probe, test accuracy: {', '.join(f'{k} {v:.3f}' for k, v in clean.items())}.",
        "",
        f"Two-layer ReLU network, NTK parameterisation, m = {plan.width}, FGSM noises, L-BFGS logistic probe on "
        f"standardised noises; mean ± sample standard deviation over seeds {seeds}.",
        "",
        "| dataset | labels | probe on noises, train | probe on noises, test | vs true labels | clean-input probe |",
        "|---|---|---|---|---|---|",
    ]
    for name, labels, r in (
        *((name, "true", r) for name, r in init.items()),
        ("mnist1d", "shuffled", control),
    ):
        lines.append(f"| {name} | {labels} | {_spread(r, 'noise_train_accuracy')} | "
                     f"{_spread(r, 'noise_test_accuracy')} | {_spread(r, 'noise_test_accuracy_true_labels')} | "
                     f"{clean[name]:.3f} |")  # fmt: skip
    lines += ["", f"The same mnist1d noises (true labels, seed {seeds[0]}), test accuracy of each probe:", "",
              "| " + " | ".join(found["probes"]) + " |", "|" + "---|" * len(found["probes"]),
              "| " + " | ".join(f"{v:.3f}" for v in found["probes"].values()) + " |"]  # fmt: skip
    for name, rows in found["sweeps"].items():
        axis, _, dataset = name.partition("_")
        which = f"seeds {rows[0]['seeds']}" if len(rows[0]["seeds"]) > 1 else f"seed {rows[0]['seeds'][0]}"
        lines += ["", f"Sweep over {axis} ({dataset or 'mnist1d'}, {which}):", "", "| " + axis + " | probe test "
                  "accuracy | distance from init | network test accuracy |", "|---|---|---|---|"]  # fmt: skip
        lines += [f"| {r['value']:g} | {_spread(r, 'noise_test_accuracy')} | {r['distance']:.3f} | "
                  f"{r['model_test_accuracy']:.3f} |" for r in rows]  # fmt: skip
    record.write_text("tables.md", "\n".join(lines) + "\n")
