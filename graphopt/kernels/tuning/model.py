"""`graphopt tune-kernels` on one model: its kernels exactly as a compile schedules them.

The model goes through the compile's own front half (prepare, import, legalize) and
its weights are marked as in a compile, so their packing is left out of the kernel
timings; the search itself is graphopt.kernels.tuning.search.
"""

from __future__ import annotations

from pathlib import Path


def tune_model(model: Path, db, trials: int, input_shapes: dict, time_budget: float | None = None,
               threads: int | None = None, progress: bool = True):
    """Prepares and legalizes `model` as compile does, then tunes the kernels `db` lacks."""
    from graphopt.kernels.tuning.jobs import legalized, model_key
    from graphopt.kernels.tuning.search import tune

    # weights marked as in compile: their packing is then left out of the kernel timings
    kernels, target = legalized(*model_key(model, input_shapes))
    return tune(kernels, target, db, trials, time_budget, threads, progress)
