"""Latency on real models: TVM stock kernels, graphopt's default schedules, ONNX Runtime.

Per model, in one process and on the same inputs and thread count: TVM as it comes
(no schedules, its own memory plan), the graphopt artifact `graphopt compile`
writes (default CPU schedules, planned arena, run through graphopt's runtime),
with --tuning-db also the artifact `graphopt compile --tuning-db DIR` writes
("graphopt tuned": the same plan, tuned kernels; its arena must equal the
untuned one's, and its outputs are checked too), and ONNX Runtime's CPU
provider, and OpenVINO's CPU plugin when it is installed (the `bench` extra: an anchor column,
f32, latency hint, same threads; --no-openvino leaves it out). After a warm-up all run in
rotated order each round (A B C, B C A, ...); medians over rounds; ratios are to ONNX Runtime,
and graphopt's also to OpenVINO. Every engine's outputs are checked against ONNX Runtime's.

    python -m benchmarks.latency [--models a,b,...] [--threads N] [--json FILE] [--skip-stock] [--tuning-db DIR]
                                 [--ablate OPTION] [--no-openvino]

--ablate OPTION adds an ablation column: graphopt compiled with that boolean
compile option off (concat_in_place, reorder, schedules), timed in the same
rotation, with the paired ratio ours / ablated (below 1: the option helps).

Prints a markdown table; writes JSON (default benchmarks/results/latency-DATE.json)
with the date, machine and command.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from benchmarks.model_zoo import ZOO, materialize
from benchmarks.outputs import RESULTS, unused
from benchmarks.timing import _quartiles, balanced_orders

DEFAULT_MODELS = ("light_squeezenet", "light_shufflenet", "light_resnet50", "light_densenet121",
                  "light_inception_v1", "ocr_det", "ocr_cls", "ocr_rec", "encoder")
COLUMNS = ("model", "stock_ms", "ours_ms", "ort_ms", "stock/ort", "ours/ort", "ours/ort q1-q3", "ours_compile_s",
           "max_rel_err")
TUNED_COLUMNS = ("tuned_ms", "tuned/ort", "tuned/ort q1-q3", "tuned_kernels", "tuned_max_rel_err")
OPENVINO_COLUMNS = ("ov_ms", "ov/ort", "ours/ov", "ours/ov q1-q3", "ov_max_rel_err")
TUNED_OPENVINO_COLUMNS = ("tuned/ov", "tuned/ov q1-q3")
ABLATIONS = ("concat_in_place", "reorder", "schedules")


def ablation_columns(option: str) -> tuple[str, ...]:
    return (f"no_{option}_ms", f"ours/no_{option}", f"ours/no_{option} q1-q3", f"no_{option}_arena_bytes",
            "ours_arena_bytes")


def _ort_runner(path: Path, feeds: dict, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def run() -> float:
        start = time.perf_counter()
        session.run(None, feeds)
        return time.perf_counter() - start

    return run, session


def _stock_runner(model_path: Path, shapes: dict, feeds: dict, session):
    """TVM with its stock kernels and stock memory plan, fed like graphopt's session."""
    import tvm
    from tvm.runtime.vm import VirtualMachine

    from graphopt.frontend import prepare
    from graphopt.frontend.importer import to_relax
    from graphopt.lowering.codegen import build_stock
    from graphopt.lowering.lower import lower_to_explicit_memory
    from graphopt.lowering.target import make_target
    from graphopt.runtime.signature import check_inputs

    imported = to_relax(prepare(model_path, shapes).model)
    target = make_target("llvm")
    lowered = lower_to_explicit_memory(imported.mod, target, schedules=False)
    vm = VirtualMachine(build_stock(lowered, target), tvm.runtime.cpu(0))
    args = [tvm.runtime.tensor(a) for a in check_inputs(session.inputs, feeds)]
    args += [tvm.runtime.tensor(p) for p in imported.params]

    def run() -> float:
        start = time.perf_counter()
        vm["main"](*args)
        return time.perf_counter() - start

    return run


SETTLE_SECONDS = 0.3


def _rotated_samples(runners: dict, rounds: int, per_round: int) -> dict[str, list[float]]:
    """Seconds per runner and round (the median of `per_round` runs), the order of each round
    from benchmarks.timing.balanced_orders (every engine follows every other equally often).

    Each turn starts by running its engine, untimed, for SETTLE_SECONDS: the engine
    that ran before leaves busy threads behind. ONNX Runtime's intra-op workers spin
    after a run (the first graphopt run after them took 43 ms instead of 4.3 ms on
    shufflenet, 2 cores), and TVM's pool worker, pinned to a core, spins for longer:
    ONNX Runtime right after graphopt took 12-13 ms instead of 3.2 ms for more than
    100 ms. Sleeping instead lets both pools go idle, but then both engines start on
    cold cores (30% slower, and noisier). The same settle is given to every engine."""
    names = list(runners)
    for name in names:  # warm-up (thread pools, caches, first-call allocations)
        runners[name]()
    samples: dict[str, list[float]] = {n: [] for n in names}
    for indices in balanced_orders(len(names), rounds):
        for name in (names[i] for i in indices):
            _settle(runners[name])
            samples[name].append(statistics.median(runners[name]() for _ in range(per_round)))
    return samples


