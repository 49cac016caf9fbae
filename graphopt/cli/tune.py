"""`graphopt tune`: search compile (and training) options on Optuna (thin: parse, call, print).

    graphopt tune MODEL.onnx --objectives latency,peak_memory --trials 20 --workers 2 \\
        [--memory-limit BYTES] [--space FILE.yaml] [--storage URL] [--study NAME] [--plot FILE.png] [--commit]
    graphopt tune MODEL.onnx --train --data FILE.npz --objectives latency,peak_memory,loss ...
    graphopt tune MODEL.onnx --cluster ray|ray://HOST:PORT --workers K --storage postgresql://...
    graphopt tune --join --storage URL --study NAME        (one more worker, from any shell or machine)

Registered by graphopt.cli (`register(sub)` returns the handler), whose `main`
holds the error contract: a GraphoptError is one line `error: ...` and exit 2.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from graphopt.cli.args import positive_int
from graphopt.errors import InputError

_SUFFIX = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def _bytes_arg(text: str) -> int:
    """BYTES, or with a K/M/G suffix (binary)."""
    t = text.strip().lower().removesuffix("ib").removesuffix("b")
    scale = _SUFFIX.get(t[-1:], 1)
    try:
        value = float(t[:-1] if scale > 1 else t)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected BYTES (e.g. 3000000 or 3M), got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("--memory-limit must be positive")
    return int(value * scale)


def register(sub) -> Callable[[argparse.Namespace], int]:
    """Adds the `tune` command to graphopt's subparsers; returns its handler."""
    p = sub.add_parser("tune", help="search compile/training options for latency, peak memory, loss (Optuna)",
                       description="Multi-objective search over compile options (and training knobs) on Optuna. "
                                   "Trials are keyed by artifact id (an existing artifact is reused, not rebuilt); "
                                   "a configuration whose planned peak exceeds --memory-limit is pruned before "
                                   "it is built. Workers on one storage share the study.")
    p.add_argument("model", nargs="?", type=Path, help="the .onnx file (not with --join)")
    p.add_argument("--objectives", default="latency,peak_memory", metavar="latency,peak_memory[,loss]")
    p.add_argument("--trials", type=positive_int, default=20, metavar="N", help="trials in the study (all workers)")
    p.add_argument("--workers", type=positive_int, default=1, metavar="K",
                   help="trials run at once: local worker processes, or Ray workers with --cluster")
    p.add_argument("--cluster", default=None, metavar="ray|ray://HOST:PORT",
                   help="run trials on Ray: a local cluster of K workers, or a running one (needs graphopt[cluster])")
    p.add_argument("--storage", default=None, metavar="URL",
                   help="sqlite:///FILE (default: STUDY_DIR/study.db), postgresql://..., or journal:FILE")
    p.add_argument("--study", default=None, metavar="NAME", help="study name (default: the model's file stem)")
    p.add_argument("--dir", type=Path, default=None, metavar="STUDY_DIR",
                   help="study directory: storage, artifact cache, worker logs (default: ./tune-NAME)")
    p.add_argument("--cache", default=None, metavar="DIR", help="artifact cache (default: STUDY_DIR/artifacts)")
    p.add_argument("--join", action="store_true", help="add this process as a worker of an existing study")
    p.add_argument("--memory-limit", type=_bytes_arg, default=None, metavar="BYTES",
                   help="prune, before building, configurations whose planned peak is above this")
    p.add_argument("--space", type=Path, default=None, metavar="FILE.yaml", help="override the default search space")
    p.add_argument("--sampler", default="tpe", choices=("tpe", "nsga2", "random"))
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--repeat", type=positive_int, default=10, help="timed runs per latency measurement (median)")
    p.add_argument("--target", choices=("llvm", "cuda"), default="llvm")
    g = p.add_argument_group("training")
    g.add_argument("--train", action="store_true", help="tune training-step compiles (and training knobs)")
    g.add_argument("--data", type=Path, default=None, metavar="FILE.npz", help="batches for the loss objective")
    g.add_argument("--steps", type=positive_int, default=5, help="training steps per trial for the loss")
    o = p.add_argument_group("output")
    o.add_argument("--plot", type=Path, default=None, metavar="FILE.png", help="draw the Pareto front")
    o.add_argument("--commit", action="store_true", help="commit the chosen configuration to the pipeline store")
    o.add_argument("--pick", default=None, metavar="OBJECTIVE",
                   help="which Pareto configuration --commit takes: the best on this objective (default: first)")
    o.add_argument("--repo", type=Path, default=Path("."), metavar="DIR", help="pipeline repository for --commit")
    o.add_argument("--quiet", action="store_true", help="no progress bar")
    return run


