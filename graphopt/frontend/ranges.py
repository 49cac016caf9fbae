"""Shape ranges: `--input-shape x=1..32x3x224x224` turns chosen dims into bounded symbols.

Why: one artifact should serve every batch size (and sequence length) of a range instead of
one artifact per point. A range dim becomes an ONNX `dim_param`, which TVM's importer turns
into one shape symbol per name; graphopt then plans memory at the range's maximum and proves
the plan for the whole range (graphopt.analysis.range_plan).

Naming, so that a symbol is shared where the model says two dims are the same:
  1. a range dim keeps the model's own dim_param (`batch` on both `ids` and `mask`: one symbol);
  2. a dim without one is named `<input>_<axis>` (sanitized);
  3. two ranges given for the same symbol must agree, and a dim declared with that symbol on an
     input the user did not list needs no --input-shape (it is bound by the symbol); one that is
     fixed by one flag and ranged by another is refused: the model says they are equal.
Fixed shapes never come here: `has_ranges` is false and graphopt.frontend.shapes is used as
before, so fixed-shape compiles and their artifact ids are unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import NamedTuple

import onnx

from graphopt.errors import InputError, ShapeError
from graphopt.frontend.shapes import graph_input_names, infer_shapes, parse_input_shape

_DIM = re.compile(r"^\s*(\d+)\s*(?:\.\.\s*(\d+)\s*)?$")


class DimRange(NamedTuple):
    """An inclusive range of sizes for one dim: `lo..hi` on the command line."""

    lo: int
    hi: int

    def __str__(self) -> str:
        return f"{self.lo}..{self.hi}"


Dim = int | DimRange


def parse_shape_spec(spec: str) -> tuple[str, tuple[Dim, ...]]:
    """`NAME=D0xD1x...` where a dim is `N` or `LO..HI`; a spec without a range parses exactly as
    graphopt.frontend.shapes.parse_input_shape does (same dims, same errors)."""
    if ".." not in spec:
        return parse_input_shape(spec)
    name, _, dims_text = spec.partition("=")
    dims = tuple(_parse_dim(spec, text) for text in re.split(r"[x,]", dims_text))
    if not name.strip():
        raise InputError(f"bad input shape {spec!r}: expected NAME=D0xD1x..., e.g. x=1..32x3x224x224")
    return name.strip(), dims


def _parse_dim(spec: str, text: str) -> Dim:
    match = _DIM.match(text)
    if not match:
        raise InputError(f"bad input shape {spec!r}: a dim is N or LO..HI, e.g. x=1..32x3x224x224")
    lo, hi = int(match.group(1)), match.group(2)
    if hi is None:
        value = lo
    elif int(hi) == lo:
        value = lo  # 8..8 is the fixed size 8
    else:
        value = DimRange(lo, int(hi))
    if (value.lo if isinstance(value, DimRange) else value) <= 0 or (
            isinstance(value, DimRange) and value.hi < value.lo):
        raise InputError(f"bad input shape {spec!r}: a range LO..HI needs 1 <= LO <= HI")
    return value


def as_dim(value) -> Dim:
    """An API dim: an int, or a (lo, hi) pair / DimRange for a range."""
    if isinstance(value, tuple):
        lo, hi = (int(v) for v in value)
        if not 1 <= lo <= hi:
            raise InputError(f"bad dim range {value!r}: needs 1 <= lo <= hi")
        return lo if lo == hi else DimRange(lo, hi)
    return int(value)


def has_ranges(shapes: Mapping[str, tuple]) -> bool:
    """True when any dim of any given shape is a range (a range compile)."""
    return any(isinstance(as_dim(d), DimRange) for dims in shapes.values() for d in dims)


def dims_text(dims: tuple) -> str:
    """`1..32x3x224x224`: the form the manifest and error messages use."""
    return "x".join(str(as_dim(d)) for d in dims)


def symbolize(model: onnx.ModelProto, shapes: Mapping[str, tuple]) -> tuple[onnx.ModelProto, dict[str, DimRange]]:
    """A copy of `model` whose range dims are named symbols, shapes inferred; and every symbol's range."""
    names = graph_input_names(model)
    unknown = sorted(set(shapes) - set(names))
    if unknown:
        raise InputError(f"unknown input name(s) {', '.join(unknown)}; the model's inputs are: {', '.join(names)}")
    out = onnx.ModelProto()
    out.CopyFrom(model)
    by_name = {vi.name: vi for vi in out.graph.input}
    symbols: dict[str, DimRange] = {}
    fixed_symbols: set[str] = set()
    for name in names:
        if name in shapes:
            _set_dims(name, by_name[name].type.tensor_type, [as_dim(d) for d in shapes[name]], symbols, fixed_symbols)
    for name in names:
        _require_bound(name, by_name[name].type.tensor_type, symbols)
    clash = sorted(fixed_symbols & set(symbols))
    if clash:
        raise ShapeError(f"dim {clash[0]} is a range for one input and fixed for another; the model says they are "
                         "the same dim: give both the same range")
    _forget_output_shapes(out)
    return infer_shapes(out), symbols


