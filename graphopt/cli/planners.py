"""`graphopt planners`: the placement planners by name."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def register(sub) -> Callable[[argparse.Namespace], int]:
    """Adds `planners` to graphopt's subparsers; returns its handler."""
    sub.add_parser("planners", help="list the placement planners")
    return run


def run(_args: argparse.Namespace) -> int:
    from graphopt.passes.registry import PLANNERS

    for name in PLANNERS:
        print(name)
    return 0
