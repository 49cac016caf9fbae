"""A range compile's bounds on the Relax program, and the report of its symbolic kernels.

Why the bounds go on `main` (`tir_var_upper_bound`): TVM's own passes read them (the stock
StaticPlanBlockMemory baseline sizes symbolic tensors at the bound) and graphopt's arena is
planned at the same maximum (graphopt.analysis.range_plan), so both planners see one problem.

Why a kernel report: graphopt's CPU schedule rules may decline a kernel with symbolic loops
(graphopt.kernels.schedules); such a kernel runs TVM's default unscheduled loops, which are
correct but slow. The compile says which kernels that happened to, by name, on stderr and in
plan.json (`shape_range.kernels`).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping

import tvm
from tvm import relax

from graphopt.kernels.schedules import has_symbolic_shape
from graphopt.kernels.tuning.apply import ATTR


def with_upper_bounds(mod: tvm.IRModule, symbols: Mapping[str, tuple[int, int]]) -> tvm.IRModule:
    """`mod` whose `main` carries every symbol's upper bound."""
    main = mod["main"].with_attr("tir_var_upper_bound", {name: int(hi) for name, (_lo, hi) in symbols.items()})
    out = tvm.IRModule(dict(mod.functions_items()), attrs=mod.attrs)
    out[out.get_global_var("main")] = main
    return out


# TVM's OpPatternKind values (relax.transform.AnnotateTIROpPattern)
_INJECTIVE, _OPAQUE = 2, 8


def injective_symbolic_copies() -> tvm.transform.Pass:
    """Marks as injective the symbolic-shape PrimFuncs that AnnotateTIROpPattern called opaque although they
    are one spatial block storing one load (a reshape of a `batch x seq` tensor).

    Why: the legalized reshape reads `x[(b*seq + s) // seq, (b*seq + s) % seq, ...]`, an index the pattern
    analysis does not simplify, so it says opaque; FuseOps then left each reshape alone (a VM reshape call
    and a shape built per call) where a fixed compile fuses it into the transpose that follows. A block whose
    iterators are all spatial and whose body is one store of one load is injective by definition."""

    @tvm.transform.module_pass(opt_level=0, name="GraphoptInjectiveSymbolicCopies")
    def mark(mod: tvm.IRModule, _ctx) -> tvm.IRModule:
        updates = {gvar: func.with_attr("op_pattern", _INJECTIVE) for gvar, func in mod.functions_items()
                   if isinstance(func, tvm.tirx.PrimFunc) and _is_symbolic_copy(func)}
        for gvar, func in updates.items():
            mod.update_func(gvar, func)
        return mod

    return mark


def _is_symbolic_copy(func: tvm.tirx.PrimFunc) -> bool:
    if not has_symbolic_shape(func) or func.attrs is None or int(func.attrs.get("op_pattern", -1)) != _OPAQUE:
        return False
    from tvm import s_tir

    sch = s_tir.Schedule(func)
    blocks = sch.get_child_blocks(sch.get_sblock("root")) if _has_root(sch) else []
    if len(blocks) != 1:
        return False
    block = sch.get(blocks[0])
    spatial = all(iv.iter_type == tvm.tirx.IterVar.DataPar for iv in block.iter_vars)
    body = block.body
    return (spatial and block.init is None and len(block.reads) == 1 and len(block.writes) == 1
            and isinstance(body, tvm.tirx.BufferStore) and type(body.value).__name__ == "TensorLoad")


def _has_root(sch) -> bool:
    try:
        sch.get_sblock("root")
    except Exception:  # noqa: BLE001  (a function without a root block is not a legalized copy)
        return False
    return True


_MAKE_SHAPE = "vm.builtin.make_shape"


def reuse_runtime_shapes() -> tvm.transform.Pass:
    """After VMShapeLower: a `make_shape` equal to an earlier one (same shape-heap slots and constants, no
    call that writes the heap between) is dropped and its uses point at the earlier result; the check of the
    returned tensor's shape against the heap (a `match_shape` that only asserts) is dropped too.

    Why: a range program builds every planned tensor's shape at run time from the shape heap (16 calls in
    the encoder block, over 6 distinct shapes), where a fixed program uses constants; at batch 1 these VM
    calls were a visible part of the gap to a fixed artifact. The returned tensor is a view the program
    itself made with a shape built from the same heap slots, so that check cannot fail (and the runtime
    checks every output's shape against the manifest: graphopt.runtime.signature). A program without such
    calls (every fixed-shape program) is unchanged."""

    @tvm.transform.module_pass(opt_level=0, name="GraphoptReuseRuntimeShapes")
    def reuse(mod: tvm.IRModule, _ctx) -> tvm.IRModule:
        updates = {}
        for gvar, func in mod.functions_items():
            if isinstance(func, relax.Function) and isinstance(func.body, relax.SeqExpr):
                body = _reuse_in(func.body)
                if body is not None:
                    updates[gvar] = relax.Function(func.params, body, func.ret_ty, func.is_pure, func.attrs)
        for gvar, func in updates.items():
            mod.update_func(gvar, func)
        return mod

    return reuse


