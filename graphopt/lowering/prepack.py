"""Weights prepared once at compile time: packed for the kernels, reshaped, transposed.

Why. A GEMM-scheduled convolution reads its weight as [K, output channels] so
that one vector load fetches several output channels; packing the ONNX
[O, I, kh, kw] weight into that order inside the kernel costs a full copy of
every weight on every run (about 100 MB for resnet50). ONNX Runtime's MLAS
prepacks its weights once at session creation; graphopt does it at compile
time, so the artifact stores the weights in the order the kernels read them.

How, with TVM's own passes:
  1. AttachAttrLayoutFreeBuffers marks each kernel parameter that the Relax
     program feeds straight from a weight (`layout_free_buffers`);
  2. the GEMM rule marks its weight-packing stage when it reads such a buffer
     (graphopt.kernels.schedules.gemm_stages.mark_prepack);
  3. SplitLayoutRewritePreproc moves every marked stage into a kernel of its own,
     called on the weight before the compute kernel;
  4. LiftTransformParams moves everything that depends on weights alone (those
     packing calls, bias reshapes, a classifier's transposed weight) into
     `main_transform_params`, and `main` then takes the prepared weights;
  5. `merge_duplicates` keeps one output per distinct computation (below);
  6. `prepare_weights` builds that function for the host CPU and runs it once on
     the model's weights: its outputs are the artifact's parameters.
Only the weights change: the program `main` still computes the same values, and
its activations (so the memory plan) do not depend on how weights are laid out.

One prepared tensor per source and transform. The importer expands every Gemm (or
MatMul, Conv...) node on its own, so a weight shared by n nodes (an unrolled LSTM's
recurrent weight, 40 Gemm nodes on 2 weights in a CRNN) gets n identical transposes,
and LiftTransformParams lifts each as an output of its own: n stored copies. Step 5
merges outputs whose computation is structurally the same: the same model parameter,
under the same chain of calls (PrimFuncs compared by tvm_ffi.StructuralKey without
their symbol names, Relax operators by name and attributes, constants by structure).
It works on the IR, before anything runs, rather than on the computed arrays' bytes:
the transform then computes each prepared tensor once (no compile-time time or memory
for copies that are thrown away), and two weights merge only when they are the same
computation, never because two different tensors happen to hold equal bytes. `main`'s
uses of a duplicate parameter are rebound to the kept one (Function.bind_params), so
the program's kernels and activations, hence the memory plan, are unchanged.
"""

from __future__ import annotations

import numpy as np
import tvm
import tvm_ffi
from tvm import relax

TRANSFORM = "main_transform_params"


def mark_weights() -> tvm.transform.Pass:
    """Step 1 (before scheduling): which kernel parameters are weights."""
    return relax.transform.AttachAttrLayoutFreeBuffers()


def lift_weight_work() -> tvm.transform.Pass:
    """Steps 3-4 (after scheduling): packing stages out of kernels, weight-only work out of `main`
    (graphopt.transforms.split_marked_stages and .bind_result guard two failures of TVM's passes)."""
    from graphopt.transforms.bind_result import bind_weight_only_result_pass
    from graphopt.transforms.split_marked_stages import split_marked_stages_pass

    return tvm.transform.Sequential([split_marked_stages_pass(), bind_weight_only_result_pass(),
                                     relax.transform.LiftTransformParams()])


def split_transform(mod: tvm.IRModule) -> tuple[tvm.IRModule, tvm.IRModule | None]:
    """(the module without the weight transform, the transform as a module of its own or None)."""
    if TRANSFORM not in [gv.name_hint for gv in mod.get_global_vars()]:
        return mod, None
    kernels = {gvar: func for gvar, func in mod.functions_items() if isinstance(func, tvm.tirx.PrimFunc)}
    transform = tvm.IRModule({"main": mod[TRANSFORM].with_attr("global_symbol", "main"), **kernels})
    program = tvm.IRModule({"main": mod["main"], **kernels}, attrs=mod.attrs)
    keep = relax.transform.DeadCodeElimination(["main"])
    return keep(program), keep(transform)


