"""Domains, opsets and operators: graphopt refuses what ONNX Runtime refuses, in one line.

Every verdict here is checked against ONNX Runtime itself (a session is created for the same
model), so an ORT upgrade that moves a limit fails a test that names the case.
"""

from __future__ import annotations

import gc
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from onnxruntime.capi import onnxruntime_pybind11_state as ort_state

from graphopt.cli import main
from graphopt.errors import ModelLoadError, UnsupportedOperatorError
from graphopt.frontend import prepare_model
from graphopt.frontend.domains import ORT_MAX_OPSET, Kind, check_domains, classify_nodes

OPSET = 17

# ONNX Runtime's errors share no base class but Exception
ORT_ERRORS = (ort_state.Fail, ort_state.InvalidArgument, ort_state.InvalidGraph, ort_state.NotImplemented)


def _model(nodes, opsets, functions=(), x_shape=(2, 3), elem=TensorProto.FLOAT) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", elem, list(x_shape))],
                              [helper.make_tensor_value_info("y", elem, list(x_shape))])
    return helper.make_model(graph, ir_version=10, functions=list(functions),
                             opset_imports=[helper.make_opsetid(d, v) for d, v in opsets])


def _node(op: str, domain: str = "", name: str = "n", **attrs) -> onnx.NodeProto:
    return helper.make_node(op, ["x"], ["y"], name=name, domain=domain, **attrs)


def _ort_accepts(model: onnx.ModelProto) -> bool:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    try:
        ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    except ORT_ERRORS:
        return False
    return True


@pytest.mark.parametrize("domain", sorted(ORT_MAX_OPSET))
def test_the_opset_limits_are_onnx_runtimes(domain: str) -> None:
    """ORT refuses an import above its last version of a domain it knows, even with no node in it."""
    limit = ORT_MAX_OPSET[domain]
    base = [] if domain == "" else [("", OPSET)]
    # a standard op that changed at ORT's last opset + 1 in a way the node uses (Range: float16 from 27),
    # so the import cannot be lowered
    node = helper.make_node("Range", ["x", "x", "x"], ["y"], name="n") if domain == "" else _node("Relu")
    at_limit = _model([node], base + [(domain, limit)])
    above = (_model([node], [(domain, limit + 1)], x_shape=(), elem=TensorProto.FLOAT16) if domain == ""
             else _model([node], base + [(domain, limit + 1)]))
    assert _ort_accepts(at_limit)
    check_domains(at_limit)
    assert not _ort_accepts(above)
    with pytest.raises(ModelLoadError, match=rf"imports opset {limit + 1} of domain .*supports up to {limit}"):
        check_domains(above)


@pytest.mark.parametrize("version", [ORT_MAX_OPSET[""] + 1, onnx.defs.onnx_opset_version()])
def test_a_newer_opset_whose_ops_did_not_change_is_lowered_to_onnx_runtimes(version: int) -> None:
    """Relu's schema is the same at 26 and at onnx's newest opset: the model means the same at 26."""
    newer = _model([_node("Relu")], [("", version)])
    assert not _ort_accepts(newer)
    lowered = check_domains(newer)
    assert [(e.domain, e.version) for e in lowered.opset_import] == [("", ORT_MAX_OPSET[""])]
    assert _ort_accepts(lowered)


# (case, model, verdict): "ok" (standard), "ort_only" (UnsupportedOperatorError), or a ModelLoadError pattern
CASES = [
    ("standard Relu", _model([_node("Relu")], [("", OPSET)]), "ok"),
    ("'ai.onnx' as the domain", _model([_node("Relu", "ai.onnx")], [("ai.onnx", OPSET)]), "ok"),
    ("opset 99", _model([_node("Relu")], [("", 99)]), r"imports opset 99 of domain '' \(ai.onnx\)"),
    ("unknown domain", _model([_node("Relu", "com.example")], [("", OPSET), ("com.example", 1)]),
     r"node 'n' \(com.example:Relu\): ONNX Runtime has no operator in domain 'com.example'"),
    ("op before its opset", _model([_node("Gelu")], [("", OPSET)]), r"\(Gelu\): defined from opset 20"),
    ("op at its opset", _model([_node("Gelu")], [("", 20)]), "ok"),
    ("no such standard op", _model([_node("NoSuchOp")], [("", OPSET)]), r"ONNX has no operator NoSuchOp"),
    ("deprecated op", _model([helper.make_node("Upsample", ["x", "s"], ["y"], name="n")], [("", 10)]),
     r"\(Upsample\): deprecated since opset 10"),
    ("contrib op", _model([_node("Gelu", "com.microsoft")], [("", OPSET), ("com.microsoft", 1)]), "ort_only"),
    ("no such contrib op", _model([_node("NoSuchOp", "com.microsoft")], [("", OPSET), ("com.microsoft", 1)]),
     r"ONNX Runtime has no operator NoSuchOp in domain 'com.microsoft'"),
    ("standard op in the contrib domain", _model([_node("Relu", "com.microsoft")],
                                                 [("", OPSET), ("com.microsoft", 1)]), r"no operator Relu"),
    ("ai.onnx.ml op", _model([_node("Normalizer", "ai.onnx.ml", norm="L2")], [("", OPSET), ("ai.onnx.ml", 3)]),
     "ort_only"),
    ("ai.onnx.ml op before its opset", _model([_node("TreeEnsemble", "ai.onnx.ml")],
                                              [("", OPSET), ("ai.onnx.ml", 3)]), r"defined from opset 5"),
    ("training op", _model([_node("Momentum", "ai.onnx.preview.training")],
                           [("", OPSET), ("ai.onnx.preview.training", 1)]), r"no operator in domain"),
]


