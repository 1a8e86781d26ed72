from __future__ import annotations

import torch
from conftest import clean_ids

from metro_lm.masking import corrupt_for_mlm, maskable_positions, select_masked_positions
from metro_lm.randomness import Noise, keyed_uniform, sequence_keys

SPECIAL = [0, 1, 2, 3, 4]


def test_masking_never_selects_padding_or_special_tokens() -> None:
    ids = clean_ids(8, 40, pad_last=15)
    ids[1, 5] = 1  # an [UNK] inside the text
    maskable = maskable_positions(ids, (ids != 0).long(), SPECIAL)
    for seed in range(20):
        masked = select_masked_positions(maskable, 0.3, noise=Noise(sequence_keys(seed, 0, torch.arange(8))))
        assert not masked[~maskable].any()
        assert not masked[ids == 0].any()
        assert not masked[:, 0].any()
        assert not masked[1, 5]


def test_mask_count_is_p_n_in_expectation_and_at_least_one() -> None:
    ids = clean_ids(4000, 12, seed=1)
    maskable = maskable_positions(ids, None, SPECIAL)  # 10 maskable per row
    masked = select_masked_positions(maskable, 0.15)
    counts = masked.sum(dim=1).float()
    assert set(counts.unique().tolist()) <= {1.0, 2.0}
    assert abs(counts.mean().item() - 1.5) < 0.05  # floor(1.5 + u): 1 or 2 with equal odds


def test_mask_mode_puts_mask_everywhere_selected() -> None:
    ids = clean_ids(4, 30)
    masked = select_masked_positions(maskable_positions(ids, None, SPECIAL), 0.2)
    out = corrupt_for_mlm(ids, masked, mask_token_id=4, vocab_size=200, special_token_ids=SPECIAL)
    assert torch.all(out[masked] == 4)
    assert torch.equal(out[~masked], ids[~masked])


def test_bert_mode_is_80_10_10_and_random_tokens_are_not_special() -> None:
    ids = clean_ids(400, 60, seed=2)
    masked = select_masked_positions(maskable_positions(ids, None, SPECIAL), 0.5)
    out = corrupt_for_mlm(
        ids, masked, mask_token_id=4, vocab_size=200, special_token_ids=SPECIAL, mode="bert"
    )
    sel_out, sel_in = out[masked], ids[masked]
    n = len(sel_out)
    as_mask = (sel_out == 4).float().mean().item()
    kept = (sel_out == sel_in).float().mean().item()
    assert abs(as_mask - 0.8) < 0.02
    assert abs(kept - 0.1 - 0.1 / 195) < 0.02
    assert n > 5000
    assert not torch.isin(sel_out[sel_out != 4], torch.tensor(SPECIAL)).any()
    assert torch.equal(out[~masked], ids[~masked])


def test_keyed_noise_is_uniform_and_independent_of_batch_layout() -> None:
    u = keyed_uniform(torch.arange(200_000), 7)
    assert u.min() >= 0.0
    assert u.max() < 1.0
    assert abs(u.mean().item() - 0.5) < 0.005
    assert abs(u.var().item() - 1 / 12) < 0.002
    keys = sequence_keys(3, 5, torch.arange(6))
    whole = Noise(keys).rows(2, (6, 9), torch.device("cpu"))
    halves = torch.cat([Noise(keys[:3]).rows(2, (3, 9), torch.device("cpu")),
                        Noise(keys[3:]).rows(2, (3, 9), torch.device("cpu"))])  # fmt: skip
    assert torch.equal(whole, halves)
    assert not torch.equal(whole, Noise(keys).rows(3, (6, 9), torch.device("cpu")))