def _reuse_in(seq: relax.SeqExpr) -> relax.SeqExpr | None:
    """The SeqExpr with repeated make_shape calls dropped and their uses (direct call arguments) pointed at
    the first result; None when there is none, or when a dropped result is used any other way.
    (An alias binding `gv1 = gv` is no cheaper: the VM compiles it into a vm.builtin.copy call.)"""
    seen: dict[tuple, relax.Var] = {}
    alias: dict = {}
    blocks = []
    for block in seq.blocks:
        bindings = []
        for binding in block.bindings:
            value = binding.value if isinstance(binding, relax.VarBinding) else None
            key = _make_shape_key(value)
            if _is_return_check(value, seq.body):
                alias[binding.var] = None  # dropped: nothing may use it (checked below)
                continue
            if key is not None and key in seen:
                alias[binding.var] = seen[key]
                continue
            if key is not None:
                seen[key] = binding.var
            elif _may_write_heap(value):
                seen.clear()  # a match_shape or shape function may have changed the heap's slots
            bindings.append(_with_args(binding, alias) if isinstance(value, relax.Call) and alias else binding)
        blocks.append(relax.BindingBlock(bindings))
    if not alias:
        return None
    out = relax.SeqExpr(blocks, seq.body)
    free = relax.analysis.free_vars(out)
    return None if any(var.same_as(dropped) for var in free for dropped in alias) else out


def _is_return_check(value, returned) -> bool:
    """`match_shape(returned, heap, ndim, (code, value)*ndim, context)` with only assert codes (0: equal to a
    constant, 3: equal to a heap slot; 1 would store to the heap) on the function's returned variable."""
    if not (isinstance(value, relax.Call) and isinstance(value.op, relax.ExternFunc)
            and value.op.global_symbol == "vm.builtin.match_shape" and value.args[0].same_as(returned)):
        return False
    try:
        ndim = _int(value.args[2])
        codes = [_int(value.args[3 + 2 * i]) for i in range(ndim)]
    except (AttributeError, IndexError, TypeError, ValueError):
        return False
    return all(code in (0, 3) for code in codes)


def _int(arg) -> int:
    inner = getattr(arg, "value", arg)
    return int(getattr(inner, "value", inner))


def _with_args(binding: relax.VarBinding, alias: dict) -> relax.VarBinding:
    call = binding.value
    args = [_aliased(arg, alias) for arg in call.args]
    return relax.VarBinding(binding.var, relax.Call(call.op, args, call.attrs, call.ty_args))


def _aliased(arg, alias: dict):
    """The earlier make_shape result standing for a dropped one; the argument itself otherwise."""
    if not isinstance(arg, relax.Var):
        return arg
    target = alias.get(arg)
    return arg if target is None else target


def _make_shape_key(value) -> tuple | None:
    if isinstance(value, relax.Call) and isinstance(value.op, relax.ExternFunc) and value.op.global_symbol == _MAKE_SHAPE:
        return tuple(str(arg) for arg in value.args)
    return None


def _may_write_heap(value) -> bool:
    """A call that takes the shape heap (match_shape, the shape function) and is not make_shape."""
    if not isinstance(value, relax.Call):
        return False
    return any(isinstance(arg, relax.Var) and arg.name == "shape_heap" for arg in value.args)


def kernel_report(mod: tvm.IRModule) -> dict:
    """{"symbolic": n, "by_rule": {rule: n}, "tvm_default": [kernel names]} over symbolic PrimFuncs."""
    by_rule: dict[str, int] = {}
    default: list[str] = []
    for gvar, func in mod.functions_items():
        if not isinstance(func, tvm.tirx.PrimFunc) or not has_symbolic_shape(func):
            continue
        label = str(func.attrs[ATTR]) if func.attrs is not None and ATTR in func.attrs else "tvm default"
        by_rule[label] = by_rule.get(label, 0) + 1
        if label == "tvm default":
            default.append(gvar.name_hint)
    return {"symbolic": sum(by_rule.values()), "by_rule": dict(sorted(by_rule.items())),
            "tvm_default": sorted(default)}


def warn_default_kernels(report: dict, schedules: bool) -> None:
    """stderr lines when graphopt's rules raised on symbolic kernels or left them to TVM's default loops."""
    if not schedules:
        return
    weaker = sum(n for label, n in report["by_rule"].items() if "raised)" in label)
    if weaker:
        print(f"warning: {weaker} of {report['symbolic']} symbolic-shape kernels got a more generic schedule "
              f"because a rule raised on their symbolic extents: {_labels(report)}", file=sys.stderr)
    names = report["tvm_default"]
    if names:
        shown = ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")
        print(f"warning: {len(names)} of {report['symbolic']} symbolic-shape kernels are left to TVM's default "
              f"(unscheduled, slow) loops: {shown}", file=sys.stderr)


def _labels(report: dict) -> str:
    return "; ".join(f"{n} x {label}" for label, n in report["by_rule"].items())


__all__ = ["injective_symbolic_copies", "kernel_report", "reuse_runtime_shapes", "warn_default_kernels", "with_upper_bounds"]
