"""Concatenation without copies: producers write straight into the concatenated tensor.

Why: a channel concatenation of batch-1 NCHW tensors is, byte for byte, its inputs
one after another. DenseNet concatenates after every layer (58 copies of growing
feature maps in densenet121), SqueezeNet after every fire module, Inception after
every block. Copying costs time (about 6% of densenet121's kernel time) and memory
(input and output live at once). If each input is instead allocated as a view at
its byte offset inside the output, the copy is gone and the output and its inputs
share one buffer.

When (each condition is why the rewrite is safe):
- the kernel is a pure concatenation (one `T_concat` block writing the last
  argument, shapes adding up along one axis), and every dimension before that
  axis is 1, so each input is one contiguous byte range of the output;
- each input is a fresh allocation of this function (not a weight, graph input or
  graph output), written by exactly one PrimFunc before the concatenation and by
  nothing after it, so its bytes in the shared buffer are final once written;
- the output is written by the concatenation only, and is not a graph output;
- inputs are distinct and not yet placed inside another concatenation;
- every input starts at a multiple of 64 bytes (kernels require aligned pointers).
Chains (DenseNet's concat(concat(x0, y1), y2)) nest: the inner output becomes a
view of the outer one, so a whole dense block is one buffer that layers append to.

The rewrite: the outermost output is allocated where its first input used to be;
every input's allocation becomes `ensure_zero_offset(view(outer, offset))`; the
concatenation call is dropped. Extraction folds the views into the outer buffer's
lifetime, so the planner and the validator see an ordinary buffer.
Runs on graphopt's program only: the stock baseline keeps its copies.
"""

from __future__ import annotations

from dataclasses import dataclass

import tvm
from tvm import relax
from tvm import sym as tvm_arith

from graphopt.analysis.bindings import AliasTracker, alloc_bytes, alloc_shape, is_alloc, is_view_op
from graphopt.analysis.kernel_blocks import kernel_blocks
from graphopt.transforms.result import RewriteResult

ALIGNMENT = 64
CONCAT_BLOCK = "T_concat"


@dataclass(frozen=True)
class Member:
    """An input placed inside a concatenation's output."""

    parent: relax.Var
    offset: int  # bytes from the parent's start


def concat_in_place(mod: tvm.IRModule, func_name: str = "main",
                    keep: frozenset[int] = frozenset()) -> RewriteResult[tvm.IRModule]:
    """The module with every eligible concatenation elided, except the bindings (indices
    into `main`'s bindings) in `keep`; the record counts the concatenations, how many
    were elided and, under `elided_at`, which bindings (none: the input module, unchanged).
    Which to keep for memory's sake is graphopt.transforms.concat_no_worse's choice."""
    func = mod[func_name]
    bindings = [b for block in func.body.blocks for b in block.bindings]
    kernels = _Kernels(mod)
    members, elided = _plan_members(kernels, func, bindings, keep)
    record = {"elided": len(elided), "concatenations": _count_concats(kernels, bindings),
              "elided_at": sorted(elided)}
    if not elided:
        return RewriteResult(mod, False, record)
    return RewriteResult(_rewrite(mod, func_name, bindings, members, elided), True, record)


def concat_axis(prim: tvm.tirx.PrimFunc) -> int | None:
    """The axis of a pure concatenation kernel, or None when `prim` is anything else.

    Pure means: one block, which stores into the last parameter a selection
    (nested if_then_else) of plain loads, one from each input, each at the output's
    own position moved back by the sizes of the inputs before it along the axis.
    A fused kernel whose elementwise work was inlined into its concatenation block
    (split, gate, add, then concatenate) has the block but not the loads: it is no
    concatenation to drop."""
    blocks = kernel_blocks(prim)  # [] for an opaque kernel without a root block
    if [b.name_hint for b in blocks] != [CONCAT_BLOCK] or len(prim.params) < 2:
        return None
    shapes = [_static_shape(p) for p in prim.params]
    dtypes = {str(p.dtype) for p in prim.params}
    if None in shapes or len(dtypes) != 1:
        return None
    *inputs, out = shapes
    axis = _axis_of(inputs, out)
    if axis is None or not _selects_inputs(blocks[0], prim.params, [s[axis] for s in inputs], axis):
        return None
    return axis


def _selects_inputs(block, params, extents: list[int], axis: int) -> bool:
    """Is the block out[i] = (input k)[i - offset_k along axis], choosing k by
    conditions only? Checked with the block's iterator ranges, and for input k under
    offset_k <= i[axis] < offset_k + extent_k (a unit dimension may read index 0)."""
    store = block.body
    if not isinstance(store, tvm.tirx.BufferStore) or not store.buffer.same_as(params[-1]):
        return False
    loads = _selected_loads(store.value)
    if loads is None or len(loads) != len(extents):
        return False
    analyzer = tvm_arith.Analyzer()
    for iter_var in block.iter_vars:
        analyzer.bind(iter_var.var, iter_var.dom)
    position, offset = store.indices[axis], 0
    for param, extent, load in zip(params[:-1], extents, _in_param_order(loads, params)):
        if load is None or len(load.indices) != len(store.indices):
            return False
        with analyzer.constraint_scope(tvm.tirx.all(position >= offset, position < offset + extent)):
            for d, (got, want) in enumerate(zip(load.indices, store.indices)):
                if not analyzer.can_prove_equal(got, want - offset if d == axis else want):
                    return False
        offset += extent
    return True


