"""Range artifacts' inputs: symbols bound per call, a shape outside the range refused in one line."""

from __future__ import annotations

import numpy as np
import pytest

from graphopt.errors import InputError
from graphopt.runtime.shape_range import bind_symbols, bound_outputs

SYMBOLS = {"batch": [1, 8], "seq": [4, 16]}
INPUTS = [{"name": "ids", "shape": [8, 16], "dtype": "int64", "dims": ["batch", "seq"]},
          {"name": "mask", "shape": [8, 16], "dtype": "int64", "dims": ["batch", "seq"]}]


def test_symbols_bind_and_outputs_follow():
    arrays = [np.zeros((3, 5), np.int64)] * 2
    binding = bind_symbols(INPUTS, arrays, SYMBOLS)
    assert binding == {"batch": 3, "seq": 5}
    outputs = [{"name": "y", "shape": [8, 16, 32], "dtype": "float32", "dims": ["batch", "seq", 32]}]
    assert bound_outputs(outputs, binding)[0]["shape"] == [3, 5, 32]


@pytest.mark.parametrize("shapes, words", [
    ([(9, 5), (9, 5)], "batch 9 is outside 1..8"),
    ([(3, 2), (3, 2)], "seq 2 is outside 4..16"),
    ([(3, 5), (4, 5)], "batch is 3 in an earlier input"),
    ([(3, 5, 1), (3, 5)], "ids=1..8x4..16"),
])
def test_a_shape_outside_the_range_is_one_line_naming_it(shapes, words):
    with pytest.raises(InputError) as info:
        bind_symbols(INPUTS, [np.zeros(s, np.int64) for s in shapes], SYMBOLS)
    assert words in str(info.value) and "\n" not in str(info.value)
