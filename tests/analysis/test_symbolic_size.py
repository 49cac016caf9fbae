"""The monotonicity proof and evaluator behind range plans (graphopt.analysis.symbolic_size)."""

from __future__ import annotations

import pytest
from tvm import tirx

from graphopt.analysis.symbolic_size import evaluate, free_symbols, is_monotone
from graphopt.errors import ShapeError

B, S = tirx.Var("batch", "int64"), tirx.Var("seq", "int64")
LOW = {"batch": 1, "seq": 1}


def c(value: int):
    return tirx.IntImm("int64", value)


def test_evaluate_products_divisions_and_bounds():
    assert evaluate(B * S * c(4), {"batch": 3, "seq": 5}) == 60
    assert evaluate(tirx.FloorDiv(B - c(1), c(2)) + c(1), {"batch": 8}) == 4
    assert free_symbols(B * S) == {"batch", "seq"}
    with pytest.raises(ShapeError, match="seq"):
        evaluate(B * S, {"batch": 2})


def test_growing_sizes_are_proven():
    assert is_monotone(B * S * c(64), LOW)
    assert is_monotone(tirx.FloorDiv(B - c(3), c(2)) + c(1), LOW)  # a conv's output length
    assert is_monotone(tirx.Max(B, S), LOW)


def test_sizes_outside_the_grammar_are_not_proven():
    assert not is_monotone(c(64) - B, LOW)  # shrinks as batch grows
    assert not is_monotone(tirx.FloorMod(B, c(4)), LOW)
    assert not is_monotone(tirx.FloorDiv(c(64), B), LOW)
    assert not is_monotone((B - c(5)) * (B - c(5)), LOW)  # negative at the lower corner: not monotone
