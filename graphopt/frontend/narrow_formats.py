"""The narrow element types graphopt computes, and the wider type that holds each one exactly.

Why widen rather than compute on the narrow codes: every value of a float8 or float4 type is
a float32 exactly, and every value of a 4- or 2-bit integer an int8 (uint8 unsigned). So a
narrow tensor is held in the arena as that wider type, the casts into the narrow type become
rounding onto its grid (graphopt.frontend.narrow_rounding), and the casts out of it become
ordinary casts of the held value, which are exact. The runtime converts at the boundary
(`held_as` in the manifest: a narrow input is widened as it is staged, a narrow output
narrowed as it is returned), so callers see the model's own types (ml_dtypes arrays).

The cost, said plainly: a narrow tensor takes 4x (float8, float4 held as float32) or
2x-4x (sub-byte integers held as one byte) its packed size in the arena and in the weights.
FLOAT8E8M0 and the float6 types are not computed (refused by element_types.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import onnx

T = onnx.TensorProto


@dataclass(frozen=True)
class FloatFormat:
    """A narrow binary float: `mantissa` stored bits, normal exponents emin..emax, the largest finite
    magnitude, and what it has of infinities, NaN and a negative zero."""

    mantissa: int
    emin: int
    emax: int
    largest: float
    has_inf: bool
    has_nan: bool
    negative_zero: bool


FLOAT_FORMATS: dict[int, FloatFormat] = {
    T.FLOAT8E4M3FN: FloatFormat(3, -6, 8, 448.0, has_inf=False, has_nan=True, negative_zero=True),
    T.FLOAT8E4M3FNUZ: FloatFormat(3, -7, 7, 240.0, has_inf=False, has_nan=True, negative_zero=False),
    T.FLOAT8E5M2: FloatFormat(2, -14, 15, 57344.0, has_inf=True, has_nan=True, negative_zero=True),
    T.FLOAT8E5M2FNUZ: FloatFormat(2, -15, 15, 57344.0, has_inf=False, has_nan=True, negative_zero=False),
    T.FLOAT4E2M1: FloatFormat(1, 0, 2, 6.0, has_inf=False, has_nan=False, negative_zero=True),
}

INT_RANGES: dict[int, tuple[int, int]] = {
    T.INT4: (-8, 7), T.UINT4: (0, 15), T.INT2: (-2, 1), T.UINT2: (0, 3),
}

HELD: dict[int, int] = {
    **{narrow: T.FLOAT for narrow in FLOAT_FORMATS},
    T.INT4: T.INT8, T.INT2: T.INT8, T.UINT4: T.UINT8, T.UINT2: T.UINT8,
}


def is_narrow(elem_type: int) -> bool:
    return elem_type in HELD


def held_type(elem_type: int) -> int:
    """The type a tensor of `elem_type` is held as (itself when it is not narrow)."""
    return HELD.get(elem_type, elem_type)


def numpy_name(elem_type: int) -> str:
    """The numpy (ml_dtypes) dtype name callers see for `elem_type`, e.g. 'float8_e4m3fn'."""
    return onnx.helper.tensor_dtype_to_np_dtype(elem_type).name


def type_name(elem_type: int) -> str:
    return onnx.TensorProto.DataType.Name(elem_type)
