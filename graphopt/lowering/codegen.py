"""The last steps of a compile: finalize memory lowering, then generate code.

graphopt's finalize drops StaticPlanBlockMemory (the arena plan has already replaced
every intermediate allocation); the stock variant keeps it, so the baseline is the
same program with TVM's own memory plan.
"""

from __future__ import annotations

import tvm
from tvm import relax

from graphopt.errors import ShapeError
from graphopt.lowering.shape_bounds import reuse_runtime_shapes
from graphopt.plan.placement import Placement
from graphopt.transforms.apply_placement import apply_placement


def finalize_passes(target: tvm.target.Target, stock: bool) -> list:
    """The finalize stage; graphopt's variant drops StaticPlanBlockMemory because
    the arena plan has already replaced every intermediate allocation."""
    head = [relax.transform.StaticPlanBlockMemory()] if stock else []
    return head + [
        relax.transform.LowerAllocTensor(),
        relax.transform.KillAfterLastUse(),
        relax.transform.LowerRuntimeBuiltin(),
        relax.transform.ComputePrimValue(),
        relax.transform.VMShapeLower(),
        reuse_runtime_shapes(),  # a range program's repeated run-time shapes built once (no-op for fixed shapes)
        relax.transform.AttachGlobalSymbol(),
    ]


def finalize(mod: tvm.IRModule, target: tvm.target.Target, stock: bool) -> tvm.IRModule:
    with target:
        return tvm.transform.Sequential(finalize_passes(target, stock))(mod)


def build(mod: tvm.IRModule, target: tvm.target.Target):
    """Code generation of a finalized module into a VM executable."""
    from graphopt.lowering.stack_tiles import tir_pipeline

    executable = tvm.compile(with_noalias_single_buffer_funcs(mod), target=target, relax_pipeline=None,
                             tir_pipeline=tir_pipeline(target))
    from graphopt.kernels.onednn.extern import uses_onednn

    return link_onednn(executable) if uses_onednn(mod) else executable


def link_onednn(executable):
    """The executable, its export_library linking graphopt's oneDNN shim and libdnnl in.

    Why on the instance: the artifact writer exports whatever `build` returns, and a module
    whose kernels call oneDNN (graphopt.kernels.onednn.extern) has undefined symbols until the
    shim object and `-ldnnl` are linked (graphopt.kernels.onednn.library says how)."""
    import functools

    from graphopt.kernels.onednn.library import link_options, shim_object

    export = executable.export_library

    @functools.wraps(export)
    def export_linked(file_name, **kwargs):
        kwargs["addons"] = list(kwargs.get("addons") or []) + [str(shim_object())]
        kwargs["options"] = list(kwargs.get("options") or []) + link_options()
        return export(file_name, **kwargs)

    executable.export_library = export_linked
    return executable


def with_noalias_single_buffer_funcs(mod: tvm.IRModule) -> tvm.IRModule:
    """Marks `tirx.noalias` on every PrimFunc of one parameter that lacks it.

    Why: a shape-range artifact holds VMShapeLower's `shape_func`, which lacks the attribute;
    compiled into the same LLVM module, the convolution kernels then stored their accumulators
    to memory after every FMA (24 FMAs + 35 stores instead of 72 + 20 per inner loop) and ran
    2-3.5x slower than the same kernels in a fixed-shape artifact. A function with a single
    buffer parameter cannot alias another one, so the attribute is true of it by construction.
    """
    updates = {}
    for gvar, func in mod.functions_items():
        if isinstance(func, tvm.tirx.PrimFunc) and len(func.params) == 1 and "tirx.noalias" not in (func.attrs or {}):
            updates[gvar] = func.with_attr("tirx.noalias", True)
    for gvar, func in updates.items():
        mod.update_func(gvar, func)
    return mod


def build_planned(lowered: tvm.IRModule, buffer_vars: dict, placement: Placement, target: tvm.target.Target,
                  arena_argument: bool = False):
    """Rewrites the program onto one arena, finalizes it and generates code; (executable, whether the arena
    is the program's last parameter: graphopt.transforms.apply_placement)."""
    refuse_empty_constants(lowered)
    planned = apply_placement(lowered, buffer_vars, placement, arena_argument=arena_argument)
    return build(finalize(planned.module, target, stock=False), target), planned.record["arena_argument"]


def build_stock(lowered: tvm.IRModule, target: tvm.target.Target):
    """The same program planned the stock way: the baseline with identical kernels."""
    return build(finalize(lowered, target, stock=True), target)


def refuse_empty_constants(mod: tvm.IRModule) -> None:
    """ShapeError (one line) if a Relax function holds a constant with a dim of 0.

    Why: the exported library stores the program's constants, and TVM's format cannot read
    an empty one back ("Invalid DLTensor file format" when the artifact loads). A model whose
    output folds to an empty constant (Trilu of a baked 3x0x5 tensor) is refused here, before
    an artifact that can never load is written.
    """
    for _, func in mod.functions_items():
        if not isinstance(func, relax.Function):
            continue
        empty = _empty_constants(func)
        if empty:
            shape = "x".join(str(d) for d in empty[0].value.shape)
            raise ShapeError(f"the program holds an empty constant ({shape}), which TVM's library format "
                             "cannot store; graphopt does not compile models that fold to empty tensors")


def _empty_constants(func) -> list:
    """The constants of `func` with a dim of 0, in visiting order."""
    found: list = []

    def visit(expr) -> None:
        if isinstance(expr, tvm.ir.Constant) and 0 in tuple(getattr(expr.value, "shape", ())):
            found.append(expr)

    relax.analysis.post_order_visit(func, visit)
    return found
