"""Shared test helpers: compile a model, run it, and judge it against ONNX Runtime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx

from tests.alloc_data import alloc_dir  # noqa: F401  (fixture re-exported to every test)

REPO = Path(__file__).resolve().parents[1]


def random_feeds(model: onnx.ModelProto, seed: int = 0, shapes: dict | None = None) -> dict[str, np.ndarray]:
    """Random non-zero inputs for every graph input that is not an initializer."""
    rng = np.random.default_rng(seed)
    inits = {i.name for i in model.graph.initializer}
    feeds = {}
    for info in model.graph.input:
        if info.name in inits:
            continue
        shape = (shapes or {}).get(info.name) or [d.dim_value for d in info.type.tensor_type.shape.dim]
        dtype = onnx.helper.tensor_dtype_to_np_dtype(info.type.tensor_type.elem_type)
        feeds[info.name] = (rng.standard_normal(shape) + 0.1).astype(dtype)
    return feeds


def onnx_runtime_outputs(model_path: Path, feeds: dict) -> dict[str, np.ndarray]:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, feeds)))


def relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
    scale = max(float(np.abs(expected).max()), 1e-12)
    return float(np.abs(actual.astype(np.float64) - expected.astype(np.float64)).max()) / scale


def revalidate(plan: dict):
    """Judges a stored plan with the validator, from plan.json alone (as `graphopt inspect` does)."""
    from graphopt.plan.record import revalidate as judge

    return judge(plan)


def compile_run_check(model: onnx.ModelProto, workdir: Path, tol: float = 1e-4, planner: str = "auto",
                      input_shapes: dict | None = None, time_limit: float = 2.0,
                      absolute: dict[str, float] | None = None, concat_in_place: bool = True,
                      stock_bound: bool = True) -> dict:
    """The contract every compiled model meets: same numbers as ONNX Runtime,
    a plan the validator accepts, and an arena no larger than TVM's own plan.

    `absolute` names outputs judged by an absolute tolerance instead (probabilities
    that ONNX Runtime computes with an approximate sigmoid). `stock_bound=False` drops
    the arena <= TVM check, for tensors whose sizes are not multiples of 64 bytes: TVM
    allocates each storage on its own, one arena pads every offset to 64."""
    from graphopt.compiler import CompileOptions, compile_model
    from graphopt.runtime import load

    workdir.mkdir(parents=True, exist_ok=True)
    model_path = workdir / "model.onnx"
    onnx.save(model, model_path)
    options = CompileOptions(planner=planner, time_limit=time_limit, input_shapes=input_shapes or {},
                             concat_in_place=concat_in_place)
    result = compile_model(model_path, workdir / "art", options)
    feeds = random_feeds(model, shapes=input_shapes)
    expected = onnx_runtime_outputs(model_path, feeds)
    actual = load(workdir / "art").run(feeds)
    assert set(actual) == set(expected)
    for name, value in expected.items():
        assert actual[name].shape == value.shape, name
        if absolute and name in absolute:
            worst = float(np.abs(actual[name].astype(np.float64) - value).max())
            assert worst < absolute[name], (name, worst)
        else:
            assert relative_error(actual[name], value) < tol, (name, relative_error(actual[name], value))
    plan = result.plan
    report = revalidate(plan)
    assert report.valid, report.errors
    assert plan["valid"] is True
    if stock_bound:
        assert plan["arena_bytes"] <= plan["tvm_stock_bytes"], (plan["arena_bytes"], plan["tvm_stock_bytes"])
    assert plan["arena_bytes"] >= plan["lower_bound_bytes"]
    return plan


def compile_example(work: Path, name: str, time_limit: float = 1.0) -> onnx.ModelProto:
    """Writes example model `name` (graphopt.examples.models) to work/m.onnx and compiles it to
    work/art with the default options; returns the model."""
    from graphopt.compiler import compile_model
    from graphopt.examples.models import EXAMPLES
    from graphopt.options import CompileOptions

    model = EXAMPLES[name]()
    onnx.save(model, work / "m.onnx")
    compile_model(work / "m.onnx", work / "art", CompileOptions(time_limit=time_limit))
    return model
