"""A kernel rewritten as one call into oneDNN: same parameters, an extern call for a body.

Why keep the PrimFunc: the Relax program calls the kernel with call_tir on the same
arguments whichever library computes it, so the program, the tensors' lifetimes and the
arena plan are exactly those of the TVM kernel (the memory plan cannot depend on the
portfolio's choice). The body is `assert graphopt_dnnl_<op>_f32(pointers..., shape...) == 0`:
the shim returns -1 after printing oneDNN's message, and the assert turns that into a
Python exception at the call instead of a wrong result.

The kernel is marked scheduled (no rule touches it) and labelled `onednn <op> <mode>` in
`graphopt.schedule`, which the artifact's plan record counts; `graphopt.library` says
that the module needs the shim linked (graphopt.lowering.codegen).
"""

from __future__ import annotations

import tvm
from tvm import tirx

from graphopt.kernels.onednn.match import Spec

LIBRARY_ATTR = "graphopt.library"
MODES = {"plain": 0, "blocked": 1}  # convolution layouts (shim.cc): plain tensors, or oneDNN's with reorders


def extern_kernel(func: tirx.PrimFunc, spec: Spec, mode: str = "plain") -> tirx.PrimFunc:
    """`func` with its body replaced by the oneDNN call `spec` describes."""
    params = list(func.params)
    pointer = [p.data for p in params]
    extras = [pointer[i] for i in spec.extras] + [pointer[spec.dst]] * (3 - len(spec.extras))
    ints = [tirx.const(v, "int64") for v in spec.values(MODES[mode] if spec.op == "conv2d" else 0)]
    call = tirx.call_extern("int32", f"graphopt_dnnl_{spec.op}_f32", pointer[spec.src], pointer[spec.weights],
                            pointer[spec.dst], *extras, *ints)
    message = f"oneDNN {spec.op} {list(spec.shape)} failed (see the message above)"
    # TVM 0.27's constructor takes (condition, kind, parts), whatever its Python signature says
    body = tirx.AssertStmt(call == tirx.const(0, "int32"), tvm.ir.StringImm("RuntimeError"),
                           [tvm.ir.StringImm(message)])
    label = f"onednn {spec.op}" + (f" {mode}" if spec.op == "conv2d" else "")
    return func.with_body(body).with_attr("tirx.is_scheduled", True).with_attr("graphopt.schedule", label) \
        .with_attr(LIBRARY_ATTR, "onednn")


def uses_onednn(mod: tvm.IRModule) -> bool:
    """Does any kernel of `mod` call oneDNN (so the shim must be linked)?"""
    return any(isinstance(f, tirx.PrimFunc) and f.attrs is not None and LIBRARY_ATTR in f.attrs
               for _, f in mod.functions_items())
