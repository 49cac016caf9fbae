"""Splitting a placement problem where the timeline comes apart.

Design: sort buffers by start and sweep, keeping the latest end seen. Where
that end is <= the next start, no buffer crosses the point: the buffers before
and after never live together, so their offsets are independent and the
arena is the max of the pieces' heights. Each piece is then planned alone
(exact search for small pieces, heuristics for big ones), and a piece only
has to fit under the global target (the max of all pieces' bounds), not under
its own bound. O(n log n).
"""

from __future__ import annotations

import numpy as np


def split_timeline(starts: np.ndarray, ends: np.ndarray) -> list[np.ndarray]:
    """Index arrays of the independent pieces, in time order (each sorted by start)."""
    if len(starts) == 0:
        return []
    order = np.argsort(starts, kind="stable")
    reach = np.maximum.accumulate(ends[order])
    cuts = np.nonzero(reach[:-1] <= starts[order][1:])[0] + 1
    return np.split(order, cuts)


def piece_lower_bound(starts: np.ndarray, ends: np.ndarray, sizes: np.ndarray) -> int:
    """Most bytes live at once among these buffers (frees before allocations at a tie)."""
    if len(sizes) == 0:
        return 0
    times = np.concatenate((starts, ends))
    deltas = np.concatenate((sizes, -sizes))
    order = np.lexsort((deltas, times))
    return int(np.cumsum(deltas[order]).max())
