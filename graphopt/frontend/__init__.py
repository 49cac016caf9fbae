"""ONNX frontend: from a model file to a checked, shape-fixed, folded ModelProto.

`prepare` is the one entry the compile driver calls: load + check, refuse what ONNX
Runtime would refuse (domains.py: domains, opsets, operators; local functions inlined;
degenerate.py: negative dims, and inputs, outputs and weights larger than the memory
given), pin input shapes, fold with onnxslim, rewrite Sum as Add (sum_to_add.py) and a BatchNormalization
left unfolded as Mul + Add (batchnorm_to_affine.py), and record the tensor signatures the artifact manifest
and the versioning schema are built from. `importer.to_relax` then hands the
result to TVM. Only onnx/numpy are imported here; onnxslim and TVM load lazily.
An inference compile also fuses LayerNorms written in primitives (layer_norm_fusion.py, called by
graphopt.compile_stages.prepare: a training step keeps them).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

import onnx

from graphopt.errors import ShapeError
from graphopt.frontend.attributes import check_attributes
from graphopt.frontend.batchnorm_to_affine import batchnorms_to_affine
from graphopt.frontend.degenerate import check_dims, check_resident, forget_negative_output_dims
from graphopt.frontend.disputed import refuse_disputed
from graphopt.frontend.domains import check_domains
from graphopt.frontend.element_types import check_element_types
from graphopt.frontend.input_values import bake_input_values
from graphopt.frontend.load import load_model
from graphopt.frontend.narrow_types import widen_narrow_types
from graphopt.frontend.ranges import has_ranges
from graphopt.frontend.shapes import (
    fix_input_shapes,
    graph_input_names,
    infer_shapes,
    parse_input_shape,
)
from graphopt.frontend.simplify import simplify
from graphopt.frontend.sum_to_add import sums_to_adds
from graphopt.identity import source_sha256 as model_sha256
from graphopt.plan.memory_limit import MemoryLimit

__all__ = [
    "PreparedModel", "TensorSignature", "load_model", "parse_input_shape", "prepare",
    "prepare_model",
]


class TensorSignature(NamedTuple):
    """A graph input or output as callers see it: name, static shape, numpy dtype name."""

    name: str
    shape: tuple[int, ...]
    dtype: str


@dataclass(frozen=True)
class PreparedModel:
    """A model ready for import: static shapes everywhere, shape arithmetic folded."""

    model: onnx.ModelProto
    inputs: tuple[TensorSignature, ...]
    outputs: tuple[TensorSignature, ...]
    source_sha256: str
    # a range compile (graphopt.frontend.ranges): every symbol's (lo, hi), and each input's and
    # output's dims as numbers and symbol names; the signatures' shapes are then the maximum
    symbols: dict[str, tuple[int, int]] = field(default_factory=dict)
    dims: dict[str, tuple[int | str, ...]] = field(default_factory=dict)
    # narrow inputs/outputs (float8, int4...: graphopt.frontend.narrow_types): name -> the dtype the
    # arena holds them as; their signature's dtype is the caller's
    held: dict[str, str] = field(default_factory=dict)
    # inputs fixed by --input-value (graphopt.frontend.input_values): {name, shape, dtype, value} each
    pinned: tuple[dict, ...] = ()
    must_be_zero: frozenset[str] = frozenset()  # inputs the runtime checks are all zero (float8 zero points)


def prepare(
    path: str | os.PathLike,
    input_shapes: Mapping[str, tuple[int, ...]] | None = None,
    fold: bool = True,
) -> PreparedModel:
    """Load `path`, fix its input shapes, fold it; the hash is of the file's bytes.

    Raises a GraphoptError subclass (ModelLoadError, InputError, ShapeError,
    SimplifyError) with a one-line message on any problem with the model or shapes.
    """
    model = load_model(path)
    return prepare_model(model, input_shapes, fold=fold, source_sha256=model_sha256(path))


def prepare_model(
    model: onnx.ModelProto,
    input_shapes: Mapping[str, tuple[int, ...]] | None = None,
    fold: bool = True,
    source_sha256: str | None = None,
    memory: MemoryLimit | None = None,
    allow_ort_only: bool = False,
    input_values: Mapping[str, tuple[float, ...]] | None = None,
) -> PreparedModel:
    """`prepare` for an in-memory model; hashes its serialized bytes unless told.

    `allow_ort_only`: nodes only ONNX Runtime knows (com.microsoft, ai.onnx.ml) pass the gate; the
    compile driver allows them when they will run as fallback kernels.
    `memory`: refuse inputs, outputs and weights that cannot fit it (None: unchecked;
    the compile driver passes graphopt.plan.memory_limit.host_limit unless --allow-huge-arena).
    `input_values`: inputs fixed at compile time (--input-value: input_values.py).
    """
    if source_sha256 is None:
        source_sha256 = model_sha256(model)
    model, pinned = bake_input_values(model, input_values or {})
    if has_ranges(input_shapes or {}):  # a range compile: graphopt.frontend.prepare_range
        from graphopt.frontend.prepare_range import prepare_range_model

        return prepare_range_model(model, input_shapes, source_sha256, memory, allow_ort_only)
    model = check_domains(model, allow_ort_only)  # first: everything after reads ops by op_type, as TVM does
    fixed = fix_input_shapes(forget_negative_output_dims(model), dict(input_shapes or {}))
    check_attributes(fixed)  # rules the checker and shape inference skip (attributes.py)
    check_dims(fixed)  # after: a bad attribute is the cause of the odd shapes it infers
    check_element_types(fixed, narrow_ok=True)  # float8 and sub-byte types: held widened, or refused
    widened = widen_narrow_types(fixed)  # narrow_types.py: their casts and (de)quantizations rewritten
    if widened.model is not fixed:
        fixed = infer_shapes(widened.model)
    if memory is not None:
        check_resident(fixed, memory)
    folded = simplify(fixed, enabled=fold)
    sums = sums_to_adds(folded)
    batchnorms = batchnorms_to_affine(sums.module)
    folded = batchnorms.module
    if sums.modified or batchnorms.modified:
        folded = infer_shapes(folded)
    check_dims(folded)  # folding can reveal shapes that inference alone could not
    refuse_disputed(folded)  # after folding, which turns computed scales and modes into constants
    inputs = tuple(_signature(folded, vi, widened.callers) for vi in _inputs(folded))
    outputs = tuple(_signature(folded, vi, widened.callers) for vi in folded.graph.output)
    return PreparedModel(folded, inputs, outputs, source_sha256, held=widened.held,
                         must_be_zero=widened.must_be_zero, pinned=tuple(pinned))


def _inputs(model: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    names = set(graph_input_names(model))
    return [vi for vi in model.graph.input if vi.name in names]


def _signature(model: onnx.ModelProto, vi: onnx.ValueInfoProto, callers: Mapping[str, str]) -> TensorSignature:
    """Signature of a graph input/output; a shape still unknown here is data-dependent.

    Memory is planned for static sizes only, so such an output (NonZero, NMS) is a
    ShapeError rather than a guess.
    """
    tensor_type = vi.type.tensor_type
    dims = tensor_type.shape.dim if tensor_type.HasField("shape") else None
    if dims is None or any(not d.HasField("dim_value") for d in dims):
        raise ShapeError(f"{vi.name} has a shape that is not static after folding (data-dependent); graphopt "
                         "plans static shapes only (if it depends on an input's value, fix it: --input-value)")
    dtype = callers.get(vi.name) or onnx.helper.tensor_dtype_to_np_dtype(tensor_type.elem_type).name
    return TensorSignature(vi.name, tuple(int(d.dim_value) for d in dims), dtype)
