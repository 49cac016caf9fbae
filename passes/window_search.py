"""Placement of big pieces by a rolling window of searches, for large training traces.

Why: a training step's trace rarely comes apart in time (weights, optimizer
state and gradient accumulators live across it), so it is one piece of tens
of thousands of buffers: far past what the exact search handles at once
(bnb.MAX_EXACT), and greedy best fit stays 1-7% above the lower bound there.
Design, for a target height H (a pass):
1. Peel: buffers live over the whole span of the piece go at the bottom,
   stacked. This loses nothing: such a buffer is live at every moment, and
   in any placement the buffers above it can slide down by its size while it
   moves to the top of the stack.
2. Windows: the other buffers, WINDOW at a time, each window placed by the
   exact search's inner loop (`native.fits_around`) under H around the
   placed buffers it shares time with (each buffer takes the lowest gap they
   leave). The search also places the next LOOKAHEAD buffers, so that a
   window does not take the room its successors need, but commits only its
   own. Order: start at a peak moment; first every buffer live there (one
   window: any stack of them fits at that moment, so nothing that died
   earlier can leave holes in it), then the later ones in start order, then
   the earlier ones in time-reversed order (the same sweep, mirrored). The
   first window's lookahead reaches both ways (the later buffers and the
   first of the earlier ones): the buffers that die just before the peak
   are as tight as those live at it, and the mirrored sweep reaches them
   only after the whole later side is fixed.
3. A window with no answer under H (node budgets, not seconds: a busy
   machine makes a pass slower, not different) first takes the offsets the
   previous search gave it as lookahead, where those were under H: they are
   still valid (see _from_ahead), and a search that sees further can fail
   (within its node budget) where the previous one found an answer. Else it goes under the lowest of
   H x (1 + ESCALATION) that works, up to a limit; above it the pass fails.
   A failure proves nothing (the search skips higher gaps).
`improve` runs passes from the global peak with each of LOOKAHEAD_STEPS, then
from each of PEAKS candidate peaks, and keeps the lowest; after the first, a
pass gives up as soon as it cannot beat the best.
Measured on benchmarks/training_traces.py, 7-8k
buffers, seeds 0-3: a pass in plain start order reached the bound on none
(at best 1.001, failing at the peak under 1.003); from the highest moment, on
3 of 4; with the candidate peaks, seeds 0-5 all at the bound but one (1.0001).
At 22-58k buffers (seeds 0-9, 2026-12-06), the lookahead both ways and the
fallback to the lookahead's offsets took seeds 2, 3, 4 and 9 from 1.006-1.020
to the bound; seed 8 needs a lookahead of 2,000 (1.0067 with 1,000).
"""

from __future__ import annotations

import time

import numpy as np

from graphopt.passes import native
from graphopt.passes.best_fit import ProblemArrays
from graphopt.passes.dsa_search import PREORDERS

WINDOW = 1000  # buffers committed per search
LOOKAHEAD = 1000  # more buffers the search places but does not commit
ESCALATION = (0.0025, 0.005, 0.01, 0.02, 0.05, 0.2, 1.0, 1e6)  # above the target, in turn
ROUNDS = 2  # of the preorders, budgets doubling, under the target height
PEAKS = 6  # timeline slices whose peaks the passes start from
LOOKAHEAD_STEPS = (1, 2, 3)  # x LOOKAHEAD: the passes from the global peak, in turn


