"""`graphopt compile MODEL.onnx -o ART [--train ...]`: one model, one artifact.

Inference and training share every option (graphopt.options); an option that a
mode cannot honour is refused in one line, never ignored: the training knobs
without --train, concatenation in place with it. The progress bar counts the
stages the driver will run for these options (graphopt.compiler.stage_names).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from graphopt.cli.args import add_input_shape, one_line_errors
from graphopt.errors import InputError
from graphopt.options import KERNEL_LIBRARIES, SWAP_MODELS

# training knobs: None means "not given", so a knob given without --train is refused
TRAIN_ONLY = ("loss", "optimizer", "memory_budget", "swap_planner", "swap_model", "step_costs", "link_bandwidth",
              "link_latency", "frozen")


def register(sub) -> Callable[[argparse.Namespace], int]:
    """Adds `compile` to graphopt's subparsers; returns its handler."""
    p = sub.add_parser("compile", help="compile an ONNX model into an artifact directory")
    one_line_errors(p)
    p.add_argument("model", type=Path, help="the .onnx file")
    p.add_argument("-o", "--output", type=Path, required=True, help="artifact directory to write")
    p.add_argument("--target", choices=("llvm", "cuda"), default="llvm")
    p.add_argument("--planner", default="auto", help="placement planner (see `graphopt planners`)")
    add_input_shape(p, ranges=True)
    p.add_argument("--time-limit", type=float, default=10.0, metavar="SECONDS", help="planner time limit")
    p.add_argument("--no-reorder", dest="reorder", action="store_false",
                   help="keep TVM's kernel order (by default a lower-peak order is used when one exists)")
    p.add_argument("--no-schedules", dest="schedules", action="store_false",
                   help="TVM's stock CPU kernels instead of graphopt's default schedules (llvm only)")
    p.add_argument("--no-concat-in-place", dest="concat_in_place", action="store_false", default=None,
                   help="keep concatenations as copies (by default producers write into the concatenated "
                        "tensor; always off with --train)")
    p.add_argument("--no-fallback", dest="fallback", action="store_false",
                   help="refuse a model with nodes TVM cannot import (by default they run as onnxruntime "
                        "kernels inside the plan; CPU targets only)")
    p.add_argument("--tuning-db", type=Path, default=None, metavar="DIR", help="apply `tune-kernels` results")
    p.add_argument("--kernel-library", choices=KERNEL_LIBRARIES, default="auto",
                   help="who computes convolutions and matmuls: auto (default: the tuning db's per-kernel choice, "
                        "else TVM), tvm, or onednn (needs the `onednn` extra; every kernel it can compute)")
    p.add_argument("--allow-huge-arena", action="store_true",
                   help="compile even if arena, weights, inputs and outputs exceed this machine's memory "
                        "(by default refused; CUDA: see graphopt.plan.memory_limit)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_training(p)
    return run


def _add_training(parser: argparse.ArgumentParser) -> None:
    """Names are checked when the command runs, not here: the registries import
    TVM and OR-Tools, which `graphopt --help` should not wait for."""
    group = parser.add_argument_group("training (need --train)")
    group.add_argument("--train", action="store_true",
                       help="compile one training step (forward, loss, backward, update)")
    group.add_argument("--loss", default=None, metavar="cross_entropy|mse", help="default cross_entropy")
    group.add_argument("--optimizer", default=None, metavar="sgd:lr=0.1|adam:lr=1e-3", help="default sgd:lr=0.1")
    group.add_argument("--memory-budget", default=None, metavar="BYTES|PCT%|min",
                       help="arena budget; tensors are swapped to host (or recomputed) to meet it; "
                            "min: the least budget that works")
    group.add_argument("--swap-planner", default=None, metavar="NAME",
                       help="ours (default: CP-SAT on swaps and recomputes, + local search) or a baseline: "
                            "singa-doa-no-overhead (and the other SINGA strategies), capuchin, recompute-greedy")
    group.add_argument("--swap-model", choices=SWAP_MODELS, default=None,
                       help="rich (default: copy-ins may end at the step boundary, recomputes may keep or rebuild "
                            "their inputs) or plain (the older, smaller model)")
    group.add_argument("--step-costs", choices=("analytic", "measured"), default=None,
                       help="kernel times for swap planning: roofline estimate (default), or measured by running "
                            "a no-swap build on this machine first")
    group.add_argument("--link-bandwidth", type=float, default=None, metavar="BYTES/S", help="host link (PCIe 5 x16)")
    group.add_argument("--link-latency", type=float, default=None, metavar="SECONDS", help="per-copy latency")
    group.add_argument("--frozen", type=_names, default=None, metavar="NAME[,NAME...]",
                       help="float initializers to keep fixed (no gradient, no update); values the model computes "
                            "from Constant nodes alone are always kept fixed")


def _names(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names:
        raise argparse.ArgumentTypeError("expected one or more initializer names, separated by commas")
    return names


def options_from_args(args: argparse.Namespace):
    """CompileOptions, or TrainOptions with --train; a knob the mode cannot honour is an InputError."""
    from graphopt.options import CompileOptions, TrainOptions

    common = {"target": args.target, "planner": args.planner, "input_shapes": dict(args.input_shape),
              "input_values": dict(getattr(args, "input_value", [])),
              "time_limit": args.time_limit, "reorder": args.reorder, "schedules": args.schedules,
              "tuning_db": args.tuning_db, "kernel_library": args.kernel_library, "allow_huge_arena": args.allow_huge_arena, "fallback": args.fallback}
    given = {name: getattr(args, name) for name in TRAIN_ONLY if getattr(args, name) is not None}
    if not args.train:
        if given:
            flag = "--" + next(iter(given)).replace("_", "-")
            raise InputError(f"{flag} applies to a training step: add --train")
        return CompileOptions(concat_in_place=args.concat_in_place is not False, **common)
    _check_training_names(given)
    if args.concat_in_place is not None:
        common["concat_in_place"] = args.concat_in_place
    return TrainOptions(**common, **given)


def _check_training_names(given: dict) -> None:
    from graphopt.passes.swap_registry import SWAP_PLANNERS
    from graphopt.train.step import LOSSES

    if given.get("loss", LOSSES[0]) not in LOSSES:
        raise InputError(f"unknown loss {given['loss']!r}; choose one of {', '.join(LOSSES)}")
    if given.get("swap_planner", "ours") not in SWAP_PLANNERS:
        raise InputError(f"unknown swap planner {given['swap_planner']!r}; choose one of {', '.join(SWAP_PLANNERS)}")


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from graphopt.compiler import compile_model, stage_names
    from graphopt.report import summary_lines, swap_stats

    options = options_from_args(args)
    total = len(stage_names(options))
    with tqdm(total=total, desc="compile", unit="stage", disable=True if args.quiet else None, leave=False) as bar:
        def progress(stage: str) -> None:
            bar.set_postfix_str(stage)
            bar.update(1)

        result = compile_model(args.model, args.output, options, progress=progress)
    print(f"wrote {result.artifact} (id {result.manifest['id']})")  # the content id: pin it as ART@ID
    if options.training:
        for key, value in swap_stats(result.plan).items():
            print(f"{key}: {value}")
    else:
        for line in summary_lines(result.plan):
            print(line)
    return 0
