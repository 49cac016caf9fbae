"""The `graphopt` command: parses arguments, calls the library, prints.

Every user mistake (bad model, bad shapes, bad artifact, bad inputs) is a
GraphoptError and ends as one line `error: ...` on stderr with exit status 2;
argparse reports bad arguments the same way.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from graphopt import cli_train
from graphopt.errors import GraphoptError, InputError, first_line

STAGES = ("prepare", "import", "lower", "reorder", "concat", "extract", "plan", "stock", "build", "write")


def _shape_arg(text: str) -> tuple[str, tuple[int, ...]]:
    from graphopt.frontend.shapes import parse_input_shape

    try:
        return parse_input_shape(text)
    except GraphoptError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _input_arg(text: str) -> tuple[str, str]:
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=FILE.npy, got {text!r}")
    return name, path


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="graphopt", description="Plan memory for ONNX models and compile them with TVM.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    comp = sub.add_parser("compile", help="compile an ONNX model into an artifact directory")
    comp.add_argument("model", type=Path, help="the .onnx file")
    comp.add_argument("-o", "--output", type=Path, required=True, help="artifact directory to write")
    comp.add_argument("--target", choices=("llvm", "cuda"), default="llvm")
    comp.add_argument("--planner", default="auto", help="placement planner (see `graphopt planners`)")
    comp.add_argument("--input-shape", type=_shape_arg, action="append", default=[], metavar="NAME=D1xD2x...",
                      help="fix an input's shape (repeatable); needed for dynamic dims")
    comp.add_argument("--time-limit", type=float, default=10.0, metavar="SECONDS", help="planner time limit")
    comp.add_argument("--no-reorder", dest="reorder", action="store_false",
                      help="keep TVM's kernel order (by default a lower-peak order is used when one exists)")
    comp.add_argument("--no-schedules", dest="schedules", action="store_false",
                      help="TVM's stock CPU kernels instead of graphopt's default schedules (llvm only)")
    comp.add_argument("--no-concat-in-place", dest="concat_in_place", action="store_false",
                      help="keep concatenations as copies (by default producers write into the concatenated tensor)")
    comp.add_argument("--tuning-db", type=Path, default=None, metavar="DIR", help="apply `tune-kernels` results")
    comp.add_argument("--quiet", action="store_true", help="no progress bar")
    cli_train.add_compile_train_args(comp)
    run = sub.add_parser("run", help="run an artifact on its target")
    run.add_argument("artifact", type=Path)
    run.add_argument("--input", type=_input_arg, action="append", default=[], metavar="NAME=FILE.npy")
    run.add_argument("--output-dir", type=Path, default=None, help="write each output as NAME.npy here")
    run.add_argument("--repeat", type=int, default=1, help="runs to time (median reported)")
    insp = sub.add_parser("inspect", help="show an artifact's memory plan")
    insp.add_argument("artifact", type=Path)
    insp.add_argument("--json", action="store_true", help="print one JSON object")
    insp.add_argument("--plot", type=Path, default=None, metavar="FILE.png", help="draw the memory timeline")
    sub.add_parser("planners", help="list the placement planners")
    from graphopt import cli_plan
    from graphopt.cli.pipeline import register as register_pipeline

    cli_plan.register(sub)
    COMMANDS["plan"] = cli_plan.run
    cli_train.register(sub)
    COMMANDS["train"] = cli_train.cmd_train
    COMMANDS["pipeline"] = register_pipeline(sub)
    from graphopt.cli.explain import register as register_explain

    COMMANDS["explain"] = register_explain(sub)
    from graphopt.cli.tune_kernels import register as register_kernels

    COMMANDS["tune-kernels"] = register_kernels(sub)
    from graphopt.cli.serve import register as register_serve

    COMMANDS["serve"] = register_serve(sub)
    from graphopt.cli.bundle import register as register_bundle

    COMMANDS["bundle"] = register_bundle(sub)
    from graphopt.cli.tune import register as register_tune

    COMMANDS["tune"] = register_tune(sub)
    return parser


def cmd_compile(args) -> int:
    from tqdm import tqdm

    if args.train:
        return cli_train.cmd_compile_train(args)
    from graphopt.compiler import CompileOptions, compile_model
    from graphopt.report import summary_lines

    options = CompileOptions(target=args.target, planner=args.planner, time_limit=args.time_limit,
                             input_shapes=dict(args.input_shape), reorder=args.reorder, schedules=args.schedules,
                             tuning_db=args.tuning_db, concat_in_place=args.concat_in_place)
    with tqdm(total=len(STAGES), desc="compile", unit="stage", disable=True if args.quiet else None, leave=False) as bar:
        def progress(stage: str) -> None:
            bar.set_postfix_str(stage)
            bar.update(1 if bar.n < len(STAGES) else 0)

        result = compile_model(args.model, args.output, options, progress=progress)
    print(f"wrote {result.artifact} (id {result.manifest['id'][:12]})")
    for line in summary_lines(result.plan):
        print(line)
    return 0


def cmd_run(args) -> int:
    import numpy as np

    from graphopt.runtime import load

    session = load(args.artifact)
    feeds = {name: _load_npy(path) for name, path in args.input}
    times, outputs = [], {}
    for _ in range(max(args.repeat, 1)):
        result = session.run_timed(feeds)
        times.append(result.seconds)
        outputs = result.outputs
    if args.output_dir is not None:
        args.output_dir.mkdir(parents=True, exist_ok=True)
        for name, value in outputs.items():
            np.save(args.output_dir / f"{_safe_name(name)}.npy", value)
    for name, value in outputs.items():
        print(f"{name}: shape {'x'.join(map(str, value.shape))} {value.dtype}")
    print(f"time: {sorted(times)[len(times) // 2] * 1e3:.3f} ms (median of {len(times)})")
    return 0


def _safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def _load_npy(path: str):
    import numpy as np

    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read {path} as .npy ({first_line(exc)})") from None


def cmd_inspect(args) -> int:
    from graphopt.artifact import load_manifest, load_plan
    from graphopt.report import inspect_json, summary_lines

    manifest = load_manifest(args.artifact)
    plan = load_plan(args.artifact)
    if args.json:
        print(json.dumps({**inspect_json(manifest, plan), **cli_train.swap_stats(plan)}))
    else:
        for line in summary_lines(plan):
            print(line)
    if args.plot is not None:
        from graphopt.plot import plot_timeline

        plot_timeline(plan, args.plot, title=Path(args.artifact).name)
        if not args.json:
            print(f"plot: {args.plot}")
    return 0


def cmd_planners(_args) -> int:
    from graphopt.passes.registry import PLANNERS

    for name in PLANNERS:
        print(name)
    return 0


COMMANDS = {"compile": cmd_compile, "run": cmd_run, "inspect": cmd_inspect, "planners": cmd_planners}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except GraphoptError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `graphopt inspect ART | head`: the reader left, not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:  # a bug, not a user error: say so loudly, keep one line unless asked
        if os.environ.get("GRAPHOPT_DEBUG"):
            raise
        first = first_line(exc)
        print(f"error: internal error ({type(exc).__name__}: {first}); rerun with GRAPHOPT_DEBUG=1 for the traceback",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
