"""Chunking policies cover every sample exactly as configured."""

from __future__ import annotations

import itertools

import pytest

from papers_common import InputError
from vad_asr.policies import Pause, Window, compute_ratio, overlap_windows, plan_windows, vadoi_windows


def coverage(windows: list[Window], n: int) -> list[int]:
    counts = [0] * n
    for w in windows:
        for s in range(w.start, w.end):
            counts[s] += 1
    return counts


@pytest.mark.parametrize(
    ("n", "window", "overlap"),
    list(itertools.product([1, 99, 100, 101, 257], [10, 33], [0.0, 0.125, 0.25, 0.5])),
)
def test_overlapping_windows_cover_every_sample_with_the_set_overlap(n, window, overlap):
    windows = overlap_windows(n, window, overlap)
    hop = round(window * (1 - overlap))
    assert windows[0].start == 0
    assert windows[-1].end == n
    assert all(0 < w.length <= window for w in windows)
    assert min(coverage(windows, n)) >= 1
    for before, after in itertools.pairwise(windows):
        assert after.start == before.start + hop
        assert after.seam == ("overlap" if overlap > 0 else "clean")
        assert before.end - after.start == window - hop  # every seam shares exactly L - hop samples
    assert windows[-1].end - windows[-1].start <= window  # the last, partial window is not padded


def test_fixed_windows_are_a_partition_and_cost_the_recording_once():
    windows = plan_windows("fixed", 16_000 * 65, 16_000, window_s=20.0)
    assert [(w.start, w.end) for w in windows] == [
        (0, 320_000),
        (320_000, 640_000),
        (640_000, 960_000),
        (960_000, 1_040_000),
    ]
    assert coverage(windows, 1_040_000) == [1] * 1_040_000
    assert compute_ratio(windows, 1_040_000) == 1.0


def test_half_overlap_decodes_about_twice_the_audio():
    windows = plan_windows("overlap", 16_000 * 600, 16_000, window_s=20.0)
    assert compute_ratio(windows, 16_000 * 600) == pytest.approx(2.0, abs=0.04)


def test_vadoi_cuts_at_the_pause_nearest_the_nominal_end_and_overlaps_without_one():
    # L = 100, Δ = L/4 = 25, s_min = 4: usable pause midpoints 80, 90 and 328; [94, 96) is too short
    pauses = [Pause(78, 82), Pause(94, 96), Pause(86, 94), Pause(320, 336)]
    windows = vadoi_windows(400, 100, pauses, min_pause=4, overlap=0.5)
    assert windows == [
        Window(0, 90, "start"),  # midpoints 80 and 90 lie in [75, 100]; 90 is nearer the nominal end
        Window(90, 190, "clean"),  # no midpoint in [165, 190]: decode L, the next starts o·L earlier
        Window(140, 240, "overlap"),
        Window(190, 290, "overlap"),
        Window(240, 328, "overlap"),  # midpoint 328 in [315, 340]
        Window(328, 400, "clean"),  # the last window reaches the end
    ]


def test_vadoi_windows_cover_everything_and_stay_within_the_window():
    import random

    rng = random.Random(0)
    for _ in range(50):
        n = rng.randint(1, 5000)
        window = rng.randint(20, 600)
        pauses = sorted(
            {(a, a + rng.randint(1, 80)) for a in (rng.randrange(n) for _ in range(rng.randint(0, 30)))}
        )
        windows = vadoi_windows(n, window, [Pause(a, b) for a, b in pauses], min_pause=10, overlap=0.5)
        counts = coverage(windows, n)
        assert min(counts) >= 1
        assert windows[-1].end == n
        assert all(0 < w.length <= window for w in windows)
        for before, after in itertools.pairwise(windows):
            assert after.start > before.start
            assert (after.seam == "clean") == (after.start == before.end)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"policy": "sliding"}, "policy must be one of"),
        ({"window_s": 0.0}, "window length must be positive"),
        ({"policy": "partial", "overlap": 0.5}, "partial overlapping needs"),
        ({"policy": "overlap", "overlap": 1.0}, "overlap ratio"),
    ],
)
def test_bad_policy_settings_are_named(kwargs, message):
    settings = {"policy": "overlap", "window_s": 10.0} | kwargs
    with pytest.raises(InputError, match=message):
        plan_windows(settings.pop("policy"), 16_000, 16_000, **settings)
