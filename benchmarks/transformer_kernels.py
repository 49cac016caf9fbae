"""Transformer kernels before and after the rows rule and SIMD exp/erf, against ONNX Runtime and OpenVINO.

    python -m benchmarks.transformer_kernels [--models encoder,block16x128] [--rounds 8] [--tuning-db DIR]
        [--threads N] --out benchmarks/results/NAME

"after" is graphopt as it compiles by default; "before" is the same compile, in the same process, with
the rows rule declining every kernel (graphopt.kernels.schedules.rows.disabled: Fallback takes them, as
before the rule existed) and exp/erf lowered by TVM (graphopt.lowering.vector_math.libm: one libm call
per lane). No environment variable is set: every engine runs at its default threads (graphopt's is one
per physical core; ORT and OpenVINO are given that same count, as benchmarks.latency does).
Timing as benchmarks.latency: one warm-up each, rounds in a balanced order (benchmarks.timing), a
0.3 s untimed settle run before each turn, the median of 5 runs per turn, medians over rounds, and
the inter-quartile range of the per-round ratios. Every engine's outputs are checked against ORT's.

Models: `encoder` (benchmarks.model_zoo: 4 layers, batch 1 x seq 128 x dim 256, primitive LayerNorm,
ReLU MLP) and `block16x128` (graphopt.examples.range_models.encoder_block: one block, dim 64, 4 heads,
LayerNormalization ops, fixed at batch 16 x seq 128). Writes NAME.json and NAME.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from benchmarks.latency import _max_rel_err, _ort_runner, _rotated_samples
from benchmarks.timing import _quartiles

PER_ROUND = 5


def materialize(name: str, work: Path) -> tuple[Path, dict, dict]:
    """(model path, input shapes for graphopt, feeds)."""
    import onnx

    if name == "encoder":
        from benchmarks.model_zoo import materialize as zoo

        return zoo("encoder", work)
    if name == "block16x128":
        from graphopt.examples.range_models import encoder_block

        path = work / "block16x128.onnx"
        onnx.save(encoder_block(dim=64), path)
        shape = (16, 128, 64)
        return path, {"x": shape}, {"x": np.random.default_rng(0).standard_normal(shape).astype(np.float32)}
    raise SystemExit(f"unknown model {name!r}: encoder, block16x128")


def compile_variant(path: Path, shapes: dict, art: Path, before: bool, tuning_db: Path | None):
    """(loaded session, plan) of one variant; `before` compiles with the rows rule off and libm exp/erf."""
    from graphopt.compiler import CompileOptions, compile_model
    from graphopt.kernels.schedules import rows
    from graphopt.lowering import vector_math
    from graphopt.runtime import load

    switches = (rows.disabled(), vector_math.libm()) if before else ()
    with contextlib.ExitStack() as stack:
        for switch in switches:
            stack.enter_context(switch)
        result = compile_model(path, art, CompileOptions(input_shapes=shapes, time_limit=10.0, tuning_db=tuning_db))
    return load(art), result.plan


def _ratio(samples: dict, a: str, b: str) -> dict:
    """Median of the per-round ratios a/b and their quartiles."""
    ratios = [x / y for x, y in zip(samples[a], samples[b])]
    q1, q3 = _quartiles(ratios)
    return {"median": statistics.median(ratios), "q1": q1, "q3": q3}


def bench(name: str, work: Path, threads: int, rounds: int, tuning_db: Path | None) -> dict:
    from benchmarks.openvino_engine import openvino_runner

    path, shapes, feeds = materialize(name, work)
    after, after_plan = compile_variant(path, shapes, work / f"{name}.after.art", False, tuning_db)
    before, before_plan = compile_variant(path, shapes, work / f"{name}.before.art", True, tuning_db)
    ort_run, ort_session = _ort_runner(path, feeds, threads)
    ov_run, ov_outputs = openvino_runner(path, feeds, threads)
    expected = dict(zip([o.name for o in ort_session.get_outputs()], ort_session.run(None, feeds)))
    errors = {"after": _max_rel_err(expected, after.run(feeds)), "before": _max_rel_err(expected, before.run(feeds)),
              "ov": _max_rel_err(expected, ov_outputs())}
    runners = {"after": lambda: after.run_timed(feeds).seconds, "before": lambda: before.run_timed(feeds).seconds,
               "ort": ort_run, "ov": ov_run}
    samples = _rotated_samples(runners, rounds, PER_ROUND)
    medians = {n: statistics.median(v) * 1e3 for n, v in samples.items()}
    return {"model": name, "ms": medians, "max_rel_err_vs_ort": errors,
            "ratios": {f"{a}/{b}": _ratio(samples, a, b) for a, b in
                       (("after", "before"), ("after", "ort"), ("after", "ov"), ("before", "ort"), ("before", "ov"),
                        ("ov", "ort"))},
            "schedules": {"after": after_plan["schedules"], "before": before_plan["schedules"]},
            "arena_bytes": {"after": after_plan["arena_bytes"], "before": before_plan["arena_bytes"]},
            "samples_ms": {n: [round(x * 1e3, 3) for x in v] for n, v in samples.items()}}


def markdown(rows: list[dict]) -> str:
    lines = [("| model | before ms | after ms | ORT ms | OpenVINO ms | after/before (q1-q3) | before/ORT | "
              "after/ORT (q1-q3) | before/OV | after/OV (q1-q3) | max rel err after / before / OV |"),
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ms, q, e = r["ms"], r["ratios"], r["max_rel_err_vs_ort"]

        def cell(key: str, q: dict = q) -> str:
            return f"{q[key]['median']:.2f} ({q[key]['q1']:.2f}-{q[key]['q3']:.2f})"

        lines.append(f"| {r['model']} | {ms['before']:.2f} | {ms['after']:.2f} | {ms['ort']:.2f} | {ms['ov']:.2f} | "
                     f"{cell('after/before')} | {q['before/ort']['median']:.2f} | {cell('after/ort')} | "
                     f"{q['before/ov']['median']:.2f} | {cell('after/ov')} | "
                     f"{e['after']:.1e} / {e['before']:.1e} / {e['ov']:.1e} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="encoder,block16x128")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--tuning-db", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=None,
                        help="every engine at this many threads (graphopt's pool resized in process, no environment "
                             "variable); default: each at graphopt's default count")
    parser.add_argument("--out", type=Path, required=True, help="results path without suffix")
    args = parser.parse_args(argv)
    from benchmarks.latency import engine_threads
    from benchmarks.machine import cpu_name

    threads = engine_threads(args.threads)
    meta = {"started_utc": datetime.now(UTC).isoformat(timespec="seconds"), "cpu": cpu_name(),
            "cores": os.cpu_count(), "threads": threads, "load_at_start": os.getloadavg(),
            "tuning_db": str(args.tuning_db) if args.tuning_db else None,
            "command": "python -m benchmarks.transformer_kernels " + " ".join(argv)}
    with tempfile.TemporaryDirectory() as tmp:
        rows = [bench(name, Path(tmp), threads, args.rounds, args.tuning_db) for name in args.models.split(",")]
    meta |= {"finished_utc": datetime.now(UTC).isoformat(timespec="seconds"), "load_at_end": os.getloadavg()}
    table = markdown(rows)
    print(table)
    args.out.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    args.out.with_suffix(".md").write_text(f"```\n{json.dumps(meta, indent=1)}\n```\n\n{table}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
