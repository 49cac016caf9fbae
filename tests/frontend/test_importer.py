"""Relax import: unsupported ops are listed up front; inputs and params keep ONNX order."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from graphopt.errors import UnsupportedOperatorError
from graphopt.examples.models import mlp
from graphopt.frontend import importer, prepare_model


def _unsupported_model() -> onnx.ModelProto:
    """Bernoulli and ReverseSequence side by side (TVM 0.27's importer has neither) plus a Relu it has."""
    seq, batch, feat = 2, 1, 4
    lens = numpy_helper.from_array(np.array([seq], np.int64), "lens")
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("Bernoulli", ["r"], ["b"]),
        helper.make_node("ReverseSequence", ["r", "lens"], ["s"], batch_axis=1, time_axis=0),
    ]
    graph = helper.make_graph(
        nodes, "unsupported", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [seq, batch, feat])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [seq, batch, feat]) for n in ("b", "s")],
        initializer=[lens])
    model = helper.make_model(graph, ir_version=10, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model


def test_unsupported_ops_all_listed_in_one_line():
    with pytest.raises(UnsupportedOperatorError) as err:
        importer.check_supported(_unsupported_model())
    message = str(err.value)
    assert "Bernoulli, ReverseSequence" in message and "Relu" not in message and "\n" not in message


def test_to_relax_refuses_before_converting():
    with pytest.raises(UnsupportedOperatorError, match="Bernoulli, ReverseSequence"):
        importer.to_relax(_unsupported_model())


def test_supported_ops_come_from_tvm():
    ops = importer.SUPPORTED_OPS
    assert {"Conv", "Gemm", "Reshape", "Constant", "If"} <= ops
    assert "Bernoulli" not in ops and "ReverseSequence" not in ops


def test_numeric_input_names_keep_their_onnx_name():
    """TVM renames input '0' to 'input_0'; callers still see the ONNX name."""
    w = numpy_helper.from_array(np.ones((4, 2), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["0", "w"], ["y"])], "numeric",
        [helper.make_tensor_value_info("0", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])], initializer=[w])
    model = helper.make_model(graph, ir_version=10, opset_imports=[helper.make_opsetid("", 17)])
    imported = importer.to_relax(model)
    assert imported.input_names == ["0"]
    assert len(imported.params) == len(imported.param_names) == 1


def test_positional_inputs_and_params_match_onnx_runtime():
    import onnxruntime as ort
    import tvm
    from tvm import relax

    prepared = prepare_model(mlp())
    mod, params, input_names, param_names = importer.to_relax(prepared.model)
    assert input_names == ["x"] and len(params) == len(param_names) > 0
    x = np.random.default_rng(0).standard_normal((4, 64)).astype(np.float32)
    executable = tvm.compile(mod, target=tvm.target.Target({"kind": "llvm"}))
    vm = relax.VirtualMachine(executable, tvm.cpu())
    args = [tvm.runtime.tensor(x)] + [tvm.runtime.tensor(p) for p in params]
    actual = vm["main"](*args).numpy()
    session = ort.InferenceSession(prepared.model.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    (expected,) = session.run(None, {"x": x})
    assert np.abs(actual - expected).max() <= 1e-4 * np.abs(expected).max()


def test_frontend_imports_nothing_heavy():
    """The compile driver may import the frontend eagerly; TVM/onnxslim/ORT load on use."""
    code = ("import sys, graphopt.frontend, graphopt.frontend.importer, graphopt.errors, "
            "graphopt.examples.models, graphopt.examples.real_models; "
            "heavy = {'tvm', 'onnxslim', 'onnxruntime'} & set(sys.modules); "
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_errors_module_imports_nothing():
    code = ("import sys; before = set(sys.modules); import graphopt.errors; "
            "new = {m.split('.')[0] for m in set(sys.modules) - before}; "
            "assert new <= {'graphopt'}, new")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_shape_initializers_become_constants_not_params():
    """Reshape targets are folded by TVM; they must not linger as dead int64 params."""
    from graphopt.examples.models import reshape_flatten_views

    imported = importer.to_relax(prepare_model(reshape_flatten_views()).model)
    assert all(p.dtype == np.float32 for p in imported.params)
    assert len(imported.params) == 4  # conv w, b; fc w, b
