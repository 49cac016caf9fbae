"""Turn a prepared ONNX model into a Relax IRModule with its weights kept apart.

Why params stay function inputs (`keep_params_in_input=True`): the planner must see
weights as their own region, and the artifact stores them beside the library rather
than baked into it as constants. The Relax `main` then takes, positionally, the
graph inputs (in ONNX graph-input order) followed by the weights (in
`param_names` order); TVM may rename inputs (`0` -> `input_0`), so callers must
feed by position and keep the ONNX names from here, never from the Relax vars.

TVM is imported inside the functions: importing this module stays cheap.
"""

from __future__ import annotations

import contextlib
import functools
import io
import re
import warnings
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import onnx

from graphopt.errors import UnsupportedOperatorError, first_line

if TYPE_CHECKING:
    import tvm

# Handled by TVM's importer itself rather than through its converter table.
_BUILTIN_OPS = frozenset({"Constant", "If"})
# Integer initializers up to this size are shape/axis/index data, baked in as constants.
_SMALL_INT_ELEMENTS = 64


class ImportedModule(NamedTuple):
    """What `to_relax` returns; unpacks as (mod, params, input_names, param_names)."""

    mod: tvm.IRModule
    params: list[np.ndarray]
    input_names: list[str]
    param_names: list[str]


@functools.lru_cache(maxsize=1)
def supported_ops() -> frozenset[str]:
    """ONNX op types TVM's Relax importer converts, read from its own converter table."""
    from tvm.relax.frontend.onnx.onnx_frontend import _get_convert_map

    from graphopt.frontend.converters import converters

    return frozenset(_get_convert_map()) | frozenset(converters()) | _BUILTIN_OPS


class NodeConversionError(Exception):
    """TVM's converter raised on one node: which node, and what it said."""

    def __init__(self, node_name: str, cause: BaseException) -> None:
        super().__init__(f"{type(cause).__name__}: {first_line(cause)}")
        self.node_name = node_name


class _Traced:
    """A converter whose failures name their node (TVM's own printout names only the op type).

    The result is normalized inside the trace too: that is where a converter's malformed
    Relax fails, and it is still that node's fault."""

    def __init__(self, converter) -> None:
        self.converter = converter

    def get_converter(self, opset: int):
        impl = self.converter.get_converter(opset)

        def convert(bb, inputs, attr, params):
            custom = attr.get("tvm_custom", {})
            try:
                result = impl(bb, inputs, attr, params)
                result = bb.normalize(result) if _is_relax_expr(result) else result
                _check_output_count(result, custom.get("num_outputs", 1))
                return result
            except Exception as exc:
                raise NodeConversionError(custom.get("name", ""), exc) from exc

        return convert


def _check_output_count(result, wanted: int) -> None:
    """A converter that returns fewer outputs than the node names (MaxPool's Indices) fails later,
    outside the trace, with no node named: fail here, where the node is known."""
    from tvm import relax

    if wanted <= 1:
        return
    got = len(result) if isinstance(result, relax.Tuple) else (
        len(result.ty.fields) if isinstance(getattr(result, "ty", None), relax.TupleType) else 1)
    if got < wanted:
        raise ValueError(f"TVM's converter gives {got} output(s), the node has {wanted}")


def _is_relax_expr(value) -> bool:
    from tvm import relax

    return isinstance(value, relax.Expr)


@contextlib.contextmanager
def converters_added():
    """TVM's converter table with graphopt's converters added, for one `from_onnx` call.

    TVM looks its table up through the module function `_get_convert_map` on every node,
    so replacing that function for the duration of the import is the one seam it offers;
    the original is always put back (imports are not run concurrently in one process).
    Every converter is traced (_Traced), so a failure says which node raised.
    """
    from tvm.relax.frontend.onnx import onnx_frontend

    from graphopt.frontend.converters import converters

    original = onnx_frontend._get_convert_map
    table = {op: _Traced(converter) for op, converter in {**original(), **converters()}.items()}
    onnx_frontend._get_convert_map = lambda: table
    try:
        yield
    finally:
        onnx_frontend._get_convert_map = original


def __getattr__(name: str) -> Any:
    """`SUPPORTED_OPS` as a lazy module attribute, so importing this file loads no TVM."""
    if name == "SUPPORTED_OPS":
        return supported_ops()
    raise AttributeError(name)


def _op_types(graph: onnx.GraphProto) -> set[str]:
    """Op types of `graph` and of every subgraph (If branches are converted too)."""
    ops = set()
    for node in graph.node:
        ops.add(node.op_type)
        for attr in node.attribute:
            for sub in [attr.g] if attr.HasField("g") else list(attr.graphs):
                ops |= _op_types(sub)
    return ops


def check_supported(model: onnx.ModelProto) -> None:
    """Raise UnsupportedOperatorError naming every op type TVM cannot import, at once.

    TVM reports only the first failure, deep in conversion; listing them all up
    front tells a user whether the model is close to working or far from it.
    """
    missing = sorted(_op_types(model.graph) - supported_ops())
    if missing:
        raise UnsupportedOperatorError(
            f"TVM's ONNX importer does not support operator(s): {', '.join(missing)}"
        )


def to_relax(model: onnx.ModelProto) -> ImportedModule:
    """Import `model` (static shapes, already simplified) into Relax, params detached.

    Raises UnsupportedOperatorError if an op type is missing or its converter fails
    (an attribute or input pattern TVM does not handle).
    """
    check_supported(model)
    return _import(model)