def _set_dims(name: str, tensor_type, dims: list[Dim], symbols: dict, fixed_symbols: set) -> None:
    """One input's dims: fixed values written as numbers, ranges as (shared) symbols."""
    declared = list(tensor_type.shape.dim) if tensor_type.HasField("shape") else [None] * len(dims)
    if len(declared) != len(dims):
        raise ShapeError(f"input {name} has rank {len(declared)} in the model, but the given shape "
                         f"{dims_text(tuple(dims))} has rank {len(dims)}")
    planned = []
    for axis, (dim, value) in enumerate(zip(declared, dims, strict=True)):
        if dim is not None and dim.dim_value > 0 and (isinstance(value, DimRange) or dim.dim_value != value):
            raise ShapeError(f"input {name} dim {axis} is fixed to {dim.dim_value} in the model, "
                             f"but the given shape {dims_text(tuple(dims))} says {value}")
        param = dim.dim_param if dim is not None and dim.HasField("dim_param") else ""
        if isinstance(value, DimRange):
            param = param or _symbol_name(name, axis)
            if symbols.setdefault(param, value) != value:
                raise ShapeError(f"dim {param} is given two ranges, {symbols[param]} and {value}")
            planned.append(param)
        else:
            if param:
                fixed_symbols.add(param)
            planned.append(value)
    tensor_type.shape.ClearField("dim")
    for value in planned:
        if isinstance(value, str):
            tensor_type.shape.dim.add().dim_param = value
        else:
            tensor_type.shape.dim.add().dim_value = value


def _symbol_name(name: str, axis: int) -> str:
    return re.sub(r"\W", "_", f"{name}_{axis}")


def _require_bound(name: str, tensor_type, symbols: Mapping[str, DimRange]) -> None:
    """Every dim of every input is a number or a symbol with a range (ShapeError with the fix)."""
    if not tensor_type.HasField("shape"):
        raise ShapeError(f"input {name} has unknown rank; pass --input-shape {name}=D0xD1x...")
    for axis, dim in enumerate(tensor_type.shape.dim):
        if dim.HasField("dim_value") and dim.dim_value > 0:
            continue
        if dim.HasField("dim_param") and dim.dim_param in symbols:
            continue
        label = f" ({dim.dim_param})" if dim.HasField("dim_param") else ""
        raise ShapeError(f"input {name} dim {axis}{label} is dynamic and has no range; "
                         f"pass --input-shape {name}=D0xD1x... (a dim may be LO..HI)")


def _forget_output_shapes(model: onnx.ModelProto) -> None:
    """Stale intermediate shapes go; inference rewrites them from the symbolic inputs."""
    model.graph.ClearField("value_info")
    for out in model.graph.output:
        out.type.tensor_type.ClearField("shape")


__all__ = ["Dim", "DimRange", "as_dim", "dims_text", "has_ranges", "parse_shape_spec", "symbolize"]
