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

import onnx

from graphopt.errors import SimplifyError, first_line
from graphopt.frontend.shapes import infer_shapes

log = logging.getLogger(__name__)


def simplify(model: onnx.ModelProto, enabled: bool = True) -> onnx.ModelProto:
    """Return a folded copy of a model whose input shapes are already static.

    The result passes onnx.checker and strict shape inference; `model` is untouched.
    Raises SimplifyError if onnxslim fails or yields an invalid model.
    """
    if not enabled:
        return infer_shapes(model)
    import onnxslim  # heavy-ish (onnx_graphsurgeon copy); only needed here

    work = onnx.ModelProto()
    work.CopyFrom(model)  # onnxslim edits its argument in place (freeze)
    try:
        slimmed = onnxslim.slim(work)
    except Exception as exc:
        raise SimplifyError(f"onnxslim failed to fold the model: {first_line(exc)}") from exc
    if slimmed is None:
        raise SimplifyError("onnxslim returned no model")
    _restore_metadata(model, slimmed)
    try:
        onnx.checker.check_model(slimmed)
    except Exception as exc:
        raise SimplifyError(f"the folded model is invalid: {first_line(exc)}") from exc
    before, after = len(model.graph.node), len(slimmed.graph.node)
    log.info("simplify: %d -> %d nodes", before, after)
    return infer_shapes(slimmed)


def _restore_metadata(source: onnx.ModelProto, slimmed: onnx.ModelProto) -> None:
    """Keep the source's IR version and producer so ORT/TVM treat both alike.

    onnxslim re-exports through onnx_graphsurgeon, which may stamp its own values.
    """
    slimmed.ir_version = source.ir_version
    if source.producer_name:
        slimmed.producer_name = source.producer_name

