"""A linear baseline: logistic regression over a molecule's Morgan fingerprint and a protein's residue and
dipeptide composition, concatenated (scikit-learn). It scores molecule and protein additively, so it learns which
molecules (and proteins) are active on average but not which molecule fits which pocket: the reference that an
interaction model has to beat out of family."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from portal_learning.metrics import classification_metrics
from portal_learning.records import Interaction
from portal_learning.splits import SPLITS, Split
from portal_learning.synthetic import RESIDUES, morgan_fingerprints

_INDEX = {r: i for i, r in enumerate(RESIDUES)}


def composition(sequence: str) -> np.ndarray:
    """``(420,)``: residue frequencies (20) and dipeptide frequencies (400); non-standard residues are skipped."""
    ids = np.array([_INDEX[c] for c in sequence if c in _INDEX], dtype=np.int64)
    out = np.zeros(420)
    if len(ids):
        out[:20] = np.bincount(ids, minlength=20) / len(ids)
    if len(ids) > 1:
        out[20:] = np.bincount(ids[:-1] * 20 + ids[1:], minlength=400) / (len(ids) - 1)
    return out


def features(records: Sequence[Interaction]) -> np.ndarray:
    """``(n, 2048 + 420)`` fingerprint bits beside composition features."""
    molecules = list(dict.fromkeys(r.smiles for r in records))
    fps = dict(zip(molecules, morgan_fingerprints(molecules).astype(np.float64), strict=True))
    proteins = {s: composition(s) for s in dict.fromkeys(r.sequence for r in records)}
    return np.stack([np.concatenate([fps[r.smiles], proteins[r.sequence]]) for r in records])


def linear_baseline(
    records: Sequence[Interaction], split: Split, *, seed: int = 0
) -> dict[str, dict[str, float]]:
    """Fit on OOD-train; the global metrics of every split."""
    from sklearn.linear_model import LogisticRegression

    x = features(records)
    y = np.array([r.label for r in records])
    train = split.part("ood_train")
    model = LogisticRegression(max_iter=2000, C=0.1, random_state=seed).fit(x[train], y[train])
    return {name: classification_metrics(y[split.part(name)], model.predict_proba(x[split.part(name)])[:, 1])
            for name in SPLITS}  # fmt: skip


def pocket_reference(
    records: Sequence[Interaction], split: Split, pocket_positions: Sequence[int], *, components: int = 48
) -> dict[str, dict[str, float]]:
    """An upper reference for the synthetic benchmark: logistic regression on the outer product of the molecule's
    fingerprint (its first ``components`` principal components) and the protein's residue frequencies beside the
    physico-chemical properties of its residues at the known ``pocket_positions``. It has the rule's bilinear form
    and is told what the rule reads (residue usage, the pocket), which no real model is: it shows that the
    families it never saw can be predicted."""
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression

    from portal_learning.synthetic import PROPERTIES

    molecules = list(dict.fromkeys(r.smiles for r in records))
    reduced = PCA(min(components, len(molecules)), random_state=0).fit_transform(
        morgan_fingerprints(molecules)
    )
    z = dict(zip(molecules, reduced, strict=True))
    pockets = {s: np.concatenate([len(RESIDUES) * composition(s)[: len(RESIDUES)] - 1.0,
                                  np.tanh(PROPERTIES[[_INDEX[s[i]] for i in pocket_positions]].ravel())])
               for s in dict.fromkeys(r.sequence for r in records)}  # fmt: skip
    x = np.stack([np.kron(z[r.smiles], pockets[r.sequence]) for r in records])
    y = np.array([r.label for r in records])
    train = split.part("ood_train")
    model = LogisticRegression(max_iter=500, C=0.05).fit(x[train], y[train])
    return {name: classification_metrics(y[split.part(name)], model.predict_proba(x[split.part(name)])[:, 1])
            for name in SPLITS}  # fmt: skip
