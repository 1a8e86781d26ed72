"""Chunking policies: which windows of a long recording the engine decodes (VADOI §2–3).

All windows are in samples, half-open ``[start, end)``, never longer than the window length L, and together they
cover every sample of ``[0, n)``. Each window records how it joins the previous one (its ``seam``):

- ``"start"``: the first window;
- ``"clean"``: it starts exactly where the previous one ended (plain concatenation of the hypotheses);
- ``"overlap"``: it starts inside the previous one (the hypotheses are merged over the shared audio).

Policies: ``fixed`` (windows of L without overlap), ``overlap`` (overlapping inference, OI: hop L(1 − o), o = 0.5 the
paper's reference), ``partial`` (OI with o < 0.5, 0.25 by default) and ``vadoi`` (VAD overlapping inference: cut at
a VAD pause near the nominal window end, and overlap only where no usable pause exists).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from papers_common import InputError

Seam = Literal["start", "clean", "overlap"]
Policy = Literal["fixed", "overlap", "partial", "vadoi"]
POLICIES: tuple[Policy, ...] = ("fixed", "overlap", "partial", "vadoi")
DEFAULT_OVERLAP: dict[Policy, float] = {"fixed": 0.0, "overlap": 0.5, "partial": 0.25, "vadoi": 0.5}


@dataclass(frozen=True)
class Window:
    """One decoded window ``[start, end)`` in samples, and how it joins the previous window."""

    start: int
    end: int
    seam: Seam

    @property
    def length(self) -> int:
        return self.end - self.start

    def centre(self, sample_rate: int) -> float:
        """The window's centre in seconds (the merge keeps each word from the window whose centre is nearer)."""
        return 0.5 * (self.start + self.end) / sample_rate


@dataclass(frozen=True)
class Pause:
    """A stretch without speech ``[start, end)`` in samples, as a VAD reports it."""

    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start

    @property
    def midpoint(self) -> int:
        return (self.start + self.end) // 2


def _check(num_samples: int, window: int, overlap: float) -> None:
    if num_samples < 0:
        raise InputError(f"a recording has at least 0 samples, got {num_samples}")
    if window < 1:
        raise InputError(f"the window must hold at least one sample, got {window}")
    if not 0.0 <= overlap < 1.0:
        raise InputError(f"the overlap ratio must lie in [0, 1), got {overlap}")


def fixed_windows(num_samples: int, window: int) -> list[Window]:
    """Consecutive windows of ``window`` samples without overlap; the last one ends at ``num_samples``."""
    return overlap_windows(num_samples, window, 0.0)


def overlap_windows(num_samples: int, window: int, overlap: float) -> list[Window]:
    """Overlapping inference OI(o): windows of L samples every ``round(L (1 − o))`` samples.

    The last window is the first that reaches the end (it may be shorter than L). With o = 0.5 the decoded audio is
    about twice the recording (the compute ratio of VADOI §3).
    """
    _check(num_samples, window, overlap)
    hop = max(1, round(window * (1.0 - overlap)))
    windows: list[Window] = []
    start = 0
    while start < num_samples:
        end = min(start + window, num_samples)
        seam: Seam = "start" if not windows else ("overlap" if start < windows[-1].end else "clean")
        windows.append(Window(start, end, seam))
        if end >= num_samples:
            break
        start += hop
    return windows


def vadoi_windows(
    num_samples: int,
    window: int,
    pauses: Sequence[Pause],
    *,
    search: int | None = None,
    min_pause: int,
    overlap: float = 0.5,
) -> list[Window]:
    """VAD overlapping inference (VADOI §3, the precise rule is ours, see the package's spec).

    From ``start``, the nominal end is ``start + L``. Among the pauses at least ``min_pause`` samples long whose
    midpoint lies in ``[end − Δ, end]`` the one whose midpoint is closest to ``end`` is the cut: the window is
    ``[start, cut)`` and the next one starts at ``cut`` (a clean seam). Without such a pause the window is
    ``[start, end)`` and the next starts ``o·L`` earlier than ``end`` (an overlapping seam).

    Args:
        num_samples: length n of the recording.
        window: L in samples.
        pauses: the VAD's pauses (any order).
        search: Δ in samples (default L/4); at most L − 1, so that every window holds a sample.
        min_pause: s_min in samples (the spec's 0.3 s).
        overlap: the fallback overlap ratio o.
    """
    _check(num_samples, window, overlap)
    search = window // 4 if search is None else search
    if not 0 <= search < window:
        raise InputError(
            f"the pause search span must lie in [0, window), got {search} for a window of {window}"
        )
    usable = sorted(p.midpoint for p in pauses if p.length >= min_pause)
    windows: list[Window] = []
    start = 0
    seam: Seam = "start"
    while start < num_samples:
        end = start + window
        if end >= num_samples:
            windows.append(Window(start, num_samples, seam))
            break
        inside = [m for m in usable if end - search <= m <= end and m > start]
        if inside:
            cut = min(inside, key=lambda m: (end - m, -m))
            windows.append(Window(start, cut, seam))
            start, seam = cut, "clean"
        else:
            windows.append(Window(start, end, seam))
            start, seam = max(start + 1, end - round(overlap * window)), "overlap"
    return windows


def plan_windows(
    policy: Policy,
    num_samples: int,
    sample_rate: int,
    *,
    window_s: float,
    overlap: float | None = None,
    pauses: Sequence[Pause] = (),
    search_s: float | None = None,
    min_pause_s: float = 0.3,
) -> list[Window]:
    """The windows of a named policy, with lengths in seconds.

    Args:
        policy: ``fixed``, ``overlap``, ``partial`` or ``vadoi``.
        num_samples, sample_rate: the recording.
        window_s: L in seconds.
        overlap: o (``None``: 0.5 for ``overlap`` and ``vadoi``'s fallback, 0.25 for ``partial``); ``partial``
            needs o < 0.5 and ``overlap`` o > 0.
        pauses: the VAD's pauses (``vadoi`` only).
        search_s: Δ in seconds (default L/4), min_pause_s: s_min (``vadoi`` only).
    """
    if policy not in POLICIES:
        raise InputError(f"policy must be one of {', '.join(POLICIES)}, got {policy!r}")
    if not window_s > 0:
        raise InputError(f"the window length must be positive, got {window_s} s")
    o = DEFAULT_OVERLAP[policy] if overlap is None else overlap
    if policy == "partial" and not 0.0 < o < 0.5:
        raise InputError(f"partial overlapping needs an overlap ratio in (0, 0.5), got {o}")
    if policy == "overlap" and not o > 0.0:
        raise InputError(f"overlapping inference needs an overlap ratio above 0, got {o}")
    window = max(1, round(window_s * sample_rate))
    if policy == "fixed":
        return fixed_windows(num_samples, window)
    if policy in ("overlap", "partial"):
        return overlap_windows(num_samples, window, o)
    search = None if search_s is None else round(search_s * sample_rate)
    return vadoi_windows(num_samples, window, pauses, search=search, min_pause=round(min_pause_s * sample_rate),
                         overlap=o)  # fmt: skip


def compute_ratio(windows: Sequence[Window], num_samples: int) -> float:
    """Σ decoded window lengths / recording length (VADOI's compute measure; 1.0 for ``fixed``)."""
    return sum(w.length for w in windows) / max(num_samples, 1)
