"""Checks run inputs against the artifact's signature, before any kernel sees them."""

from __future__ import annotations

import numpy as np

from graphopt.errors import InputError
from graphopt.runtime.narrow import widen
from graphopt.runtime.outputs import same_dtype


def describe(sig: dict) -> str:
    return f"{sig['name']}[{'x'.join(str(d) for d in sig['shape'])} {sig['dtype']}]"


def check_inputs(signature: list[dict], feeds: dict, pinned: list[dict] | None = None) -> list[np.ndarray]:
    """Returns the inputs in program order, or raises InputError naming the problem.

    `pinned`: the manifest's `pinned_inputs` (graphopt.frontend.input_values): a call may pass
    one only with the value the artifact was compiled for."""
    if pinned:
        feeds = _without_pinned(pinned, feeds)
    expected = {s["name"] for s in signature}
    unknown = sorted(set(feeds) - expected)
    if unknown:
        raise InputError(f"unknown input(s) {', '.join(unknown)}; expected {', '.join(map(describe, signature))}")
    missing = [describe(s) for s in signature if s["name"] not in feeds]
    if missing:
        raise InputError(f"missing input(s) {', '.join(missing)}")
    return [_checked(s, feeds[s["name"]]) for s in signature]


def _checked(sig: dict, value) -> np.ndarray:
    array = np.asarray(value)
    if not same_dtype(array.dtype, sig["dtype"]):
        raise InputError(f"input {sig['name']} has dtype {array.dtype}, expected {sig['dtype']}")
    if "dims" not in sig and tuple(array.shape) != tuple(sig["shape"]):  # a range's dims: runtime/shape_range.py
        shape = "x".join(map(str, array.shape)) or "scalar"
        raise InputError(f"input {sig['name']} has shape {shape}, expected {'x'.join(map(str, sig['shape']))}")
    if sig.get("must_be_zero") and np.any(array.astype(np.float32) != 0):  # as ONNX Runtime checks it
        raise InputError(f"input {sig['name']} must be all zeros: it is a float8/float4 zero point (ONNX requires it)")
    if "held_as" in sig:  # a narrow type (float8, int4...): staged widened (graphopt.runtime.narrow)
        return widen(array, sig["held_as"])
    return np.asarray(array, order="C")  # not ascontiguousarray: it makes a 0-d (scalar) input 1-d


def _without_pinned(pinned: list[dict], feeds: dict) -> dict:
    """`feeds` without the pinned inputs, after checking each one given holds its compiled value."""
    rest = dict(feeds)
    for entry in pinned:
        if entry["name"] not in rest:
            continue
        given = np.asarray(rest.pop(entry["name"]))
        expected = np.asarray(entry["value"], dtype=entry["dtype"]).reshape(entry["shape"])
        if given.shape != expected.shape or not np.array_equal(given, expected):
            raise InputError(f"input {entry['name']} was fixed at {entry['value']} when this artifact was compiled "
                             f"(--input-value); this call passes {given.ravel().tolist()[:8]}")
    return rest
