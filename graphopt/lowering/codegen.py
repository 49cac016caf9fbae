"""The last steps of a compile: finalize memory lowering, then generate code.

graphopt's finalize drops StaticPlanBlockMemory (the arena plan has already replaced
every intermediate allocation); the stock variant keeps it, so the baseline is the
same program with TVM's own memory plan.
"""

from __future__ import annotations

import tvm
from tvm import relax

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
        relax.transform.AttachGlobalSymbol(),
    ]


def finalize(mod: tvm.IRModule, target: tvm.target.Target, stock: bool) -> tvm.IRModule:
    with target:
        return tvm.transform.Sequential(finalize_passes(target, stock))(mod)


def build(mod: tvm.IRModule, target: tvm.target.Target):
    """Code generation of a finalized module into a VM executable."""
    return tvm.compile(mod, target=target, relax_pipeline=None)


def build_planned(lowered: tvm.IRModule, buffer_vars: dict, placement: Placement, target: tvm.target.Target):
    """Rewrites the program onto one arena, finalizes it and generates code."""
    planned = apply_placement(lowered, buffer_vars, placement).module
    return build(finalize(planned, target, stock=False), target)


def build_stock(lowered: tvm.IRModule, target: tvm.target.Target):
    """The same program planned the stock way: the baseline with identical kernels."""
    return build(finalize(lowered, target, stock=True), target)
