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


def input_arg(text: str) -> tuple[str, str]:
    """NAME=FILE.npy as (name, path)."""
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=FILE.npy, got {text!r}")
    return name, path


def add_input_shape(parser: argparse.ArgumentParser) -> None:
    """--input-shape NAME=D1xD2x... (repeatable), as compile and tune-kernels take it."""
    parser.add_argument("--input-shape", type=shape_arg, action="append", default=[], metavar="NAME=D1xD2x...",
                        help="fix an input's shape (repeatable); needed for dynamic dims")