def run(args) -> int:
    if args.join:
        return _join(args)
    from graphopt.cluster import open_executor
    from graphopt.cluster.executor import parse_cluster
    from graphopt.tune.jobs import run_trials
    from graphopt.tune.storage import masked
    from graphopt.tune.study import create_or_resume
    from graphopt.tune.worker import load_study

    parse_cluster(args.cluster)  # a bad --cluster is refused before the study is created
    config, name, url, study_dir = _new_config(args)
    resumed, config = create_or_resume(url, name, config)
    where = f" on {args.cluster}" if args.cluster else ""
    print(f"{'resuming' if resumed else 'created'} study {name!r} in {masked(url)} ({config.trials} trials, "
          f"{args.workers} worker{'s' if args.workers > 1 else ''}{where})", flush=True)
    cache_dir = str(Path(args.cache).resolve()) if args.cache else config.cache_dir  # one cache for all workers
    study, config, cache = load_study(url, name, cache_dir)
    previous = signal.signal(signal.SIGTERM, _interrupt)  # a terminated parent takes its workers with it
    try:
        with open_executor(args.cluster, args.workers) as executor:
            errors = run_trials(executor, url, name, cache_dir, study, config, args.quiet)
    finally:
        signal.signal(signal.SIGTERM, previous)
    status = _finish(args, study, config, cache)
    for line in errors:
        print(f"error: {line}", file=sys.stderr)
    return 1 if errors else status


def _interrupt(_signum, _frame) -> None:
    raise KeyboardInterrupt


def _new_config(args):
    from graphopt.artifact import sha256_file
    from graphopt.tune.errors import TuneError
    from graphopt.tune.space import default_space, load_space
    from graphopt.tune.storage import default_url
    from graphopt.tune.study_config import OBJECTIVES, StudyConfig

    if args.model is None:
        raise InputError("tune needs MODEL.onnx (or --join --storage URL --study NAME)")
    if not args.model.is_file():
        raise InputError(f"{args.model}: no such model file")
    objectives = tuple(o.strip() for o in args.objectives.split(",") if o.strip())
    unknown = [o for o in objectives if o not in OBJECTIVES]
    if unknown or not objectives or len(set(objectives)) != len(objectives):
        raise InputError(f"--objectives {args.objectives!r}: choose distinct names from {', '.join(OBJECTIVES)}")
    if "loss" in objectives and not args.train:
        raise TuneError("the loss objective needs --train (and --data FILE.npz)")
    if args.train and (args.data is None or not args.data.is_file()):
        raise TuneError("--train needs --data FILE.npz (an existing file of batches)")
    if args.pick is not None and args.pick not in objectives:
        raise InputError(f"--pick {args.pick!r} is not one of the objectives ({', '.join(objectives)})")
    space = load_space(args.space, args.train) if args.space else default_space(args.train)
    name = args.study or args.model.stem
    study_dir = (args.dir or Path(f"tune-{name}")).resolve()
    study_dir.mkdir(parents=True, exist_ok=True)
    url = args.storage or default_url(study_dir)
    cache = str(Path(args.cache).resolve()) if args.cache else str(study_dir / "artifacts")
    config = StudyConfig(model=str(args.model.resolve()), model_sha256=sha256_file(args.model),
                         objectives=objectives, space=space.as_dict(), cache_dir=cache, trials=args.trials,
                         train=args.train, data=str(args.data.resolve()) if args.data else None,
                         memory_limit=args.memory_limit, target=args.target, repeat=args.repeat,
                         steps=args.steps, sampler=args.sampler, seed=args.seed)
    return config, name, url, study_dir


def _join(args) -> int:
    from graphopt.tune.worker import load_study, run_worker

    if not args.storage or not args.study:
        raise InputError("--join needs --storage URL and --study NAME")
    if args.model is not None:
        raise InputError("--join takes no MODEL: the study says which model it tunes")
    report = run_worker(args.storage, args.study, args.cache)
    print(f"joined study {args.study!r}: ran {report.ran} trials")
    study, config, cache = load_study(args.storage, args.study, args.cache)
    return _finish(args, study, config, cache)


def _finish(args, study, config, cache) -> int:
    from graphopt.tune import report

    summary = report.summarize(study)
    knobs = [k for k, v in config.space.items() if isinstance(v, (list, dict))]
    print(report.counts_line(summary) + f"; recompilations {cache.recompilations()}")
    print(report.best_line(summary, config))
    if summary.pareto:
        print(f"Pareto front ({len(summary.pareto)} of {len(summary.complete)} completed trials):")
        for line in report.pareto_table(summary, config, knobs):
            print(f"  {line}")
    if args.plot is not None:
        report.plot(summary, config, args.plot, Path(config.model).name)
        print(f"plot: {args.plot}")
    if args.commit:
        _commit(args, summary, config, cache)
    return 0


def _commit(args, summary, config, cache) -> None:
    from graphopt.tune.commit import commit_choice
    from graphopt.tune.errors import TuneError
    from graphopt.tune.report import fmt

    if not summary.pareto:
        raise TuneError("--commit: no completed trial to commit")
    k = config.objectives.index(args.pick) if args.pick else 0
    chosen = min(summary.pareto, key=lambda t: t.values[k])
    values = ", ".join(f"{o} {fmt(o, v)}" for o, v in zip(config.objectives, chosen.values))
    artifact_id = chosen.user_attrs["artifact_id"]
    if not cache.has_artifact(artifact_id):  # built on another node: fetched by content id, not recompiled
        cache.fetch(artifact_id)
    art = cache.artifact(artifact_id)
    pin = chosen.user_attrs.get("content_id") or cache.recorded_content_id(artifact_id)
    message = f"tune: trial {chosen.number} of study {study_name(args)} ({values})"
    cid, reused = commit_choice(args.repo, config, chosen, art, message, content_id=pin)
    print(f"committed trial {chosen.number} as {cid[:12]} ({'stored artifact reused' if reused else 'recompiled'})")


def study_name(args) -> str:
    return args.study or (args.model.stem if args.model else "?")
