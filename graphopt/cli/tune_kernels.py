"""`graphopt tune-kernels`: tune a model's kernels into a tuning database.

    graphopt tune-kernels MODEL.onnx --trials N [--db DIR] [--time-budget S] [--threads N]

Kernels already in the database (from this model or any other) are not tuned
again; a run where all are known does zero trials and says so. `graphopt
compile --tuning-db DIR` applies what was recorded.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from graphopt.cli.args import add_input_shape
from graphopt.errors import InputError

DEFAULT_DB = Path("tuning-db")


def register(sub) -> Callable[[argparse.Namespace], int]:
    """Adds the `tune-kernels` command to graphopt's subparsers; returns its handler."""
    p = sub.add_parser("tune-kernels", help="tune each kernel's CPU schedule into a tuning database")
    p.add_argument("model", type=Path, help="the .onnx file")
    p.add_argument("--trials", type=int, required=True, metavar="N", help="trials per kernel (the default's included)")
    p.add_argument("--db", type=Path, default=DEFAULT_DB, metavar="DIR", help=f"tuning database (default {DEFAULT_DB})")
    add_input_shape(p)
    p.add_argument("--time-budget", type=float, default=None, metavar="SECONDS",
                   help="stop tuning after about this long (most expensive kernels go first; "
                        "the rest stay untuned, a rerun continues)")
    p.add_argument("--threads", type=int, default=None,
                   help="threads kernels run with while timed (default: TVM's, all cores); match your runtime")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return run


def run(args: argparse.Namespace) -> int:
    if args.trials < 1:
        raise InputError(f"--trials must be at least 1, got {args.trials}")
    if args.threads is not None:
        if args.threads < 1:
            raise InputError(f"--threads must be at least 1, got {args.threads}")
        from graphopt.threads import set_threads

        set_threads(args.threads)
    from graphopt.kernels.tuning.db import TuningDB
    from graphopt.kernels.tuning.model import tune_model

    db = TuningDB.open(args.db, create=True)  # a corrupt db fails here, before any work
    summary = tune_model(args.model, db, args.trials, dict(args.input_shape), args.time_budget,
                         args.threads, not args.quiet)
    for line in summary_lines(summary, args.db):
        print(line)
    return 0


def summary_lines(summary, db_dir: Path) -> list[str]:
    head = (f"{summary.kernels} kernels, {summary.already} already in the db, {len(summary.tuned)} tuned now, "
            f"{summary.trials} trials in {summary.seconds:.1f} s")
    lines = [head]
    if summary.trials == 0:
        lines.append("nothing to tune: 0 trials")
    if summary.left:
        lines.append(f"time budget spent: {len(summary.left)} kernels left untuned (rerun to continue)")
    gained = [t for t in summary.tuned if t["knobs"]]
    before = sum(t["default_ms"] * t["calls"] for t in summary.tuned)
    after = sum(t["best_ms"] * t["calls"] for t in summary.tuned)
    if summary.tuned:
        lines.append(f"{len(gained)} kernels beat their default schedule; tuned kernels' time per run "
                     f"{before:.2f} ms -> {after:.2f} ms")
    lines.append(f"db: {db_dir}")
    return lines
