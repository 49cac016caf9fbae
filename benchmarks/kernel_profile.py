"""Where a model's time goes: every kernel of a compile timed alone, with its share and its bandwidth.

    python -m benchmarks.kernel_profile --model encoder [--shape x=16,128,64] [--tuning-db DIR]
        [--without-rule rows] [--artifact DIR] [--json FILE]

Why: a model-level ratio to ONNX Runtime says nothing about which kernel to fix. Each distinct
kernel is taken as `graphopt tune-kernels` sees it (legalized, fused, weights marked), scheduled
as a compile would schedule it (the default rules, or the database's choice), built alone and
timed with TVM's time_evaluator at the runtime's default threads (graphopt.kernels.tuning.measure);
its time x the number of calls per run is its share of the model. `GB/s` counts every argument
buffer read or written once (the least a kernel can move): far below the machine's memory
bandwidth on a kernel that does no arithmetic to speak of means the kernel, not memory, is slow.
`GFLOP/s` counts 2 flops per iteration of the kernel's largest reduction block (a GEMM's multiply-adds;
a softmax's row sums too, where the figure means little).
`--without-rule NAME` leaves one rule out of the list; `--libm` builds exp and erf with TVM's own lowering
(one libm call per lane) instead of graphopt.lowering.vector_math: with `--without-rule rows`, the
kernels as they were before the row rule and the vector math (the A/B without editing code).
`--artifact DIR` (compiled from the same model, with the same database) adds each kernel's time inside the
model's inferences (see in_model) beside its time alone.
Models: benchmarks.model_zoo's names, plus `encoder_block` (graphopt.examples.range_models, dim 64,
fixed at --shape). Markdown to stdout; JSON with date and machine.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.model_zoo import ZOO, materialize
from benchmarks.outputs import RESULTS, unused


def model_tasks(name: str, work: Path, shape: tuple | None):
    """(target, tasks) of a model: its kernels as the schedule pass receives them."""
    import onnx

    from graphopt.frontend import prepare
    from graphopt.frontend.importer import to_relax
    from graphopt.kernels.tuning.search import tasks_of
    from graphopt.lowering import prepack
    from graphopt.lowering.lower import legalize
    from graphopt.lowering.target import make_target

    if name == "encoder_block":
        from graphopt.examples.range_models import encoder_block

        path, shapes = work / "encoder_block.onnx", {"x": shape or (16, 128, 64)}
        onnx.save(encoder_block(dim=shapes["x"][-1]), path)
    else:
        path, shapes, _ = materialize(name, work)
        shapes = {"x": shape} if shape else shapes
    target = make_target("llvm")
    mod = prepack.mark_weights()(legalize(to_relax(prepare(path, shapes).model).mod, target))
    return target, tasks_of(mod)


def scheduled(task, target, db, without: str | None):
    """(scheduled PrimFunc or None, label) as the compile would make it, less the rule `without`."""
    from graphopt.kernels import schedules
    from graphopt.kernels.tuning.apply import ATTR, schedule_one

    if without is None:
        func = schedule_one(task.func, target, db, task.name)
        return func, (str(func.attrs[ATTR]) if func is not None else "none")
    for rule in schedules.cpu_rules():
        if rule.name != without:
            sch = rule.schedule(task.func, target, {})
            if sch is not None:
                return sch.mod["main"], rule.name
    return None, "none"


def multiply_adds(func) -> int:
    """Iterations of the kernel's largest reduction block (a GEMM's multiply-adds; 0 without a reduction)."""
    from tvm import s_tir, tirx

    sch = s_tir.Schedule(func)
    most = 0
    for block in sch.get_child_blocks(sch.get_sblock("root")):
        iters = sch.get(block).iter_vars
        if any(iv.iter_type == tirx.IterVar.CommReduce for iv in iters):
            size = 1
            for iv in iters:
                size *= int(iv.dom.extent) if isinstance(iv.dom.extent, tirx.IntImm) else 1
            most = max(most, size)
    return most


def profile(tasks, target, db, without: str | None, repeats: int) -> list[dict]:
    """One row per kernel: rule, calls, ms per call, ms per run, GB/s."""
    from graphopt.kernels.tuning import measure

    rows = []
    for task in tasks:
        func, label = scheduled(task, target, db, without)
        timed = func if func is not None else task.func
        if task.call is not None and func is not None:
            timed = measure.per_run_part(func, task.call)
        bench = measure.KernelBench(timed, target, repeats)
        seconds = bench.seconds(bench.build(timed))
        moved = sum(a.nbytes for a in bench.arrays)
        rows.append({"kernel": task.name, "rule": label, "calls": task.calls, "ms": seconds * 1e3,
                     "ms_per_run": seconds * 1e3 * task.calls, "mb": moved / 1e6, "gb_s": moved / seconds / 1e9,
                     "gflop_s": 2 * multiply_adds(task.func) / seconds / 1e9})
    total = sum(r["ms_per_run"] for r in rows)
    for r in rows:
        r["share"] = r["ms_per_run"] / total
    return sorted(rows, key=lambda r: -r["ms_per_run"])


def in_model(art_dir: Path, runs: int) -> dict[str, float]:
    """ms per run of every kernel inside one inference of the artifact `art_dir`, each call timed in place
    (the Relax VM's instrument hook, graphopt.train.profile.KernelClock), median of `runs` runs after one
    warm-up; keyed by the kernel's name as tune-kernels prints it (the `_prepacked` suffix dropped).

    Why beside the time alone: in a model a kernel meets its weights in memory and its input wherever the
    previous kernel left it; resnet50's kernels took 1.3-1.9x their warm time in the model."""
    from graphopt.runtime import load
    from graphopt.train.profile import KernelClock, random_feeds

    session = load(art_dir)
    names = list(dict.fromkeys(session.plan["steps"]))
    feeds = random_feeds(session.inputs)
    per_run: list[dict[str, float]] = []
    for run in range(runs + 1):
        clock = KernelClock(names, session.device)
        session.vm.set_instrument(clock)
        session.run(feeds)
        totals: dict[str, float] = {}
        for name, seconds in clock.calls:
            key = name.removesuffix("_prepacked")
            totals[key] = totals.get(key, 0.0) + seconds * 1e3
        if run:  # the first run warms the caches and the thread pool
            per_run.append(totals)
    return {name: float(np.median([totals.get(name, 0.0) for totals in per_run])) for name in per_run[0]}


def add_in_model(rows: list[dict], measured: dict[str, float]) -> None:
    """Each row's in-model ms per run and its ratio to the time alone (None for a kernel the artifact lacks)."""
    for r in rows:
        r["ms_per_run_in_model"] = measured.get(r["kernel"])
        r["in_model/alone"] = None if r["ms_per_run_in_model"] is None else r["ms_per_run_in_model"] / r["ms_per_run"]


def markdown(rows: list[dict]) -> str:
    model = any("ms_per_run_in_model" in r for r in rows)
    extra = " in model ms/run | in model/alone |" if model else ""
    lines = ["| kernel | rule | calls | ms/call | ms/run | share | MB | GB/s | GFLOP/s |" + extra,
             "|---|---|---|---|---|---|---|---|---|" + ("---|---|" if model else "")]
    for r in rows:
        line = (f"| {r['kernel']} | {r['rule']} | {r['calls']} | {r['ms']:.4f} | {r['ms_per_run']:.3f} | "
                f"{r['share']:.1%} | {r['mb']:.2f} | {r['gb_s']:.1f} | {r['gflop_s']:.1f} |")
        if model:
            inside = r["ms_per_run_in_model"]
            line += " - | - |" if inside is None else f" {inside:.3f} | {r['in_model/alone']:.2f} |"
        lines.append(line)
    total = f"| total | | | | {sum(r['ms_per_run'] for r in rows):.3f} | | | | |"
    if model:
        total += f" {sum(r['ms_per_run_in_model'] or 0.0 for r in rows):.3f} | |"
    lines.append(total)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help=f"one of: {', '.join(ZOO)}, encoder_block")
    parser.add_argument("--shape", default=None, help="the input x's shape, e.g. 16,128,64")
    parser.add_argument("--tuning-db", type=Path, default=None)
    parser.add_argument("--without-rule", default=None, help="leave this rule out (no database then)")
    parser.add_argument("--libm", action="store_true", help="exp/erf as TVM lowers them (libm per lane)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="default: the runtime's (one per physical core)")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--artifact", type=Path, default=None,
                        help="an artifact compiled from the same model (and database): adds each kernel's time "
                             "inside its inferences")
    args = parser.parse_args(argv)
    from benchmarks.latency import _meta, engine_threads
    from graphopt.kernels.tuning.db import TuningDB

    command = "python -m benchmarks.kernel_profile " + " ".join(argv)
    meta = _meta(argv, engine_threads(args.threads)) | {"command": command}
    shape = tuple(int(d) for d in args.shape.split(",")) if args.shape else None
    db = TuningDB.open(args.tuning_db) if args.tuning_db else None
    with tempfile.TemporaryDirectory() as tmp:
        target, tasks = model_tasks(args.model, Path(tmp), shape)
        from graphopt.lowering import vector_math

        with target, (vector_math.libm() if args.libm else contextlib.nullcontext()):
            rows = profile(tasks, target, db, args.without_rule, args.repeats)
    if args.artifact is not None:
        add_in_model(rows, in_model(args.artifact, args.repeats))
    print(markdown(rows))
    if args.json is not None or "--json" in argv:
        out = args.json or unused(RESULTS / f"kernel-profile-{meta['date']}.json")
        out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1, default=float))
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
