"""`graphopt plan INSTANCE.csv`: place a standalone instance (MiniMalloc CSV).

Thin, like the rest of the CLI: reads the CSV, runs a planner from the
registry (`auto` by default: heuristics, then the exact search), validates
the answer with the one validator, prints a summary (or ONE JSON object with
--json) and, with --out, writes the instance back with an `offset` column.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path


def register(subparsers) -> Callable[[argparse.Namespace], int]:
    """Adds the `plan` subcommand to the `graphopt` parser; returns its handler."""
    plan = subparsers.add_parser("plan", help="place a MiniMalloc CSV instance (id,lower,upper,size)")
    plan.add_argument("instance", type=Path, help="CSV with header id,lower,upper,size")
    plan.add_argument("--time-limit", type=float, default=10.0, metavar="SECONDS", help="planner time limit")
    plan.add_argument("--planner", default="auto", help="placement planner (see `graphopt planners`)")
    plan.add_argument("--alignment", type=int, default=1, help="byte alignment of every offset (default 1)")
    plan.add_argument("--json", action="store_true", help="print one JSON object")
    plan.add_argument("--out", type=Path, default=None, metavar="PLACED.csv", help="write offsets as an offset column")
    return run


def run(args: argparse.Namespace) -> int:
    """Plans, validates, reports; 0 on a valid plan, 1 if the planner produced an invalid one."""
    from graphopt.errors import InputError
    from graphopt.passes.registry import get_planner
    from graphopt.plan.csv_io import read_problem, write_solution
    from graphopt.plan.validator import validate

    if not args.instance.is_file():
        raise InputError(f"{args.instance}: no such file")
    if args.alignment < 1:
        raise InputError(f"--alignment must be >= 1, got {args.alignment}")
    try:
        problem = read_problem(args.instance, alignment=args.alignment)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    placement = get_planner(args.planner).plan(problem, time_limit=args.time_limit)
    report = validate(problem, placement)
    if args.out is not None and report.valid:
        write_solution(problem, placement, args.out)
    lb = report.lower_bound
    summary = {
        "height": placement.arena_bytes,
        "lower_bound": lb,
        "seconds": round(placement.seconds, 3),
        "valid": report.valid,
        "optimal": bool(report.valid and (placement.optimal or placement.arena_bytes == lb)),
        "planner": placement.planner,
    }
    if args.json:
        print(json.dumps(summary))
    else:
        gap = f"{(placement.arena_bytes - lb) / lb:.2%}" if lb else "0%"
        status = "optimal" if summary["optimal"] else f"gap {gap} over the lower bound"
        print(f"{problem.name}: {len(problem)} buffers, height {placement.arena_bytes:,} B, "
              f"lower bound {lb:,} B ({status}), {placement.seconds:.2f} s by {placement.planner}")
        print(report.summary())
        if args.out is not None and report.valid:
            print(f"wrote {args.out}")
    return 0 if report.valid else 1
