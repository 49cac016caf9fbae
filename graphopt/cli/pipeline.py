"""`graphopt pipeline ...`: MLCask-style versioning of whole pipelines (thin: parse, call, print).

Registered by graphopt.cli (`register(sub)` returns the handler), whose `main`
holds the error contract: a GraphoptError is one line `error: ...` and exit 2.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

from graphopt.errors import InputError

KINDS = ("dataset", "model", "compile", "evaluate", "python", "command")


def _param(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value  # a bare string


def _repo_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--repo", type=Path, default=Path("."), metavar="DIR",
                   help="repository directory (default: here or a parent)")


def _area_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--area", default=None, metavar="NAME",
                   help="staging area: a commit takes only its own area's changes (default: $GRAPHOPT_STAGE_AREA, "
                        "else the shared area); give concurrent committers one each")


def register(sub) -> Callable[[argparse.Namespace], int]:
    """Adds the `pipeline` command group to graphopt's subparsers; returns its handler."""
    group = sub.add_parser("pipeline", help="version ML pipelines: branch, commit, merge by metric (MLCask)",
                           description="Git-like versioning of pipelines whose steps are datasets, models, "
                                       "graphopt compiles and evaluations; merge picks the best pipeline by a metric.")
    cmds = group.add_subparsers(dest="pipeline_command", required=True, metavar="SUBCOMMAND")
    p = cmds.add_parser("init", help="create a repository")
    p.add_argument("dir", nargs="?", type=Path, default=Path("."))
    p.add_argument("--branch", default="main", help="name of the first branch")
    p = cmds.add_parser("add-component", help="add or change a component of the working pipeline")
    p.add_argument("name")
    p.add_argument("--kind", choices=KINDS, required=True)
    p.add_argument("--file", type=Path, action="append", default=[], help="dataset/model file (repeatable)")
    p.add_argument("--input", action="append", default=[], metavar="COMPONENT", help="upstream component it reads")
    p.add_argument("--param", type=_param, action="append", default=[], metavar="KEY=VALUE", help="JSON or text")
    p.add_argument("--ref", help="MODULE:FUNCTION of a python component")
    p.add_argument("--argv", nargs=argparse.REMAINDER, help="command line of a command component (last option)")
    p.add_argument("--position", type=int, default=None, help="index in the chain for a new component")
    _area_arg(p)
    p = cmds.add_parser("commit", help="run the changed suffix of the pipeline and commit it")
    p.add_argument("-m", "--message", required=True)
    p.add_argument("--branch", default=None, help="commit to this branch (default: the current one)")
    p.add_argument("--quiet", action="store_true", help="no progress")
    _area_arg(p)
    p = cmds.add_parser("branch", help="list branches, or create one")
    p.add_argument("name", nargs="?")
    p.add_argument("--from", dest="start", default=None, metavar="REF", help="branch or commit to start from")
    p = cmds.add_parser("checkout", help="switch the current branch")
    p.add_argument("name")
    p = cmds.add_parser("log", help="commits reachable from a branch, newest first")
    p.add_argument("ref", nargs="?")
    p.add_argument("-n", type=int, default=None, help="at most N commits")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p = cmds.add_parser("diff", help="component versions and metrics that differ between two refs")
    p.add_argument("a")
    p.add_argument("b", nargs="?", help="default: the current branch")
    p = cmds.add_parser("merge", help="merge a branch into the current one by a metric (or a Pareto set)")
    p.add_argument("branch")
    way = p.add_mutually_exclusive_group()
    way.add_argument("--maximize", dest="maximize", action="store_true", default=None)
    way.add_argument("--minimize", dest="maximize", action="store_false")
    p.add_argument("--metric", default=None, help="metric to optimize (default accuracy, maximized)")
    p.add_argument("--pareto", default=None, metavar="M1,M2[:min|max],...", help="choose from the Pareto set")
    p.add_argument("--budget", type=int, default=None, metavar="N", help="at most N candidates that need new runs")
    p.add_argument("--workers", type=int, default=0, metavar="K",
                   help="candidates evaluated at once (local processes, or Ray workers with --cluster; "
                        "default: one at a time in this process)")
    p.add_argument("--cluster", default=None, metavar="ray|ray://HOST:PORT",
                   help="evaluate candidates on Ray (every node must reach the repository at the same path)")
    p.add_argument("-m", "--message", default=None)
    p.add_argument("--quiet", action="store_true", help="no progress")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    _area_arg(cmds.add_parser("status", help="current branch, head, staged changes"))
    p = cmds.add_parser("gc", help="remove objects nothing refers to")
    p.add_argument("--prune-runs", action="store_true", help="also drop run records no commit uses")
    p.add_argument("--grace", type=float, default=3600.0, metavar="SECONDS", help="keep objects younger than this")
    cmds.add_parser("fsck", help="re-hash every object and check every reference")
    for name, parser in cmds.choices.items():
        if name != "init":
            _repo_arg(parser)
    return run


