"""Argument types and options that several commands share.

Parse-time checks only: a type here turns bad text into argparse's one-line error
(exit 2) and imports nothing heavy, so `graphopt --help` stays fast.
"""

from __future__ import annotations

import argparse


def shape_arg(text: str) -> tuple[str, tuple[int, ...]]:
    """NAME=D1xD2x... as (name, dims)."""
    from graphopt.errors import GraphoptError
    from graphopt.frontend.shapes import parse_input_shape

    try:
        return parse_input_shape(text)
    except GraphoptError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def shape_range_arg(text: str) -> tuple[str, tuple]:
    """NAME=D1xD2x... where a dim may be LO..HI (a range: graphopt.frontend.ranges)."""
    from graphopt.errors import GraphoptError
    from graphopt.frontend.ranges import parse_shape_spec

    try:
        return parse_shape_spec(text)
    except GraphoptError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def input_value_arg(text: str) -> tuple[str, tuple[float, ...]]:
    """NAME=V[,V...] (graphopt.frontend.input_values)."""
    from graphopt.errors import GraphoptError
    from graphopt.frontend.input_values import parse_input_value

    try:
        return parse_input_value(text)
    except GraphoptError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def input_arg(text: str):
    """NAME=FILE.npy | NAME=FILE.npz[:KEY] [:bfloat16] as an InputSpec (graphopt.cli.inputs)."""
    from graphopt.cli.inputs import parse_input_spec
    from graphopt.errors import GraphoptError

    try:
        return parse_input_spec(text)
    except GraphoptError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def positive_int(text: str) -> int:
    """An integer >= 1 (a count of runs, of rows...)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def one_line_errors(parser: argparse.ArgumentParser) -> None:
    """argparse prints usage and then its message; the CLI contract is one line
    `error: ...` on stderr and exit status 2."""
    import sys

    def error(message: str):
        print(f"error: {parser.prog}: {message}", file=sys.stderr)
        sys.exit(2)

    parser.error = error  # type: ignore[method-assign]


def add_trusted_key(parser: argparse.ArgumentParser) -> None:
    """--trusted-key PUB (repeatable), as run and serve take it (graphopt.signing)."""
    from pathlib import Path

    parser.add_argument("--trusted-key", type=Path, action="append", default=[], metavar="PUB",
                        help="load only artifacts signed by this Ed25519 public key (repeatable; "
                             "GRAPHOPT_TRUSTED_KEYS adds more; see `graphopt sign`)")


def add_input_shape(parser: argparse.ArgumentParser, ranges: bool = False) -> None:
    """--input-shape NAME=D1xD2x... (repeatable), as compile and tune-kernels take it;
    with `ranges` (compile) a dim may be LO..HI."""
    help_text = "fix an input's shape (repeatable); needed for dynamic dims"
    if ranges:
        help_text += "; a dim LO..HI compiles one artifact for that range, e.g. x=1..32x3x224x224"
    parser.add_argument("--input-shape", type=shape_range_arg if ranges else shape_arg, action="append", default=[],
                        metavar="NAME=D1xD2x...", help=help_text)
    if ranges:  # compile only
        parser.add_argument("--input-value", type=input_value_arg, action="append", default=[], metavar="NAME=V[,V...]",
                            help="fix an input's value (repeatable), e.g. a sample rate a model branches on; "
                                 "the artifact then accepts only that value for it")
