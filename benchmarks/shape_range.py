"""Range artifacts (graphopt.frontend.ranges) against fixed-shape artifacts of the same model.

For each model: one artifact compiled for the range, one fixed at the range's maximum shape and
one fixed at its minimum. Reported:
  * arena: the range artifact's (planned at the maximum) vs the fixed-max artifact's, and the
    arena the range plan uses at the minimum vs the fixed-min artifact's;
  * latency at the minimum shape (batch 1): range artifact vs fixed-min artifact, interleaved
    A B A B (ROUNDS rounds of REPS calls each), medians and spread (min..max of round medians);
  * latency at the maximum shape: range artifact vs fixed-max artifact, interleaved the same way;
  * latency per shape across the range (both corners and inside): the one range artifact against
    ONNX Runtime and OpenVINO (when installed) on the same input, wall clock of a whole call for
    all three (input in, output out), interleaved rounds; ORT and OpenVINO use their own thread
    defaults (OpenVINO: LATENCY hint, f32), graphopt the TVM runtime's (TVM_NUM_THREADS is recorded,
    never set here);
  * the machine's load average before and after, since the machine is shared;
  * the issue's target model (`encoder4`: benchmarks.model_zoo's 4-layer encoder, dim 256, as
    graphopt.examples.range_models.transformer_encoder) compiled once for batch 1..16 x seq 16..512:
    outputs against ORT at 5 shapes (both corners), arena at the max against a fixed compile of the max
    shape, batch-1 latency against fixed batch-1 artifacts at seq 16 and 128 (not timed at the max:
    seconds per call on 2 cores).

    .venv/bin/python -m benchmarks.shape_range --out benchmarks/results/shape-range-DATE
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.machine import cpu_name
from graphopt.compiler import CompileOptions, compile_model
from graphopt.examples.range_models import batch_cnn, encoder_block, transformer_encoder
from graphopt.frontend.ranges import DimRange
from graphopt.runtime.session import load

ROUNDS, REPS = 15, 20
SHAPE_ROUNDS, SHAPE_REPS = 5, 10
MAX_ROUNDS, MAX_REPS = 7, 5  # range vs fixed-max artifact at the maximum shape (calls of several ms)
# ORT's and OpenVINO's worker threads spin after a call; on 2 cores, timed right after them, graphopt's
# batch-1 call measured 2.6 ms instead of 0.2 ms (and ORT itself would pay the same after the others).
SETTLE_SECONDS = 0.2
SHAPES = {  # name -> shapes timed against ORT and OpenVINO (corners and odd sizes inside the range)
    "cnn": [(1, 3, 32, 32), (7, 3, 32, 32), (32, 3, 32, 32)],
    "encoder_block": [(1, 16, 64), (3, 17, 64), (16, 128, 64)],
}
MODELS = {  # name -> (model, range shape, max shape, min shape)
    "cnn": (lambda: batch_cnn(size=32, channels=(16, 32)), (DimRange(1, 32), 3, 32, 32), (32, 3, 32, 32),
            (1, 3, 32, 32)),
    "encoder_block": (lambda: encoder_block(dim=64), (DimRange(1, 16), DimRange(16, 128), 64), (16, 128, 64),
                      (1, 16, 64)),
}


# The target model (#22): benchmarks.model_zoo's 4-layer encoder (dim 256) for batch 1..16, seq 16..512.
# Checked against ORT at both corners and inside; batch-1 latency against fixed batch-1 artifacts at two
# sequence lengths. Not timed at the maximum: a 16 x 512 call takes seconds on this 2-core VM.
ENCODER4_RANGE, ENCODER4_MAX = (DimRange(1, 16), DimRange(16, 512), 256), (16, 512, 256)
ENCODER4_CHECKED = [(1, 16, 256), (16, 512, 256), (1, 512, 256), (16, 16, 256), (3, 77, 256)]
ENCODER4_BATCH1_SEQS = (16, 128)
ENCODER4_SHAPES = [(1, 16, 256), (1, 128, 256), (4, 128, 256)]


def _compile(model, work: Path, name: str, shape: tuple) -> tuple[Path, dict]:
    result = compile_model(model, work / name, CompileOptions(input_shapes={"x": shape}))
    return result.artifact, result.plan


def _interleaved(paths: dict[str, Path], x: np.ndarray, rounds: int = ROUNDS, reps: int = REPS) -> dict[str, dict]:
    """Round medians of each artifact, rounds interleaved A B A B so load drifts hit both alike."""
    sessions = {k: load(p) for k, p in paths.items()}
    for s in sessions.values():  # warm-up
        for _ in range(reps):
            s.run({"x": x})
    medians: dict[str, list[float]] = {k: [] for k in sessions}
    for _ in range(rounds):
        for key, session in sessions.items():
            times = [session.run_timed({"x": x}).seconds for _ in range(reps)]
            medians[key].append(statistics.median(times))
    return {k: {"median_ms": statistics.median(v) * 1e3, "min_ms": min(v) * 1e3, "max_ms": max(v) * 1e3}
            for k, v in medians.items()}


def _openvino(model_path: Path):
    """A callable running the model in OpenVINO's CPU plugin (f32, LATENCY hint), or None if not installed."""
    try:
        import openvino as ov
    except ImportError:
        return None
    compiled = ov.Core().compile_model(str(model_path), "CPU", {"PERFORMANCE_HINT": "LATENCY",
                                                                 "INFERENCE_PRECISION_HINT": "f32"})
    request = compiled.create_infer_request()
    return lambda x: request.infer({0: x})


