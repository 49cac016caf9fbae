"""Inputs of a range artifact (`shape_symbols` in its manifest): bind the symbols, check the range.

Why here and not in the program: TVM's VM binds a symbol from the first input that carries it
and checks that others agree, but it never checks the compile's upper bound, and a tensor past
the bound would be written past its arena slot. The plan is proven for the range only
(graphopt.analysis.range_plan), so a shape outside it is refused in one line naming the range,
before any kernel runs. Output shapes follow from the same binding.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from graphopt.errors import InputError


def dims_text(dims: list, symbols: Mapping[str, list]) -> str:
    """`1..32x3x224x224`: a signature's dims with every symbol written as its range."""
    return "x".join(f"{symbols[d][0]}..{symbols[d][1]}" if isinstance(d, str) else str(d) for d in dims)


def bind_symbols(signature: list[dict], arrays: list[np.ndarray], symbols: Mapping[str, list]) -> dict[str, int]:
    """Every symbol's value in this call; InputError (one line, naming the range) when an input's
    shape is outside the compiled range or two inputs disagree on a shared symbol."""
    binding: dict[str, int] = {}
    for sig, array in zip(signature, arrays):
        dims = sig.get("dims", sig["shape"])
        wanted = dims_text(dims, symbols)
        shape = "x".join(map(str, array.shape)) or "scalar"
        if array.ndim != len(dims):
            raise InputError(f"input {sig['name']} has shape {shape}; this artifact runs {sig['name']}={wanted}")
        for axis, (dim, size) in enumerate(zip(dims, array.shape)):
            if isinstance(dim, str):
                lo, hi = symbols[dim]
                if not lo <= size <= hi or binding.setdefault(dim, size) != size:
                    raise InputError(f"input {sig['name']} has shape {shape}; this artifact runs "
                                     f"{sig['name']}={wanted}{_shared_note(dim, binding, size, lo, hi)}")
            elif size != dim:
                raise InputError(f"input {sig['name']} has shape {shape} (dim {axis} must be {dim}); "
                                 f"this artifact runs {sig['name']}={wanted}")
    return binding


def _shared_note(dim: str, binding: dict, size: int, lo: int, hi: int) -> str:
    if lo <= size <= hi:
        return f" ({dim} is {binding[dim]} in an earlier input)"
    return f" ({dim} {size} is outside {lo}..{hi})"


def bound_outputs(signature: list[dict], binding: Mapping[str, int]) -> list[dict]:
    """The output signature with this call's shapes (what check_outputs compares against)."""
    return [{**sig, "shape": [binding[d] if isinstance(d, str) else d for d in sig["dims"]]} if "dims" in sig else sig
            for sig in signature]


__all__ = ["bind_symbols", "bound_outputs", "dims_text"]
