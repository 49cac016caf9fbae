"""The kernels the rows rule and SIMD exp/erf/tanh change, before and after, timed interleaved.

    python -m benchmarks.kernel_ab --model encoder [--shape x=16,128,64] [--rounds 7] [--threads N] [--json FILE]
    python -m benchmarks.kernel_ab --elementwise 1048576 [--rounds 7] [--threads N] [--json FILE]

Why beside benchmarks.kernel_profile: on the shared 2-core VM a kernel's time drifts by 1.5x between
two profiles taken a minute apart, so a before/after read off two profiles says little. Here each
changed kernel is built both ways in one process, checked to give the same outputs (within the
tuner's tolerance, graphopt.kernels.tuning.measure.RTOL), then timed alternately, round by round, each going first in every other round
(each time the median of 5 repeats of at least 10 ms); the table gives the median over rounds.
"before" = the rows rule declining (graphopt.kernels.schedules.rows.disabled: Fallback's schedule)
and exp/erf/tanh lowered by TVM (graphopt.lowering.vector_math.libm). A kernel is "changed" when
another rule takes it or it calls exp, erf or tanh; the others are the same code both ways.
`--elementwise N`: instead, y = exp(x), erf(x) and tanh(x) over N floats (x standard normal), each
scheduled by the default rules (Fallback: parallel, vectorized), built with TVM's lowering and with ours.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

from benchmarks.kernel_profile import model_tasks, scheduled
from benchmarks.timing import balanced_orders

TRANSCENDENTAL = ("T.exp(", "T.erf(", "T.tanh(")


def _variants(task, target):
    """(after PrimFunc, after label, before PrimFunc, before label) of one kernel."""
    from graphopt.kernels.schedules import rows

    after, after_label = scheduled(task, target, None, None)
    with rows.disabled():
        before, before_label = scheduled(task, target, None, None)
    return after, after_label, before, before_label


def ab_rows(tasks, target, rounds: int) -> list[dict]:
    from graphopt.kernels.tuning import measure
    from graphopt.lowering import vector_math

    table = []
    for task in tasks:
        after, after_label, before, before_label = _variants(task, target)
        if after is None or before is None:
            continue
        if after_label == before_label and not any(t in task.func.script() for t in TRANSCENDENTAL):
            continue
        bench = measure.KernelBench(after, target)
        new = bench.build(after)
        with vector_math.libm():
            old = bench.build(before)
        problem = measure.same_outputs(bench.outputs(old), bench.outputs(new))
        if problem is not None:
            raise SystemExit(f"{task.name}: after differs from before: {problem}")
        times = {"before": [], "after": []}
        builds = (("before", old), ("after", new))
        for order in balanced_orders(2, rounds):  # before first in even rounds, after first in odd ones
            for key, built in (builds[i] for i in order):
                times[key].append(bench.seconds(built))
        before_ms, after_ms = (statistics.median(times[k]) * 1e3 for k in ("before", "after"))
        moved = sum(a.nbytes for a in bench.arrays)
        table.append({"kernel": task.name, "calls": task.calls, "before_rule": before_label, "after_rule": after_label,
                      "before_ms": before_ms, "after_ms": after_ms, "speedup": before_ms / after_ms,
                      "after_gb_s": moved / after_ms / 1e6, "mb": moved / 1e6,
                      "samples_ms": {k: [round(v * 1e3, 4) for v in vs] for k, vs in times.items()}})
    return sorted(table, key=lambda r: -r["before_ms"] * r["calls"])


def elementwise_rows(size: int, rounds: int, target) -> list[dict]:
    """exp, erf, tanh over `size` floats, TVM's lowering (libm per lane) against graphopt.lowering.vector_math."""
    from tvm import te, tirx

    from graphopt.kernels.schedules import schedule_kernel
    from graphopt.kernels.tuning.search import Task

    def unary(name: str):
        op = getattr(tirx, name)
        x = te.placeholder((size,), "float32", name="x")
        return te.create_prim_func([x, te.compute((size,), lambda i: op(x[i]), name="y")])

    tasks = [Task(name, unary(name), name, 1) for name in ("exp", "erf", "tanh")]
    with target:
        assert all(schedule_kernel(t.func, target)[1] == "fallback" for t in tasks)
        return ab_rows(tasks, target, rounds)


def markdown(table: list[dict]) -> str:
    lines = ["| kernel | calls | rule before -> after | before ms | after ms | speedup | after GB/s |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['kernel']} | {r['calls']} | {r['before_rule']} -> {r['after_rule']} | {r['before_ms']:.4f} | "
              f"{r['after_ms']:.4f} | {r['speedup']:.2f} | {r['after_gb_s']:.1f} |" for r in table]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="a benchmarks.model_zoo name, or encoder_block")
    parser.add_argument("--elementwise", type=int, default=None, help="time exp/erf/tanh over this many floats")
    parser.add_argument("--shape", default=None, help="the input x's shape, e.g. 16,128,64")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=None, help="default: the runtime's (one per physical core)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    from benchmarks.latency import _meta, engine_threads

    meta = _meta(argv, engine_threads(args.threads)) | {"command": "python -m benchmarks.kernel_ab " + " ".join(argv)}
    shape = tuple(int(d) for d in args.shape.split(",")) if args.shape else None
    if args.elementwise is not None:
        from graphopt.lowering.target import make_target

        table = elementwise_rows(args.elementwise, args.rounds, make_target("llvm"))
    elif args.model is None:
        raise SystemExit("give --model or --elementwise")
    else:
        with tempfile.TemporaryDirectory() as tmp:
            target, tasks = model_tasks(args.model, Path(tmp), shape)
            with target:
                table = ab_rows(tasks, target, args.rounds)
    print(markdown(table))
    if args.json is not None:
        args.json.write_text(json.dumps({"meta": meta, "rows": table}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
