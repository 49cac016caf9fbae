"""A trial's configuration -> compile options -> the build id it will produce.

The build id hashes only what determines the build (source hash, options,
target, versions; see graphopt.identity), so it is known before compiling: that
is the key under which the tuner's cache dedups trials. (The artifact's content
id, which covers its files, is recorded once built and pinned when it is loaded.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

DEFAULT_TIME_LIMIT = 2.0


def model_inputs(model_path: Path) -> list[tuple[str, list]]:
    """(name, dims) of the graph inputs that are not initializers; a dim is int or a symbol string."""
    import onnx

    model = onnx.load(str(model_path), load_external_data=False)
    inits = {i.name for i in model.graph.initializer}
    out = []
    for value in model.graph.input:
        if value.name in inits:
            continue
        dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?")
                for d in value.type.tensor_type.shape.dim]
        out.append((value.name, dims))
    return out


def _input_shapes(model_path: Path, config: dict) -> dict[str, tuple[int, ...]]:
    """`batch_size` fixes the first dimension of every model input (the others must be static)."""
    if "batch_size" not in config:
        return {}
    shapes = {}
    for name, dims in model_inputs(model_path):
        rest = dims[1:]
        if any(not isinstance(d, int) or d <= 0 for d in rest):
            from graphopt.tune.errors import TuneError

            raise TuneError(f"batch_size: input {name!r} has dynamic dims after the first ({dims})")
        shapes[name] = (int(config["batch_size"]), *rest)
    return shapes


def options_for(model_path: Path, config: dict[str, Any], train: bool, target: str = "llvm"):
    """CompileOptions (or TrainOptions with --train) for one configuration."""
    common = {"target": target, "planner": config.get("planner", "auto"),
              "time_limit": float(config.get("time_limit", DEFAULT_TIME_LIMIT)),
              "reorder": bool(config.get("reorder", True)), "input_shapes": _input_shapes(model_path, config)}
    if not train:
        from graphopt.options import CompileOptions

        return CompileOptions(schedules=bool(config.get("schedules", True)),
                              concat_in_place=bool(config.get("concat_in_place", True)),
                              kernel_library=str(config.get("kernel_library", "auto")), **common)
    from graphopt.options import TrainOptions

    budget = config.get("memory_budget")
    optimizer = f"{config.get('optimizer', 'sgd')}:lr={float(config.get('lr', 0.1)):g}"
    return TrainOptions(optimizer=optimizer, memory_budget=None if budget is None else str(budget),
                        swap_planner=config.get("swap_planner", "ours"),
                        swap_model=str(config.get("swap_model", "rich")), **common)
