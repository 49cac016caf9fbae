"""`graphopt run ART --input NAME=FILE.npy ...`: run an artifact on its target."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from graphopt.cli.args import input_arg
from graphopt.errors import InputError, first_line


def register(sub) -> Callable[[argparse.Namespace], int]:
    """Adds `run` to graphopt's subparsers; returns its handler."""
    p = sub.add_parser("run", help="run an artifact on its target")
    p.add_argument("artifact", type=Path)
    p.add_argument("--input", type=input_arg, action="append", default=[], metavar="NAME=FILE.npy")
    p.add_argument("--output-dir", type=Path, default=None, help="write each output as NAME.npy here")
    p.add_argument("--repeat", type=int, default=1, help="runs to time (median reported)")
    return run


def run(args: argparse.Namespace) -> int:
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
