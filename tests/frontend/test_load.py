"""load_model: every way a file can be wrong is one ModelLoadError line, no traceback text."""

from __future__ import annotations

import onnx
import pytest
from onnx import TensorProto, helper

from graphopt.errors import GraphoptError, ModelLoadError
from graphopt.examples.models import mlp
from graphopt.frontend.load import load_model


def _assert_one_line(err: pytest.ExceptionInfo) -> str:
    message = str(err.value)
    assert message and "\n" not in message and "Traceback" not in message
    assert isinstance(err.value, GraphoptError)
    return message


def test_valid_model_loads(tmp_path):
    path = tmp_path / "mlp.onnx"
    onnx.save(mlp(), path)
    assert len(load_model(path).graph.node) == len(mlp().graph.node)


def test_missing_file(tmp_path):
    with pytest.raises(ModelLoadError) as err:
        load_model(tmp_path / "nope.onnx")
    assert "not found" in _assert_one_line(err)


@pytest.mark.parametrize("payload", [b"this is not a protobuf\n" * 10, bytes(range(256)) * 4, b""])
def test_garbage_bytes(tmp_path, payload):
    path = tmp_path / "garbage.onnx"
    path.write_bytes(payload)
    with pytest.raises(ModelLoadError) as err:
        load_model(path)
    assert "garbage.onnx" in _assert_one_line(err)


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9])
def test_truncated_file(tmp_path, fraction):
    data = mlp().SerializeToString()
    path = tmp_path / "cut.onnx"
    path.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(ModelLoadError) as err:
        load_model(path)
    _assert_one_line(err)


def test_checker_failure(tmp_path):
    """A node reading a tensor nothing defines: decodes fine, the checker refuses it."""
    node = helper.make_node("Relu", ["undefined"], ["y"])
    graph = helper.make_graph(
        [node], "broken",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    model = helper.make_model(graph, ir_version=10, opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / "broken.onnx"
    path.write_bytes(model.SerializeToString())
    with pytest.raises(ModelLoadError) as err:
        load_model(path)
    assert "invalid ONNX model" in _assert_one_line(err)


def test_external_data_loads_from_model_dir(tmp_path):
    path = tmp_path / "ext.onnx"
    onnx.save(mlp(), path, save_as_external_data=True, all_tensors_to_one_file=True,
              location="ext.data", size_threshold=0)
    model = load_model(path)
    assert all(not t.HasField("data_location") or t.data_location == 0 or t.raw_data
               for t in model.graph.initializer)


def test_missing_external_data(tmp_path):
    path = tmp_path / "ext.onnx"
    onnx.save(mlp(), path, save_as_external_data=True, all_tensors_to_one_file=True,
              location="ext.data", size_threshold=0)
    (tmp_path / "ext.data").unlink()
    with pytest.raises(ModelLoadError) as err:
        load_model(path)
    _assert_one_line(err)
