"""Small models with nodes TVM cannot import, for the fallback-kernel tests."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper


def mixed_fallback() -> onnx.ModelProto:
    """A Celu TVM has no converter for, a com.microsoft Gelu (outside the default domain), a
    TopK TVM's converter raises on (sorted=0), with two outputs, and native ops between."""
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((4, 2, 3, 3)).astype(np.float32), "w")
    k = numpy_helper.from_array(np.array([2], np.int64), "k")
    nodes = [
        h.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        h.make_node("Celu", ["c"], ["e"], alpha=0.7),
        h.make_node("Gelu", ["e"], ["g"], domain="com.microsoft"),
        h.make_node("Relu", ["g"], ["r"]),
        h.make_node("TopK", ["r", "k"], ["v", "i"], axis=-1, largest=0, sorted=0),
        h.make_node("Sigmoid", ["v"], ["y"]),
    ]
    graph = h.make_graph(nodes, "mixed", [h.make_tensor_value_info("x", T.FLOAT, [1, 2, 4, 4])],
                         [h.make_tensor_value_info("y", T.FLOAT, [1, 4, 4, 2]),
                          h.make_tensor_value_info("i", T.INT64, [1, 4, 4, 2])], [w, k])
    return h.make_model(graph, opset_imports=[h.make_opsetid("", 19), h.make_opsetid("com.microsoft", 1)],
                        ir_version=10)


def fixed_loop() -> onnx.ModelProto:
    """A Loop with a constant trip count that cannot end early: carried state s = s * x + 1
    (x read from the enclosing graph) and a scan output of every step's state."""
    body = h.make_graph(
        [h.make_node("Mul", ["s_in", "x"], ["m"]), h.make_node("Add", ["m", "one"], ["s_out"]),
         h.make_node("Identity", ["cond_in"], ["cond_out"]), h.make_node("Identity", ["s_out"], ["step"])],
        "body",
        [h.make_tensor_value_info("i", T.INT64, []), h.make_tensor_value_info("cond_in", T.BOOL, []),
         h.make_tensor_value_info("s_in", T.FLOAT, [4])],
        [h.make_tensor_value_info("cond_out", T.BOOL, []), h.make_tensor_value_info("s_out", T.FLOAT, [4]),
         h.make_tensor_value_info("step", T.FLOAT, [4])],
        [numpy_helper.from_array(np.float32(1.0), "one")])
    nodes = [h.make_node("Relu", ["x"], ["r"]), h.make_node("Loop", ["trip", "cond", "r"], ["s", "steps"], body=body),
             h.make_node("Sigmoid", ["s"], ["y"]), h.make_node("Tanh", ["steps"], ["z"])]
    graph = h.make_graph(nodes, "loop", [h.make_tensor_value_info("x", T.FLOAT, [4])],
                         [h.make_tensor_value_info("y", T.FLOAT, [4]), h.make_tensor_value_info("z", T.FLOAT, [3, 4])],
                         [numpy_helper.from_array(np.array(3, np.int64), "trip"),
                          numpy_helper.from_array(np.array(True), "cond")])
    return h.make_model(graph, opset_imports=[h.make_opsetid("", 17)], ir_version=10)


def data_dependent_loop() -> onnx.ModelProto:
    """A Loop whose body may stop it early: its scan output has no static shape."""
    model = fixed_loop()
    body = model.graph.node[1].attribute[0].g
    body.node[2].CopyFrom(h.make_node("Less", ["i", "limit"], ["cond_out"]))
    body.initializer.append(numpy_helper.from_array(np.array(2, np.int64), "limit"))
    return model
