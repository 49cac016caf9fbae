"""Pareto front and hypervolume for minimized objectives (pure Python, no Optuna).

Hypervolume is computed exactly by slicing along the last objective (HSO): fine
for the tens of points a compile-option study produces. A point at or beyond
the reference point in some objective adds nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

Point = Sequence[float]


def dominates(a: Point, b: Point) -> bool:
    return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))


def front_indices(points: Sequence[Point]) -> list[int]:
    """Indices of the non-dominated points (the first of equal points is kept)."""
    keep = []
    for i, p in enumerate(points):
        if any(dominates(q, p) or (tuple(q) == tuple(p) and j < i) for j, q in enumerate(points) if j != i):
            continue
        keep.append(i)
    return keep


def hypervolume(points: Sequence[Point], reference: Point) -> float:
    """Volume dominated by `points` and bounded by `reference` (all objectives minimized)."""
    inside = [tuple(p) for p in points if all(x < r for x, r in zip(p, reference))]
    if not inside:
        return 0.0
    pts = [inside[i] for i in front_indices(inside)]
    if len(reference) == 1:
        return reference[0] - min(p[0] for p in pts)
    pts.sort(key=lambda p: p[-1])
    total = 0.0
    for i, p in enumerate(pts):
        upper = pts[i + 1][-1] if i + 1 < len(pts) else reference[-1]
        if upper > p[-1]:
            total += hypervolume([q[:-1] for q in pts[: i + 1]], reference[:-1]) * (upper - p[-1])
    return total


def reference_point(points: Sequence[Point], margin: float = 0.0) -> tuple[float, ...]:
    """The worst value of each objective (plus a relative margin): a fixed box to compare fronts in."""
    worst = [max(p[k] for p in points) for k in range(len(points[0]))]
    return tuple(w + abs(w) * margin for w in worst)
