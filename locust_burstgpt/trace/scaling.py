"""Rate scaling: thin or superpose whole conversations to reach ``rate_scale`` x the request rate.

``rate_scale = f`` asks for f times the window's requests in the same (scaled) window length:

* the integer part ``k = floor(f)`` gives k full copies of the conversation set; copy 0 is the
  original, copy j >= 1 is the whole set shifted by its own random offset in [0, duration),
  wrapping around the window end (start mod duration), so the copy keeps the trace's burst
  structure but its bursts land elsewhere;
* the fractional part adds one more copy thinned to ``(f - k) x`` the requests: conversations in
  a random order are taken until their turns reach that share (the total is exact up to one
  conversation). With ``f < 1`` this thinned copy is the original, unshifted.

Conversations are never split; copies get distinct ids (``<id>#copy<j>``). Everything is seeded.

``poisson_starts`` is the paper's counterfactual: the same conversations (after scaling) with
their starts redrawn as a Poisson process of the same mean rate over the window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass
class Selection:
    """Which base conversations are replayed, when, and as which copy; ordered by start.

    ``source``/``copy`` are None for the identity selection (every conversation once, as is).
    """

    start: np.ndarray  # float64 scaled start offset
    source: np.ndarray | None = None  # int64 index into the ConversationTable
    copy: np.ndarray | None = None  # int32 copy number (0 = original)

    def source_of(self, i: int) -> int:
        return i if self.source is None else int(self.source[i])

    def copy_of(self, i: int) -> int:
        return 0 if self.copy is None else int(self.copy[i])


def identity(start: np.ndarray) -> Selection:
    return Selection(start)


def scale_rate(
    start: np.ndarray, lengths: np.ndarray, duration_s: float, rate_scale: float, seed: int
) -> Selection:
    """Superpose/thin conversations (``start`` offsets, ``lengths`` turns each); see module doc."""
    if not (rate_scale > 0 and math.isfinite(rate_scale)):
        raise ValueError(f"rate_scale {rate_scale!r}: expected a number > 0")
    n = start.size
    rng = np.random.default_rng(seed)
    whole = math.floor(rate_scale)
    frac = rate_scale - whole
    sources, starts, copies = [], [], []
    for j in range(whole):
        offset = 0.0 if j == 0 else float(rng.uniform(0.0, duration_s))
        sources.append(np.arange(n, dtype=np.int64))
        starts.append(np.mod(start + offset, duration_s) if j else start.astype(np.float64))
        copies.append(np.full(n, j, np.int32))
    if frac > 1e-12 and n:
        perm = rng.permutation(n)
        cum = np.cumsum(lengths[perm])
        target = frac * cum[-1]
        take = int(np.searchsorted(cum, target))  # first prefix reaching the target
        if take > 0 and abs(cum[take - 1] - target) <= abs(cum[min(take, n - 1)] - target):
            take -= 1  # the shorter prefix is closer
        chosen = np.sort(perm[: take + 1])
        offset = 0.0 if whole == 0 else float(rng.uniform(0.0, duration_s))
        sources.append(chosen)
        starts.append(
            np.mod(start[chosen] + offset, duration_s)
            if whole
            else start[chosen].astype(np.float64)
        )
        copies.append(np.full(chosen.size, whole, np.int32))
    if not sources:
        return Selection(np.empty(0), np.empty(0, np.int64), np.empty(0, np.int32))
    source = np.concatenate(sources)
    st = np.concatenate(starts)
    cp = np.concatenate(copies)
    order = np.lexsort((source, cp, st))
    return Selection(st[order], source[order], cp[order])


def poisson_starts(sel: Selection, n_base: int, duration_s: float, seed: int) -> Selection:
    """``sel``'s conversations with new starts: a Poisson process of the same mean rate.

    Given how many points it has, a Poisson process's points are independent and uniform over the
    window, so the count (and the mean rate) stays exactly the trace's. Sorted, the new starts are
    handed to the conversations in their trace order: the sequence of conversations (their
    lengths, classes, turns and think times) is kept and only the timing of their starts changes.
    """
    n = sel.start.size
    rng = np.random.default_rng([seed, 0x9015])  # apart from scale_rate's draws
    starts = np.sort(rng.uniform(0.0, duration_s, n)) if duration_s > 0 else np.zeros(n)
    source = np.arange(n_base, dtype=np.int64) if sel.source is None else sel.source
    copy = np.zeros(n, np.int32) if sel.copy is None else sel.copy
    return Selection(starts, source, copy)
