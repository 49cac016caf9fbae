"""`graphopt run` arguments: every bad one is exit 2 and one `error:` line; .npz inputs
by key and bfloat16 inputs work as documented (graphopt.cli.inputs)."""

from __future__ import annotations

from pathlib import Path

import ml_dtypes
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from graphopt.cli import main
from graphopt.cli.inputs import InputSpec, parse_input_spec
from graphopt.compiler import CompileOptions, compile_model
from graphopt.errors import InputError

X = np.array([[1.5, -2.0, 3.0], [0.25, -1.0, 7.0]], np.float32)  # exact in bfloat16 too


def _model(dtype: int) -> onnx.ModelProto:
    """y = relu(float(x)) for an x of `dtype`, shape 2x3."""
    graph = helper.make_graph(
        [helper.make_node("Cast", ["x"], ["c"], to=TensorProto.FLOAT), helper.make_node("Relu", ["c"], ["y"])], "g",
        [helper.make_tensor_value_info("x", dtype, [2, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])])
    return helper.make_model(graph, ir_version=10, opset_imports=[helper.make_opsetid("", 17)])


@pytest.fixture(scope="module")
def arts(tmp_path_factory) -> dict[str, Path]:
    work = tmp_path_factory.mktemp("runargs")
    out = {}
    for name, dtype in (("f32", TensorProto.FLOAT), ("bf16", TensorProto.BFLOAT16)):
        onnx.save(_model(dtype), work / f"{name}.onnx")
        compile_model(work / f"{name}.onnx", work / name, CompileOptions(time_limit=1.0))
        out[name] = work / name
    np.save(work / "x.npy", X)
    out["x.npy"] = work / "x.npy"
    return out


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    assert "Traceback" not in err[0] and "internal error" not in err[0], err
    return err[0]


def _refused(capsys, argv: list[str]) -> str:
    """main() returns 2, or argparse exits 2: one line either way."""
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    assert code == 2, code
    return _one_error_line(capsys)


def _ran(capsys, argv: list[str], out_dir: Path) -> np.ndarray:
    assert main([*argv, "--output-dir", str(out_dir)]) == 0, capsys.readouterr().err
    return np.load(out_dir / "y.npy")


# ---------------------------------------------------------------- --repeat


@pytest.mark.parametrize("value", ["0", "-1", "-100", "two"])
def test_repeat_must_be_positive(arts, capsys, value):
    line = _refused(capsys, ["run", str(arts["f32"]), "--input", f"x={arts['x.npy']}", "--repeat", value])
    assert "--repeat" in line


def test_repeat_counts_runs(arts, capsys):
    assert main(["run", str(arts["f32"]), "--input", f"x={arts['x.npy']}", "--repeat", "3"]) == 0
    assert "median of 3" in capsys.readouterr().out


# ---------------------------------------------------------------- repeated --input, --output-dir


def test_an_input_given_twice_is_refused_by_name(arts, tmp_path, capsys):
    other = tmp_path / "other.npy"
    np.save(other, X * 2)
    line = _refused(capsys, ["run", str(arts["f32"]), "--input", f"x={arts['x.npy']}", "--input", f"x={other}"])
    assert "input x is given more than once" in line


@pytest.mark.parametrize("inside", [False, True])
def test_output_dir_that_is_a_file_is_one_line(arts, tmp_path, capsys, inside):
    file = tmp_path / "taken"
    file.write_text("keep me")
    target = file / "sub" if inside else file
    line = _refused(capsys, ["run", str(arts["f32"]), "--input", f"x={arts['x.npy']}", "--output-dir", str(target)])
    assert "--output-dir" in line and "not a directory" in line
    assert file.read_text() == "keep me"


# ---------------------------------------------------------------- .npz inputs


def test_npz_input_by_name_by_key_or_single_array(arts, tmp_path, capsys):
    np.savez(tmp_path / "named.npz", x=X, other=X * 0)
    np.savez(tmp_path / "single.npz", X)  # stored as arr_0
    np.savez(tmp_path / "keyed.npz", first=X * 0, second=X)
    expected = np.maximum(X, 0)
    for spec in ("named.npz", "single.npz", "keyed.npz:second"):
        got = _ran(capsys, ["run", str(arts["f32"]), "--input", f"x={tmp_path / spec}"],
                   tmp_path / f"out_{spec.replace(':', '_')}")
        np.testing.assert_array_equal(got, expected)