def import_with_fallback(model: onnx.ModelProto, fallback: bool = True) -> tuple[ImportedModule, tuple]:
    """`to_relax`, except that a node TVM cannot import becomes a fallback kernel
    (graphopt.frontend.fallback) instead of refusing the model; returns the kernels too.

    A converter that raises sends its node to the fallback and the import is retried, so
    each retry moves one more node out of TVM's hands and the loop ends. With
    `fallback=False` this is `to_relax`: the first unsupported op refuses the model.
    """
    from graphopt.frontend.fallback import FALLBACK_OP, partition, with_unique_node_names

    if not fallback:
        return to_relax(model), ()
    named = with_unique_node_names(model)
    nodes = {node.name for node in named.graph.node}
    tvm_ops = supported_ops() - {FALLBACK_OP}
    forced: dict[str, str] = {}
    while True:
        part = partition(named, tvm_ops, forced)
        try:
            return _import(part.model), part.kernels
        except UnsupportedOperatorError as exc:
            node = getattr(exc, "node_name", None)
            if node not in nodes or node in forced or any(k.node_name == node for k in part.kernels):
                raise
            forced[node] = f"TVM's converter failed ({exc})"


def _import(model: onnx.ModelProto) -> ImportedModule:
    from tvm.relax.frontend import detach_params
    from tvm.relax.frontend.onnx import from_onnx

    model = _for_tvm(model)
    captured = io.StringIO()  # the importer print()s the failing op before re-raising
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(captured), converters_added():
            warnings.simplefilter("ignore")  # renames and checker notes, not errors
            mod = from_onnx(model, keep_params_in_input=True)
    except Exception as exc:
        error = UnsupportedOperatorError(_import_failure(captured.getvalue(), exc))
        error.node_name = _failed_node(exc)
        _free_quietly(exc)
        raise error from exc
    mod, detached = detach_params(mod)
    params = [t.numpy() for t in detached.get("main", [])]
    func = mod["main"]
    num_input = int(func.attrs["num_input"])
    param_names = [v.name for v in func.params[num_input:]]
    input_names = _graph_inputs(model)
    if len(input_names) != num_input or len(param_names) != len(params):
        raise AssertionError("TVM importer changed the input/param layout; update to_relax")
    return ImportedModule(mod, params, input_names, param_names)


def _failed_node(exc: BaseException) -> str | None:
    """The node TVM failed on: from a traced converter, or from TVM's own ShapeExpr check."""
    if isinstance(exc, NodeConversionError):
        return exc.node_name
    match = re.match(r"Node (.+) cannot handle ShapeExpr inputs", str(exc))
    return match.group(1) if match else None


def _free_quietly(exc: BaseException) -> None:
    """Frees the half-built Relax BlockBuilder that a failed import leaves in its frames, with
    stderr (fd 2) silenced meanwhile.

    Why: freeing it makes TVM's C++ log "Warning: BlockBuilder destroyed with remaining blocks!"
    on fd 2, and left to the garbage collector that happens after the CLI has printed its
    one-line error: a second line (found by tests/test_fuzz.py). The frames' locals go, the
    traceback stays readable (GRAPHOPT_DEBUG=1 still shows where TVM failed).
    """
    import gc
    import os
    import sys
    import traceback

    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        seen: set[int] = set()
        while exc is not None and id(exc) not in seen:  # the exception and the ones it chains to
            seen.add(id(exc))
            traceback.clear_frames(exc.__traceback__)
            exc = exc.__cause__ or exc.__context__
        gc.collect()
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _graph_inputs(model: onnx.ModelProto) -> list[str]:
    inits = {t.name for t in model.graph.initializer}
    return [vi.name for vi in model.graph.input if vi.name not in inits]


def _for_tvm(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy (only if needed) with two layout fixes TVM's importer relies on.

    * Initializers listed in graph.input (IR < 4 style) are dropped from it: with
      params kept as inputs TVM would list such a weight twice and shift every
      positional argument after it.
    * Small integer initializers (shapes, axes, indices) become Constant nodes: TVM
      reads them as constants anyway (its `get_constant`), but as initializers they
      would also stay behind as dead int64 params of `main`.
    """
    graph = model.graph
    inits = {t.name for t in graph.initializer}
    small = {t.name for t in graph.initializer if _is_small_int(t)}
    if not small and not any(vi.name in inits for vi in graph.input):
        return model
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    graph = copy.graph
    inputs = [vi for vi in graph.input if vi.name not in inits]
    constants = [onnx.helper.make_node("Constant", [], [t.name], value=t)
                 for t in graph.initializer if t.name in small]
    weights = [t for t in graph.initializer if t.name not in small]
    nodes = constants + list(graph.node)
    for field in ("input", "initializer", "node"):
        graph.ClearField(field)
    graph.input.extend(inputs)
    graph.initializer.extend(weights)
    graph.node.extend(nodes)
    return copy


def _is_small_int(tensor: onnx.TensorProto) -> bool:
    """int32/int64 with at most _SMALL_INT_ELEMENTS elements: shape-like data."""
    size = int(np.prod(tensor.dims)) if tensor.dims else 1
    is_int = tensor.data_type in (onnx.TensorProto.INT64, onnx.TensorProto.INT32)
    return is_int and size <= _SMALL_INT_ELEMENTS


def _import_failure(printed: str, exc: BaseException) -> str:
    """One line saying which op type TVM failed on, from its printout, and why."""
    match = re.search(r"Error converting operator (\S+?),", printed)
    where = f" on {match.group(1)}" if match else ""
    cause = exc.__cause__ if isinstance(exc, NodeConversionError) and exc.__cause__ else exc
    return f"TVM's ONNX importer failed{where}: {type(cause).__name__}: {first_line(cause)}"
