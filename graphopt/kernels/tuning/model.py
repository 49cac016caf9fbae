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
    from graphopt.frontend import prepare
    from graphopt.frontend.importer import to_relax
    from graphopt.kernels.tuning.search import tune
    from graphopt.lowering import prepack
    from graphopt.lowering.lower import legalize
    from graphopt.lowering.target import make_target

    imported = to_relax(prepare(model, input_shapes).model)
    target = make_target("llvm")
    # weights marked as in compile: their packing is then left out of the kernel timings
    kernels = prepack.mark_weights()(legalize(imported.mod, target))
    return tune(kernels, target, db, trials, time_budget, threads, progress)