def _selected_loads(value) -> list | None:
    """The loads a nest of if_then_else chooses between; None when anything computes."""
    if isinstance(value, tvm.ir.expr.Call) and value.op.name.endswith("if_then_else"):
        then, other = (_selected_loads(v) for v in value.args[1:])
        return None if then is None or other is None else then + other
    if isinstance(value, tvm.ir.expr.TensorLoad):
        return [value]
    return None


def _in_param_order(loads: list, params) -> list:
    """The load of each input parameter, in parameter order (None where one is missing)."""
    return [next((ld for ld in loads if ld.source.same_as(p)), None) for p in params[:-1]]


def _axis_of(inputs: list[tuple[int, ...]], out: tuple[int, ...]) -> int | None:
    if any(len(s) != len(out) for s in inputs):
        return None
    differing = {i for s in inputs for i in range(len(out)) if s[i] != out[i]}
    if len(differing) > 1:
        return None
    axis = differing.pop() if differing else 0
    if sum(s[axis] for s in inputs) != out[axis]:
        return None
    return axis


def _static_shape(param) -> tuple[int, ...] | None:
    dims = list(param.shape)
    if not all(isinstance(d, tvm.tirx.IntImm) for d in dims):
        return None
    return tuple(int(d.value) for d in dims)


def _written_params(prim: tvm.tirx.PrimFunc) -> set[int] | None:
    """Indices of the parameters whose buffers some block of the kernel writes; None
    for a kernel without blocks (what it writes is not declared: assume anything)."""
    blocks = kernel_blocks(prim)  # [] for an opaque kernel without a root block
    if not blocks:
        return None
    written = [region.source for block in blocks for region in block.writes]
    return {i for i, p in enumerate(prim.params) if any(w.same_as(p) for w in written)}


class _Kernels:
    """What the pass asks of each PrimFunc, answered once per kernel (a model calls
    the same kernel many times, and each answer builds a schedule to read blocks)."""

    def __init__(self, mod: tvm.IRModule) -> None:
        self.mod = mod
        self._written: dict = {}
        self._axis: dict = {}

    def prim(self, call: relax.Call):
        if isinstance(call.op, tvm.ir.GlobalVar) and call.op in self.mod.functions:
            func = self.mod[call.op]
            return func if isinstance(func, tvm.tirx.PrimFunc) else None
        return None

    def written(self, call: relax.Call) -> set[int] | None:
        """Argument positions the call writes; None when unknown (extern, Relax op, opaque)."""
        prim = self.prim(call)
        if prim is None:
            return None
        if call.op not in self._written:
            self._written[call.op] = _written_params(prim)
        return self._written[call.op]

    def concat_axis(self, call: relax.Call) -> int | None:
        prim = self.prim(call)
        if prim is None or len(call.args) != len(prim.params):
            return None
        if call.op not in self._axis:
            self._axis[call.op] = concat_axis(prim)
        return self._axis[call.op]


class _Writes:
    """Who writes each allocation: binding indices, and roots that anything
    else (extern calls, Relax ops, kernels without blocks) may write, which are never placed."""

    def __init__(self) -> None:
        self.at: dict[relax.Var, list[int]] = {}
        self.unknown: set[relax.Var] = set()

    def note(self, kernels: _Kernels, index: int, call: relax.Call, tracker: AliasTracker) -> None:
        positions = kernels.written(call)
        if positions is None:
            for arg in call.args:
                self.unknown.update(tracker.of_expr(arg))
            return
        for i in positions:
            if i < len(call.args):
                for root in tracker.of_expr(call.args[i]):
                    self.at.setdefault(root, []).append(index)


def _plan_members(kernels: _Kernels, func, bindings, keep: frozenset[int]) -> tuple[dict[relax.Var, Member], set[int]]:
    """Which inputs go where, and the binding indices of the concatenations elided."""
    tracker, writes = AliasTracker(), _Writes()
    allocs: dict[relax.Var, relax.Call] = {}
    plain: dict[relax.Var, relax.Var] = {}  # var -> the allocation it is bound to, by plain bindings only
    for index, binding in enumerate(bindings):
        value = binding.value
        if is_alloc(value):
            allocs[binding.var] = value
            tracker.roots[binding.var] = frozenset([binding.var])
            plain[binding.var] = binding.var
            continue
        if isinstance(value, relax.Call) and not is_view_op(value):
            writes.note(kernels, index, value, tracker)
        elif not isinstance(value, (relax.Var, relax.Tuple, relax.TupleGetItem, relax.Call)):
            for v in relax.analysis.free_vars(value):
                writes.unknown.update(tracker.roots.get(v, ()))
        tracker.bind(binding.var, value)
        if isinstance(value, relax.Var) and value in plain:
            plain[binding.var] = plain[value]
    outputs = tracker.of_expr(func.body.body)
    used_results = _used_vars(bindings, func.body.body)
    members: dict[relax.Var, Member] = {}
    elided: set[int] = set()
    for index, binding in enumerate(bindings):
        if index in keep:
            continue
        placed = _place_inputs(kernels, index, binding, allocs, plain, writes, outputs, members, used_results)
        if placed:
            members.update(placed)
            elided.add(index)
    return members, elided


