"""The frontend for a range compile: graphopt.frontend.prepare_model, with symbols kept.

Why a second path rather than flags on the first: a fixed-shape compile folds shape arithmetic
for its one shape (onnxslim), and folding for a range would bake one point in. Here the model
keeps its symbolic dims (graphopt.frontend.ranges names them), every check that reads shapes
runs on the symbolic model, and folding is skipped: shape arithmetic the model computes at run
time (Shape -> Reshape) is left to TVM's importer, which refuses what it cannot import in one
line (the range compile of such a model fails; a fixed shape still compiles it).

The signatures carry the maximum shape (every symbol at its upper bound) as numbers, so every
consumer of a manifest sees a shape it can feed; `dims` adds each tensor's symbolic form.
"""

from __future__ import annotations

from collections.abc import Mapping

import onnx

from graphopt.errors import ShapeError
from graphopt.frontend import PreparedModel, TensorSignature
from graphopt.frontend.attributes import check_attributes
from graphopt.frontend.batchnorm_to_affine import batchnorms_to_affine
from graphopt.frontend.degenerate import check_dims, forget_negative_output_dims
from graphopt.frontend.disputed import refuse_disputed
from graphopt.frontend.domains import check_domains
from graphopt.frontend.element_types import check_element_types
from graphopt.frontend.ranges import DimRange, symbolize
from graphopt.frontend.shapes import graph_input_names, infer_shapes
from graphopt.frontend.sum_to_add import sums_to_adds


def prepare_range_model(model: onnx.ModelProto, input_shapes: Mapping[str, tuple], source_sha256: str,
                        memory=None, allow_ort_only: bool = False) -> PreparedModel:
    """Checks and rewrites as prepare_model does, on the symbolic model; no folding.
    `memory` is accepted for the same call shape; the resident check runs later, at the maximum
    (graphopt.compile_stages._check_memory)."""
    model = check_domains(model, allow_ort_only)
    symbolic, symbols = symbolize(forget_negative_output_dims(model), input_shapes)
    check_attributes(symbolic)
    check_dims(symbolic)
    check_element_types(symbolic)
    sums = sums_to_adds(symbolic)
    batchnorms = batchnorms_to_affine(sums.module)
    prepared = batchnorms.module
    if sums.modified or batchnorms.modified:
        prepared = infer_shapes(prepared)
    refuse_disputed(prepared)
    names = set(graph_input_names(prepared))
    tensors = [vi for vi in prepared.graph.input if vi.name in names] + list(prepared.graph.output)
    dims = {vi.name: _dims(vi, symbols) for vi in tensors}
    inputs = tuple(_signature(vi, dims[vi.name], symbols) for vi in tensors[:len(names)])
    outputs = tuple(_signature(vi, dims[vi.name], symbols) for vi in prepared.graph.output)
    bounds = {name: (r.lo, r.hi) for name, r in symbols.items()}
    return PreparedModel(prepared, inputs, outputs, source_sha256, bounds, dims)


def _dims(vi: onnx.ValueInfoProto, symbols: Mapping[str, DimRange]) -> tuple[int | str, ...]:
    """A tensor's dims: numbers, or symbols of the range; anything else (a size shape inference
    could not relate to the inputs: data-dependent, or computed) is refused in one line."""
    tensor_type = vi.type.tensor_type
    if not tensor_type.HasField("shape"):
        raise ShapeError(f"{vi.name} has an unknown shape over the range; graphopt plans ranges whose "
                         "every output dim is a number or an input's range symbol")
    out: list[int | str] = []
    for dim in tensor_type.shape.dim:
        if dim.HasField("dim_value") and dim.dim_value >= 0:
            out.append(int(dim.dim_value))
        elif dim.HasField("dim_param") and dim.dim_param in symbols:
            out.append(dim.dim_param)
        else:
            label = dim.dim_param or "?"
            raise ShapeError(f"{vi.name} has a dim ({label}) that is not a number or a range symbol; graphopt "
                             "plans ranges whose output dims follow the input symbols")
    return tuple(out)


def _signature(vi: onnx.ValueInfoProto, dims: tuple, symbols: Mapping[str, DimRange]) -> TensorSignature:
    """The tensor at the range's maximum."""
    dtype = onnx.helper.tensor_dtype_to_np_dtype(vi.type.tensor_type.elem_type)
    shape = tuple(symbols[d].hi if isinstance(d, str) else d for d in dims)
    return TensorSignature(vi.name, shape, dtype.name)


__all__ = ["prepare_range_model"]
