"""Placement benchmark: every shared instance, the model traces, synthetic 20k/60k.

For each instance: buffers, the lower bound (LB), the height of each greedy
baseline, of plain CP-SAT (hinted with the best greedy, --cpsat-time
seconds) and of ours (`auto`: heuristics, then the exact search, within
--time-limit), as height/LB, with seconds and whether ours is certified
optimal. Every placement passes the validator or the run stops.
Writes a markdown table and a CSV (benchmarks/results/placement.{md,csv}),
and with --json FILE one JSON list of rows.
With --training N: instead, the training-step traces of
benchmarks/training_traces.py, seeds 0..N-1 with 20k + 4k x seed buffers
(20k-56k), ours only, each row with the 1-minute load average at its start
(2 cores shared: timings mean little above ~1.5); writes
results/training-traces-DATE.{md,json}.

    python -m benchmarks.placement [--time-limit 10] [--cpsat-time 10] [--json FILE] [--quick]
    python -m benchmarks.placement --training 10 --time-limit 30
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.machine import cpu_name
from benchmarks.memory import _meta
from benchmarks.outputs import unused
from benchmarks.synthetic_traces import synthetic_trace
from benchmarks.training_traces import training_trace
from graphopt.analysis.lower_bound import lower_bound
from graphopt.passes.cpsat import CpSat
from graphopt.passes.registry import get_planner
from graphopt.plan.csv_io import read_problem
from graphopt.plan.problem import MemoryProblem
from graphopt.plan.validator import assert_valid

REPO = Path(__file__).resolve().parents[1]
ALLOC_DIR = REPO.parent / "shared" / "data" / "alloc"
TRACES_DIR = REPO / "benchmarks" / "traces"
RESULTS = REPO / "benchmarks" / "results"
BASELINES = ("greedy_by_size", "smartpool", "best_of_orderings")
COLUMNS = ["instance", "group", "buffers", "LB", *(f"{b}/LB" for b in BASELINES), "cpsat/LB",
           "ours/LB", "ours height", "ours s", "optimal", "ours planner"]


def problems(quick: bool) -> list[tuple[str, MemoryProblem]]:
    """(group, problem): A-K and the toy, real traces, model traces, synthetic."""
    out = [("alloc", read_problem(p)) for p in sorted(ALLOC_DIR.glob("*.csv"))]
    out += [("real", read_problem(p)) for p in sorted((ALLOC_DIR / "real").glob("*.csv"))]
    out += [("model", read_problem(p)) for p in sorted(TRACES_DIR.glob("*.csv"))]
    sizes = (20000,) if quick else (20000, 60000)
    out += [("synthetic", synthetic_trace(n, seed=1)) for n in sizes]
    return out


def row(group: str, problem: MemoryProblem, time_limit: float, cpsat_time: float) -> dict:
    """Heights over LB of every planner; ours timed end to end."""
    lb = lower_bound(problem)
    placed = {name: get_planner(name).plan(problem) for name in BASELINES}
    best = min(placed.values(), key=lambda p: p.arena_bytes)
    if cpsat_time > 0:
        placed["cpsat"] = CpSat().plan(problem, cpsat_time, hint=best)
    began = time.perf_counter()
    ours = get_planner("auto").plan(problem, time_limit)
    seconds = time.perf_counter() - began
    for p in (*placed.values(), ours):
        assert_valid(problem, p)
    ratio = {name: p.arena_bytes / lb for name, p in placed.items()}
    return {
        "instance": problem.name, "group": group, "buffers": len(problem), "LB": lb,
        **{f"{b}/LB": round(ratio[b], 4) for b in BASELINES},
        "cpsat/LB": round(ratio["cpsat"], 4) if "cpsat" in ratio else None,
        "ours/LB": round(ours.arena_bytes / lb, 4), "ours height": ours.arena_bytes,
        "ours s": round(seconds, 2), "optimal": bool(ours.optimal), "ours planner": ours.planner,
    }


TRAINING_COLUMNS = ["seed", "buffers", "LB", "height", "ratio", "seconds", "load", "planner"]


def training_row(seed: int, time_limit: float) -> dict:
    """Ours on the training trace of `seed`, timed end to end and validated."""
    problem = training_trace(20000 + 4000 * seed, seed=seed)
    lb = lower_bound(problem)
    load = round(os.getloadavg()[0], 2)
    began = time.perf_counter()
    ours = get_planner("auto").plan(problem, time_limit)
    seconds = time.perf_counter() - began
    assert_valid(problem, ours)
    return {"seed": seed, "buffers": len(problem), "LB": lb, "height": ours.arena_bytes,
            "ratio": round(ours.arena_bytes / lb, 5), "seconds": round(seconds, 2), "load": load,
            "planner": ours.planner}


def training_main(seeds: int, time_limit: float, argv: list[str]) -> None:
    """The --training run: one row per seed, a markdown table and a JSON file in results/."""
    rows = []
    for seed in range(seeds):
        rows.append(training_row(seed, time_limit))
        print(" ".join(f"{k}={v}" for k, v in rows[-1].items()), flush=True)
    meta = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "machine": os.uname().nodename,
            "cpu": cpu_name(), "cores": os.cpu_count(), "command": "python -m benchmarks.placement " + " ".join(argv)}
    stem = unused(RESULTS / f"training-traces-{meta['date'][:10]}", (".md", ".json"))
    header = f"<!-- {meta['date']} on {meta['cpu']} ({meta['cores']} cores): {meta['command']} -->\n"
    Path(f"{stem}.md").write_text(header + markdown(rows, TRAINING_COLUMNS))
    Path(f"{stem}.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    print(f"wrote {stem}.md, {stem}.json")


def markdown(rows: list[dict], columns: list[str] = COLUMNS) -> str:
    def cell(v):
        if v is None:
            return "-"
        if isinstance(v, bool):
            return "yes" if v else ""
        return f"{v:,}" if isinstance(v, int) else str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(r[c]) for c in columns) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-limit", type=float, default=10.0, help="seconds for ours per instance")
    parser.add_argument("--cpsat-time", type=float, default=10.0, help="seconds for plain CP-SAT (0: skip)")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    parser.add_argument("--quick", action="store_true", help="synthetic 20k only")
    parser.add_argument("--only", default="", help="comma-separated instance names to run")
    parser.add_argument("--training", type=int, default=0, metavar="N", help="training traces of seeds 0..N-1 only")
    args = parser.parse_args()
    if args.training:
        training_main(args.training, args.time_limit, sys.argv[1:])
        return
    rows = []
    wanted = set(filter(None, args.only.split(",")))
    for group, problem in problems(args.quick):
        if wanted and problem.name not in wanted:
            continue
        cpsat_time = args.cpsat_time if len(problem) <= 2000 else 0
        rows.append(row(group, problem, args.time_limit, cpsat_time))
        print(" ".join(f"{k}={v}" for k, v in rows[-1].items()), flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    table = markdown(rows)
    meta = _meta(sys.argv[1:], "benchmarks.placement")
    header = f"<!-- {meta['date']} on {meta['cpu']} ({meta['cores']} cores): {meta['command']} -->\n"
    stem = unused(RESULTS / "placement", (".md", ".csv"))
    Path(f"{stem}.md").write_text(header + table)
    with open(f"{stem}.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    if args.json:
        args.json.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    print(table)


if __name__ == "__main__":
    main()
