"""LSTM, GRU and RNN compiled natively (graphopt.frontend.converters.recurrent) against ONNX Runtime.

Each test compiles one model holding several recurrent nodes (a compile costs seconds;
a node costs little), through graphopt's default compile and runtime, and checks:
every output against ONNX Runtime (rtol 1e-4, atol 1e-5); that no node went to the
onnxruntime fallback (so the native converter is what ran); that the artifact stores
no more weight bytes than the model's initializers (weights once, not per step).
ONNX Runtime refuses layout 1, so a layout-1 node is judged against its layout-0 twin
wrapped in Transposes. The ONNX backend suite's own LSTM/GRU/RNN node cases (generated
in memory by onnx, with its reference outputs) run as one merged model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import graphopt.runtime
from graphopt.compiler import compile_model
from graphopt.errors import UnsupportedOperatorError
from graphopt.frontend import importer
from graphopt.options import CompileOptions

OPSET = 17
STEPS, BATCH, FEATURES, HIDDEN = 3, 3, 3, 4
GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}
OUTPUTS = {"LSTM": ("Y", "Y_h", "Y_c"), "GRU": ("Y", "Y_h"), "RNN": ("Y", "Y_h")}


@dataclass(frozen=True)
class Case:
    """One recurrent node and the optional inputs and outputs it uses."""

    name: str
    op: str = "LSTM"
    direction: str = "forward"
    layout: int = 0
    bias: bool = True
    lens: tuple[int, ...] | None = None  # sequence_lens, fed at run time
    lens_constant: bool = False  # sequence_lens as an initializer instead
    initial: bool = False
    peepholes: bool = False
    outputs: tuple[bool, ...] | None = None  # which outputs are named; None: all
    attrs: tuple = ()  # extra attributes as (name, value) pairs

    @property
    def directions(self) -> int:
        return 2 if self.direction == "bidirectional" else 1


@dataclass
class Models:
    """The model under test, its ONNX Runtime reference (layout-0 twins), and the feeds."""

    nodes: list = field(default_factory=list)
    reference: list = field(default_factory=list)
    inputs: list = field(default_factory=list)
    outputs: list = field(default_factory=list)
    weights: list = field(default_factory=list)
    feeds: dict = field(default_factory=dict)


def _add(models: Models, case: Case, rng: np.random.Generator) -> None:
    """Adds `case` as a node named after it, with its weights, inputs and outputs."""
    p, d, g = case.name + "_", case.directions, GATES[case.op] * HIDDEN
    batch_major = case.layout == 1

    def weight(name, shape):
        models.weights.append(numpy_helper.from_array(rng.uniform(-0.8, 0.8, shape).astype(np.float32), p + name))
        return p + name

    def feed(name, shape, values=None):
        value = rng.standard_normal(shape).astype(np.float32) if values is None else values
        models.feeds[p + name] = value
        models.inputs.append(helper.make_tensor_value_info(p + name, helper.np_dtype_to_tensor_dtype(value.dtype),
                                                           value.shape))
        return p + name

    x = feed("X", (BATCH, STEPS, FEATURES) if batch_major else (STEPS, BATCH, FEATURES))
    names = [x, weight("W", (d, g, FEATURES)), weight("R", (d, g, HIDDEN)),
             weight("B", (d, 2 * g)) if case.bias else "", _lens(models, case, p, feed)]
    state = (BATCH, d, HIDDEN) if batch_major else (d, BATCH, HIDDEN)
    for k in range(2 if case.op == "LSTM" else 1):
        names.append(feed(("h0", "c0")[k], state) if case.initial else "")
    if case.peepholes:
        names.append(weight("P", (d, 3 * HIDDEN)))
    while names[-1] == "":
        names.pop()
    wanted = case.outputs or (True,) * len(OUTPUTS[case.op])
    outs = [p + o if keep else "" for o, keep in zip(OUTPUTS[case.op], wanted)]
    attrs = {"hidden_size": HIDDEN, "direction": case.direction, **dict(case.attrs)}
    models.nodes.append(helper.make_node(case.op, names, outs, name=case.name, layout=case.layout, **attrs))
    models.outputs += [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outs if o]
    models.reference += _reference_nodes(case, names, outs, attrs) if batch_major else [models.nodes[-1]]


def _lens(models: Models, case: Case, prefix: str, feed) -> str:
    if case.lens is None:
        return ""
    values = np.array(case.lens, np.int32)
    if case.lens_constant:
        models.weights.append(numpy_helper.from_array(values, prefix + "lens"))
        return prefix + "lens"
    return feed("lens", values.shape, values)


def _reference_nodes(case: Case, names: list[str], outs: list[str], attrs: dict) -> list:
    """The layout-1 node as ONNX Runtime can run it: Transposes around a layout-0 node."""
    swap = [1, 0, 2]
    nodes, inner = [], list(names)
    for k in [0] + [k for k in (5, 6) if k < len(names) and names[k]]:
        nodes.append(helper.make_node("Transpose", [names[k]], [names[k] + "_t"], perm=swap))
        inner[k] = names[k] + "_t"
    inner_outs = [o + "_t" if o else "" for o in outs]
    nodes.append(helper.make_node(case.op, inner, inner_outs, layout=0, **attrs))
    for k, (o, t) in enumerate(zip(outs, inner_outs)):
        if o:
            nodes.append(helper.make_node("Transpose", [t], [o], perm=[2, 0, 1, 3] if k == 0 else swap))
    return nodes


def _model(models: Models, nodes: list) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "recurrent", models.inputs, models.outputs, models.weights)
    return helper.make_model(graph, ir_version=10, opset_imports=[helper.make_opsetid("", OPSET)])


def _compiled(model: onnx.ModelProto, out_dir, feeds: dict) -> tuple[dict, dict]:
    """graphopt's default compile and runtime: the outputs by name, and plan.json."""
    compile_model(model, out_dir, CompileOptions())
    outputs = graphopt.runtime.load(out_dir).run(feeds)
    return outputs, json.loads((out_dir / "plan.json").read_text())


