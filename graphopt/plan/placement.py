"""A planner's answer: an offset for every buffer and the arena height."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Placement:
    """Offsets in bytes, keyed by buffer id.

    `arena_bytes` is max(offset + size): the one allocation the runtime makes.
    `optimal` is True only when it is proven (height == lower bound, or an exact
    search closed the gap); None when nobody checked.
    """

    offsets: dict[int, int]
    arena_bytes: int
    planner: str
    optimal: bool | None = None
    seconds: float = 0.0

    @staticmethod
    def from_offsets(problem, offsets: dict[int, int], planner: str, **kw) -> Placement:
        """Builds a placement and computes its height from the problem's sizes."""
        sizes = {b.id: b.size for b in problem.buffers}
        height = max((offsets[i] + sizes[i] for i in sizes), default=0)
        return Placement(offsets=dict(offsets), arena_bytes=height, planner=planner, **kw)
