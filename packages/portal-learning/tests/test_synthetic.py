"""The benchmark is deterministic, uses real molecules, and its labels depend on the family as designed."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest
from portal_learning import SynthSettings, four_way_split, generate, linear_baseline, pocket_reference

from papers_common import InputError


def test_the_generator_is_deterministic_for_a_seed(small):
    again = generate(SynthSettings(families=12, molecules=300, pairs_per_member=20, seed=0))
    assert again.records == small.records
    other = generate(SynthSettings(families=12, molecules=300, pairs_per_member=20, seed=1))
    assert other.records != small.records


def test_each_family_has_its_share_of_actives_and_molecules_change_label_across_families(small):
    by_family = defaultdict(list)
    for r in small.records:
        by_family[r.family].append(r.label)
    assert len(by_family) == 12
    for labels in by_family.values():
        assert np.mean(labels) == pytest.approx(0.3, abs=0.02)  # the family's 70th-percentile threshold
    per_molecule = defaultdict(set)
    for r in small.records:
        per_molecule[r.smiles].add((r.family, r.label))
    flips = [m for m, seen in per_molecule.items() if len({label for _, label in seen}) == 2]
    assert len(flips) > 0.2 * len(per_molecule)  # the same molecule is active on some families only


def test_members_share_their_family_rule_more_than_other_families(small):
    """Two members of one family agree on a molecule's label more often than members of different families."""
    seen = defaultdict(dict)
    for r in small.records:
        seen[r.smiles][r.protein] = (r.family, r.label)
    same, different = [], []
    for proteins in seen.values():
        items = list(proteins.values())
        for i in range(len(items)):
            for j in range(i + 1, len(items)):
                (fa, la), (fb, lb) = items[i], items[j]
                (same if fa == fb else different).append(la == lb)
    assert np.mean(same) > np.mean(different) + 0.1


def test_unlabelled_families_have_sequences_only_and_all_are_written(small, tmp_path):
    labelled = {r.family for r in small.records}
    database = {family for _, family, _ in small.sequences}
    assert labelled < database
    assert len(database) == 12 + small.settings.unlabelled_families
    assert {r.sequence for r in small.records} <= {text for _, _, text in small.sequences}
    small.write(tmp_path)
    fasta = (tmp_path / "sequences.fasta").read_text().splitlines()
    assert len(fasta) == 2 * len(small.sequences)
    assert fasta[0] == ">FAM000_P00 family=FAM000"
    assert fasta[1] == small.sequences[0][2]


def test_a_family_has_its_own_residue_usage(small):
    """Members of a family use residues alike (their latent u_f), unlike members of other families."""
    from portal_learning import composition

    usage = defaultdict(list)
    for _, family, text in small.sequences:
        usage[family].append(composition(text)[:20])
    means = {f: np.mean(v, 0) for f, v in usage.items()}
    within = np.mean([np.abs(u - means[f]).sum() for f, v in usage.items() for u in v])
    between = np.mean([np.abs(means[a] - means[b]).sum() for a in means for b in means if a < b])
    assert within < 0.5 * between


def test_out_of_family_prediction_is_possible_but_not_for_an_additive_model(small):
    split = four_way_split(small.records)
    additive = linear_baseline(small.records, split)
    bilinear = pocket_reference(small.records, split, small.pocket_positions)
    assert additive["ood_test"]["roc_auc"] < 0.6  # measured 0.447
    assert bilinear["ood_test"]["roc_auc"] > additive["ood_test"]["roc_auc"] + 0.1  # measured 0.700


def test_bad_settings_are_named():
    with pytest.raises(InputError, match="--families must be at least 4"):
        generate(SynthSettings(families=2))
    with pytest.raises(InputError, match="--molecules 99999: RDKit's NCI set has"):
        generate(SynthSettings(molecules=99999))