def merge_duplicates(program: tvm.IRModule, transform: tvm.IRModule) -> tuple[tvm.IRModule, tvm.IRModule, int]:
    """Step 5: (program, transform, number of outputs merged) with one transform output
    per distinct computation, and `main` taking each prepared weight once."""
    func = transform["main"]
    seq = func.body
    if not isinstance(seq, relax.SeqExpr) or not seq.blocks or not isinstance(seq.body, relax.Var):
        return program, transform, 0
    bindings = [b for block in seq.blocks for b in block.bindings]
    last = bindings[-1] if bindings else None
    if not isinstance(last, relax.VarBinding) or not last.var.same_as(seq.body) \
            or not isinstance(last.value, relax.Tuple):
        return program, transform, 0
    keys = _ComputationKeys(transform, func, bindings[:-1])
    outputs = list(last.value.fields)
    weights = weight_params(program["main"])
    if len(weights) != len(outputs):
        return program, transform, 0
    first: dict = {}
    kept, rebind = [], {}
    for i, out in enumerate(outputs):
        key = keys.of(out)
        if key in first:
            rebind[weights[i]] = weights[first[key]]
        else:
            first[key] = i
            kept.append(out)
    if not rebind:
        return program, transform, 0
    new_tuple = relax.Tuple(kept)
    out_var = relax.Var(last.var.name, new_tuple.ty)
    blocks = list(seq.blocks)
    block = blocks[-1]
    block_bindings = list(block.bindings[:-1]) + [relax.VarBinding(out_var, new_tuple)]
    blocks[-1] = relax.DataflowBlock(block_bindings) if isinstance(block, relax.DataflowBlock) \
        else relax.BindingBlock(block_bindings)
    new_func = relax.Function(func.params, relax.SeqExpr(blocks, out_var), out_var.ty,
                              func.is_pure, func.attrs)
    return _replace_main(program, program["main"].bind_params(rebind)), _replace_main(transform, new_func), len(rebind)


def _replace_main(mod: tvm.IRModule, func: relax.Function) -> tvm.IRModule:
    mod = mod.clone()
    mod["main"] = func
    return relax.transform.DeadCodeElimination(["main"])(mod)


class _ComputationKeys:
    """A hashable key per expression of the transform: equal keys, equal computation."""

    def __init__(self, mod: tvm.IRModule, func: relax.Function, bindings: list):
        self.params = {p: ("param", i) for i, p in enumerate(func.params)}
        self.bound = {b.var: b.value for b in bindings if isinstance(b, relax.VarBinding)}
        self.memo: dict = {}
        self.kernels = {}
        for gvar, kernel in mod.functions_items():
            if isinstance(kernel, tvm.tirx.PrimFunc):
                body = kernel.without_attr("global_symbol") if kernel.attrs is not None \
                    and "global_symbol" in kernel.attrs else kernel
                self.kernels[gvar] = ("prim_func", tvm_ffi.StructuralKey(body))

    def of(self, expr):
        if isinstance(expr, relax.Var):
            if expr in self.params:
                return self.params[expr]
            if expr not in self.memo:
                value = self.bound.get(expr)
                self.memo[expr] = ("unique", expr) if value is None else self.of(value)
            return self.memo[expr]
        if isinstance(expr, tvm.ir.GlobalVar):
            return self.kernels.get(expr, ("global", expr.name_hint))
        if isinstance(expr, relax.TupleGetItem):
            return ("get", self.of(expr.tuple_value), int(expr.index))
        if isinstance(expr, relax.Tuple):
            return ("tuple",) + tuple(self.of(f) for f in expr.fields)
        if isinstance(expr, relax.Call):
            op = expr.op
            if isinstance(op, tvm.ir.GlobalVar):
                op_key = self.of(op)
            elif isinstance(op, tvm.ir.Op):
                op_key = ("op", op.name)
            else:
                return ("unique", expr)
            return ("call", op_key, tuple(self.of(a) for a in expr.args),
                    tvm_ffi.StructuralKey(expr.attrs) if expr.attrs is not None else None,
                    tuple(tvm_ffi.StructuralKey(s) for s in expr.ty_args))
        return ("leaf", tvm_ffi.StructuralKey(expr))


def prepare_weights(transform: tvm.IRModule, params: list[np.ndarray], target: tvm.target.Target) -> list[np.ndarray]:
    """Step 6: runs the weight transform on the host CPU; the prepared weights in `main`'s order."""
    executable = tvm.compile(transform, target=target)
    vm = relax.VirtualMachine(executable, tvm.cpu())
    prepared = vm["main"](tuple(tvm.runtime.tensor(p) for p in params))
    return [np.array(t.numpy(), order="C") for t in prepared]  # (ascontiguousarray makes 0-d arrays 1-d)


def weight_params(main: relax.Function) -> list[relax.Var]:
    """`main`'s weight parameters: those after its `num_input` inputs (none without the attribute)."""
    if main.attrs is None or "num_input" not in main.attrs:
        return []
    return list(main.params[int(main.attrs["num_input"]):])


def weight_names(program: tvm.IRModule) -> list[str]:
    """Names of `main`'s weight parameters."""
    return [p.name for p in weight_params(program["main"])]
