"""Fold everything that fixed input shapes make constant, with onnxslim.

Why: TVM 0.27's ONNX importer fails on many shape-computation patterns (Reshape
from a computed shape, dynamic Pad, Shape->Gather->Concat chains) unless they are
already constants, and every folded node is one tensor fewer for the planner.
onnxslim folds constants and shape subgraphs, removes dead and duplicate nodes,
and fuses inference-time patterns (Conv+BatchNormalization, Conv+Add, Gemm+Add)
that ONNX Runtime would fuse too.

Policy on failure: raise `SimplifyError`, never continue with the unfolded model.
A silently unfolded model would fail later inside TVM's importer with a message
about an operator the user did not write, or compile a plan for a different graph
than the one reported. `simplify(..., enabled=False)` is the explicit way out.

Initializers that feed shape inputs (Reshape's shape, Slice's starts...) need no
work here: TVM's converters read them as constants even with params kept as
inputs (`get_constant`), leaving the unused int64 parameter behind.
"""

from __future__ import annotations

import logging

import numpy as np
import onnx
import onnx.numpy_helper

from graphopt.errors import ShapeError, SimplifyError, first_line
from graphopt.frontend.domains import walk
from graphopt.frontend.shapes import graph_input_names, infer_shapes, refuse_empty_inputs_in_use

log = logging.getLogger(__name__)

# onnxslim's own shape inference returns None (no error) below this opset, and its loop then
# fails on that None; below it, graphopt's strict inference (after slimming) is the only one.
_SLIM_SHAPES_MIN_OPSET = 7
# The first IR version where an initializer need not be listed among the graph inputs.
_SEPARATE_INITIALIZERS_IR = 4
# element types with no numpy array an initializer could hold for folding
_NON_NUMERIC = {onnx.TensorProto.STRING, onnx.TensorProto.UNDEFINED}


def simplify(model: onnx.ModelProto, enabled: bool = True) -> onnx.ModelProto:
    """Return a folded copy of a model whose input shapes are already static.

    The result passes onnx.checker and strict shape inference; `model` is untouched.
    Raises SimplifyError if onnxslim fails or yields an invalid model, and ShapeError if an
    empty input is still read once folded (shapes.refuse_empty_inputs_in_use).
    """
    if not enabled:
        refuse_empty_inputs_in_use(model)
        return infer_shapes(model)
    import onnxslim  # heavy-ish (onnx_graphsurgeon copy); only needed here

    work = onnx.ModelProto()
    work.CopyFrom(model)  # onnxslim edits its argument in place (freeze)
    _empty_inputs_as_constants(work)
    try:
        slimmed = onnxslim.slim(work, no_shape_infer=_default_opset(model) < _SLIM_SHAPES_MIN_OPSET,
                                skip_fusion_patterns=_skipped_fusions(work))
    except Exception as exc:
        raise SimplifyError(f"onnxslim failed to fold the model: {first_line(exc)}") from exc
    if slimmed is None:
        raise SimplifyError("onnxslim returned no model")
    _restore_metadata(model, slimmed)
    _restore_inputs(model, slimmed)
    try:
        onnx.checker.check_model(slimmed)
    except Exception as exc:
        raise SimplifyError(f"the folded model is invalid: {first_line(exc)}") from exc
    before, after = len(model.graph.node), len(slimmed.graph.node)
    log.info("simplify: %d -> %d nodes", before, after)
    refuse_empty_inputs_in_use(slimmed)  # after folding: it may leave an empty input unread
    _keep_static_outputs(model, slimmed)
    return _infer_onnx_over_slim(model, slimmed)


def _empty_inputs_as_constants(model: onnx.ModelProto) -> None:
    """Make every numeric graph input with a 0 dim an initializer, so folding computes what reads it.

    Why: an empty tensor has exactly one value, so a node reading it (ReduceSum over an empty
    axis, a Reduce whose `axes` input is empty, a Concat with an empty part) computes the same
    whatever the caller passes, and onnxslim folds it with ONNX Runtime's own kernels. TVM's
    importer takes a 0 dim for a dynamic one, and its reductions never initialise over an empty
    axis, so without this such models were refused. The input stays in the graph, read by no
    node (the artifact still takes it, and checks its shape); the constant that replaces it is
    a tensor of its own name, which the program may still hold where folding could not consume
    it (TVM then refuses an empty constant in one line, as before).
    """
    inputs = {vi.name: vi for vi in model.graph.input}
    outputs = {vi.name for vi in model.graph.output}
    constants = {}
    for name in graph_input_names(model):
        tensor_type = inputs[name].type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else -1 for d in tensor_type.shape.dim]
        if 0 in dims and min(dims) >= 0 and tensor_type.elem_type not in _NON_NUMERIC and name not in outputs:
            dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor_type.elem_type)
            constants[name] = onnx.numpy_helper.from_array(np.zeros(dims, dtype=dtype), f"{name}_graphopt_empty")
    if not constants:
        return
    for node in walk(model.graph.node):
        for position, name in enumerate(node.input):
            if name in constants:
                node.input[position] = constants[name].name
    model.graph.initializer.extend(constants.values())
    model.ir_version = max(model.ir_version, _SEPARATE_INITIALIZERS_IR)


