"""Small ONNX models whose kernels oneDNN can compute (conv + bias + relu, a residual add, Gemm),
and a tuning database that gives each of them to oneDNN: what the portfolio tests compile."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def conv_gemm_model(seed: int = 0) -> onnx.ModelProto:
    """x[1,8,12,12] -> conv3x3 s1 p1 + relu -> conv1x1 + x (residual) + relu -> conv3x3 s2
    -> flatten -> Gemm(transB) + bias -> MatMul: every oneDNN epilogue kind, random weights."""
    rng = np.random.default_rng(seed)

    def weight(name: str, *shape: int) -> onnx.TensorProto:
        return numpy_helper.from_array((rng.standard_normal(shape) * 0.2).astype(np.float32), name)

    inits = [weight("w1", 8, 8, 3, 3), weight("b1", 8), weight("w2", 8, 8, 1, 1), weight("b2", 8),
             weight("w3", 4, 8, 3, 3), weight("b3", 4), weight("wg", 10, 144), weight("bg", 10),
             weight("wm", 10, 6)]
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"]),
        helper.make_node("Add", ["c2", "x"], ["s2"]),
        helper.make_node("Relu", ["s2"], ["r2"]),
        helper.make_node("Conv", ["r2", "w3", "b3"], ["c3"], pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("Flatten", ["c3"], ["f"]),
        helper.make_node("Gemm", ["f", "wg", "bg"], ["g"], transB=1),
        helper.make_node("MatMul", ["g", "wm"], ["y"]),
    ]
    graph = helper.make_graph(nodes, "conv_gemm", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 12, 12])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 6])], inits)
    return helper.make_model(graph, ir_version=10, opset_imports=[helper.make_opsetid("", 17)])


def grouped_conv_model(seed: int = 0) -> onnx.ModelProto:
    """x[1,8,11,13] -> Conv(group 2, pads 0/1/2/1, strides 1x2, dilations 2x1) + Relu: the matcher
    must read asymmetric padding, unequal strides, dilation and groups back from the TIR."""
    rng = np.random.default_rng(seed)
    inits = [numpy_helper.from_array((rng.standard_normal(s) * 0.2).astype(np.float32), n)
             for n, s in (("w", (6, 4, 3, 3)), ("b", (6,)))]
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[0, 1, 2, 1], strides=[1, 2], dilations=[2, 1],
                              group=2),
             helper.make_node("Relu", ["c"], ["y"])]
    graph = helper.make_graph(nodes, "grouped", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 11, 13])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 6, 9, 7])], inits)
    return helper.make_model(graph, ir_version=10, opset_imports=[helper.make_opsetid("", 17)])


def write(model: onnx.ModelProto, directory: Path) -> Path:
    path = directory / "model.onnx"
    onnx.save(model, path)
    return path


def onednn_db(model_path: Path, directory: Path, mode: str) -> tuple[object, int]:
    """(database at `directory` giving every kernel of the model that oneDNN computes to oneDNN in
    `mode`, how many kernels that is), as portfolio.py records a choice, without timing anything."""
    from graphopt.cluster.node import node_cpu
    from graphopt.frontend import prepare
    from graphopt.frontend.importer import to_relax
    from graphopt.kernels.onednn.match import match
    from graphopt.kernels.tuning.db import Record, TuningDB
    from graphopt.kernels.tuning.search import tasks_of
    from graphopt.kernels.tuning.workload import target_key
    from graphopt.lowering import prepack
    from graphopt.lowering.lower import legalize
    from graphopt.lowering.target import make_target

    target = make_target("llvm")
    mod = prepack.mark_weights()(legalize(to_relax(prepare(model_path, {}).model).mod, target))
    db = TuningDB.open(directory, create=True)
    count = 0
    for task in tasks_of(mod):
        spec = match(task.func)
        if spec is None:
            continue
        chosen = {"library": "onednn"} | ({"onednn_mode": mode} if spec.op == "conv2d" else {})
        db.commit(Record(workload=task.workload, target=target_key(target), rule="gemm", knobs={},
                         kernel=task.name, extra=chosen, cpu=node_cpu()))
        count += 1
    return db, count
