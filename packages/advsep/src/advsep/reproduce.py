"""``advsep reproduce``: the paper's claims (§4–5), measured on this machine.

1. At initialisation (two-layer ReLU network, NTK parameterisation), a linear probe fitted on the FGSM noises of
   the training examples classifies the test examples' noises with accuracy >= 0.95, on digits and on mnist1d.
2. On mnist1d that accuracy is at least 0.3 above the same probe on the clean inputs.
3. Label control: noises built with shuffled labels are separable by those labels (>= 0.9) and not by the true
   ones (within 0.05 of chance).
4. Degradation, as the paper states it: separability weakens when the network moves far from initialisation
   (trained longer, or with a larger learning rate: the probe's accuracy at the farthest point is at least 0.05
   below initialisation, with the relative distance ‖θ − θ₀‖ / ‖θ₀‖ reached stated in the claim), yet the noises
   stay easier to classify than the clean inputs at every point of each sweep.
5. Multi-layer networks in the NTK regime: at initialisation the noises of deeper NTK MLPs stay more separable
   than the clean inputs at every depth, on mnist1d and on the theorem's setting (a 10-class mixture on the
   sphere). Where they do not, the claim fails; the depth and the data are not chosen to make it hold.
6. Separability grows with width: the probe's accuracy at the widest network is at least 0.1 above the narrowest.

Sweeps run on mnist1d, where the clean-input probe is weak (digits are nearly linearly separable already, which
would hide the effect). With several seeds each point is the mean over seeds.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from advsep import __version__
from advsep.data import Dataset, digits, gaussian, mnist1d
from advsep.experiment import Setup, clean_probe, run_experiment, sweep
from advsep.probe import BACKENDS
from papers_common import Baseline, Claim, Paper, Results, RunDir, claim, plot_lines, progress, write_results

PAPER = Paper("Adversarial Noises Are Linearly Separable for (Nearly) Random Neural Networks", "2206.04316")


@dataclass(frozen=True)
class Plan:
    """Sizes of one reproduction mode."""

    width: int
    widths: tuple[int, ...]
    epochs: tuple[int, ...]
    epochs_lr: float
    lrs: tuple[float, ...]
    lrs_epochs: int
    depths: tuple[int, ...]
    steps: tuple[int, ...]
    seeds: tuple[int, ...]


# In the NTK parameterisation a learning rate of order 1 moves the weights by a few percent of their norm in 50
# epochs, too little for the degradation to show; learning rates of 10-100 move them by 0.2-0.9 (quick mode, mnist1d, m = 1,024).
QUICK = Plan(width=1024, widths=(2, 8, 32, 128, 512, 2048), epochs=(0, 5, 20, 50), epochs_lr=30.0,
             lrs=(1.0, 3.0, 10.0, 30.0, 100.0), lrs_epochs=10, depths=(2, 4, 8), steps=(1, 3, 10, 30), seeds=(0,))  # fmt: skip
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


def _merge(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """One experiment's row from its runs with different seeds: each measured number's mean and ``_std``."""
    merged = dict(rows[0])
    for key in MEASURED:
        values = [r[key] for r in rows]
        merged[key], merged[f"{key}_std"] = statistics.fmean(values), statistics.pstdev(values)
    return merged


def _mean_over_seeds(data: Dataset, setup: Setup, seeds: tuple[int, ...]) -> dict[str, Any]:
    return {**_merge([run_experiment(data, replace(setup, seed=s)) for s in seeds]), "seeds": list(seeds)}


def _sweep(
    data: Dataset, base: Setup, axis: str, values: tuple, seeds: tuple[int, ...]
) -> list[dict[str, Any]]:
    per_seed = [sweep(data, replace(base, seed=s), axis, list(values)) for s in seeds]  # type: ignore[arg-type]
    return [_merge(list(points)) for points in zip(*per_seed, strict=True)]


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
    config = {"mode": mode, "seed": seed, "device": "cpu", "plan": asdict(plan), "setup": asdict(base)}
    record.write_config(config)
    bar = progress(total=5, desc="reproduce", unit="part")
    sets = {"digits": digits(seed=seed), "mnist1d": mnist1d()}
    mixture = gaussian(seed=seed)  # the theorem's setting: 10 classes on the sphere of R^64
    clean = {name: clean_probe(data) for name, data in sets.items()}
    clean["gaussian"] = clean_probe(mixture)
    init = {name: _mean_over_seeds(data, base, seeds) for name, data in sets.items()}
    bar.update(1)
    control = _mean_over_seeds(sets["mnist1d"], replace(base, labels="shuffled"), seeds)
    first = replace(base, seed=seeds[0])
    probes = {
        b: run_experiment(sets["mnist1d"], replace(first, probe=b))["noise_test_accuracy"] for b in BACKENDS
    }
    bar.update(1)
    m1d = sets["mnist1d"]
    sweeps = {
        "width": _sweep(m1d, base, "width", plan.widths, seeds),
        "epochs": _sweep(m1d, replace(base, lr=plan.epochs_lr), "epochs", plan.epochs, seeds),
    }
    bar.update(1)
    sweeps["lr"] = _sweep(m1d, replace(base, epochs=plan.lrs_epochs), "lr", plan.lrs, seeds)
    sweeps["depth"] = _sweep(m1d, base, "depth", plan.depths, seeds)
    sweeps["depth_gaussian"] = _sweep(mixture, base, "depth", plan.depths, seeds)
    bar.update(1)
    sweeps["steps"] = _sweep(m1d, base, "steps", plan.steps, seeds)
    bar.update(1)
    bar.close()
    found = {"clean": clean, "init": init, "control": control, "probes": probes, "sweeps": sweeps}
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


def _claims(plan: Plan, found: dict[str, Any]) -> list[Claim]:
    clean, init, control, sweeps = found["clean"], found["init"], found["control"], found["sweeps"]
    m = plan.width
    chance = 0.1  # both datasets have 10 balanced classes
    claims = [
        claim(f"init-{name}", f"{name}: two-layer ReLU net (m={m}) at initialisation, linear probe on FGSM noises: "
              "test accuracy >= 0.95", metric="probe test accuracy", ours=init[name]["noise_test_accuracy"],
              target=0.95, paper_source=SEPARABLE)
        for name in ("digits", "mnist1d")
    ]  # fmt: skip
    claims += [
        claim("mnist1d-vs-clean", "mnist1d: the noise probe's test accuracy is at least 0.3 above the same probe on "
              "clean inputs", metric="probe test accuracy", ours=init["mnist1d"]["noise_test_accuracy"],
              baseline=Baseline("clean-input probe", clean["mnist1d"]), margin=0.3, paper_source=EASIER),
        claim("control-shuffled", "mnist1d: noises built with shuffled labels are separable by those labels "
              "(test accuracy >= 0.9)", metric="probe test accuracy vs shuffled labels",
              ours=control["noise_test_accuracy"], target=0.9, paper_source=CONTROL),
        claim("control-true", "mnist1d: the same noises are not separable by the true labels (test accuracy within "
              "0.05 of chance, 0.1)", metric="probe test accuracy vs true labels",
              ours=control["noise_test_accuracy_true_labels"], higher_is_better=False, target=chance + 0.05,
              paper_source=CONTROL),
    ]  # fmt: skip
    for axis, how in (("epochs", f"trained longer (epochs {plan.epochs[0]} → {plan.epochs[-1]} at lr "
                                  f"{plan.epochs_lr:g})"),
                      ("lr", f"trained with a larger learning rate (lr {plan.lrs[0]:g} → {plan.lrs[-1]:g}, "
                             f"{plan.lrs_epochs} epochs)")):  # fmt: skip
        rows = sweeps[axis]
        first, last = rows[0], rows[-1]
        lowest = min(r["noise_test_accuracy"] for r in rows)
        claims += [
            claim(f"degrade-{axis}", f"mnist1d: separability weakens as the network moves from initialisation: "
                  f"{how}, relative distance {first['distance']:.2f} → {last['distance']:.2f}, lowers the noise "
                  f"probe's test accuracy by at least {DEGRADE_MARGIN}", metric="probe test accuracy",
                  ours=last["noise_test_accuracy"], higher_is_better=False,
                  baseline=Baseline(f"{axis} = {first['value']:g}", first["noise_test_accuracy"]),
                  margin=DEGRADE_MARGIN, paper_source=DEGRADES),
            claim(f"above-clean-{axis}", f"mnist1d: yet at every {axis} of the sweep (distance up to "
                  f"{max(r['distance'] for r in rows):.2f}) the noise probe stays above the clean-input probe",
                  metric="lowest probe test accuracy in the sweep", ours=lowest,
                  baseline=Baseline("clean-input probe", clean["mnist1d"]), paper_source=EASIER),
        ]  # fmt: skip
    for name, dataset, what in (("depth", "mnist1d", "mnist1d"),
                                ("depth_gaussian", "gaussian", "10-class mixture on the sphere of R^64")):  # fmt: skip
        rows = sweeps[name]
        claims.append(
            claim(f"ntk-{name.replace('_', '-')}", f"{what}: NTK MLPs at initialisation (depth {rows[0]['value']} → "
                  f"{rows[-1]['value']}, m = {m}): at every depth the noise probe stays above the clean-input probe",
                  metric="lowest probe test accuracy over depths",
                  ours=min(r["noise_test_accuracy"] for r in rows),
                  baseline=Baseline("clean-input probe", clean[dataset]), paper_source=NTK)
        )  # fmt: skip
    width = sweeps["width"]
    claims.append(
        claim("width", f"mnist1d: separability grows with width (m = {width[0]['value']} → {width[-1]['value']}: "
              "accuracy up by at least 0.1)", metric="probe test accuracy", ours=width[-1]["noise_test_accuracy"],
              baseline=Baseline(f"m = {width[0]['value']}", width[0]["noise_test_accuracy"]), margin=0.1,
              paper_source=NO_WIDTH)
    )  # fmt: skip
    return claims


def _write_table(record: RunDir, plan: Plan, found: dict[str, Any]) -> None:
    clean, init, control = found["clean"], found["init"], found["control"]
    lines = [
        f"Clean-input probe, test accuracy: {', '.join(f'{k} {v:.3f}' for k, v in clean.items())}.",
        "",
        f"Two-layer ReLU network, NTK parameterisation, m = {plan.width}, FGSM noises, L-BFGS logistic probe on "
        f"standardised noises; seeds {list(plan.seeds)}.",
        "",
        "| dataset | labels | probe on noises, train | probe on noises, test | vs true labels | clean-input probe |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in init.items():
        lines.append(f"| {name} | true | {r['noise_train_accuracy']:.3f} | {r['noise_test_accuracy']:.3f} | "
                     f"{r['noise_test_accuracy_true_labels']:.3f} | {clean[name]:.3f} |")  # fmt: skip
    lines.append(f"| mnist1d | shuffled | {control['noise_train_accuracy']:.3f} | {control['noise_test_accuracy']:.3f} | "
                 f"{control['noise_test_accuracy_true_labels']:.3f} | {clean['mnist1d']:.3f} |")  # fmt: skip
    lines += ["", "The same mnist1d noises (true labels, first seed), test accuracy of each probe:", "",
              "| " + " | ".join(found["probes"]) + " |", "|" + "---|" * len(found["probes"]),
              "| " + " | ".join(f"{v:.3f}" for v in found["probes"].values()) + " |"]  # fmt: skip
    for name, rows in found["sweeps"].items():
        axis, _, dataset = name.partition("_")
        lines += ["", f"Sweep over {axis} ({dataset or 'mnist1d'}):", "", "| " + axis + " | probe test accuracy | "
                  "distance from init | network test accuracy |", "|---|---|---|---|"]  # fmt: skip
        lines += [f"| {r['value']:g} | {r['noise_test_accuracy']:.3f} | {r['distance']:.3f} | "
                  f"{r['model_test_accuracy']:.3f} |" for r in rows]  # fmt: skip
    record.write_text("tables.md", "\n".join(lines) + "\n")