def run(args) -> int:
    """Dispatches `graphopt pipeline SUBCOMMAND`."""
    return HANDLERS[args.pipeline_command](args)


def _open(args):
    from graphopt.pipelines import open_repo
    from graphopt.pipelines.repo import SHARED_AREA

    area = getattr(args, "area", None) or os.environ.get("GRAPHOPT_STAGE_AREA") or SHARED_AREA
    return open_repo(args.repo, area=area)


def _bar(desc: str, quiet: bool, total: int | None = None):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="step", disable=True if quiet else None, leave=False)


def cmd_init(args) -> int:
    from graphopt.pipelines import init

    repo = init(args.dir, args.branch)
    print(f"initialized pipeline repository in {repo.root} (branch {args.branch})")
    return 0


def cmd_add_component(args) -> int:
    from graphopt.pipelines.components import make_spec, summary
    from graphopt.pipelines.names import check_name, check_new_component

    check_name("component", args.name)  # before anything is opened or stored
    repo = _open(args)
    known = repo.component_names(repo.current_branch())
    check_new_component(args.name, known)
    missing = [i for i in args.input if i not in known]
    if missing:
        raise InputError(f"input {missing[0]!r} is not a component of the pipeline (has: {', '.join(known) or 'none'})")
    spec = make_spec(args.kind, repo.store, inputs=args.input, params=dict(args.param), files=args.file,
                     ref=args.ref, argv=args.argv)
    repo.stage(args.name, spec, position=args.position)
    print(f"staged {args.name}: {summary(spec)}")
    return 0


def _versions_line(repo, commit) -> str:
    from graphopt.pipelines.history import version_names

    return " ".join(f"{c}={v}" for c, v in version_names(repo, commit).items())


def _metrics_line(metrics: dict) -> str:
    return ", ".join(f"{k} {v:.6g}" for k, v in sorted(metrics.items()))


def cmd_commit(args) -> int:
    repo = _open(args)
    with _bar("commit", args.quiet) as bar:
        def say(msg: str) -> None:
            bar.set_postfix_str(msg)
            bar.update(1)
        cid = repo.commit(args.message, branch=args.branch, say=say)
    commit = repo.commit_row(cid)
    print(f"[{commit.branch} {cid[:12]}] {args.message}")
    print(f"  {_versions_line(repo, commit)}")
    if commit.metrics:
        print(f"  {_metrics_line(commit.metrics)}")
    return 0


def cmd_branch(args) -> int:
    repo = _open(args)
    if args.name is not None:  # "" is a bad name, not a listing
        head = repo.create_branch(args.name, args.start)
        print(f"created branch {args.name} at {head[:12] if head else '(no commits)'}")
        return 0
    current = repo.current_branch()
    for name, head in repo.branches().items():
        print(f"{'*' if name == current else ' '} {name} {head[:12] if head else '(no commits)'}")
    return 0


def cmd_checkout(args) -> int:
    repo = _open(args)
    repo.checkout(args.name)
    print(f"switched to branch {args.name}")
    return 0


def cmd_log(args) -> int:
    from graphopt.pipelines.history import log

    repo = _open(args)
    for commit, names in log(repo, args.ref, args.n):
        if args.json:
            print(json.dumps({"id": commit.id, "branch": commit.branch, "parents": list(commit.parents),
                              "message": commit.message, "author": commit.author, "created": commit.created,
                              "versions": names, "metrics": commit.metrics}))
            continue
        merge = f" (merge {' '.join(p[:8] for p in commit.parents)})" if len(commit.parents) > 1 else ""
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(commit.created))
        print(f"commit {commit.id[:12]} [{commit.branch}]{merge} {when} {commit.author}")
        print(f"    {commit.message}")
        print(f"    {' '.join(f'{c}={v}' for c, v in names.items())}")
        if commit.metrics:
            print(f"    {_metrics_line(commit.metrics)}")
    return 0


def cmd_diff(args) -> int:
    from graphopt.pipelines.history import diff

    repo = _open(args)
    b = args.b or repo.current_branch()
    changes, metrics = diff(repo, args.a, b)
    if not changes and not metrics:
        print(f"no differences between {args.a} and {b}")
    for ch in changes:
        print(f"{ch.component}: {ch.old or '-'} -> {ch.new or '-'}  ({ch.detail})")
    for name, (old, new) in metrics.items():
        print(f"metric {name}: {old if old is not None else '-'} -> {new if new is not None else '-'}")
    return 0