def _per_shape(model, range_art: Path, work: Path, shapes: list[tuple]) -> list[dict]:
    """Median wall ms per call at each shape: the range artifact, ORT, OpenVINO; interleaved rounds."""
    import onnx
    import onnxruntime as ort

    path = work / "model.onnx"
    onnx.save(model, path)
    ort_session, session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]), load(range_art)
    runners = {"graphopt_range": lambda x: session.run({"x": x}), "onnxruntime": lambda x: ort_session.run(None, {"x": x})}
    openvino = _openvino(path)
    if openvino is not None:
        runners["openvino"] = openvino
    rows = []
    for shape in shapes:
        x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
        medians: dict[str, list[float]] = {k: [] for k in runners}
        for run in runners.values():
            for _ in range(SHAPE_REPS):
                run(x)
        for _ in range(SHAPE_ROUNDS):
            for key, run in runners.items():
                time.sleep(SETTLE_SECONDS)  # the previous engine's spinning worker threads go idle first
                times = []
                for _ in range(SHAPE_REPS):
                    began = time.perf_counter()
                    run(x)
                    times.append(time.perf_counter() - began)
                medians[key].append(statistics.median(times))
        rows.append({"shape": list(shape), **{k: statistics.median(v) * 1e3 for k, v in medians.items()}})
    return rows


def bench(name: str, work: Path) -> dict:
    build, ranged, high, low = MODELS[name]
    model = build()
    work.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    range_art, range_plan = _compile(model, work, "range", ranged)
    range_seconds = time.perf_counter() - began
    max_art, max_plan = _compile(model, work, "fixed_max", high)
    min_art, min_plan = _compile(model, work, "fixed_min", low)
    x = np.random.default_rng(0).standard_normal(low).astype(np.float32)
    x_max = np.random.default_rng(0).standard_normal(high).astype(np.float32)
    record = range_plan["shape_range"]
    return {
        "model": name, "range": "x=" + "x".join(str(d) for d in ranged), "range_compile_seconds": range_seconds,
        "arena_range_bytes": range_plan["arena_bytes"], "arena_fixed_max_bytes": max_plan["arena_bytes"],
        "arena_range_used_at_min_bytes": record["at_min"]["arena_bytes"],
        "arena_fixed_min_bytes": min_plan["arena_bytes"],
        "lower_bound_at_max_bytes": record["at_max"]["lower_bound_bytes"],
        "lower_bound_at_min_bytes": record["at_min"]["lower_bound_bytes"],
        "range_kernels": record["kernels"], "fixed_min_schedules": min_plan["schedules"]["by_rule"],
        "latency_at_min": _interleaved({"range": range_art, "fixed_min": min_art}, x),
        "latency_at_max": _interleaved({"range": range_art, "fixed_max": max_art}, x_max, MAX_ROUNDS, MAX_REPS),
        "latency_per_shape_ms": _per_shape(model, range_art, work, SHAPES[name]),
    }


