"""The exact planner: decomposition, per-piece heuristics, then branch and bound.

Design:
1. Split the timeline where no buffer crosses (`decompose.split_timeline`).
   The target is the global lower bound LB; a piece is done as soon as it fits
   under the target, which most pieces do with the first heuristic ordering.
2. Per piece, best-fit over the orderings of `smartpool.ORDERINGS` until one
   fits under the target (and never worse than a caller's hint on the piece).
   A piece above MAX_EXACT buffers (a training step that never comes apart)
   gets the rolling window search (`window_search.improve`) instead, with its
   share of BIG_PIECE_SHARE of the time: it is far closer to the bound there
   than best fit, and the exact search cannot take such a piece. Where it
   misses the target and time allows, one best-fit pass runs too and the
   lower wins (without the compiled search: best fit only, as before).
3. While the height H = max over pieces is above LB and time is left, ask
   the exact search (`dsa_search.fits`) whether every piece above a candidate
   height fits under it: first LB itself (the usual answer on real traces),
   then bisection between the best proven bound and H. A piece the search
   proves cannot fit under h proves the whole problem cannot (bound = h + 1);
   a piece above MAX_EXACT buffers is left to the heuristics (the search then
   stops: no cap can be probed).
The answer says `optimal` when H == LB or the proven bound reached H.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from graphopt.analysis.lower_bound import lower_bound
from graphopt.passes.base import DEFAULT_TIME_LIMIT
from graphopt.passes.best_fit import OverlapIndex, ProblemArrays, offsets_by_id, place_in_order
from graphopt.passes.decompose import split_timeline
from graphopt.passes.dsa_search import Instance, fits
from graphopt.passes.smartpool import ORDERINGS
from graphopt.passes.window_search import improve
from graphopt.plan.placement import Placement
from graphopt.plan.problem import MemoryProblem

log = logging.getLogger(__name__)

MAX_EXACT = 5000  # buffers in one piece; above, the pairwise overlap lists get too big to help
BIG_PIECE_SHARE = 0.9  # of the time, for the pieces above MAX_EXACT
WINDOW_SHARE = 0.7  # of a big piece's time, for the window search; best fit may take the rest
BEST_FIT_SECONDS = 1.5e-4  # per buffer, one pure-Python best-fit pass on a training trace (2 cores)
FIRST_PROBE_SHARE = 0.15  # of the time, for the probe at the lower bound (A-K: LB is found in < 0.4 s when it is reachable)


def _sub_arrays(arrays: ProblemArrays, index: np.ndarray) -> ProblemArrays:
    return ProblemArrays(tuple(arrays.ids[i] for i in index.tolist()), arrays.starts[index],
                         arrays.ends[index], arrays.sizes[index], arrays.aligns[index])


def _heuristic_piece(sub: ProblemArrays, target: int, deadline: float) -> np.ndarray:
    """Best-fit offsets of one piece: orderings in turn until one fits `target`."""
    index = OverlapIndex(sub)
    best, best_height = None, None
    for _, order, rule in ORDERINGS:
        offsets = place_in_order(sub, index, order(sub), rule)
        height = int((offsets + sub.sizes).max())
        if best is None or height < best_height:
            best, best_height = offsets, height
        if height <= target or time.perf_counter() > deadline:
            break
    return best


def _big_piece(sub: ProblemArrays, target: int, deadline: float) -> np.ndarray | None:
    """The window search's offsets of a big piece within WINDOW_SHARE of the time left; where
    they miss the target and the time left allows one best-fit pass (about BEST_FIT_SECONDS
    per buffer; it cannot stop midway), best fit runs too and the lower wins. None when
    the window search cannot run."""
    began = time.perf_counter()
    found = improve(sub, target, began + (deadline - began) * WINDOW_SHARE)
    if found is None or int((found + sub.sizes).max()) <= target:
        return found
    if deadline - time.perf_counter() < BEST_FIT_SECONDS * len(sub.sizes):
        return found
    greedy = _heuristic_piece(sub, target, deadline)
    return greedy if int((greedy + sub.sizes).max()) < int((found + sub.sizes).max()) else found


def height_grain(sizes: np.ndarray, aligns: np.ndarray) -> int:
    """A g such that every canonical placement's offsets and heights are multiples of g.

    Pushed down, a buffer's offset is 0 or another's top aligned up; both stay
    multiples of g when g divides every size and each alignment a divides g
    (x is then already aligned) or is a multiple of g. So the optimum is a
    multiple of g too, and a cap that fails proves the next multiple.
    """
    g = int(np.gcd.reduce(sizes)) if len(sizes) else 1
    aligns = np.unique(aligns).tolist()
    while g > 1:
        bad = [a for a in aligns if g % a and a % g]
        if not bad:
            break
        g = int(np.gcd(g, bad[0]))
    return max(g, 1)


class _Pieces:
    """Per-piece best offsets so far (positions within the whole problem)."""

    def __init__(self, arrays: ProblemArrays, pieces: list[np.ndarray]) -> None:
        self.arrays, self.pieces = arrays, pieces
        self.offsets = np.zeros(len(arrays.sizes), dtype=np.int64)

    def height(self, k: int) -> int:
        idx = self.pieces[k]
        return int((self.offsets[idx] + self.arrays.sizes[idx]).max())

    def total_height(self) -> int:
        return int((self.offsets + self.arrays.sizes).max(initial=0))


def _hinted(state: _Pieces, hint: Placement | None) -> np.ndarray | None:
    """The hint's offsets by position, or None."""
    if hint is None:
        return None
    return np.array([hint.offsets[i] for i in state.arrays.ids], dtype=np.int64)