@pytest.mark.parametrize("case, model, verdict", CASES, ids=[c[0] for c in CASES])
def test_verdicts_agree_with_onnx_runtime(case: str, model: onnx.ModelProto, verdict: str) -> None:
    if verdict == "ok":
        assert check_domains(model) is not None
    elif verdict == "ort_only":
        with pytest.raises(UnsupportedOperatorError, match=r"not standard ONNX"):
            check_domains(model)
    else:
        with pytest.raises(ModelLoadError, match=verdict):
            check_domains(model)
    if case != "deprecated op":  # Upsample's scales input is left undeclared: ORT would refuse that anyway
        assert _ort_accepts(model) == (verdict in ("ok", "ort_only")), case


def test_a_domain_without_opset_import_is_refused() -> None:
    """Stricter than ORT (which adds the domains it knows), as strict as onnx.checker, which the
    loader runs on every file."""
    model = _model([_node("Normalizer", "ai.onnx.ml", norm="L2")], [("", OPSET)])
    with pytest.raises(ModelLoadError, match=r"no opset_import for domain 'ai.onnx.ml'"):
        check_domains(model)
    with pytest.raises(onnx.checker.ValidationError):
        onnx.checker.check_model(model)


def test_both_names_of_the_standard_domain_at_two_versions_are_refused() -> None:
    model = _model([_node("Relu")], [("", OPSET), ("ai.onnx", OPSET + 1)])
    with pytest.raises(ModelLoadError, match=r"twice, at opsets 17 and 18"):
        check_domains(model)


def test_classify_gives_one_verdict_per_node_in_order() -> None:
    """What the fallback kernels read: which nodes TVM may import, which only ORT knows."""
    nodes = [helper.make_node("Relu", ["x"], ["a"], name="relu"),
             helper.make_node("Normalizer", ["a"], ["b"], name="norm", domain="ai.onnx.ml", norm="L2"),
             helper.make_node("Gelu", ["b"], ["y"], name="gelu", domain="com.microsoft")]
    model = _model(nodes, [("", OPSET), ("ai.onnx.ml", 3), ("com.microsoft", 1)])
    verdicts = classify_nodes(model)
    assert [(v.index, v.node, v.kind) for v in verdicts] == [
        (0, "relu", Kind.STANDARD), (1, "norm", Kind.ORT_ONLY), (2, "gelu", Kind.ORT_ONLY)]
    assert verdicts[2].reason == "'com.microsoft' is not standard ONNX"
    with pytest.raises(UnsupportedOperatorError, match=r"^ai.onnx.ml:Normalizer, com.microsoft:Gelu: not standard"):
        check_domains(model)


def _if_model(inner: onnx.NodeProto, opsets) -> onnx.ModelProto:
    then = helper.make_graph([inner], "then", [], [helper.make_tensor_value_info("t", TensorProto.FLOAT, [2, 3])])
    other = helper.make_graph([helper.make_node("Neg", ["x"], ["e"])], "else", [],
                              [helper.make_tensor_value_info("e", TensorProto.FLOAT, [2, 3])])
    cond = helper.make_node("Constant", [], ["c"], value=helper.make_tensor("v", TensorProto.BOOL, [], [True]))
    branch = helper.make_node("If", ["c"], ["y"], name="if", then_branch=then, else_branch=other)
    return _model([cond, branch], opsets)