def _check_against_ort(model, art: Path, shapes: list[tuple]) -> list[dict]:
    """Max abs error against ONNX Runtime at each shape (random non-zero input); raises where outputs disagree."""
    import onnxruntime as ort

    session, reference = load(art), ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    rows = []
    for shape in shapes:
        x = np.random.default_rng(2).standard_normal(shape).astype(np.float32)
        got, want = session.run({"x": x})["y"], reference.run(None, {"x": x})[0]
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4, err_msg=f"shape {shape}")
        rows.append({"shape": list(shape), "max_abs_error": float(np.max(np.abs(got - want)))})
    return rows


def bench_encoder4(work: Path) -> dict:
    """The 4-layer encoder over batch 1..16 x seq 16..512: arena, ORT agreement, batch-1 latency at two seqs."""
    model = transformer_encoder()
    work.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    range_art, range_plan = _compile(model, work, "range", ENCODER4_RANGE)
    range_seconds = time.perf_counter() - began
    _max_art, max_plan = _compile(model, work, "fixed_max", ENCODER4_MAX)
    record = range_plan["shape_range"]
    batch1 = {}
    for seq in ENCODER4_BATCH1_SEQS:
        fixed_art, fixed_plan = _compile(model, work, f"fixed_1x{seq}", (1, seq, 256))
        x = np.random.default_rng(0).standard_normal((1, seq, 256)).astype(np.float32)
        batch1[str(seq)] = {**_interleaved({"range": range_art, "fixed": fixed_art}, x),
                            "fixed_schedules": fixed_plan["schedules"]["by_rule"]}
    return {
        "model": "encoder4", "range": "x=" + "x".join(str(d) for d in ENCODER4_RANGE),
        "range_compile_seconds": range_seconds, "arena_range_bytes": range_plan["arena_bytes"],
        "arena_fixed_max_bytes": max_plan["arena_bytes"],
        "arena_range_used_at_min_bytes": record["at_min"]["arena_bytes"],
        "lower_bound_at_max_bytes": record["at_max"]["lower_bound_bytes"],
        "lower_bound_at_min_bytes": record["at_min"]["lower_bound_bytes"], "range_kernels": record["kernels"],
        "ort_check": _check_against_ort(model, range_art, ENCODER4_CHECKED), "batch1": batch1,
        "latency_per_shape_ms": _per_shape(model, range_art, work, ENCODER4_SHAPES),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="results path without extension (.json, .md)")
    parser.add_argument("--models", nargs="*", default=[*MODELS, "encoder4"])
    args = parser.parse_args()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="graphopt-range-") as work:  # one folder per model: dlopen caches by path
        rows = [bench(name, Path(work) / name) for name in args.models if name in MODELS]
        big = [bench_encoder4(Path(work) / "encoder4")] if "encoder4" in args.models else []
    meta = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": cpu_name(),
            "cores": os.cpu_count(), "loadavg_before": load_before, "loadavg_after": os.getloadavg(),
            "TVM_NUM_THREADS": os.environ.get("TVM_NUM_THREADS"), "rounds": ROUNDS, "reps": REPS,
            "command": "python -m benchmarks.shape_range " + " ".join(sys.argv[1:])}
    args.out.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows, "encoder4": big}, indent=1))
    text = _markdown(meta, rows) + "".join(_encoder4_markdown(r) for r in big)
    args.out.with_suffix(".md").write_text(text)
    print(text)


