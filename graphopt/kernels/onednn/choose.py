"""Compile time: which library computes a kernel (the schedule pass asks here first).

    kernel_library="tvm"     graphopt's TVM schedules everywhere; recorded choices ignored
    kernel_library="auto"    what the tuning database recorded per kernel (`library`:
                             "onednn" or "tvm", written by portfolio.py after timing both);
                             without a record, TVM. The default: a database decides
    kernel_library="onednn"  every kernel oneDNN can compute (graphopt.kernels.onednn.match)

A kernel the database gives to oneDNN but that no longer matches (another TVM version
legalizes it differently) keeps its TVM schedule with a warning, as a refused tuned
schedule does; a kernel oneDNN is asked for without oneDNN installed is OneDNNMissing
(one line), never a silent TVM fallback.
"""

from __future__ import annotations

import sys

from tvm import tirx

from graphopt.errors import GraphoptError
from graphopt.kernels.onednn.extern import extern_kernel
from graphopt.kernels.onednn.match import match
from graphopt.options import KERNEL_LIBRARIES

DEFAULT_CONV_MODE = "blocked"  # forced oneDNN without a measured mode: oneDNN's own layouts (its JIT kernels)


def check_choice(kernel_library: str, db=None) -> None:
    """GraphoptError for an unknown choice; OneDNNMissing when the choice or the database asks for
    oneDNN and it is not installed. Called when the schedule pass is made, not inside it: an error
    raised in a TVM pass reaches the caller as a bare RuntimeError, not as graphopt's one-line error."""
    if kernel_library not in KERNEL_LIBRARIES:
        raise GraphoptError(f"kernel library {kernel_library!r}: expected one of {', '.join(KERNEL_LIBRARIES)}")
    wanted = kernel_library == "onednn" or (kernel_library == "auto" and db is not None and any(
        r.extra.get("library") == "onednn" for r in db.records.values()))
    if wanted:
        from graphopt.kernels.onednn.library import find

        find()


def library_kernel(func: tirx.PrimFunc, record, kernel_library: str, name: str = "") -> tirx.PrimFunc | None:
    """The kernel as a oneDNN call when the choice says so, else None (TVM schedules it). The
    caller checked the choice and oneDNN's presence once (check_choice)."""
    recorded = record.extra.get("library") if record is not None else None
    if kernel_library == "tvm" or (kernel_library == "auto" and recorded != "onednn"):
        return None
    spec = match(func)
    if spec is None:
        if kernel_library == "auto":
            print(f"warning: the tuning db gives {name or 'a kernel'} to oneDNN, but oneDNN cannot compute it "
                  "as legalized now; using its TVM schedule", file=sys.stderr)
        return None
    mode = record.extra.get("onednn_mode") if record is not None and recorded == "onednn" else None
    return extern_kernel(func, spec, mode or DEFAULT_CONV_MODE)