def test_npz_that_does_not_say_which_array_is_refused_with_the_form(arts, tmp_path, capsys):
    np.savez(tmp_path / "two.npz", a=X, b=X)
    line = _refused(capsys, ["run", str(arts["f32"]), "--input", f"x={tmp_path / 'two.npz'}"])
    assert "none named x" in line and "x=" in line and ":KEY" in line
    line = _refused(capsys, ["run", str(arts["f32"]), "--input", f"x={tmp_path / 'two.npz'}:c"])
    assert "no array 'c'" in line and "a, b" in line


def test_npz_with_a_pickled_array_is_refused(arts, tmp_path, capsys):
    np.savez(tmp_path / "obj.npz", x=np.array([{"a": 1}], dtype=object))
    line = _refused(capsys, ["run", str(arts["f32"]), "--input", f"x={tmp_path / 'obj.npz'}"])
    assert "cannot read" in line and "obj.npz" in line


# ---------------------------------------------------------------- bfloat16 inputs


def test_bfloat16_input_from_an_ml_dtypes_npy(arts, tmp_path, capsys):
    np.save(tmp_path / "bf.npy", X.astype(ml_dtypes.bfloat16))  # stored as raw |V2 records
    got = _ran(capsys, ["run", str(arts["bf16"]), "--input", f"x={tmp_path / 'bf.npy'}"], tmp_path / "o1")
    np.testing.assert_array_equal(got, np.maximum(X, 0))


def test_bfloat16_input_from_raw_bits(arts, tmp_path, capsys):
    bits = X.astype(ml_dtypes.bfloat16).view(np.uint16)
    np.save(tmp_path / "bits.npy", bits)
    np.savez(tmp_path / "bits.npz", x=bits)
    for spec in ("bits.npy:bfloat16", "bits.npz:x:bfloat16", "bits.npz:bfloat16"):
        got = _ran(capsys, ["run", str(arts["bf16"]), "--input", f"x={tmp_path / spec}"],
                   tmp_path / f"out_{spec.replace(':', '_')}")
        np.testing.assert_array_equal(got, np.maximum(X, 0))


def test_bfloat16_input_given_in_another_dtype_says_what_is_expected(arts, tmp_path, capsys):
    np.save(tmp_path / "bits.npy", X.astype(ml_dtypes.bfloat16).view(np.uint16))
    line = _refused(capsys, ["run", str(arts["bf16"]), "--input", f"x={tmp_path / 'bits.npy'}"])
    assert "bfloat16" in line and ":bfloat16" in line
    line = _refused(capsys, ["run", str(arts["bf16"]), "--input", f"x={arts['x.npy']}"])
    assert "input x is bfloat16" in line and "float32" in line and "ml_dtypes" in line


def test_raw_bits_suffix_on_a_float_input_is_refused(arts, capsys):
    line = _refused(capsys, ["run", str(arts["f32"]), "--input", f"x={arts['x.npy']}:bfloat16"])
    assert "bfloat16" in line and "float32" in line


# ---------------------------------------------------------------- the argument grammar


def test_input_argument_grammar():
    assert parse_input_spec("x=a.npy") == InputSpec("x", "a.npy")
    assert parse_input_spec("x=dir:with:colons/a.npy") == InputSpec("x", "dir:with:colons/a.npy")
    assert parse_input_spec("x=a.npz") == InputSpec("x", "a.npz")
    assert parse_input_spec("x=a.NPZ:k") == InputSpec("x", "a.NPZ", "k")
    assert parse_input_spec("x=a.npy:bfloat16") == InputSpec("x", "a.npy", None, True)
    assert parse_input_spec("x=a.npz:k:bfloat16") == InputSpec("x", "a.npz", "k", True)
    for bad in ("x", "=a.npy", "x=", "x=a.npz:"):
        with pytest.raises(InputError):
            parse_input_spec(bad)


def test_malformed_input_argument_is_one_line(arts, capsys):
    assert "--input" in _refused(capsys, ["run", str(arts["f32"]), "--input", "x"])
