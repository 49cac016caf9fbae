"""The built-in components of the graphopt flow: dataset, model, compile, evaluate.

`dataset` and `model` are files captured into the store when the component is
added (their content is their version). `compile` runs graphopt's compiler and is
keyed by the build id it will produce (graphopt.artifact), so a model compiled with
the same options is never compiled twice, on any branch. `evaluate` runs the compiled
artifact through graphopt's runtime on a dataset split and writes metrics.json
(accuracy, loss, latency, and the plan's arena/lower-bound bytes); the runtime loads
it pinned to the content id of the stored tree (graphopt.pipelines.artifacts). A merge
evaluating candidates in parallel compiles side by side and times each evaluation
alone on its node (graphopt.cluster.node_lock).

Each runnable builtin is `fn(inputs, out, params)` like a user component, with
an `accepts(spec, signatures)` static check that judges compatibility from the
computed signatures before anything runs.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from graphopt.pipelines import signatures as sigs
from graphopt.pipelines.errors import ComponentRunError, SchemaConflictError

COMPILE_DEFAULTS = {"target": "llvm", "planner": "auto", "time_limit": 10.0, "input_shapes": {}}
EVALUATE_DEFAULTS = {"x": "x_test", "y": "y_test", "repeat": 3}


def _one(directory: Path, suffix: str, what: str) -> Path:
    found = sorted(Path(directory).rglob(f"*{suffix}"))
    if len(found) != 1:
        raise ComponentRunError(f"expected one {suffix} file in the {what} input, found {len(found)}")
    return found[0]


def compile_options(params: dict):
    from graphopt.options import CompileOptions

    merged = {**COMPILE_DEFAULTS, **params}
    shapes = {k: tuple(v) for k, v in merged["input_shapes"].items()}
    # the boolean switches are optional: a spec without them gets the compiler's defaults
    return CompileOptions(target=merged["target"], planner=merged["planner"],
                          time_limit=float(merged["time_limit"]), input_shapes=shapes,
                          reorder=bool(merged.get("reorder", True)), schedules=bool(merged.get("schedules", True)),
                          concat_in_place=bool(merged.get("concat_in_place", True)))


def predicted_artifact_id(model_file: Path, params: dict) -> str:
    """The build id `compile_model` will stamp, computed without compiling (see graphopt.artifact).

    The build id hashes the source file, options, target and versions only, so it is
    known before the build: that is what lets the store act as compile cache. (The
    content id, which covers the built files, is checked when the cached tree is used.)
    """
    from graphopt.identity import predicted_id

    return predicted_id(model_file, compile_options(params))


def run_compile(inputs: dict[str, Path], out: Path, params: dict) -> str:
    """Compiles the one .onnx file of the single input into `out`; returns the build id."""
    from graphopt.cluster.node_lock import working
    from graphopt.compiler import compile_model

    (model_dir,) = inputs.values()
    with working():  # beside other builds, never beside a timing (merge evaluates candidates in parallel)
        result = compile_model(_one(model_dir, ".onnx", "model"), out, compile_options(params))
    return result.manifest["build_id"]


def accepts_compile(spec: dict, inputs: dict[str, dict]) -> str | None:
    for name, signature in inputs.items():
        if not any("inputs" in d for d in signature.get("files", {}).values()):
            return f"compile needs an .onnx model from {name}, got {sigs.describe(signature) or 'no files'}"
    return None


def _array(directory: Path, key: str) -> np.ndarray:
    for path in sorted(Path(directory).rglob("*.npz")):
        with np.load(path, allow_pickle=False) as data:
            if key in data.files:
                return data[key]
    raise SchemaConflictError(f"evaluate: no array {key!r} in the data input")


def _batches(x: np.ndarray, batch: int) -> list[tuple[np.ndarray, int]]:
    """Fixed-size batches for a static-shape artifact; the last one is zero-padded."""
    out = []
    for start in range(0, len(x), batch):
        chunk = x[start:start + batch]
        real = len(chunk)
        if real < batch:
            chunk = np.concatenate([chunk, np.zeros((batch - real, *chunk.shape[1:]), chunk.dtype)])
        out.append((chunk, real))
    return out


def run_evaluate(inputs: dict[str, Path], out: Path, params: dict, pins: dict[str, str] | None = None) -> None:
    """Accuracy and loss on (x, y), median batch latency, and the plan's memory figures.
    `pins[name]`: the content id the artifact input must have (the executor passes it)."""
    from graphopt.runtime import load

    p = {**EVALUATE_DEFAULTS, **params}
    art_name, art = next((n, d) for n, d in inputs.items() if (d / "manifest.json").is_file())
    data = next(d for d in inputs.values() if d != art)
    session = load(art, expect_id=(pins or {}).get(art_name))
    (sig,) = session.inputs
    x = _array(data, p["x"]).astype(sig["dtype"])
    y = _array(data, p["y"]).astype(np.int64)
    if list(x.shape[1:]) != list(sig["shape"][1:]):
        raise SchemaConflictError(f"evaluate: data {p['x']} has rows of shape {list(x.shape[1:])}, "
                                  f"the artifact takes {sig['shape'][1:]}")
    from graphopt.cluster.node_lock import timing

    logits, times = [], []
    with timing():  # latency_ms is timed alone on the node: comparable whatever else the merge runs
        for chunk, real in _batches(x, sig["shape"][0]):
            result = None
            for _ in range(max(int(p["repeat"]), 1)):
                result = session.run_timed({sig["name"]: chunk})
                times.append(result.seconds)
            logits.append(next(iter(result.outputs.values()))[:real])
    z = np.concatenate(logits).astype(np.float64)
    z -= z.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    metrics = {"accuracy": float((z.argmax(axis=1) == y).mean()),
               "loss": float(-log_p[np.arange(len(y)), y].mean()),
               "latency_ms": float(np.median(times) * 1e3),
               "arena_bytes": float(session.plan["arena_bytes"]),
               "lower_bound_bytes": float(session.plan["lower_bound_bytes"])}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1, sort_keys=True))


def accepts_evaluate(spec: dict, inputs: dict[str, dict]) -> str | None:
    """Judges the data rows against the artifact's input shape, from signatures alone."""
    p = {**EVALUATE_DEFAULTS, **spec.get("params", {})}
    art_inputs = [sigs.artifact_inputs(s) for s in inputs.values()]
    art_inputs = [a for a in art_inputs if a]
    arrays = {}
    for s in inputs.values():
        arrays.update(sigs.arrays(s))
    if not art_inputs or p["x"] not in arrays:
        return None  # not enough known to judge: let the run decide
    (_name, shape, _dtype), x_shape = art_inputs[0][0], arrays[p["x"]][0]
    if list(x_shape[1:]) != list(shape[1:]):
        return f"data {p['x']} rows are {'x'.join(map(str, x_shape[1:]))}, the model takes {'x'.join(map(str, shape[1:]))}"
    return None

