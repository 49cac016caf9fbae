"""Models with fallback kernels: the memory plan around them, and latency beside ONNX Runtime.

    python -m benchmarks.fallback [--json OUT.json] [--md OUT.md]

For each model: which nodes run as onnxruntime kernels, the arena beside its lower bound and
TVM's stock plan (the plan must cover the fallback outputs like any other tensor), the outputs
checked against ONNX Runtime on random non-zero inputs, and the latency of graphopt's runtime
and ONNX Runtime, both at their default threads, interleaved (benchmarks/timing.py).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper

from benchmarks.machine import cpu_name
from benchmarks.timing import interleaved_ratio, plan_repeats
from tests.frontend.fallback_models import fixed_loop, mixed_fallback

RTOL, ATOL = 1e-3, 1e-4


def cnn_with_fallback() -> onnx.ModelProto:
    """Three conv blocks at 64 channels, 56x56, with a Celu (no TVM converter) and a com.microsoft
    Gelu (contrib op) between them: fallback kernels amid real work."""
    rng = np.random.default_rng(0)
    weights, nodes, x = [], [], "x"
    for i, act in enumerate(["Relu", "Celu", "Gelu"]):
        shape = (64, 64 if i else 3, 3, 3)
        w = numpy_helper.from_array((rng.standard_normal(shape) * 0.05).astype(np.float32), f"w{i}")
        weights.append(w)
        nodes.append(h.make_node("Conv", [x, f"w{i}"], [f"c{i}"], pads=[1, 1, 1, 1]))
        domain = "com.microsoft" if act == "Gelu" else ""
        nodes.append(h.make_node(act, [f"c{i}"], [f"a{i}"], domain=domain))
        x = f"a{i}"
    nodes.append(h.make_node("GlobalAveragePool", [x], ["y"]))
    graph = h.make_graph(nodes, "cnn_fallback", [h.make_tensor_value_info("x", T.FLOAT, [1, 3, 56, 56])],
                         [h.make_tensor_value_info("y", T.FLOAT, [1, 64, 1, 1])], weights)
    return h.make_model(graph, opset_imports=[h.make_opsetid("", 17), h.make_opsetid("com.microsoft", 1)],
                        ir_version=10)


MODELS = {"mixed (TopK, Celu, ms Gelu)": mixed_fallback, "fixed-trip Loop": fixed_loop,
          "cnn 64ch 56x56 + Celu + ms Gelu": cnn_with_fallback}


def _feeds(model: onnx.ModelProto, rng: np.random.Generator) -> dict[str, np.ndarray]:
    inits = {t.name for t in model.graph.initializer}
    feeds = {}
    for vi in model.graph.input:
        if vi.name not in inits:
            shape = [d.dim_value for d in vi.type.tensor_type.shape.dim]
            feeds[vi.name] = rng.uniform(0.2, 0.9, shape).astype(np.float32)
    return feeds


def measure(name: str, model: onnx.ModelProto, scratch: Path) -> dict:
    import graphopt.runtime as rt
    from graphopt.compiler import compile_model
    from graphopt.options import CompileOptions

    out = scratch / "art"
    began = time.perf_counter()
    compile_model(model, out, CompileOptions())
    compile_s = time.perf_counter() - began
    session = rt.load(out)
    plan = session.plan
    reference = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    feeds = _feeds(model, np.random.default_rng(1))
    got, want = session.run(feeds), reference.run(None, feeds)
    for (key, value), expected in zip(got.items(), want):
        np.testing.assert_allclose(value, expected, rtol=RTOL, atol=ATOL, err_msg=f"{name}: {key}")
    ours = lambda: session.run_timed(feeds).seconds  # noqa: E731
    theirs = lambda: _timed(lambda: reference.run(None, feeds))  # noqa: E731
    rounds, per_round = plan_repeats(max(ours(), theirs()), budget_s=6.0)
    timing = interleaved_ratio(ours, theirs, rounds=rounds, per_round=per_round, warmup=3)
    return {"model": name, "fallback_ops": [k["op_type"] for k in plan["fallback"]["kernels"]],
            "arena_bytes": plan["arena_bytes"], "lower_bound_bytes": plan["lower_bound_bytes"],
            "tvm_stock_bytes": plan["tvm_stock_bytes"], "valid": plan["valid"], "compile_seconds": compile_s,
            "graphopt_ms": timing["a_median"] * 1e3, "ort_ms": timing["b_median"] * 1e3,
            "ratio": timing["ratio_median"], "ratio_iqr": timing["ratio_iqr"], "outputs_match_ort": True}


def _timed(call) -> float:
    began = time.perf_counter()
    call()
    return time.perf_counter() - began


def markdown(rows: list[dict], meta: dict) -> str:
    lines = [f"# Models with fallback kernels ({meta['date']})", "",
             f"- machine: {meta['machine']}, load average {meta['load_before']} before, {meta['load_after']} after",
             f"- command: `{meta['command']}`; default threads for both engines; outputs checked against ORT "
             f"(rtol {RTOL}, atol {ATOL})", "",
             "| model | fallback ops | arena | lower bound | TVM stock | graphopt ms | ORT ms | graphopt/ORT (IQR) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {r['model']} | {', '.join(r['fallback_ops'])} | {r['arena_bytes']:,} | "
                     f"{r['lower_bound_bytes']:,} | {r['tvm_stock_bytes']:,} | {r['graphopt_ms']:.3f} | "
                     f"{r['ort_ms']:.3f} | {r['ratio']:.2f} ({r['ratio_iqr']:.2f}) |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--md", type=Path, default=None)
    args = parser.parse_args(argv)
    meta = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": f"{os.cpu_count()} CPUs ({cpu_name()})", "load_before": _load(),
            "command": "python -m benchmarks.fallback " + " ".join(sys.argv[1:] if argv is None else argv)}
    rows = []
    for name, build in MODELS.items():
        with tempfile.TemporaryDirectory() as scratch:
            rows.append(measure(name, build(), Path(scratch)))
    meta["load_after"] = _load()
    text = markdown(rows, meta)
    print(text)
    if args.json:
        args.json.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    if args.md:
        args.md.write_text(text)
    return 0


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


if __name__ == "__main__":
    raise SystemExit(main())
