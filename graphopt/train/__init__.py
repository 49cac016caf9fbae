"""Training steps from ONNX forward models: build, compile (with swaps), run.

    compile_train_model(model.onnx, ART, TrainOptions(loss=..., optimizer=...))
    TrainRunner(ART).run(data, steps)
"""

from graphopt.train.compile import TrainOptions, compile_train_model, lower_train_model

__all__ = ["TrainOptions", "compile_train_model", "lower_train_model"]