def cmd_merge(args) -> int:
    from graphopt.pipelines.merge import Objective, merge

    repo = _open(args)
    objective = Objective.parse(args.metric, args.maximize, args.pareto)
    if args.pareto and args.maximize is not None:
        raise InputError("--maximize/--minimize go with --metric; give directions in --pareto as NAME:max")
    if args.budget is not None and args.budget < 1:
        raise InputError("--budget must be at least 1")
    with _bar("merge", args.quiet) as bar, _jobs(args) as jobs:
        def progress(cand, done: int, total: int) -> None:
            bar.total = total
            bar.set_postfix_str(cand.status)
            bar.update(done - bar.n)
        result = merge(repo, args.branch, objective, args.budget, args.message, progress=progress, jobs=jobs)
    if args.json:
        print(json.dumps(_merge_json(result)))
    elif result.fast_forward:
        print(f"fast-forward to {result.commit[:12]}")
    else:
        _print_merge(repo, result)
    return 0


def _jobs(args):
    """The executor merge evaluates candidates on: none (in this process) unless --workers/--cluster."""
    from contextlib import nullcontext

    from graphopt.cluster import open_executor
    from graphopt.cluster.executor import parse_cluster

    if args.workers < 0:
        raise InputError(f"--workers must be at least 0, got {args.workers}")
    if parse_cluster(args.cluster) is None and args.workers == 0:
        return nullcontext(None)
    return open_executor(args.cluster, max(args.workers, 1))


def _merge_json(result) -> dict:
    best = result.best
    return {"commit": result.commit, "fast_forward": result.fast_forward, "tree_leaves": result.tree_leaves,
            "candidates": len(result.candidates), "pruned": result.pruned, "runs": result.runs,
            "best": {"versions": list(best.labels), "metrics": best.metrics} if best else None,
            "pareto": [{"versions": list(c.labels), "metrics": c.metrics} for c in result.pareto]}


def _print_merge(repo, result) -> None:
    counts = {}
    for c in result.candidates:
        counts[c.status] = counts.get(c.status, 0) + 1
    print(f"search tree: {result.tree_leaves} pipelines; pruned {result.pruned}; "
          + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) + f"; {result.runs} steps run")
    for c in result.pareto:
        print(f"  pareto: {' '.join(c.labels)}  {_metrics_line(c.metrics)}")
    commit = repo.commit_row(result.commit)
    print(f"[{commit.branch} {commit.id[:12]}] {commit.message}")
    print(f"  {_versions_line(repo, commit)}")
    print(f"  {_metrics_line(commit.metrics)}")


def cmd_status(args) -> int:
    from graphopt.pipelines.components import summary

    repo = _open(args)
    branch = repo.current_branch()
    head = repo.head(branch)
    print(f"on branch {branch}, head {head[:12] if head else '(no commits)'}")
    staged = repo.staged(branch)
    where = f" (area {repo.area})" if repo.area else ""
    print(f"staged changes{where}:" if staged else f"nothing staged{where}")
    for name, _pos, spec in staged:
        print(f"  {name}: {summary(spec)}")
    others = repo.staged_elsewhere(branch)
    if others:
        print("other staging areas: " + ", ".join(f"{a or '(shared)'} {n}" for a, n in others.items()))
    return 0


def cmd_gc(args) -> int:
    from graphopt.pipelines.maintenance import gc

    rep = gc(_open(args), prune_runs=args.prune_runs, grace=args.grace)
    print(f"removed {rep.objects_removed} objects ({rep.bytes_removed} bytes), {rep.runs_removed} run records, "
          f"{rep.tmp_removed} temp files")
    return 0


def cmd_fsck(args) -> int:
    from graphopt.pipelines.errors import FsckError
    from graphopt.pipelines.maintenance import fsck

    rep = fsck(_open(args))
    for problem in rep.problems:
        print(problem)
    if not rep.clean:
        raise FsckError(f"fsck: {len(rep.problems)} problem(s) in {rep.objects} objects (listed above)")
    print(f"fsck: {rep.objects} objects, no problems")
    return 0


HANDLERS = {"init": cmd_init, "add-component": cmd_add_component, "commit": cmd_commit, "branch": cmd_branch,
            "checkout": cmd_checkout, "log": cmd_log, "diff": cmd_diff, "merge": cmd_merge, "status": cmd_status,
            "gc": cmd_gc, "fsck": cmd_fsck}

