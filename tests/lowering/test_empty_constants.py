"""A program holding an empty constant is refused before an artifact that cannot load is written."""

from __future__ import annotations

import numpy as np
import pytest
from tvm import relax

from graphopt.errors import ShapeError
from graphopt.lowering.codegen import refuse_empty_constants


def _returns_constant(shape: tuple[int, ...]):
    builder = relax.BlockBuilder()
    with builder.function("main", []):
        builder.emit_func_output(relax.const(np.zeros(shape, "int64")))
    return builder.get()


def test_empty_constant_is_refused_in_one_line():
    with pytest.raises(ShapeError, match="empty constant \\(3x0x5\\)"):
        refuse_empty_constants(_returns_constant((3, 0, 5)))


def test_other_constants_pass():
    assert refuse_empty_constants(_returns_constant((2, 2))) is None
