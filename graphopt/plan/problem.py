"""What a placement planner is asked to solve.

A `MemoryProblem` is the offline dynamic storage allocation problem: buffers with
a size and a half-open lifetime `[start, end)` in execution steps. Two buffers
whose lifetimes intersect must not share an address. Aliases (reshape views,
tuple items) are already folded into their source's lifetime by extraction, so
every buffer here owns its bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_ALIGNMENT = 64  # bytes; TVM kernels assume 64-byte aligned data pointers


@dataclass(frozen=True)
class Buffer:
    """One tensor to place: `size` bytes live during steps `[start, end)`."""

    id: int
    start: int
    end: int
    size: int
    alignment: int = DEFAULT_ALIGNMENT
    name: str = ""

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError(f"buffer {self.id}: empty lifetime [{self.start}, {self.end})")
        if self.size <= 0:
            raise ValueError(f"buffer {self.id}: size must be positive, got {self.size}")
        if self.alignment <= 0:
            raise ValueError(f"buffer {self.id}: alignment must be positive")

    def overlaps_in_time(self, other: Buffer) -> bool:
        return self.start < other.end and other.start < self.end


@dataclass(frozen=True)
class MemoryProblem:
    """Buffers in execution order; `num_steps` bounds every lifetime's end."""

    buffers: tuple[Buffer, ...]
    num_steps: int = 0
    name: str = ""
    meta: dict = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        ids = [b.id for b in self.buffers]
        if len(set(ids)) != len(ids):
            raise ValueError("buffer ids must be unique")
        horizon = max((b.end for b in self.buffers), default=0)
        if self.num_steps < horizon:
            object.__setattr__(self, "num_steps", horizon)

    @property
    def total_bytes(self) -> int:
        """Sum of all sizes: the arena a planner without any reuse would need."""
        return sum(b.size for b in self.buffers)

    def __len__(self) -> int:
        return len(self.buffers)
