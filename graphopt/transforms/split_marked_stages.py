"""TVM's SplitLayoutRewritePreproc, run on the kernels that have a marked packing stage only.

Why: graphopt.lowering.prepack (step 3) moves each weight-packing stage that the GEMM rule
marked (graphopt.kernels.schedules.gemm.PREPACK_MARK) into a kernel of its own. TVM's pass
visits every PrimFunc of the module, and fails on kernels it has nothing to do for whose
body is not a tree of schedulable blocks: TOPI's hand-written kernels such as
scatter_elements (Slice with computed starts, ScatterElements, MaxUnpool) stop the whole
compile with "There should be a compute block if there is only one subtree under the root".

The rewrite: kernels without a marked stage (a kernel whose blocks a schedule cannot even
list has none) are set aside, the pass runs on the rest of the module (the Relax functions
that call them and the marked kernels), and the set-aside kernels are put back unchanged
under their own GlobalVars. Nothing marked: the pass is not run at all.
"""

from __future__ import annotations

import tvm
from tvm import relax

from graphopt.analysis.kernel_blocks import kernel_blocks
from graphopt.kernels.schedules.gemm import PREPACK_MARK
from graphopt.transforms.result import RewriteResult


def split_marked_stages(mod: tvm.IRModule) -> RewriteResult[tvm.IRModule]:
    """The module with every marked packing stage split into a kernel of its own; the record
    counts the kernels that had one (none: the input module, unchanged)."""
    kernels = {gvar: func for gvar, func in mod.functions_items() if isinstance(func, tvm.tirx.PrimFunc)}
    aside = {gvar: func for gvar, func in kernels.items() if not has_marked_stage(func)}
    marked = len(kernels) - len(aside)
    if not marked:
        return RewriteResult(mod, False, {"marked_kernels": 0})
    rest = tvm.IRModule({gvar: func for gvar, func in mod.functions_items() if gvar not in aside},
                        attrs=mod.attrs)
    split = relax.transform.SplitLayoutRewritePreproc()(rest)
    split.update(tvm.IRModule(aside))
    return RewriteResult(split, True, {"marked_kernels": marked})


def split_marked_stages_pass() -> tvm.transform.Pass:
    """`split_marked_stages` as a module pass (it replaces SplitLayoutRewritePreproc)."""

    @tvm.transform.module_pass(opt_level=0, name="GraphoptSplitMarkedStages")
    def run(mod: tvm.IRModule, _ctx) -> tvm.IRModule:
        return split_marked_stages(mod).module

    return run


def has_marked_stage(func: tvm.tirx.PrimFunc) -> bool:
    """Whether any block of `func` carries PREPACK_MARK (an opaque kernel has no blocks)."""
    return any(PREPACK_MARK in block.annotations for block in kernel_blocks(func))
