"""`graphopt run ART[@ID] --input NAME=FILE.npy ... [--trusted-key PUB]`: run an artifact on its target.

@ID pins the artifact's content id and --trusted-key demands a signature (graphopt.signing):
either refuses an artifact someone changed, manifest included, before its library loads.

Input forms (.npy, .npz by key, bfloat16) and --output-dir checks: graphopt.cli.inputs.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from graphopt.cli.args import add_trusted_key, input_arg, one_line_errors, positive_int


def register(sub) -> Callable[[argparse.Namespace], int]:
    """Adds `run` to graphopt's subparsers; returns its handler."""
    p = sub.add_parser("run", help="run an artifact on its target")
    p.add_argument("artifact", metavar="ART[@ID]",
                   help="the artifact; with @ID (its content id, or 12+ leading hex digits) any other is refused")
    p.add_argument("--input", type=input_arg, action="append", default=[], metavar="NAME=FILE.npy",
                   help="an input: NAME=FILE.npy, NAME=FILE.npz[:KEY]; add :bfloat16 for raw bfloat16 bits (uint16)")
    p.add_argument("--output-dir", type=Path, default=None, help="write each output as NAME.npy here")
    p.add_argument("--repeat", type=positive_int, default=1, help="runs to time (median reported; >= 1)")
    add_trusted_key(p)
    one_line_errors(p)
    return run


def run(args: argparse.Namespace) -> int:
    from graphopt.artifact import split_pin
    from graphopt.cli.inputs import check_output_dir, check_unique, load_feeds, write_outputs
    from graphopt.runtime import load

    art, pin = split_pin(args.artifact)  # ART@ID: ID pins the content id
    args.artifact = Path(art)
    check_unique(args.input)
    if args.output_dir is not None:
        check_output_dir(args.output_dir)
    session = load(args.artifact, expect_id=pin, trusted_keys=args.trusted_key)
    feeds = load_feeds(args.input, session.inputs)
    times, outputs = [], {}
    for _ in range(args.repeat):
        result = session.run_timed(feeds)
        times.append(result.seconds)
        outputs = result.outputs
    if args.output_dir is not None:
        write_outputs(args.output_dir, outputs)
    for name, value in outputs.items():
        print(f"{name}: shape {'x'.join(map(str, value.shape))} {value.dtype}")
    print(f"time: {sorted(times)[len(times) // 2] * 1e3:.3f} ms (median of {len(times)})")
    return 0

