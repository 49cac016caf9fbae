"""Clip as ONNX Runtime computes it, as one relax.clip wherever the bounds are known at import.

Why: TVM 0.27's importer turns every input bound, even a constant one, into a
`where(isnan(bound), -+inf, bound)` tensor feeding `topi.maximum` / `topi.minimum`;
graphopt lifts those back to NaN-propagating maximum/minimum (nan_semantics, step 0),
so a hard-swish `x * clip(x + 3, 0, 6) / 6` became a kernel of nested selects and
scalar isnan tests on 0-d parameters, run per element: 27% of ocr_det's run at 1-6 GB/s
(benchmarks/results/kernel-profile-ocr_det-2026-12-07.md). Bounds known at import
(constants, and weights the importer keeps as parameters) are read here instead, and
relax.clip's legalization compares against immediates with NaN passing through.

ONNX Runtime's bounds, which the importer did not follow (checked on ORT 1.23):
- an absent bound (and opset 6's attribute defaults) is the type's largest finite
  value, so +-inf inputs come out as +-FLT_MAX;
- a NaN bound is no bound at all: +-inf pass through;
- min > max answers max (a max-then-min order).
Bounds only the run knows become maximum/minimum with a NaN bound replaced by +-inf.
Float types numpy knows (16, 32, 64 bits) only; others keep the importer's conversion.
"""

from __future__ import annotations

import math

import numpy as np
import tvm
from tvm import relax
from tvm.relax.frontend.onnx.onnx_frontend import Clip as ImporterClip
from tvm.relax.frontend.onnx.onnx_frontend import OnnxOpConverter

_NUMPY_FLOATS = ("float16", "float32", "float64")


def _known_value(bound: relax.Expr, params) -> float | None:
    """A one-element bound's value when the import knows it, else None."""
    _, weights = params
    if isinstance(bound, tvm.ir.Constant):
        values = bound.value.numpy()
    elif isinstance(bound, relax.Var) and bound.name in weights:
        stored = weights[bound.name][1]
        values = stored.numpy() if hasattr(stored, "numpy") else np.asarray(stored)
    else:
        return None
    return float(values.reshape(())) if values.size == 1 else None


def _absent(dtype: str, upper: bool) -> float:
    """ONNX Runtime's stand-in for a missing bound: the type's largest finite value."""
    info = np.finfo(np.dtype(dtype))
    return float(info.max if upper else info.min)


def _run_time_bound(bb: relax.BlockBuilder, bound: relax.Expr, upper: bool) -> relax.Expr:
    """A bound computed by the model: NaN means unbounded."""
    dtype = str(bound.ty.dtype)
    unbounded = relax.const(math.inf if upper else -math.inf, dtype)
    return bb.emit(relax.op.where(relax.op.isnan(bound), unbounded, bound))


class Clip(OnnxOpConverter):
    """Float Clip with ONNX Runtime's bounds; relax.clip when both are known at import."""

    @classmethod
    def _impl_v1(cls, bb: relax.BlockBuilder, inputs: list, attr: dict, params) -> relax.Expr:
        x = inputs[0]
        dtype = str(x.ty.dtype)
        if dtype not in _NUMPY_FLOATS:
            return ImporterClip.get_converter(1)(bb, inputs, attr, params)
        low = float(attr.get("min", _absent(dtype, upper=False)))
        high = float(attr.get("max", _absent(dtype, upper=True)))
        return relax.op.clip(x, low, high)

    @classmethod
    def _impl_v11(cls, bb: relax.BlockBuilder, inputs: list, attr: dict, params) -> relax.Expr:
        return cls._impl_v13(bb, inputs, attr, params)

    @classmethod
    def _impl_v13(cls, bb: relax.BlockBuilder, inputs: list, attr: dict, params) -> relax.Expr:
        x = inputs[0]
        dtype = str(x.ty.dtype)
        padded = list(inputs) + [None] * (3 - len(inputs))
        if dtype not in _NUMPY_FLOATS:
            return ImporterClip.get_converter(13)(bb, padded, attr, params)
        bounds = []
        for bound, upper in ((padded[1], False), (padded[2], True)):
            if bound is None:
                bounds.append(_absent(dtype, upper))
                continue
            value = _known_value(bound, params)
            if value is None:
                bounds.append(_run_time_bound(bb, bound, upper))
            else:
                bounds.append((math.inf if upper else -math.inf) if math.isnan(value) else value)
        low, high = bounds
        if all(isinstance(b, float) for b in bounds):
            return relax.op.clip(x, low, high)
        as_tensor = [relax.const(b, dtype) if isinstance(b, float) else b for b in bounds]
        return relax.op.minimum(bb.emit(relax.op.maximum(x, as_tensor[0])), as_tensor[1])


CONVERTERS = {"Clip": Clip}