def test_a_node_takes_the_worst_verdict_of_its_subgraphs() -> None:
    contrib = _if_model(helper.make_node("Gelu", ["x"], ["t"], name="in", domain="com.microsoft"),
                        [("", OPSET), ("com.microsoft", 1)])
    assert [v.kind for v in classify_nodes(contrib)] == [Kind.STANDARD, Kind.ORT_ONLY]
    unknown = _if_model(helper.make_node("Relu", ["x"], ["t"], name="in", domain="com.example"),
                        [("", OPSET), ("com.example", 1)])
    with pytest.raises(ModelLoadError, match=r"node 'if' \(If\): its subgraph node 'in' \(com.example:Relu\)"):
        check_domains(unknown)
    assert not _ort_accepts(unknown)


def _my_relu(opset: int = OPSET, domain: str = "custom", name: str = "MyRelu", body_op: str = "Relu"):
    body = [helper.make_node(body_op, ["a"], ["b"])]
    return helper.make_function(domain, name, ["a"], ["b"], body, [helper.make_opsetid("", opset)])


def test_local_functions_are_inlined_and_compute_what_onnx_runtime_does() -> None:
    """TVM's importer ignores model.functions; inlined, the call is the body ORT runs."""
    model = _model([_node("MyRelu", "custom")], [("", OPSET), ("custom", 1)], functions=[_my_relu()])
    prepared = prepare_model(model, fold=False)
    assert [(n.domain, n.op_type) for n in prepared.model.graph.node] == [("", "Relu")]
    assert not prepared.model.functions
    import onnxruntime as ort

    x = np.array([[-1, 2, -3], [4, -5, 6]], dtype=np.float32)
    for candidate in (model, prepared.model):
        session = ort.InferenceSession(candidate.SerializeToString(), providers=["CPUExecutionProvider"])
        np.testing.assert_array_equal(session.run(None, {"x": x})[0], np.maximum(x, 0))


@pytest.mark.parametrize("case, model, pattern", [
    ("call without import", _model([_node("MyRelu", "custom")], [("", OPSET)], functions=[_my_relu()]),
     r"the model has node custom:MyRelu but no opset_import for domain 'custom'"),
    ("other opset", _model([_node("MyRelu", "custom")], [("", OPSET), ("custom", 1)], functions=[_my_relu(13)]),
     r"imports opset 13 of domain '' \(ai.onnx\), the model 17"),
    ("opset above ORT's", _model([_node("MyRelu", "custom")], [("", OPSET), ("custom", 1)],
                                 functions=[_my_relu(99)]), r"function custom:MyRelu imports opset 99"),
    ("shadows a standard op", _model([_node("Relu")], [("", OPSET)],
                                     functions=[_my_relu(domain="", name="Relu", body_op="Neg")]),
     r"function Relu has the name of an operator ONNX Runtime defines"),
])
def test_local_functions_that_cannot_be_inlined_faithfully_are_refused(case, model, pattern) -> None:
    with pytest.raises(ModelLoadError, match=pattern):
        check_domains(model)


def test_the_shadowed_op_is_what_onnx_runtime_runs() -> None:
    """Why a function named like a standard op is refused rather than inlined."""
    import onnxruntime as ort

    model = _model([_node("Relu")], [("", OPSET)], functions=[_my_relu(domain="", name="Relu", body_op="Neg")])
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.ones((2, 3), dtype=np.float32)
    np.testing.assert_array_equal(session.run(None, {"x": x})[0], x)  # Relu, not the function's Neg


def test_the_standard_domain_is_written_one_way_after_the_gate() -> None:
    model = _model([_node("Relu", "ai.onnx")], [("ai.onnx", OPSET)])
    prepared = prepare_model(model, fold=True)
    assert [n.domain for n in prepared.model.graph.node] == [""]


def _one_error_line(capfd) -> str:
    gc.collect()
    err = [ln for ln in capfd.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


@pytest.mark.parametrize("model, expected", [
    (_model([_node("Relu", "com.example")], [("", OPSET), ("com.example", 1)]),
     "node 'n' (com.example:Relu): ONNX Runtime has no operator in domain 'com.example'"),
    (_model([_node("Relu")], [("", 99)]), "imports opset 99 of domain '' (ai.onnx); ONNX Runtime supports up to 26"),
])
def test_cli_refuses_in_one_line(tmp_path: Path, capfd, model, expected: str) -> None:
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    assert main(["compile", str(path), "-o", str(tmp_path / "art"), "--quiet"]) == 2
    assert expected in _one_error_line(capfd)
    assert not (tmp_path / "art").exists()
