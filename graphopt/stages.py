"""Timing and progress for the stages of a compile, shared by both drivers.

Instrumentation stays out of the passes: a driver wraps each stage call in
`StageTimer`, which reports the stage name (progress bar) and records its
wall time (plan.json's `stage_seconds`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

Progress = Callable[[str], None]


class StageTimer:
    """`timer("lower", fn, *args)` runs fn(*args), says "lower", records its seconds."""

    def __init__(self, progress: Progress | None = None, seconds: dict[str, float] | None = None) -> None:
        self.say = progress or (lambda _stage: None)
        self.seconds: dict[str, float] = {} if seconds is None else seconds

    def __call__(self, stage: str, fn: Callable[..., Any], *args: Any) -> Any:
        self.say(stage)
        start = time.perf_counter()
        out = fn(*args)
        self.seconds[stage] = time.perf_counter() - start
        return out
