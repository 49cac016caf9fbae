"""Training steps from ONNX forward models: build, compile (with swaps), run.

    compile_model(model.onnx, ART, TrainOptions(loss=..., optimizer=...))   # graphopt.compiler
    TrainRunner(ART).run(data, steps)

The compile is graphopt.compiler's, with the training stages (gradient, profile,
swap) switched on by TrainOptions; this package holds what those stages call.
"""

from graphopt.options import TrainOptions


def lower_train_model(model, options: TrainOptions):
    """The compile's front half for a training step, through extraction (no planning):
    a CompileState whose `lowered` and `extraction` the swap benchmarks start from."""
    from pathlib import Path

    from graphopt.compiler import CompileState, run_stages

    options.check()
    return run_stages(CompileState(model, Path("."), options), until="extract")


__all__ = ["TrainOptions", "lower_train_model"]
