"""Memory-plan benchmark on real models: graphopt's arena against every baseline.

For each model: compile with graphopt (planner `auto`), then measure, on the same
lowered program, the lower bound, no reuse, TVM's StaticPlanBlockMemory, an online
caching pool; and run time against the stock-planned build with identical kernels,
interleaved A B A B after a warm-up, reporting the median ratio and its spread.

    python -m benchmarks.memory [--models a,b,...] [--json FILE] [--csv FILE] [--rounds N]

Prints a markdown table; writes JSON/CSV with the date, machine and command.

    python -m benchmarks.memory process [--models a,b,...]

measures memory as a user does instead (benchmarks.process_memory): process RSS of graphopt's
runtime, ONNX Runtime and OpenVINO, artifact size against the ONNX weights, and the arena with
each default option off; exits 1 if a default option raises an arena.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.machine import cpu_name
from benchmarks.model_zoo import ZOO, materialize
from benchmarks.timing import interleaved_ratio, plan_repeats

COLUMNS = ("model", "tensors", "steps", "arena_MiB", "LB_MiB", "stock_MiB", "pool_MiB", "naive_MiB",
           "arena/LB", "arena/stock", "arena/pool", "planner", "optimal", "plan_s", "compile_s", "run_ms",
           "run/stock", "run/stock_iqr", "valid")


def bench_model(name: str, work: Path, rounds: int, budget_s: float) -> dict:
    from graphopt.compiler import CompileOptions, compile_model
    from graphopt.lowering.codegen import build_stock
    from graphopt.lowering.target import make_target
    from graphopt.runtime import load

    model_path, shapes, feeds = materialize(name, work)
    start = time.perf_counter()
    result = compile_model(model_path, work / f"{name}.art", CompileOptions(input_shapes=shapes, time_limit=10.0))
    compile_s = time.perf_counter() - start
    plan = result.plan
    session = load(work / f"{name}.art")
    stock = _stock_runner(build_stock(result.lowered, make_target("llvm")), result.params, session)
    rounds_, per_round = plan_repeats(stock(feeds), budget_s=budget_s, max_rounds=rounds)
    timing = interleaved_ratio(lambda: session.run_timed(feeds).seconds, lambda: stock(feeds),
                               rounds=rounds_, per_round=per_round)
    return _row(name, plan, compile_s, timing)


def _stock_runner(executable, params, session):
    """A VM over the stock build, fed exactly what graphopt's session is fed."""
    import tvm
    from tvm.runtime.vm import VirtualMachine

    from graphopt.runtime.signature import check_inputs

    vm = VirtualMachine(executable, tvm.runtime.cpu(0))
    device_params = [tvm.runtime.tensor(p) for p in params]

    def run(feeds) -> float:
        args = [tvm.runtime.tensor(a) for a in check_inputs(session.inputs, feeds)] + device_params
        start = time.perf_counter()
        vm["main"](*args)
        return time.perf_counter() - start

    return run


def _row(name: str, plan: dict, compile_s: float, timing: dict) -> dict:
    mib = 2**20
    arena, lb = plan["arena_bytes"], plan["lower_bound_bytes"]
    return {
        "model": name, "tensors": plan["num_tensors"], "steps": plan["num_steps"],
        "arena_MiB": arena / mib, "LB_MiB": lb / mib, "stock_MiB": plan["tvm_stock_bytes"] / mib,
        "pool_MiB": plan["pool_bytes"] / mib, "naive_MiB": plan["naive_bytes"] / mib,
        "arena/LB": arena / lb if lb else 1.0, "arena/stock": arena / plan["tvm_stock_bytes"],
        "arena/pool": arena / plan["pool_bytes"], "planner": plan["planner"], "optimal": plan["optimal"],
        "plan_s": plan["planner_seconds"], "compile_s": compile_s, "run_ms": timing["a_median"] * 1e3, "run/stock": timing["ratio_median"],
        "run/stock_iqr": timing["ratio_iqr"], "timing_rounds": f"{timing['rounds']}x{timing['per_round']}",
        "valid": plan["valid"],
        **{k: plan[k] for k in ("arena_bytes", "lower_bound_bytes", "naive_bytes", "tvm_stock_bytes",
                                "pool_bytes", "params_bytes", "num_tensors", "num_steps")},
    }


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def markdown(rows: list[dict]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(_fmt(r[c]) for c in COLUMNS) + " |" for r in rows]
    return "\n".join(lines)


def _meta(argv: list[str], module: str = "benchmarks.memory") -> dict:
    import tvm

    return {"date": datetime.now(UTC).isoformat(timespec="seconds"), "machine": platform.node(),
            "cpu": cpu_name(), "cores": os.cpu_count(), "load_average_at_start": os.getloadavg(),
            "python": platform.python_version(),
            "tvm": tvm.__version__, "command": f"python -m {module} " + " ".join(argv)}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["process"]:
        from benchmarks.process_memory import main as process_main

        return process_main(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(ZOO), help=f"comma list from: {', '.join(ZOO)}")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--csv", type=Path, default=None)
    parser.add_argument("--rounds", type=int, default=7, help="most interleaved timing rounds (A B A B ...)")
    parser.add_argument("--time-budget", type=float, default=40.0, help="seconds of timing per model, about")
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            print(f"[{name}] compiling and timing...", file=sys.stderr, flush=True)
            rows.append(bench_model(name, Path(tmp), args.rounds, args.time_budget))
    print(markdown(rows))
    _write(rows, _meta(argv), args.json, args.csv)
    return 0


def _write(rows: list[dict], meta: dict, json_path: Path | None, csv_path: Path | None) -> None:
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    if csv_path:
        csv_path.parent.mkdir(parents=True, exist_ok=True)
        with open(csv_path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)


if __name__ == "__main__":
    sys.exit(main())