def _settle(run) -> None:
    start = time.perf_counter()
    run()
    while time.perf_counter() - start < SETTLE_SECONDS:
        run()


def _paired_ratio_range(samples: dict[str, list[float]], name: str, base: str = "ort") -> str:
    """Quartiles of `name`'s time over `base`'s in the same round: the spread
    of the ratio, free of drifts that slow both engines alike."""
    low, high = _quartiles([a / b for a, b in zip(samples[name], samples[base])])
    return f"{low:.2f}-{high:.2f}"


def _max_rel_err(expected: dict, actual: dict) -> float:
    import numpy as np

    return max(float(np.abs(actual[k] - v).max() / max(np.abs(v).max(), 1e-12)) for k, v in expected.items())


def _variant_session(model_path: Path, shapes: dict, art: Path, **options):
    """(session, plan) of the artifact compiled with these CompileOptions fields changed."""
    from graphopt.compiler import CompileOptions, compile_model
    from graphopt.runtime import load

    result = compile_model(model_path, art, CompileOptions(input_shapes=shapes, time_limit=10.0, **options))
    return load(art), result.plan


def _tuned_session(model_path: Path, shapes: dict, work: Path, name: str, tuning_db: Path, untuned_plan: dict):
    """The artifact compiled with the tuning db; its plan must be the untuned one's."""
    tuned, plan = _variant_session(model_path, shapes, work / f"{name}.tuned.art", tuning_db=tuning_db)
    if plan["arena_bytes"] != untuned_plan["arena_bytes"]:
        raise SystemExit(f"{name}: the tuning db changed the arena ({plan['arena_bytes']} != "
                         f"{untuned_plan['arena_bytes']} bytes): kernels and plan must stay independent")
    return tuned, plan["schedules"]["tuned"]


def _add_openvino(runners: dict, model_path: Path, feeds: dict, threads: int, expected: dict) -> dict:
    """OpenVINO's runner joins the rotation; returns its output error against ONNX Runtime."""
    from benchmarks.openvino_engine import openvino_runner

    run, outputs = openvino_runner(model_path, feeds, threads)
    runners["ov"] = run
    return {"ov_max_rel_err": _max_rel_err(expected, outputs())}


def _openvino_row(samples: dict, medians: dict) -> dict:
    row = {"ov_ms": medians["ov"] * 1e3, "ov/ort": medians["ov"] / medians["ort"],
           "ours/ov": medians["ours"] / medians["ov"], "ours/ov q1-q3": _paired_ratio_range(samples, "ours", "ov")}
    if "tuned" in medians:
        row |= {"tuned/ov": medians["tuned"] / medians["ov"],
                "tuned/ov q1-q3": _paired_ratio_range(samples, "tuned", "ov")}
    return row


def bench_model(name: str, work: Path, threads: int, rounds: int, skip_stock: bool,
                tuning_db: Path | None = None, ablate: str | None = None, openvino: bool = False) -> dict:
    from graphopt.compiler import CompileOptions, compile_model
    from graphopt.runtime import load

    model_path, shapes, feeds = materialize(name, work)
    start = time.perf_counter()
    untuned = compile_model(model_path, work / f"{name}.art", CompileOptions(input_shapes=shapes, time_limit=10.0))
    compile_s = time.perf_counter() - start
    ours = load(work / f"{name}.art")
    ort_run, ort_session = _ort_runner(model_path, feeds, threads)
    expected = dict(zip([o.name for o in ort_session.get_outputs()], ort_session.run(None, feeds)))
    err = _max_rel_err(expected, ours.run(feeds))
    runners = {"ours": lambda: ours.run_timed(feeds).seconds, "ort": ort_run}
    extra = {}
    if tuning_db is not None:
        tuned, tuned_kernels = _tuned_session(model_path, shapes, work, name, tuning_db, untuned.plan)
        runners["tuned"] = lambda: tuned.run_timed(feeds).seconds
        extra = {"tuned_kernels": tuned_kernels, "tuned_max_rel_err": _max_rel_err(expected, tuned.run(feeds))}
    if ablate is not None:
        ablated, ablated_plan = _variant_session(model_path, shapes, work / f"{name}.no_{ablate}.art",
                                                 **{ablate: False})
        runners[f"no_{ablate}"] = lambda: ablated.run_timed(feeds).seconds
        err = max(err, _max_rel_err(expected, ablated.run(feeds)))
        extra |= {f"no_{ablate}_arena_bytes": ablated_plan["arena_bytes"],
                  "ours_arena_bytes": untuned.plan["arena_bytes"]}
    if openvino:
        extra |= _add_openvino(runners, model_path, feeds, threads, expected)
    if not skip_stock:
        runners["stock"] = _stock_runner(model_path, shapes, feeds, ours)
    slowest = max(f() for f in runners.values())
    per_round = 1 if slowest > 0.2 else 5
    samples = _rotated_samples(runners, rounds, per_round)
    medians = {n: statistics.median(v) for n, v in samples.items()}
    stock = medians.get("stock", float("nan"))
    row = {"model": name, "stock_ms": stock * 1e3, "ours_ms": medians["ours"] * 1e3,
           "ort_ms": medians["ort"] * 1e3, "stock/ort": stock / medians["ort"],
           "ours/ort": medians["ours"] / medians["ort"], "ours/ort q1-q3": _paired_ratio_range(samples, "ours"),
           "ours_compile_s": compile_s, "max_rel_err": err, "rounds": f"{rounds}x{per_round}",
           "samples_ms": {n: [round(x * 1e3, 3) for x in v] for n, v in samples.items()}}
    if "tuned" in medians:
        row |= {"tuned_ms": medians["tuned"] * 1e3, "tuned/ort": medians["tuned"] / medians["ort"],
                "tuned/ort q1-q3": _paired_ratio_range(samples, "tuned")}
    if "ov" in medians:
        row |= _openvino_row(samples, medians)
    if ablate is not None:
        off = f"no_{ablate}"
        paired = [a / b for a, b in zip(samples["ours"], samples[off])]
        row |= {f"{off}_ms": medians[off] * 1e3, f"ours/{off}": statistics.median(paired),
                f"ours/{off} q1-q3": _paired_ratio_range(samples, "ours", off)}
    return row | extra


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.2e}" if abs(value) < 1e-2 and value else f"{value:.2f}"
    return str(value)


