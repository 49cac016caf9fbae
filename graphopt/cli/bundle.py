"""`graphopt bundle ART [ART...] -o DIR`: a runtime-only bundle to carry artifacts to another machine.

Registered by graphopt.cli (`register(sub)` returns the handler).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path


def register(sub) -> Callable[[argparse.Namespace], int]:
    """Adds the `bundle` subcommand; returns its handler."""
    p = sub.add_parser("bundle", help="pack artifacts with TVM's runtime and graphopt.runtime (no compiler)",
                       description="Writes DIR with the artifacts, TVM's runtime libraries and the Python modules "
                                   "graphopt.runtime imports, the CUDA swap engine for CUDA artifacts, and a "
                                   "launcher: python DIR/run.py --input NAME=FILE.npy")
    p.add_argument("artifacts", type=Path, nargs="+", metavar="ART", help="artifact directories (distinct names)")
    p.add_argument("-o", "--output", type=Path, required=True, help="bundle directory to write")
    p.add_argument("--python", action="append", default=None, metavar="3.X",
                   help="also run on this Python version (repeatable; default 3.12): adds TVM-FFI's extension "
                        "for it from its wheel (pip download, cached)")
    p.add_argument("--wheel-dir", type=Path, default=None,
                   help="where TVM-FFI wheels are looked for and downloaded (default ~/.cache/graphopt/wheels)")
    return run


def run(args: argparse.Namespace) -> int:
    from graphopt.bundle import make_bundle

    versions = tuple(args.python) if args.python is not None else ("3.12",)
    result = make_bundle(args.artifacts, args.output, versions, args.wheel_dir)
    print(f"wrote {result.path} ({result.total_bytes / 2**20:.1f} MiB, Python {', '.join(result.python_tags)})")
    for name, info in result.artifacts.items():
        print(f"  {name}: {info['target']['kind']} artifact {info['id'][:12]}")
    for note in result.notes:
        print(f"  {note}")
    print(f"run: python {result.path}/run.py --input NAME=FILE.npy" + (" --artifact NAME" if len(result.artifacts) > 1 else ""))
    return 0
