"""The synthetic tasks: targets, scored positions and reproducible sampling."""

from __future__ import annotations

import pytest
import torch

from papers_common import InputError
from urpe import SyntheticTask


def test_position_identification_targets_are_positions() -> None:
    task = SyntheticTask("position-identification", seq_len=16, vocab=10)
    batch = task.sample(4, torch.Generator().manual_seed(0))
    assert batch.tokens.shape == (4, 16)
    assert batch.tokens.dtype == torch.long
    assert int(batch.tokens.min()) >= 0
    assert int(batch.tokens.max()) < 10
    assert batch.targets.tolist() == [list(range(16))] * 4
    assert bool(batch.scored.all())
    assert task.num_classes == 16
    assert task.chance == pytest.approx(1 / 16)


@pytest.mark.parametrize("seq_len", [8, 9])
def test_even_token_targets(seq_len: int) -> None:
    task = SyntheticTask("even-token", seq_len=seq_len, vocab=7)
    batch = task.sample(5, torch.Generator().manual_seed(1))
    half = seq_len // 2
    for row_tokens, row_targets, row_scored in zip(
        batch.tokens.tolist(), batch.targets.tolist(), batch.scored.tolist(), strict=True
    ):
        for i in range(seq_len):
            if i < half:
                assert row_targets[i] == row_tokens[2 * i + 1]  # the token at 1-based even position 2(i + 1)
                assert row_scored[i]
            else:
                assert row_targets[i] == 7  # the filler class
                assert not row_scored[i]
    assert task.num_classes == 8
    assert task.chance == pytest.approx(1 / 7)


def test_sampling_is_determined_by_the_generator() -> None:
    task = SyntheticTask("even-token", seq_len=12, vocab=10)
    a = task.sample(6, torch.Generator().manual_seed(42))
    b = task.sample(6, torch.Generator().manual_seed(42))
    c = task.sample(6, torch.Generator().manual_seed(43))
    assert torch.equal(a.tokens, b.tokens)
    assert torch.equal(a.targets, b.targets)
    assert not torch.equal(a.tokens, c.tokens)
    # the global generator plays no part
    generator = torch.Generator().manual_seed(42)
    torch.manual_seed(0)
    first = task.sample(6, generator)
    torch.manual_seed(1)
    assert torch.equal(first.tokens, a.tokens)
    assert not torch.equal(task.sample(6, generator).tokens, a.tokens)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("copy", 8, 10), "unknown task"),
        (("even-token", 1, 10), "at least 2"),
        (("position-identification", 8, 1), "at least 2"),
    ],
)
def test_invalid_task(args: tuple[str, int, int], message: str) -> None:
    with pytest.raises(InputError, match=message):
        SyntheticTask(*args)  # type: ignore[arg-type]
