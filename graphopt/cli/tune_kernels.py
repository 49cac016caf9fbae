"""`graphopt tune-kernels`: tune a model's kernels into a tuning database.

    graphopt tune-kernels MODEL.onnx [--trials N] [--db DIR|URL] [--time-budget S] [--threads N] [--cold-cache]
                          [--workers K] [--cluster ray|ray://HOST:PORT] [--export DIR]
    graphopt tune-kernels --db URL --export DIR       (this CPU's records as DIR/kernels.jsonl)

Kernels already in the database (from this model or any other) are not tuned
again; a run where all are known does zero trials and says so. `graphopt
compile --tuning-db DIR` applies what was recorded.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from graphopt.cli.args import shape_range_arg
from graphopt.errors import InputError

DEFAULT_DB = Path("tuning-db")


def register(sub) -> Callable[[argparse.Namespace], int]:
    """Adds the `tune-kernels` command to graphopt's subparsers; returns its handler."""
    p = sub.add_parser("tune-kernels", help="tune each kernel's CPU schedule into a tuning database")
    p.add_argument("model", type=Path, nargs="?", help="the .onnx file (none: only --export)")
    p.add_argument("--trials", type=int, default=16, metavar="N",
                   help="trials per kernel, the default schedule's included (default 16: the committed databases' setting)")
    p.add_argument("--db", default=str(DEFAULT_DB), metavar="DIR|URL",
                   help=f"tuning database: a directory (default {DEFAULT_DB}) or a table in an RDB "
                        "(sqlite:///FILE, postgresql://...: the tuning study's database, shared by a cluster)")
    p.add_argument("--workers", type=int, default=0, metavar="K",
                   help="kernels tuned at once (local processes, or Ray workers with --cluster; default: "
                        "one at a time in this process)")
    p.add_argument("--cluster", default=None, metavar="ray|ray://HOST:PORT",
                   help="tune kernels on Ray: a local cluster of K workers or a running one (graphopt[cluster])")
    p.add_argument("--export", type=Path, default=None, metavar="DIR",
                   help="then write this CPU's records to DIR/kernels.jsonl (for compile --tuning-db DIR)")
    p.add_argument("--input-shape", type=shape_range_arg, action="append", default=[], metavar="NAME=D1xD2x...",
                   help="fix an input's shape (repeatable); a dim LO..HI tunes the range compile's kernels, "
                        "timed with every shape symbol at a nominal 32 (the record's key ends in @n32)")
    p.add_argument("--time-budget", type=float, default=None, metavar="SECONDS",
                   help="stop tuning after about this long (most expensive kernels go first; "
                        "the rest stay untuned, a rerun continues)")
    p.add_argument("--threads", type=int, default=None,
                   help="threads kernels run with while timed (default: TVM's, all cores); match your runtime")
    p.add_argument("--portfolio", action="store_true",
                   help="then time each convolution/matmul's TVM schedule against oneDNN and record the faster "
                        "(needs the `onednn` extra; compile --tuning-db applies the choice)")
    p.add_argument("--cold-cache", action="store_true",
                   help="time every candidate after a cache flush, as its weights arrive in a model (slower tuning)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return run


def run(args: argparse.Namespace) -> int:
    from graphopt.cluster.executor import parse_cluster
    from graphopt.kernels.tuning.db import TuningDB

    _check(args)
    parse_cluster(args.cluster)  # a bad --cluster is refused before any work
    if args.threads is not None:
        from graphopt.threads import set_threads

        set_threads(args.threads)
    from graphopt.kernels.tuning.measure import set_cold_cache

    set_cold_cache(args.cold_cache)  # either way: a process may tune again (tests, a notebook)
    db = TuningDB.open(args.db, create=True)  # a corrupt db fails here, before any work
    if args.model is not None:
        summary = _tune(args, db)
        for line in summary_lines(summary, args.db):
            print(line)
        if args.portfolio:
            _portfolio(args, db)
    if args.export is not None:
        from graphopt.cluster.node import node_cpu

        count = db.export_jsonl(args.export, node_cpu())
        print(f"exported {count} records measured on {node_cpu()} to {args.export}")
    return 0


def _check(args: argparse.Namespace) -> None:
    if args.model is None:
        if args.export is None:
            raise InputError("tune-kernels needs MODEL.onnx (or --db URL --export DIR)")
        return
    if args.trials < 1:
        raise InputError(f"--trials must be at least 1, got {args.trials}")
    if args.threads is not None and args.threads < 1:
        raise InputError(f"--threads must be at least 1, got {args.threads}")
    if args.workers < 0:
        raise InputError(f"--workers must be at least 0, got {args.workers}")
    if args.cold_cache and (args.workers or args.cluster):
        raise InputError("--cold-cache times in this process only; leave out --workers/--cluster with it")
    if args.portfolio:
        from graphopt.kernels.onednn.library import find

        find()  # OneDNNMissing (one line) before any tuning, not after it


def _portfolio(args: argparse.Namespace, db) -> None:
    """TVM against oneDNN per kernel, after the knobs are tuned (graphopt.kernels.onednn.portfolio)."""
    from graphopt.kernels.onednn.portfolio import tune_portfolio
    from graphopt.kernels.tuning.jobs import legalized, model_key

    mod, target = legalized(*model_key(args.model, dict(args.input_shape)))
    rows = tune_portfolio(mod, target, db, progress=not args.quiet)
    chosen = sum(1 for row in rows if row.get("library") == "onednn")
    print(f"portfolio: {chosen} of {len(rows)} oneDNN-capable kernels are faster on oneDNN (recorded in the db)")


def _tune(args: argparse.Namespace, db):
    """In this process as before, or one kernel per job on --workers local processes / --cluster."""
    if args.cluster is None and args.workers == 0:
        from graphopt.kernels.tuning.model import tune_model

        return tune_model(args.model, db, args.trials, dict(args.input_shape), args.time_budget,
                          args.threads, not args.quiet)
    from graphopt.cluster import open_executor
    from graphopt.kernels.tuning.jobs import tune_model_on

    with open_executor(args.cluster, max(args.workers, 1)) as executor:
        return tune_model_on(executor, args.model, db, args.trials, dict(args.input_shape), args.time_budget,
                             args.threads, not args.quiet)


def summary_lines(summary, db_dir) -> list[str]:
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
