"""`graphopt inspect ART [--json] [--plot FILE.png]`: an artifact's memory plan.

`valid` is re-judged: the plan's buffers and offsets go through the one validator
(graphopt.plan.record.revalidate), and its first error is shown when it rejects
them. The exit status stays 0: inspect reports, it does not refuse.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path


def register(sub) -> Callable[[argparse.Namespace], int]:
    """Adds `inspect` to graphopt's subparsers; returns its handler."""
    p = sub.add_parser("inspect", help="show an artifact's memory plan")
    p.add_argument("artifact", type=Path)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--plot", type=Path, default=None, metavar="FILE.png", help="draw the memory timeline")
    return run


def run(args: argparse.Namespace) -> int:
    from graphopt.artifact import load_manifest, load_plan
    from graphopt.plan.record import revalidate
    from graphopt.report import inspect_json, summary_lines, swap_stats

    manifest = load_manifest(args.artifact)
    plan = load_plan(args.artifact)
    # `valid` is the validator's verdict on the buffers and offsets shown, never the stored flag
    report = revalidate(plan)
    plan = {**plan, "valid": report.valid}
    error = None if report.valid else report.errors[0]
    if args.json:
        print(json.dumps({**inspect_json(manifest, plan), **swap_stats(plan), "validation_error": error}))
    else:
        for line in summary_lines(plan):
            print(line)
        if error is not None:
            print(f"invalid        {error}")
    if args.plot is not None:
        from graphopt.plot import plot_timeline

        plot_timeline(plan, args.plot, title=Path(args.artifact).name)
        if not args.json:
            print(f"plot: {args.plot}")
    return 0
