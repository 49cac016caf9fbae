"""The `graphopt` command: parses arguments, calls the library, prints.

Every subcommand is one module of this package with the same two pieces:
`register(subparsers) -> handler` adds its parser and returns the function that
runs it. `COMMANDS` below lists them in help order; `main` holds the error
contract for all of them: a user mistake (bad model, bad shapes, bad artifact,
bad inputs) is a GraphoptError and ends as one line `error: ...` on stderr with
exit status 2; argparse reports bad arguments the same way; anything else is a
bug, reported in one line with exit 1 (GRAPHOPT_DEBUG=1 shows the traceback).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable

from graphopt.errors import GraphoptError, first_line

# command name -> module of graphopt.cli that registers it
COMMANDS = {
    "compile": "compile", "run": "run", "inspect": "inspect", "planners": "planners", "plan": "plan",
    "train": "train", "pipeline": "pipeline", "explain": "explain", "tune-kernels": "tune_kernels",
    "serve": "serve", "bundle": "bundle", "tune": "tune", "sign": "sign", "keygen": "keygen",
}

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, Handler]]:
    """The parser of every command, and each command's handler."""
    parser = argparse.ArgumentParser(prog="graphopt", description="Plan memory for ONNX models and compile them with TVM.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    handlers = {name: importlib.import_module(f"graphopt.cli.{module}").register(sub)
                for name, module in COMMANDS.items()}
    return parser, handlers


def main(argv: list[str] | None = None) -> int:
    parser, handlers = build_parser()
    args = parser.parse_args(argv)
    try:
        return handlers[args.command](args)
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