def _assert_native(plan: dict) -> None:
    assert plan["fallback"]["kernels"] == [], [k["reason"] for k in plan["fallback"]["kernels"]]
    weights = plan["weights"]
    assert weights["stored_bytes"] <= weights["imported_bytes"], weights


def _check(cases: list[Case], tmp_path) -> None:
    import onnxruntime as ort

    models, rng = Models(), np.random.default_rng(7)
    for case in cases:
        _add(models, case, rng)
    got, plan = _compiled(_model(models, models.nodes), tmp_path / "artifact", models.feeds)
    _assert_native(plan)
    session = ort.InferenceSession(_model(models, models.reference).SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    names = [o.name for o in models.outputs]
    for name, want in zip(names, session.run(names, models.feeds)):
        np.testing.assert_allclose(got[name], want, rtol=1e-4, atol=1e-5, err_msg=name)


FULL = (STEPS, STEPS, STEPS)
CASES = {
    "lstm": [
        Case("lstm_plain", bias=False), Case("lstm_reverse", direction="reverse"),
        Case("lstm_bidirectional_initial", direction="bidirectional", initial=True),
        Case("lstm_peepholes", peepholes=True, initial=True),
        Case("lstm_clip_input_forget", peepholes=True, initial=True, attrs=(("clip", 0.5), ("input_forget", 1))),
        Case("lstm_only_y", outputs=(True, False, False)), Case("lstm_only_yc", outputs=(False, False, True)),
        Case("lstm_only_yh", direction="bidirectional", outputs=(False, True, False)),
    ],
    "gru": [
        Case("gru_plain", op="GRU", bias=False), Case("gru_reverse_clip", op="GRU", direction="reverse",
                                                       attrs=(("clip", 0.6),)),
        Case("gru_lbr_bidirectional", op="GRU", direction="bidirectional", initial=True,
             attrs=(("linear_before_reset", 1),)),
        Case("gru_lbr_no_bias", op="GRU", bias=False, initial=True, attrs=(("linear_before_reset", 1),)),
        Case("gru_only_yh", op="GRU", initial=True, outputs=(False, True)),
        Case("rnn_plain", op="RNN", bias=False),
        Case("rnn_reverse_initial", op="RNN", direction="reverse", initial=True),
        Case("rnn_bidirectional_clip", op="RNN", direction="bidirectional", attrs=(("clip", 0.7),)),
        Case("rnn_only_y", op="RNN", outputs=(True, False)),
    ],
    "activations": [
        Case("lstm_hardsigmoid_leaky_softplus", attrs=(("activations", ["HardSigmoid", "LeakyRelu", "Softplus"]),
                                                       ("activation_alpha", [0.3, 0.2]), ("activation_beta", [0.6]))),
        Case("lstm_scaledtanh_elu_defaults", attrs=(("activations", ["HardSigmoid", "ScaledTanh", "Elu"]),
                                                    ("activation_alpha", [0.25, 0.9]),
                                                    ("activation_beta", [0.5, 0.8]))),
        Case("lstm_bidirectional_six", direction="bidirectional", attrs=(
            ("activations", ["Sigmoid", "Tanh", "Relu", "HardSigmoid", "Softsign", "ThresholdedRelu"]),
            ("activation_alpha", [0.25, 0.1]), ("activation_beta", [0.4]))),
        Case("gru_hardsigmoid_elu_defaults", op="GRU", attrs=(("activations", ["HardSigmoid", "Elu"]),)),
        Case("gru_affine_leaky", op="GRU", direction="bidirectional", attrs=(
            ("activations", ["Sigmoid", "Affine", "Sigmoid", "LeakyRelu"]),
            ("activation_alpha", [0.7, 0.05]), ("activation_beta", [0.1]))),
        Case("rnn_relu", op="RNN", attrs=(("activations", ["Relu"]),)),
        Case("rnn_affine", op="RNN", attrs=(("activations", ["Affine"]), ("activation_alpha", [0.5]),
                                            ("activation_beta", [0.2]))),
        Case("rnn_leaky_elu", op="RNN", direction="bidirectional",
             attrs=(("activations", ["LeakyRelu", "Elu"]), ("activation_alpha", [0.5, 0.8]))),
        Case("rnn_softsign_softplus", op="RNN", direction="bidirectional",
             attrs=(("activations", ["Softsign", "Softplus"]),)),
    ],
    "sequence_lens": [
        Case("lstm_lens", lens=(3, 1, 0), initial=True),
        Case("lstm_lens_reverse_peepholes", direction="reverse", lens=(2, 3, 1), peepholes=True, initial=True),
        Case("lstm_lens_bidirectional", direction="bidirectional", lens=(2, 0, 3), outputs=(True, True, False)),
        Case("lstm_lens_constant", direction="bidirectional", lens=(2, 3, 1), lens_constant=True, initial=True),
        Case("lstm_lens_constant_full", lens=FULL, lens_constant=True),
        Case("gru_lens", op="GRU", direction="bidirectional", lens=(1, 0, 3), initial=True,
             attrs=(("linear_before_reset", 1),)),
        Case("gru_lens_reverse", op="GRU", direction="reverse", lens=(3, 2, 1)),
        Case("rnn_lens", op="RNN", direction="bidirectional", lens=(3, 0, 2), initial=True),
    ],
    "layout1": [
        Case("lstm_batch_major", direction="bidirectional", layout=1, initial=True, lens=(2, 3, 1), peepholes=True),
        Case("gru_batch_major", op="GRU", layout=1, initial=True, attrs=(("linear_before_reset", 1),)),
        Case("rnn_batch_major", op="RNN", direction="reverse", layout=1, initial=True, outputs=(False, True)),
    ],
}


@pytest.mark.parametrize("group", sorted(CASES))
def test_matches_onnx_runtime(group, tmp_path):
    _check(CASES[group], tmp_path)


def _backend_cases() -> list:
    """The onnx package's LSTM/GRU/RNN node cases, generated in memory by importing their modules.

    `collect_testcases` would generate all ~2000 cases (seconds); importing the three
    modules fills the same list (onnx's private `_NodeTestCases`) with just these."""
    import onnx.backend.test.case.node as node_cases
    import onnx.backend.test.case.node.gru  # noqa: F401
    import onnx.backend.test.case.node.lstm  # noqa: F401
    import onnx.backend.test.case.node.rnn  # noqa: F401

    cases = [c for c in node_cases._NodeTestCases if c.model.graph.node[0].op_type in GATES]
    return list({c.name: c for c in cases}.values())


def _merged(cases: list) -> tuple[onnx.ModelProto, dict, dict]:
    """Every case as one model, its names prefixed: the model, its feeds, the expected outputs."""
    nodes, inputs, outputs, feeds, expected = [], [], [], {}, {}
    for case in cases:
        graph, (ins, outs) = case.model.graph, case.data_sets[0]
        rename = {v.name: f"{case.name}_{v.name}" for v in list(graph.input) + list(graph.output)}
        for node in graph.node:
            nodes.append(helper.make_node(node.op_type, [rename.get(i, i) for i in node.input],
                                          [rename.get(o, o) for o in node.output], name=case.name))
            nodes[-1].attribute.extend(node.attribute)
        for info, value in zip(graph.input, ins):
            feeds[rename[info.name]] = value
            elem_type = info.type.tensor_type.elem_type
            inputs.append(helper.make_tensor_value_info(rename[info.name], elem_type, value.shape))
        for info, value in zip(graph.output, outs):
            expected[rename[info.name]] = value
            outputs.append(helper.make_tensor_value_info(rename[info.name], TensorProto.FLOAT, value.shape))
    opset = max(case.model.opset_import[0].version for case in cases)
    graph = helper.make_graph(nodes, "backend_recurrent", inputs, outputs)
    return helper.make_model(graph, ir_version=10, opset_imports=[helper.make_opsetid("", opset)]), feeds, expected


def test_onnx_backend_node_cases(tmp_path):
    cases = _backend_cases()
    assert {c.model.graph.node[0].op_type for c in cases} == set(GATES) and len(cases) >= 18
    model, feeds, expected = _merged(cases)
    got, plan = _compiled(model, tmp_path / "artifact", feeds)
    _assert_native(plan)
    for name, want in expected.items():
        np.testing.assert_allclose(got[name], want, rtol=1e-4, atol=1e-5, err_msg=name)


def _single(case: Case) -> onnx.ModelProto:
    models = Models()
    _add(models, case, np.random.default_rng(0))
    return _model(models, models.nodes)


@pytest.mark.parametrize("case, message", [
    (Case("affine_default", attrs=(("activations", ["Affine", "Tanh", "Tanh"]),)), "needs explicit activation_alpha"),
    (Case("rnn_alpha_order", op="RNN", direction="bidirectional",
          attrs=(("activations", ["Relu", "LeakyRelu"]), ("activation_alpha", [0.5]))), "one value per direction"),
    (Case("unknown", op="GRU", attrs=(("activations", ["Sigmoid", "Swish"]),)), "unknown activation 'Swish'"),
    (Case("clip_zero", op="RNN", attrs=(("clip", 0.0),)), "clip must be positive"),
])
def test_refuses_in_one_line(case, message):
    with pytest.raises(UnsupportedOperatorError, match=message) as err:
        importer.to_relax(_single(case))
    assert "\n" not in str(err.value)


def test_refuses_opsets_before_7():
    model = _single(Case("old", op="RNN", attrs=()))
    model.opset_import[0].version = 6
    for node in model.graph.node:  # opset 6 has no layout
        node.attribute.remove(next(a for a in node.attribute if a.name == "layout"))
    with pytest.raises(UnsupportedOperatorError, match="before opset 7"):
        importer.to_relax(model)