def _skipped_fusions(model: onnx.ModelProto) -> list[str]:
    """onnxslim fusions left out for this model.

    FusionGemm turns a batched (3-D and up) MatMul + Add into Reshape -> Gemm -> Reshape: TVM fuses
    the bias add into the matmul either way, but the reshapes keep the MLP's hidden tensor alive
    twice per transformer layer (the encoder's arena 786,432 -> 1,179,648 B with it). A 2-D MatMul +
    Add becomes a plain Gemm, which changes nothing in memory, so the fusion stays on there."""
    ranks = {vi.name: len(vi.type.tensor_type.shape.dim) for vi in [*model.graph.input, *model.graph.value_info]
             if vi.type.HasField("tensor_type") and vi.type.tensor_type.HasField("shape")}
    batched = any(n.op_type == "MatMul" and ranks.get(n.input[0], 0) >= 3 for n in model.graph.node)
    return ["FusionGemm"] if batched else []


def _infer_onnx_over_slim(source: onnx.ModelProto, slimmed: onnx.ModelProto) -> onnx.ModelProto:
    """Strict ONNX inference on the folded model; where it conflicts with a shape onnxslim's
    own inference wrote, ONNX's wins (`_drop_slim_shapes`) and inference runs again.

    Why both: onnxslim's shapes fill gaps ONNX's inference leaves (operators it has no shape
    function for), so they are kept while they agree; ONNX's inference is the reference, so a
    conflict is decided in its favor rather than refusing a model that is fine.
    """
    try:
        return infer_shapes(slimmed)
    except ShapeError as exc:
        log.info("simplify: onnxslim's shapes conflict with ONNX's (%s); keeping ONNX's", exc)
    _drop_slim_shapes(source, slimmed)
    return infer_shapes(slimmed)


def _restore_inputs(source: onnx.ModelProto, slimmed: onnx.ModelProto) -> None:
    """Put back, in the source's order, every graph input onnxslim dropped as unused.

    Why: the inputs are the model's interface (the artifact's signature, fed by name or
    position); folding may make one unread (CastLike's `like` once it is a Cast), but a
    caller still passes it, and a compiled model must accept what the source model accepts.
    """
    kept = {vi.name: vi for vi in slimmed.graph.input}
    real = graph_input_names(source)
    if all(name in kept for name in real):
        return
    by_name = {vi.name: vi for vi in source.graph.input}
    inputs = [kept.get(name, by_name[name]) for name in real]
    extra = [vi for vi in slimmed.graph.input if vi.name not in set(real)]
    slimmed.graph.ClearField("input")
    slimmed.graph.input.extend(inputs + extra)


def _drop_slim_shapes(source: onnx.ModelProto, slimmed: onnx.ModelProto) -> None:
    """Forget the shapes onnxslim's own inference wrote, so that ONNX's inference redoes them.

    Why: onnxslim's symbolic inference is not the reference and can be wrong (an uneven
    Split with `num_outputs` got 7 // 4 where ONNX says ceil). Intermediate shapes are
    dropped; an output takes the source's static shape (`_keep_static_outputs`).
    """
    slimmed.graph.ClearField("value_info")
    _keep_static_outputs(source, slimmed)


def _keep_static_outputs(source: onnx.ModelProto, slimmed: onnx.ModelProto) -> None:
    """Give every output the static shape the source declares or ONNX inferred before folding.

    Why: folding cannot change an output's shape, but onnxslim rewrites outputs with its own
    inference, which can be wrong where ONNX's cannot tell: a Split whose sizes come from a
    non-constant input got equal parts (3 and 3 where the model declares 2 and 4), and the plan
    then held the wrong sizes. A declared shape is part of the model's contract; where the data
    breaks it at run time, the kernel that finds it fails loudly (graphopt.runtime.fallback).
    """
    static = {vi.name: vi.type for vi in source.graph.output if _is_static(vi.type)}
    for out in slimmed.graph.output:
        if out.name in static:
            out.type.CopyFrom(static[out.name])


def _is_static(tensor_type: onnx.TypeProto) -> bool:
    tensor = tensor_type.tensor_type
    return tensor_type.HasField("tensor_type") and tensor.HasField("shape") and all(
        d.HasField("dim_value") for d in tensor.shape.dim)


def _default_opset(model: onnx.ModelProto) -> int:
    """The model's version of the default ONNX domain (0 if it imports none)."""
    return max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)


def _restore_metadata(source: onnx.ModelProto, slimmed: onnx.ModelProto) -> None:
    """Keep the source's IR version and producer so ORT/TVM treat both alike.

    onnxslim re-exports through onnx_graphsurgeon, which may stamp its own values.
    It also lists initializers apart from the graph inputs, which IR versions below 4
    forbid (there every initializer must be an input too): such a source's result is
    stamped IR 4, the first version whose rules it follows.
    """
    slimmed.ir_version = max(source.ir_version, _SEPARATE_INITIALIZERS_IR)
    if source.producer_name:
        slimmed.producer_name = source.producer_name

