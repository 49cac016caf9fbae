"""`graphopt train ART --data FILE.npz --steps N`: run training steps of a --train artifact.

(`graphopt compile --train` is the compile command's: graphopt.cli.compile.)
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path


def register(sub) -> Callable[[argparse.Namespace], int]:
    """Adds `train` to graphopt's subparsers; returns its handler."""
    p = sub.add_parser("train", help="run training steps of a --train artifact")
    p.add_argument("artifact", type=Path)
    p.add_argument("--data", type=Path, required=True, metavar="FILE.npz",
                   help="one array per input (model inputs and `target`), batches along axis 0")
    p.add_argument("--steps", type=int, default=10)
    return run


def run(args: argparse.Namespace) -> int:
    from graphopt.train.runner import TrainRunner, load_data

    runner = TrainRunner(args.artifact)
    log = runner.run(load_data(args.data), max(args.steps, 1))
    for k, (loss, sec) in enumerate(zip(log.losses, log.seconds)):
        print(f"step {k + 1}: loss {loss:.6f} ({sec * 1e3:.2f} ms)")
    return 0
