"""The four-way split is disjoint by family, deterministic, and leaves out what cannot be scored."""

from __future__ import annotations

import logging

import pytest
from portal_learning.records import Interaction
from portal_learning.splits import SPLITS, Split, SplitSettings, cluster_sequences, four_way_split

from papers_common import InputError


def test_families_never_cross_the_out_of_cluster_splits(small):
    split = four_way_split(small.records)
    families = {name: {small.records[i].family for i in split.part(name)} for name in SPLITS}
    assert families["ood_train"].isdisjoint(families["ood_dev"])
    assert families["ood_train"].isdisjoint(families["ood_test"])
    assert families["ood_dev"].isdisjoint(families["ood_test"])
    assert families["iid_dev"] <= families["ood_train"]  # held-out pairs of training families
    everything = sorted(i for name in SPLITS for i in split.part(name))
    assert everything == list(range(len(small.records)))  # each pair exactly once
    assert abs(len(split.iid_dev) - 0.1 * (len(split.iid_dev) + len(split.ood_train))) <= 1


def test_the_split_is_deterministic_and_round_trips(tmp_path, small):
    first = four_way_split(small.records, SplitSettings(seed=3))
    assert four_way_split(small.records, SplitSettings(seed=3)) == first
    assert four_way_split(small.records, SplitSettings(seed=4)).families != first.families
    assert Split.load(first.save(tmp_path / "split.json")) == first


def test_one_class_families_are_left_out_with_a_warning(small, caplog):
    records = [*small.records, *(Interaction("CCO", "MKV" * 30, "ALLZERO", 0, "z") for _ in range(5))]
    with caplog.at_level(logging.WARNING):
        split = four_way_split(records)
    assert split.excluded == ["ALLZERO"]
    assert "ALLZERO" in caplog.text
    assert "ALLZERO" not in split.families


def test_without_families_the_sequences_are_clustered():
    a, b = "MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQ", "MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVA"  # one substitution
    c = "GSHMLEDPVDAFQAVLEKLNSTWNGPVATAAKLL"
    assert cluster_sequences([a, c, b, a]) == ["cluster0", "cluster1", "cluster0", "cluster0"]
    records = [Interaction("CCO", s, None, k % 2, s) for k, s in enumerate([a, b, c] * 4)]
    with pytest.raises(InputError, match="2 families with both classes; the four-way split needs at least 3"):
        four_way_split(records)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (SplitSettings(ood_dev=0.0), "--ood-dev must lie in"),
        (SplitSettings(ood_dev=0.5, ood_test=0.5), "must leave families to train on"),
        (SplitSettings(iid_dev=1.5), "--iid-dev must lie in"),
    ],
)
def test_bad_shares_are_named(small, settings, message):
    with pytest.raises(InputError, match=message):
        four_way_split(small.records, settings)