def _place_inputs(kernels: _Kernels, index, binding, allocs, plain, writes, outputs, members,
                  used_results) -> dict | None:
    """The members one concatenation binding would place, or None if it must stay a copy."""
    call = binding.value
    if not isinstance(call, relax.Call) or binding.var in used_results:
        return None
    axis = kernels.concat_axis(call)
    if axis is None:
        return None
    roots = [plain.get(a) if isinstance(a, relax.Var) else None for a in call.args]
    *inputs, out = roots
    if None in roots or len(set(roots)) != len(roots) or out in outputs or writes.at.get(out) != [index]:
        return None
    if out in writes.unknown or any(not _written_once_before(r, index, writes, outputs, members) for r in inputs):
        return None
    shape = alloc_shape(allocs[out], out.name)
    if any(d != 1 for d in shape[:axis]):
        return None
    offsets, offset = {}, 0
    for root in inputs:
        if offset % ALIGNMENT:
            return None
        offsets[root] = Member(out, offset)
        offset += alloc_bytes(allocs[root], root.name)
    return offsets


def _written_once_before(root, index, writes: _Writes, outputs, members) -> bool:
    at = writes.at.get(root, [])
    return (root not in outputs and root not in members and root not in writes.unknown
            and len(at) == 1 and at[0] < index)


def _used_vars(bindings, body) -> set[relax.Var]:
    used = set(relax.analysis.free_vars(body))
    for binding in bindings:
        used.update(relax.analysis.free_vars(binding.value))
    return used


def _count_concats(kernels: _Kernels, bindings) -> int:
    return sum(1 for b in bindings if isinstance(b.value, relax.Call) and kernels.concat_axis(b.value) is not None)


def _outermost(var: relax.Var, members: dict[relax.Var, Member]) -> tuple[relax.Var, int]:
    """The buffer that finally holds `var`, and `var`'s byte offset inside it."""
    offset = 0
    while var in members:
        offset += members[var].offset
        var = members[var].parent
    return var, offset


@relax.expr_functor.mutator
class _InPlaceRewriter(relax.PyExprMutator):
    """Moves each outer allocation up, turns inputs into views, drops the copies."""

    def __init__(self, mod: tvm.IRModule, placed: dict, outer_at: dict, dropped: set, allocs: dict) -> None:
        super().__init__(mod)
        self.placed = placed      # input var -> (outer var, byte offset)
        self.outer_at = outer_at  # var of the first binding that needs an outer buffer -> [outer vars]
        self.dropped = dropped    # vars of elided concatenations and of moved allocations
        self.allocs = allocs      # outer var -> its alloc_tensor call

    def visit_var_binding_(self, binding) -> None:
        for outer in self.outer_at.get(binding.var, ()):
            self.builder_.emit_normalized(relax.VarBinding(outer, self.allocs[outer]))
        if binding.var in self.dropped:
            return
        if binding.var not in self.placed:
            super().visit_var_binding_(binding)
            return
        outer, offset = self.placed[binding.var]
        alloc = binding.value
        offset_value = relax.prim_value(tvm.tirx.IntImm("int64", offset))
        raw = self.builder_.emit(relax.op.memory.view(outer, alloc.args[0], alloc.args[1], offset_value),
                                 binding.var.name + "_in_concat")
        # TVM kernels reject a non-zero byte_offset: fold it into the data pointer
        zero = self.builder_.normalize(relax.op.memory.ensure_zero_offset(raw))
        self.builder_.emit_normalized(relax.VarBinding(binding.var, zero))


def _rewrite(mod, func_name, bindings, members, elided) -> tvm.IRModule:
    placed = {var: _outermost(var, members) for var in members}
    position = {b.var: i for i, b in enumerate(bindings)}
    first: dict[relax.Var, int] = {}
    for var, (outer, _) in placed.items():
        first[outer] = min(first.get(outer, position[outer]), position[var])
    outer_at: dict[relax.Var, list] = {}
    for outer, i in first.items():
        outer_at.setdefault(bindings[i].var, []).append(outer)
    dropped = {bindings[i].var for i in elided} | set(first)
    allocs = {outer: bindings[position[outer]].value for outer in first}
    rewriter = _InPlaceRewriter(mod, placed, outer_at, dropped, allocs)
    module = rewriter.builder_.get()
    gvar = module.get_global_var(func_name)
    rewriter.builder_.update_func(gvar, rewriter.visit_expr(module[func_name]))
    return rewriter.builder_.get()
