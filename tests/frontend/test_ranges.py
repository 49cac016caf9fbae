"""Shape ranges in the frontend: parsing `LO..HI` dims and naming shared symbols (no TVM)."""

from __future__ import annotations

import pytest

from graphopt.errors import InputError, ShapeError
from graphopt.examples.range_models import batch_mlp, two_inputs
from graphopt.frontend.ranges import DimRange, has_ranges, parse_shape_spec, symbolize
from graphopt.frontend.shapes import parse_input_shape


def test_a_range_dim_parses_beside_fixed_dims():
    assert parse_shape_spec("x=1..32x3x224x224") == ("x", (DimRange(1, 32), 3, 224, 224))
    assert parse_shape_spec("ids = 1..8 x 1..512") == ("ids", (DimRange(1, 8), DimRange(1, 512)))


def test_a_spec_without_a_range_parses_as_before():
    assert parse_shape_spec("x=2x3") == parse_input_shape("x=2x3")
    assert parse_shape_spec("x=4..4x3") == ("x", (4, 3))  # an empty range is the fixed size
    assert not has_ranges({"x": (2, 3)}) and has_ranges({"x": ((1, 4), 3)})


@pytest.mark.parametrize("spec", ["x=0..4x3", "x=5..2x3", "x=1..x3", "=1..2", "x=1...4"])
def test_bad_ranges_are_one_line_input_errors(spec):
    with pytest.raises(InputError) as info:
        parse_shape_spec(spec)
    assert "\n" not in str(info.value)


def test_the_models_dim_param_names_the_symbol_and_is_shared():
    model, symbols = symbolize(two_inputs(), {"a": (DimRange(1, 16), 8)})  # b is bound by the shared `batch`
    assert symbols == {"batch": DimRange(1, 16)}
    assert [d.dim_param for d in model.graph.output[0].type.tensor_type.shape.dim][:1] == ["batch"]


def test_a_dim_without_a_name_gets_one():
    model = batch_mlp()
    model.graph.input[0].type.tensor_type.shape.dim[0].ClearField("dim_param")
    _, symbols = symbolize(model, {"x": (DimRange(1, 4), 64)})
    assert symbols == {"x_0": DimRange(1, 4)}


def test_conflicting_ranges_and_fixed_dims_are_refused():
    with pytest.raises(ShapeError, match="two ranges"):
        symbolize(two_inputs(), {"a": (DimRange(1, 16), 8), "b": (DimRange(1, 8), 8)})
    with pytest.raises(ShapeError, match="range for one input and fixed"):
        symbolize(two_inputs(), {"a": (DimRange(1, 16), 8), "b": (4, 8)})
    with pytest.raises(ShapeError, match="fixed to 64"):
        symbolize(batch_mlp(), {"x": (DimRange(1, 4), DimRange(1, 64))})


def test_another_dynamic_dim_without_a_range_is_still_refused():
    model = two_inputs()
    model.graph.input[1].type.tensor_type.shape.dim[0].dim_param = "other"
    with pytest.raises(ShapeError, match=r"input b dim 0 \(other\) is dynamic and has no range"):
        symbolize(model, {"a": (DimRange(1, 16), 8)})
