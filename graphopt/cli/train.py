"""The training commands of `graphopt`, kept beside cli.py.

    graphopt compile MODEL.onnx --train --loss cross_entropy --optimizer sgd:lr=0.1 \\
        [--memory-budget 66%|BYTES] -o ART
    graphopt train ART --data FILE.npz --steps N

cli.py wires them with `add_compile_train_args(compile_parser)`, a branch
`if args.train: return cmd_compile_train(args)` in its compile command, and
`register(subparsers)` for `train`; `swap_stats(plan)` gives inspect's fields.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_compile_train_args(parser: argparse.ArgumentParser) -> None:
    """Names are checked when the command runs, not here: the registries import
    TVM and OR-Tools, which `graphopt --help` should not wait for."""
    group = parser.add_argument_group("training")
    group.add_argument("--train", action="store_true", help="compile one training step (forward, loss, backward, update)")
    group.add_argument("--loss", default="cross_entropy", metavar="cross_entropy|mse")
    group.add_argument("--optimizer", default="sgd:lr=0.1", metavar="sgd:lr=0.1|adam:lr=1e-3")
    group.add_argument("--memory-budget", default=None, metavar="BYTES|PCT%",
                       help="arena budget; tensors are swapped to host to meet it")
    group.add_argument("--swap-planner", default="ours", metavar="NAME",
                       help="ours (CP-SAT on swaps and recomputes, + local search) or a baseline: "
                            "singa-doa-no-overhead (and the other SINGA strategies), capuchin, recompute-greedy")
    group.add_argument("--step-costs", choices=("analytic", "measured"), default="analytic",
                       help="kernel times for swap planning: roofline estimate, or measured by running a "
                            "no-swap build on this machine first")
    group.add_argument("--link-bandwidth", type=float, default=None, metavar="BYTES/S", help="host link (PCIe 5 x16)")
    group.add_argument("--link-latency", type=float, default=None, metavar="SECONDS", help="per-copy latency")


def cmd_compile_train(args) -> int:
    from graphopt.errors import InputError
    from graphopt.passes.swap_registry import SWAP_PLANNERS
    from graphopt.train import TrainOptions, compile_train_model
    from graphopt.train.step import LOSSES

    if args.loss not in LOSSES:
        raise InputError(f"unknown loss {args.loss!r}; choose one of {', '.join(LOSSES)}")
    if args.swap_planner not in SWAP_PLANNERS:
        raise InputError(f"unknown swap planner {args.swap_planner!r}; choose one of {', '.join(SWAP_PLANNERS)}")

    options = TrainOptions(loss=args.loss, optimizer=args.optimizer, target=args.target, planner=args.planner,
                           input_shapes=dict(args.input_shape), time_limit=args.time_limit, reorder=args.reorder,
                           memory_budget=args.memory_budget, swap_planner=args.swap_planner,
                           link_bandwidth=args.link_bandwidth, link_latency=args.link_latency,
                           step_costs=args.step_costs)
    result = compile_train_model(args.model, args.output, options)
    print(f"wrote {result.artifact} (id {result.manifest['id'][:12]})")
    for key, value in swap_stats(result.plan).items():
        print(f"{key}: {value}")
    return 0


def register(subparsers) -> None:
    train = subparsers.add_parser("train", help="run training steps of a --train artifact")
    train.add_argument("artifact", type=Path)
    train.add_argument("--data", type=Path, required=True, metavar="FILE.npz",
                       help="one array per input (model inputs and `target`), batches along axis 0")
    train.add_argument("--steps", type=int, default=10)
    train.set_defaults(handler=cmd_train)


def cmd_train(args) -> int:
    from graphopt.train.runner import TrainRunner, load_data

    runner = TrainRunner(args.artifact)
    log = runner.run(load_data(args.data), max(args.steps, 1))
    for k, (loss, sec) in enumerate(zip(log.losses, log.seconds)):
        print(f"step {k + 1}: loss {loss:.6f} ({sec * 1e3:.2f} ms)")
    return 0


def swap_stats(plan: dict) -> dict:
    """inspect --json fields about memory under a budget, from plan.json alone."""
    swaps, recomputes = plan.get("swaps", []), plan.get("recomputes", [])
    noswap = plan.get("predicted_noswap_step_seconds")
    return {
        "peak_bytes": int(plan["arena_bytes"]),
        "budget_bytes": plan.get("budget_bytes"),
        "predicted_step_seconds": plan.get("predicted_step_seconds", noswap),
        "predicted_noswap_step_seconds": noswap,
        "swapped_bytes": int(sum(s["bytes"] for s in swaps)),
        "recomputed_bytes": int(sum(r["bytes"] for r in recomputes)),
    }
