"""A result computed from weights alone is bound outside the dataflow block, so that
TVM's LiftTransformParams keeps it.

Why: LiftTransformParams (graphopt.lowering.prepack, step 4) moves everything that depends
on weights alone into the weight transform, and `main` takes the transform's outputs as
parameters. It looks for the values `main` still needs in its bindings but not in the
function's result (apache/tvm#17231): a result that is itself weight-only (a model whose
output does not depend on its inputs: every input folded into a constant, or an output
that is a weight) is lifted, dropped from the transform's outputs, and left undefined in
`main` ("Var gv is not defined" when the VM is built).

The rewrite: such a result expression `r` becomes `result = r` in a binding block of its
own after the dataflow blocks, and the function returns `result`. The binding reads `r`,
so the lifted value is one of the transform's outputs and a parameter of `main` again;
the new block is not a dataflow block, which LiftTransformParams does not lift from.

Applies to every Relax function with `num_input` (the ones LiftTransformParams rewrites);
any other function, and a result that reads an input, is left as it was.
"""

from __future__ import annotations

import tvm
from tvm import relax

from graphopt.transforms.result import RewriteResult

RESULT_NAME = "result"


def bind_weight_only_result(mod: tvm.IRModule) -> RewriteResult[tvm.IRModule]:
    """The module with each weight-only function result bound outside dataflow; the record
    lists the functions rewritten (none: the input module, unchanged)."""
    rewritten = {}
    for gvar, func in mod.functions_items():
        if isinstance(func, relax.Function) and _weight_only_result(func):
            rewritten[gvar] = _bind_result(func)
    if not rewritten:
        return RewriteResult(mod, False, {"functions": []})
    out = mod.clone()
    for gvar, func in rewritten.items():
        out[gvar] = func
    return RewriteResult(out, True, {"functions": sorted(g.name_hint for g in rewritten)})


def bind_weight_only_result_pass() -> tvm.transform.Pass:
    """`bind_weight_only_result` as a module pass, to run just before LiftTransformParams."""

    @tvm.transform.module_pass(opt_level=0, name="GraphoptBindWeightOnlyResult")
    def run(mod: tvm.IRModule, _ctx) -> tvm.IRModule:
        return bind_weight_only_result(mod).module

    return run


def _weight_only_result(func: relax.Function) -> bool:
    """Whether the result reads a value computed from weights alone (LiftTransformParams
    lifts exactly those: values that read at least one weight and no input)."""
    if func.attrs is None or "num_input" not in func.attrs or not isinstance(func.body, relax.SeqExpr):
        return False
    weight_only = set(func.params[int(func.attrs["num_input"]):])
    if not weight_only:
        return False
    for block in func.body.blocks:
        for binding in block.bindings:
            used = relax.analysis.free_vars(binding.value)
            if used and all(v in weight_only for v in used):
                weight_only.add(binding.var)
    return any(v in weight_only for v in relax.analysis.free_vars(func.body.body))


def _bind_result(func: relax.Function) -> relax.Function:
    seq = func.body
    result = relax.Var(RESULT_NAME, seq.body.ty)
    blocks = [*seq.blocks, relax.BindingBlock([relax.VarBinding(result, seq.body)])]
    return relax.Function(func.params, relax.SeqExpr(blocks, result), func.ret_ty, func.is_pure, func.attrs)