def _markdown(meta: dict, rows: list[dict]) -> str:
    machine = (f"machine: {meta['machine']}, {meta['cores']} cores, shared; load average before "
               f"{meta['loadavg_before'][0]:.2f}, after {meta['loadavg_after'][0]:.2f}; TVM threads "
               f"{meta['TVM_NUM_THREADS']} (graphopt.threads' default, the affinity count, unless exported); "
               f"latency: {meta['rounds']} interleaved rounds x {meta['reps']} calls, "
               "median of round medians [min..max of round medians]")
    header = ("| model | range | arena range (at max) | arena fixed max | used at min | arena fixed min "
              "| LB max / min | batch-1 range ms | batch-1 fixed ms | ratio |")
    lines = [f"# Shape-range artifacts vs fixed-shape artifacts ({meta['date']})", "", machine, "",
             f"command: `{meta['command']}`", "", header,
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lat = r["latency_at_min"]
        a, b = lat["range"], lat["fixed_min"]
        lines.append(
            f"| {r['model']} | {r['range']} | {r['arena_range_bytes']} | {r['arena_fixed_max_bytes']} "
            f"| {r['arena_range_used_at_min_bytes']} | {r['arena_fixed_min_bytes']} "
            f"| {r['lower_bound_at_max_bytes']} / {r['lower_bound_at_min_bytes']} "
            f"| {a['median_ms']:.3f} [{a['min_ms']:.3f}..{a['max_ms']:.3f}] "
            f"| {b['median_ms']:.3f} [{b['min_ms']:.3f}..{b['max_ms']:.3f}] | {a['median_ms'] / b['median_ms']:.2f}x |")
    lines += ["", "At the maximum shape (range artifact vs the fixed-max artifact, ms, median of round medians): "
              + "; ".join(f"{r['model']}: {r['latency_at_max']['range']['median_ms']:.3f} vs "
                          f"{r['latency_at_max']['fixed_max']['median_ms']:.3f} "
                          f"({r['latency_at_max']['range']['median_ms'] / r['latency_at_max']['fixed_max']['median_ms']:.2f}x)"
                          for r in rows)]
    lines += ["", "Kernels of the range artifacts (symbolic): "
              + "; ".join(f"{r['model']}: {r['range_kernels']['by_rule']}" for r in rows),
              "Kernels of the fixed batch-1 artifacts: "
              + "; ".join(f"{r['model']}: {r['fixed_min_schedules']}" for r in rows), ""]
    return "\n".join(lines + _shape_table(rows))


def _shape_table(rows: list[dict]) -> list[str]:
    """Per-shape latency of the one range artifact against ORT and OpenVINO (ms, wall clock per call)."""
    lines = ["## Latency per shape: one range artifact vs ONNX Runtime and OpenVINO", "",
             "wall ms per call (input in, output out), median of round medians; ratio = graphopt / other", "",
             "| model | shape | graphopt range | ONNX Runtime | OpenVINO | vs ORT | vs OpenVINO |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        for p in r["latency_per_shape_ms"]:
            ours, ort_ms, ov_ms = p["graphopt_range"], p["onnxruntime"], p.get("openvino")
            ov_text = f"{ov_ms:.3f}" if ov_ms else "not installed"
            ov_ratio = f"{ours / ov_ms:.2f}x" if ov_ms else "-"
            lines.append(f"| {r['model']} | {'x'.join(map(str, p['shape']))} | {ours:.3f} | {ort_ms:.3f} | {ov_text} "
                         f"| {ours / ort_ms:.2f}x | {ov_ratio} |")
    return lines + [""]


def _encoder4_markdown(r: dict) -> str:
    """The issue's target model: arena, ORT agreement and batch-1 latency against fixed batch-1 artifacts."""
    lines = [f"## The issue's target: 4-layer encoder (dim 256), one artifact for {r['range']}", "",
             f"compiled once in {r['range_compile_seconds']:.1f} s; kernels (symbolic): {r['range_kernels']['by_rule']}",
             "", "| arena range (at max) | arena fixed max (16x512) | used at min | LB max / min |",
             "| --- | --- | --- | --- |",
             (f"| {r['arena_range_bytes']} | {r['arena_fixed_max_bytes']} | {r['arena_range_used_at_min_bytes']} "
              f"| {r['lower_bound_at_max_bytes']} / {r['lower_bound_at_min_bytes']} |"), "",
             "Outputs against ONNX Runtime (random normal input; rtol 1e-3, atol 1e-4): "
             + "; ".join(f"{'x'.join(map(str, c['shape']))}: max abs error {c['max_abs_error']:.2e}"
                         for c in r["ort_check"]), "",
             "| batch 1 at seq | range ms | fixed batch-1 ms | ratio |", "| --- | --- | --- | --- |"]
    for seq, lat in r["batch1"].items():
        a, b = lat["range"], lat["fixed"]
        lines.append(f"| {seq} | {a['median_ms']:.3f} [{a['min_ms']:.3f}..{a['max_ms']:.3f}] "
                     f"| {b['median_ms']:.3f} [{b['min_ms']:.3f}..{b['max_ms']:.3f}] "
                     f"| {a['median_ms'] / b['median_ms']:.2f}x |")
    return "\n".join(lines + [""] + _shape_table([{"model": "encoder4", **r}])[2:])


if __name__ == "__main__":
    main()
