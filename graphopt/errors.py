"""Errors a user can act on, raised anywhere in graphopt.

Every one of them carries a single-line message meant to be printed as-is: the CLI
catches `GraphoptError`, prints `error: <message>` and exits non-zero, with no
traceback. Anything else escaping is a bug in graphopt, not a user mistake.

Kept free of imports on purpose: the runtime raises these too, and it must load in
a service that has neither onnx nor the TVM compiler.
"""

from __future__ import annotations


class GraphoptError(Exception):
    """Base of all user-facing errors; `str(err)` is the one line to show."""

    def __init__(self, message: str) -> None:
        # Collapse newlines so a multi-line cause (a checker dump, a pip log) can
        # never break the one-line contract of the CLI.
        super().__init__(" ".join(str(message).split()))


class ModelLoadError(GraphoptError):
    """The model file is missing, unreadable, truncated or fails onnx.checker."""


class UnsupportedOperatorError(GraphoptError):
    """The model uses operator types the TVM ONNX importer cannot convert."""


class ShapeError(GraphoptError):
    """Input shapes are dynamic, of the wrong rank, or do not infer."""


class SimplifyError(GraphoptError):
    """Constant folding for fixed shapes failed or produced an invalid model."""


class MemoryLimitError(GraphoptError):
    """The compiled model cannot fit the memory that would run it (see --allow-huge-arena)."""


class KernelError(GraphoptError):
    """A kernel failed while running (a fallback kernel whose onnxruntime session raised)."""


class ArtifactError(GraphoptError):
    """A compiled artifact is missing, corrupt, foreign or from another version."""


class PlanError(GraphoptError):
    """No planner produced a plan that the validator accepts."""


class InputError(GraphoptError):
    """A command-line or API argument is malformed (bad --input-shape, unknown name)."""


def first_line(exc: BaseException, limit: int = 300) -> str:
    """The first non-empty line of `exc`'s message (or its type name), at most `limit` chars.

    Library errors (protobuf, onnx.checker, TVM) are often many lines of C++ context;
    the first line is the part a user can act on.
    """
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    text = lines[0] if lines else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."