def markdown(rows: list[dict]) -> str:
    columns = COLUMNS + (TUNED_COLUMNS if rows and "tuned_ms" in rows[0] else ())
    columns += (OPENVINO_COLUMNS if rows and "ov_ms" in rows[0] else ())
    columns += (TUNED_OPENVINO_COLUMNS if rows and "tuned/ov" in rows[0] else ())
    ablated = [option for option in ABLATIONS if rows and f"no_{option}_ms" in rows[0]]
    columns += ablation_columns(ablated[0]) if ablated else ()
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_fmt(r[c]) for c in columns) + " |" for r in rows]
    for key in ("ours/ort", "tuned/ort", "ours/ov", "tuned/ov") + tuple(f"ours/no_{option}" for option in ablated):
        ratios = sorted(r[key] for r in rows if key in r)
        if ratios:
            lines.append(f"\n{key}: median {statistics.median(ratios):.2f}, worst {ratios[-1]:.2f}")
    return "\n".join(lines)


def engine_threads(requested: int | None) -> int:
    """The thread count every engine runs with: `requested`, or graphopt's default (one per
    physical core, graphopt/threads.py), which is also ONNX Runtime's default on this kind of
    machine. graphopt's pool is resized in process, never through the environment."""
    from graphopt.threads import current_threads, set_threads

    if requested is not None:
        set_threads(requested)
    return current_threads()


def _meta(argv: list[str], threads: int) -> dict:
    import platform

    import tvm

    from benchmarks.machine import cpu_name
    from graphopt.lowering.target import host_cpu

    return {"date": date.today().isoformat(), "machine": platform.node(), "cpu": cpu_name(),
            "llvm_mcpu": host_cpu(), "cores": os.cpu_count(), "threads": threads,
            "load_average_at_start": os.getloadavg(), "tvm": tvm.__version__,
            "command": "python -m benchmarks.latency " + " ".join(argv)}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(DEFAULT_MODELS), help=f"comma list from: {', '.join(ZOO)}")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for every engine (default: each engine's own default, what a user gets)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--skip-stock", action="store_true", help="no TVM-stock column (it is 10-80x slower)")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--tuning-db", type=Path, default=None, metavar="DIR",
                        help="add a 'graphopt tuned' column: compile with this `graphopt tune-kernels` database")
    parser.add_argument("--ablate", choices=ABLATIONS, default=None,
                        help="add a column with this compile option off, and the paired ratio to it")
    parser.add_argument("--no-openvino", action="store_true", help="leave out the OpenVINO column")
    args = parser.parse_args(argv)
    from benchmarks.openvino_engine import available

    openvino = not args.no_openvino and available()
    if not args.no_openvino and not openvino:
        print("OpenVINO is not installed (pip install -e .[bench]): no OpenVINO column", file=sys.stderr)
    threads = engine_threads(args.threads)
    meta = _meta(argv, threads)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            print(f"[{name}] compiling and timing...", file=sys.stderr, flush=True)
            rows.append(bench_model(name, Path(tmp), threads, args.rounds, args.skip_stock, args.tuning_db,
                                    args.ablate, openvino))
            print(markdown(rows[-1:]).splitlines()[2], file=sys.stderr, flush=True)
    print(markdown(rows))
    out = args.json or unused(RESULTS / f"latency-{meta['date']}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
