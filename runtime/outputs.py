"""Checks what a run returned against the manifest's `outputs`, before a caller sees it.

The manifest promises each output's name, shape and dtype; services size their
responses and callers index arrays by it. A library that returns something else
(a manifest edited after the build, a library swapped for another model's) must
not hand back arrays that silently disagree with the signature: the session
raises ArtifactError naming the first output that differs.
"""

from __future__ import annotations

import functools

import numpy as np

from graphopt.errors import ArtifactError
from graphopt.runtime.narrow import narrow


@functools.lru_cache(maxsize=64)
def _numpy_dtype(name: str) -> np.dtype | None:
    try:
        return np.dtype(name)
    except TypeError:  # bfloat16 and friends without ml_dtypes imported
        return None


def same_dtype(dtype: np.dtype, name: str) -> bool:
    """`dtype` is the one the signature names; compared as dtypes, not strings (str() of a numpy
    dtype cost more per call than a small model's kernels)."""
    expected = _numpy_dtype(str(name))
    return dtype == expected if expected is not None else str(dtype) == str(name)


def _dims(shape) -> str:
    return "x".join(map(str, shape)) or "scalar"


def check_outputs(signature: list[dict], values: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Outputs keyed by name, or ArtifactError (one line) on a count, shape or dtype mismatch."""
    if len(values) != len(signature):
        raise ArtifactError(f"artifact returned {len(values)} outputs, manifest lists {len(signature)}")
    outputs = {}
    for sig, value in zip(signature, values):
        name, held = sig["name"], sig.get("held_as")
        if not same_dtype(value.dtype, held or sig["dtype"]):
            raise ArtifactError(f"output {name} has dtype {value.dtype}, manifest says {held or sig['dtype']}; "
                                "the artifact is inconsistent (recompile it)")
        if tuple(value.shape) != tuple(sig["shape"]):
            raise ArtifactError(f"output {name} has shape {_dims(value.shape)}, manifest says {_dims(sig['shape'])}; "
                                "the artifact is inconsistent (recompile it)")
        outputs[name] = narrow(value, sig["dtype"]) if held else value  # float8, int4...: graphopt.runtime.narrow
    return outputs