def peel(arrays: ProblemArrays) -> tuple[np.ndarray, np.ndarray, int]:
    """(whole-span buffer positions, their stacked offsets, stack height): step 1."""
    if len(arrays.sizes) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), 0
    full = np.nonzero((arrays.starts <= arrays.starts.min()) & (arrays.ends >= arrays.ends.max()))[0]
    offsets = np.zeros(len(full), dtype=np.int64)
    top = 0
    for k, b in enumerate(full.tolist()):
        align = int(arrays.aligns[b])
        offsets[k] = -(-top // align) * align
        top = int(offsets[k] + arrays.sizes[b])
    return full, offsets, top


def _search_window(arrays: ProblemArrays, idx: np.ndarray, cap: int, deadline: float,
                   fixed: tuple[np.ndarray, ...], rounds: int) -> np.ndarray | None:
    """Offsets of buffers `idx` under `cap` around `fixed`, or None: the preorders round
    robin with node budgets doubling from 2 x len(idx), `rounds` times. Budgets in nodes,
    not seconds, so that a busy machine changes the time a pass takes, not its answer."""
    budget = 2 * len(idx)
    args = (arrays.starts[idx], arrays.ends[idx], arrays.sizes[idx], arrays.aligns[idx])
    for _ in range(rounds):
        for keys in PREORDERS:
            left = deadline - time.perf_counter()
            if left <= 0:
                return None
            status, offsets, nodes = native.fits_around(*args, keys, cap, left, budget, fixed)
            if status == 1:
                return offsets
            if nodes < budget:  # the clock or a dead end, not the node budget
                return None
        budget *= 2
    return None


def peak_time(arrays: ProblemArrays, idx: np.ndarray) -> int:
    """A moment at which buffers `idx` hold the most bytes (frees first at a tie)."""
    times = np.concatenate((arrays.starts[idx], arrays.ends[idx]))
    deltas = np.concatenate((arrays.sizes[idx], -arrays.sizes[idx]))
    order = np.lexsort((deltas, times))
    return int(times[order][int(np.argmax(np.cumsum(deltas[order])))])


def mirrored(arrays: ProblemArrays) -> ProblemArrays:
    """The same problem with time reversed: [s, e) becomes [-e, -s)."""
    return ProblemArrays(arrays.ids, -arrays.ends, -arrays.starts, arrays.sizes, arrays.aligns)


def _window_offsets(arrays: ProblemArrays, idx: np.ndarray, fixed: tuple[np.ndarray, ...], cap: int,
                    limit: int, deadline: float) -> np.ndarray | None:
    """Offsets of one window under `cap`, else under the lowest of cap x (1 + ESCALATION)
    up to `limit`; None when none works."""
    found = _search_window(arrays, idx, cap, deadline, fixed, ROUNDS)
    if found is not None:
        return found
    for above in ESCALATION:
        higher = int(cap * (1 + above))
        if higher > limit:
            break
        found = _search_window(arrays, idx, higher, deadline, fixed, 1)
        if found is not None:
            return found
    return None


def _fixed_around(arrays: ProblemArrays, idx: np.ndarray, offsets: np.ndarray,
                  placed: np.ndarray) -> tuple[np.ndarray, ...]:
    """(starts, ends, offsets, sizes) of the placed buffers that share time with the span of `idx`."""
    near = placed[(arrays.ends[placed] > arrays.starts[idx].min()) & (arrays.starts[placed] < arrays.ends[idx].max())]
    return arrays.starts[near], arrays.ends[near], offsets[near], arrays.sizes[near]


def sweep(arrays: ProblemArrays, order: np.ndarray, offsets: np.ndarray, placed: np.ndarray, ahead: np.ndarray,
          cap: int, limit: int, deadline: float, first: int = WINDOW, lookahead: int = LOOKAHEAD,
          before: np.ndarray | None = None) -> np.ndarray | None:
    """Places `order` (sorted by start) window by window into `offsets` around the
    buffers of `placed` (step 2), the first window `first` buffers long, and the first
    search also places `before` (the other sweep's first buffers) as lookahead. Returns
    the positions placed, or None when a window fits under no height up to `limit`.
    `ahead` holds the offsets the last search gave its lookahead (-1: none; see
    _from_ahead). A window that needed more than `cap` does not raise it for the next:
    a loose cap lets the search take its first, sloppy, answer."""
    bounds = [0, *range(max(first, 1), len(order), WINDOW), len(order)]
    for lo, hi in zip(bounds, bounds[1:]):
        idx = order[lo:hi + lookahead]
        if lo == 0 and before is not None:
            idx = np.concatenate((idx, before[:lookahead]))
        fixed = _fixed_around(arrays, idx, offsets, placed)
        found = _search_window(arrays, idx, cap, deadline, fixed, ROUNDS)
        if found is None:
            found = _from_ahead(arrays, idx[:hi - lo], ahead, cap)
        if found is None:
            found = _window_offsets(arrays, idx, fixed, cap, limit, deadline)
        if found is None:
            return None
        if len(found) == len(idx):
            ahead[idx] = found
        offsets[idx[:hi - lo]] = found[:hi - lo]
        placed = np.concatenate((placed, idx[:hi - lo]))
    return placed


def _from_ahead(arrays: ProblemArrays, idx: np.ndarray, ahead: np.ndarray, cap: int) -> np.ndarray | None:
    """The offsets an earlier search gave buffers `idx` as its lookahead, when it placed
    them all under `cap`; None otherwise. Still valid: every buffer committed since
    came from that same search, or shares no time with them (the other sweep's)."""
    found = ahead[idx]
    if (found < 0).any() or int((found + arrays.sizes[idx]).max()) > cap:
        return None
    return found


def place_windows(arrays: ProblemArrays, cap: int, deadline: float, peak: int | None = None,
                  limit: int | None = None, lookahead: int = LOOKAHEAD) -> np.ndarray | None:
    """Offsets of every buffer under `cap`, or where a window does not fit, under the
    lowest height up to `limit` (default `cap`) that it fits; None when one fits under
    none (or time is up). Step 2 starts at `peak` (default: the highest moment): first
    the buffers live at that moment and later ones, in start order, then the earlier
    ones in time-reversed order, so the peak is packed before anything that died
    before it can leave holes there. Each search places `lookahead` more buffers."""
    limit = cap if limit is None else limit
    n = len(arrays.sizes)
    offsets = np.full(n, -1, dtype=np.int64)
    full, stacked, top = peel(arrays)
    if top > limit:
        return None
    offsets[full] = stacked
    rest = np.setdiff1d(np.arange(n), full)
    if len(rest) == 0:
        return offsets
    peak = peak_time(arrays, rest) if peak is None else peak
    later = rest[arrays.ends[rest] > peak]
    earlier = rest[arrays.ends[rest] <= peak]
    at_peak = int(np.count_nonzero(arrays.starts[later] <= peak))
    order = later[np.argsort(arrays.starts[later], kind="stable")]
    back = mirrored(arrays)
    back_order = earlier[np.argsort(back.starts[earlier], kind="stable")]
    ahead = np.full(n, -1, dtype=np.int64)
    placed = sweep(arrays, order, offsets, full, ahead, cap, limit, deadline, at_peak, lookahead, back_order)
    if placed is None:
        return None
    if sweep(back, back_order, offsets, placed, ahead, cap, limit, deadline, WINDOW, lookahead) is None:
        return None
    return offsets


def candidate_peaks(arrays: ProblemArrays, idx: np.ndarray, count: int = PEAKS) -> list[int]:
    """Moments to start step 2 from: the highest moment of each of `count` equal slices
    of the timeline, highest first (a pass that fails far from the global peak may
    pass when it starts from the peak it failed near)."""
    lo, hi = int(arrays.starts[idx].min()), int(arrays.ends[idx].max())
    edges = np.linspace(lo, hi, count + 1).astype(np.int64)
    found = {}
    for a, b in zip(edges, edges[1:]):
        inside = idx[(arrays.starts[idx] < b) & (arrays.ends[idx] > a)]
        if len(inside):
            t = min(max(peak_time(arrays, inside), int(a)), int(b) - 1)
            live = (arrays.starts[idx] <= t) & (arrays.ends[idx] > t)
            found[t] = int(arrays.sizes[idx][live].sum())
    return sorted(found, key=lambda t: -found[t])


def improve(arrays: ProblemArrays, target: int, deadline: float) -> np.ndarray | None:
    """Lowest offsets found (step 3), or None when no pass finished (or the compiled
    search is missing). Passes while time lasts, stopping at the target: from the
    global peak with each lookahead of LOOKAHEAD_STEPS (where a window fails depends
    on how far its search sees, and not monotonically), then from each other candidate
    peak. The first may go as high as it must (a complete placement to fall back on);
    each later one gives up as soon as a window cannot stay below the best height so
    far, so a pass that cannot win costs little."""
    if not native.around_available() or len(arrays.sizes) == 0:
        return None
    rest = np.nonzero(~np.isin(np.arange(len(arrays.sizes)), peel(arrays)[0]))[0]
    peaks = candidate_peaks(arrays, rest, PEAKS) if len(rest) else [None]
    runs = [(peaks[0], LOOKAHEAD * k) for k in LOOKAHEAD_STEPS] + [(p, LOOKAHEAD) for p in peaks[1:]]
    best, best_height = None, 2**62
    for peak, lookahead in runs:
        offsets = place_windows(arrays, target, deadline, peak, best_height - 1, lookahead)
        if offsets is not None:
            best, best_height = offsets, int((offsets + arrays.sizes).max())
        if best_height <= target or time.perf_counter() > deadline:
            break
    return best