class BranchAndBound:
    """Exact search over canonical placements, per independent piece, within a time limit."""

    name = "bnb"

    def plan(self, problem: MemoryProblem, time_limit: float = DEFAULT_TIME_LIMIT,
             hint: Placement | None = None) -> Placement:
        began = time.perf_counter()
        deadline = began + time_limit
        arrays = ProblemArrays.of(problem)
        if len(arrays.sizes) == 0:
            return Placement({}, 0, self.name, True, 0.0)
        lb = lower_bound(problem)
        pieces = [np.sort(idx) for idx in split_timeline(arrays.starts, arrays.ends)]  # keep position order: same ties as whole-problem passes
        state = _Pieces(arrays, pieces)
        big = self._big_pieces(state, lb, hint, began + time_limit * BIG_PIECE_SHARE)
        self._heuristics(state, lb, hint, began + time_limit / 3, skip=big)
        proven = self._search(state, lb, deadline, height_grain(arrays.sizes, arrays.aligns))
        height = state.total_height()
        return Placement(offsets_by_id(arrays, state.offsets), height, self.name,
                         height <= max(lb, proven), time.perf_counter() - began)

    def _heuristics(self, state: _Pieces, target: int, hint: Placement | None, deadline: float,
                    skip: frozenset[int] = frozenset()) -> None:
        """Fills every piece but `skip` with its best heuristic offsets, or the hint's where they
        already fit the target or the problem is one piece (the hint then came from the
        same orderings, run on the whole problem: running them again would only cost time)."""
        hinted = _hinted(state, hint)
        for k, idx in enumerate(state.pieces):
            if k in skip:
                continue
            sub = _sub_arrays(state.arrays, idx)
            if hinted is not None:
                hint_height = int((hinted[idx] + sub.sizes).max())
                if hint_height <= target or len(state.pieces) == 1:
                    state.offsets[idx] = hinted[idx]
                    continue
            state.offsets[idx] = _heuristic_piece(sub, target, deadline)
            if hinted is not None and hint_height < int((state.offsets[idx] + sub.sizes).max()):
                state.offsets[idx] = hinted[idx]

    def _big_pieces(self, state: _Pieces, target: int, hint: Placement | None, deadline: float) -> frozenset[int]:
        """Step 2's window search on each piece above MAX_EXACT (unless the hint fits it
        under `target`), each with time in proportion to its buffers; returns the pieces it
        placed (kept where lower than the hint), for the heuristics to skip."""
        hinted = _hinted(state, hint)
        big = [k for k, idx in enumerate(state.pieces) if len(idx) > MAX_EXACT]
        if hinted is not None:
            big = [k for k in big if int((hinted + state.arrays.sizes)[state.pieces[k]].max()) > target]
        waiting, done = sum(len(state.pieces[k]) for k in big), set()
        for k in big:
            idx = state.pieces[k]
            share = (deadline - time.perf_counter()) * len(idx) / waiting
            waiting -= len(idx)
            found = _big_piece(_sub_arrays(state.arrays, idx), target, time.perf_counter() + share)
            if found is None:
                continue
            if hinted is not None and int((hinted[idx] + state.arrays.sizes[idx]).max()) <= int(
                    (found + state.arrays.sizes[idx]).max()):
                found = hinted[idx]
            state.offsets[idx] = found
            done.add(k)
        return frozenset(done)

    def _probe(self, state: _Pieces, cap: int, deadline: float) -> int:
        """Tries to fit every piece above `cap` under it: 1 all fit, 0 proved not, -1 unknown,
        -2 a piece above it is too big for the exact search."""
        for k, idx in enumerate(state.pieces):
            if state.height(k) <= cap:
                continue
            if len(idx) > MAX_EXACT:
                return -2
            sub = state.arrays
            inst = Instance(sub.starts[idx], sub.ends[idx], sub.sizes[idx], sub.aligns[idx])
            status, offsets = fits(inst, cap, deadline - time.perf_counter())
            if status != 1:
                return status
            state.offsets[idx] = offsets
        return 1

    def _search(self, state: _Pieces, lb: int, deadline: float, grain: int = 1) -> int:
        """Drives the height down; returns the best proven lower bound. Caps are
        multiples of `grain` (see height_grain): the heights between never occur."""
        proven = guess = -(-lb // grain) * grain
        first = True
        while time.perf_counter() < deadline:
            height = state.total_height()
            if height <= max(proven, guess):
                break
            cap = guess if first else max(guess, (guess + height - 1) // 2 // grain * grain)
            left = deadline - time.perf_counter()
            share = left * FIRST_PROBE_SHARE if first else left / 3
            status = self._probe(state, cap, time.perf_counter() + max(share, 0.05))
            first = False
            if status == -2:  # a piece too big to probe: no cap can be settled
                break
            if status == 0:
                proven = guess = cap + grain
            elif status == -1:
                guess = cap + grain
            log.debug("bnb: cap %d -> %d (height %d, proven %d)", cap, status, state.total_height(), proven)
        return proven
