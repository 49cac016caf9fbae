"""Pin every graph input to a fixed shape, then infer every tensor's shape.

Why: memory planning places tensors by their byte sizes, so every size must be a
number at compile time, and TVM's ONNX importer folds shape arithmetic only when
input shapes are static. A dynamic dim is therefore an error that names the input,
the dim and the flag to fix it, never a silent guess (defaulting a batch dim to 1
would plan memory for a model the user did not ask for).
"""

from __future__ import annotations

import re

import onnx

from graphopt.errors import InputError, ShapeError, first_line

# (op type, input index) of operands whose element type alone is read, never their data
_TYPE_ONLY_OPERANDS = frozenset({("CastLike", 1)})
_SPEC = re.compile(r"^\s*([^=\s][^=]*?)\s*=\s*(\d+(?:\s*[x,]\s*\d+)*)\s*$")


def parse_input_shape(spec: str) -> tuple[str, tuple[int, ...]]:
    """Parse `--input-shape NAME=D0xD1x...` (commas also accepted) into (name, dims)."""
    match = _SPEC.match(spec)
    if not match:
        raise InputError(f"bad input shape {spec!r}: expected NAME=D0xD1x..., "
                         "e.g. input=1x3x224x224")
    name, dims_text = match.groups()
    dims = tuple(int(d) for d in re.split(r"\s*[x,]\s*", dims_text))
    if any(d <= 0 for d in dims):
        raise InputError(f"bad input shape {spec!r}: every dim must be a positive integer")
    return name, dims


def graph_input_names(model: onnx.ModelProto) -> list[str]:
    """Names of the real inputs, in order: graph inputs that are not initializers.

    Models of IR version < 4 list every initializer among the inputs too; those are
    weights with a default value, not something a caller feeds.
    """
    inits = {t.name for t in model.graph.initializer}
    return [vi.name for vi in model.graph.input if vi.name not in inits]


def fix_input_shapes(model: onnx.ModelProto, shapes: dict[str, tuple[int, ...]]) -> onnx.ModelProto:
    """Return a copy of `model` whose inputs have the given static shapes, shapes inferred.

    Raises InputError for a name that is not a graph input and ShapeError for a rank
    or fixed-dim conflict, a dim left dynamic, or a shape inference failure.
    """
    names = graph_input_names(model)
    unknown = sorted(set(shapes) - set(names))
    if unknown:
        raise InputError(f"unknown input name(s) {', '.join(unknown)}; "
                         f"the model's inputs are: {', '.join(names) or '(none)'}")
    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
    by_name = {vi.name: vi for vi in fixed.graph.input}
    for name in names:
        tensor_type = by_name[name].type.tensor_type
        if name in shapes:
            _set_dims(name, tensor_type, shapes[name])
        _require_static(name, tensor_type)
    _forget_inferred_shapes(fixed)
    return infer_shapes(fixed)


def _set_dims(name: str, tensor_type: onnx.TypeProto.Tensor, dims: tuple[int, ...]) -> None:
    """Overwrite the declared shape of one input, refusing rank and fixed-dim conflicts."""
    if tensor_type.HasField("shape"):
        declared = tensor_type.shape.dim
        if len(declared) != len(dims):
            raise ShapeError(f"input {name} has rank {len(declared)} in the model, "
                             f"but the given shape {_fmt(dims)} has rank {len(dims)}")
        for axis, (dim, value) in enumerate(zip(declared, dims, strict=True)):
            # -1 is dynamic; a declared 0 (empty, static by itself) may be overridden too,
            # since some exporters write 0 for an unknown dim
            if dim.dim_value > 0 and dim.dim_value != value:
                raise ShapeError(f"input {name} dim {axis} is fixed to {dim.dim_value} in the "
                                 f"model, but the given shape {_fmt(dims)} says {value}")
    tensor_type.shape.ClearField("dim")
    for value in dims:
        tensor_type.shape.dim.add().dim_value = value


def _require_static(name: str, tensor_type: onnx.TypeProto.Tensor) -> None:
    """Raise ShapeError naming the first dynamic dim of an input, with the fix."""
    hint = f"pass --input-shape {name}=D0xD1x..."
    if not tensor_type.HasField("shape"):
        raise ShapeError(f"input {name} has unknown rank; {hint}")
    for axis, dim in enumerate(tensor_type.shape.dim):
        # a declared 0 is an empty tensor, as static as any other size; -1 is a dynamic marker
        if not dim.HasField("dim_value") or dim.dim_value < 0:
            label = f" ({dim.dim_param})" if dim.HasField("dim_param") else ""
            raise ShapeError(f"input {name} dim {axis}{label} is dynamic; {hint}")


def refuse_empty_inputs_in_use(model: onnx.ModelProto) -> None:
    """ShapeError (one line) for a graph input with a dim of 0 that a node reads or that is an output.

    Why: an empty tensor is legal ONNX and static, but TVM's importer takes a 0 dim for a
    dynamic one, and its reduction kernels never run their initial value over an empty axis
    (ReduceSum of a 2x0x4 tensor returned whatever the arena held). Folding may leave such an
    input unread, and CastLike reads only the element type of its `like`: those are harmless
    and pass, so this runs on the folded model.
    """
    used = {name for node in model.graph.node for i, name in enumerate(node.input)
            if (node.op_type, i) not in _TYPE_ONLY_OPERANDS}
    used |= {out.name for out in model.graph.output}
    inputs = {vi.name: vi for vi in model.graph.input}
    for name in graph_input_names(model):
        tensor_type = inputs[name].type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor_type.shape.dim]
        if name in used and 0 in dims:
            raise ShapeError(f"input {name} dim {dims.index(0)} is 0 (an empty tensor); graphopt compiles "
                             "empty tensors only where folding leaves them unread")


def _forget_inferred_shapes(model: onnx.ModelProto) -> None:
    """Drop stale intermediate shapes and symbolic output dims so inference redoes them.

    value_info written for the dynamic model may carry symbols that would survive
    inference where it cannot refine them; outputs keep their element type only.
    """
    model.graph.ClearField("value_info")
    for out in model.graph.output:
        tensor_type = out.type.tensor_type
        if tensor_type.HasField("shape") and any(
            not d.HasField("dim_value") for d in tensor_type.shape.dim
        ):
            tensor_type.ClearField("shape")


def infer_shapes(model: onnx.ModelProto) -> onnx.ModelProto:
    """ONNX shape inference in strict mode with data propagation (folds Shape->Reshape).

    Strict mode makes an op whose shapes cannot be inferred an error here rather than
    an obscure failure inside TVM's importer later.
    """
    try:
        return onnx.shape_inference.infer_shapes(
            model, check_type=True, strict_mode=True, data_prop=True
        )
    except Exception as exc:  # InferenceError, ValidationError
        raise ShapeError(f"shape inference failed: {first_line(exc)}") from exc


def _fmt(dims: tuple[int, ...]) -> str:
    return "x".join(str(d) for d in dims)
