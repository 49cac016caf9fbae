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
   the earlier ones in time-reversed order (the same sweep, mirrored).
3. A window with no answer under H (node budgets, not seconds: a busy
   machine makes a pass slower, not different) goes under the lowest of
   H x (1 + ESCALATION) that works, up to a limit; above it the pass fails.
   A failure proves nothing (the search skips higher gaps).
`improve` runs a pass from each of PEAKS candidate peaks (the global one
first) and keeps the lowest; after the first, a pass gives up as soon as it
cannot beat the best. Measured on benchmarks/training_traces.py, 7-8k
buffers, seeds 0-3: a pass in plain start order reached the bound on none
(at best 1.001, failing at the peak under 1.003); from the highest moment, on
3 of 4; with the candidate peaks, seeds 0-5 all at the bound but one (1.0001).
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


def sweep(arrays: ProblemArrays, order: np.ndarray, offsets: np.ndarray, placed: np.ndarray, cap: int,
          limit: int, deadline: float, first: int = WINDOW) -> np.ndarray | None:
    """Places `order` (sorted by start) window by window into `offsets` around the
    buffers of `placed` (step 2), the first window `first` buffers long. Returns
    the positions placed, or None when a window fits under no height up to `limit`.
    A window that needed more than `cap` does not raise it for the next: a loose cap
    lets the search take its first, sloppy, answer."""
    bounds = [0, *range(max(first, 1), len(order), WINDOW), len(order)]
    for lo, hi in zip(bounds, bounds[1:]):
        idx = order[lo:hi + LOOKAHEAD]
        fixed = _fixed_around(arrays, idx, offsets, placed)
        found = _window_offsets(arrays, idx, fixed, cap, limit, deadline)
        if found is None:
            return None
        offsets[idx[:hi - lo]] = found[:hi - lo]
        placed = np.concatenate((placed, idx[:hi - lo]))
    return placed


def place_windows(arrays: ProblemArrays, cap: int, deadline: float, peak: int | None = None,
                  limit: int | None = None) -> np.ndarray | None:
    """Offsets of every buffer under `cap`, or where a window does not fit, under the
    lowest height up to `limit` (default `cap`) that it fits; None when one fits under
    none (or time is up). Step 2 starts at `peak` (default: the highest moment): first
    the buffers live at that moment and later ones, in start order, then the earlier
    ones in time-reversed order, so the peak is packed before anything that died
    before it can leave holes there."""
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
    placed = sweep(arrays, order, offsets, full, cap, limit, deadline, at_peak)
    if placed is None:
        return None
    back = mirrored(arrays)
    back_order = earlier[np.argsort(back.starts[earlier], kind="stable")]
    if sweep(back, back_order, offsets, placed, cap, limit, deadline) is None:
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
    search is missing). One pass from each candidate peak while time lasts, stopping
    at the target. The first may go as high as it must (a complete placement to fall
    back on); each later one gives up as soon as a window cannot stay below the best
    height so far, so a pass that cannot win costs little."""
    if not native.around_available() or len(arrays.sizes) == 0:
        return None
    rest = np.nonzero(~np.isin(np.arange(len(arrays.sizes)), peel(arrays)[0]))[0]
    peaks = candidate_peaks(arrays, rest) if len(rest) else [None]
    best, best_height = None, 2**62
    for peak in peaks:
        offsets = place_windows(arrays, target, deadline, peak, limit=best_height - 1)
        if offsets is not None:
            best, best_height = offsets, int((offsets + arrays.sizes).max())
        if best_height <= target or time.perf_counter() > deadline:
            break
    return best
