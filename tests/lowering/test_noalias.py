"""codegen marks `tirx.noalias` on single-parameter PrimFuncs (VMShapeLower's shape_func): without it,
the kernels of a shape-range artifact compiled into the same LLVM module ran 2-3.5x slower."""

from __future__ import annotations

import tvm
from tvm import te, tirx

from graphopt.lowering.codegen import with_noalias_single_buffer_funcs


def test_only_single_parameter_functions_without_the_attribute_are_marked():
    a = te.placeholder((4,), name="a")
    b = te.compute((4,), lambda i: a[i] + 1.0, name="b")
    kernel = te.create_prim_func([a, b]).without_attr("tirx.noalias")
    host = tirx.PrimFunc([tirx.Var("heap", "handle")], tirx.Evaluate(0))
    mod = tvm.IRModule({"kernel": kernel, "shape_func": host})
    marked = with_noalias_single_buffer_funcs(mod)
    assert bool(marked["shape_func"].attrs["tirx.noalias"])
    assert "tirx.noalias" not in (marked["kernel"].attrs or {})  # two buffers may alias: left as it was
