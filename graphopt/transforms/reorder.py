"""Execution order of a lowered Relax program: read it as a DAG, write it back.

Design: after CallTIRRewrite, `main` is a flat list of bindings. Kernel calls
(the steps of extraction) become DAG nodes. An allocation belongs to the
kernel that writes it (the first kernel reading its var). Every other binding
(var aliases, tuples, items, reshape views) is free: it is re-emitted as soon
as every var it reads exists. Edges and tensor lifetimes follow the same alias
rules as extraction (`AliasTracker`), so the scheduler's peak is the lower
bound extraction will compute for the new order.
The search itself (passes/reorder.py) never sees TVM.
"""

from __future__ import annotations

from dataclasses import dataclass

import tvm
from tvm import relax

from graphopt.analysis.bindings import AliasTracker, alloc_bytes, is_alloc, is_step
from graphopt.passes.reorder import DagTensor, ScheduleProblem
from graphopt.transforms.result import RewriteResult


@dataclass
class ProgramDag:
    """What the rewrite needs to emit bindings in a new kernel order."""

    problem: ScheduleProblem
    kernels: list[relax.VarBinding]  # node id -> kernel binding
    allocs_of: dict[int, list]  # node id -> alloc bindings it writes
    free: list  # free bindings in original order
    block_count: int


def _var_uses(value) -> list[relax.Var]:
    return list(relax.analysis.free_vars(value))


def read_dag(func: relax.Function) -> ProgramDag | None:
    """The kernel DAG of a single-block function; None if it has several blocks."""
    if len(func.body.blocks) != 1:
        return None
    bindings = list(func.body.blocks[0].bindings)
    kernels, pending, allocs_of, free = [], {}, {}, []
    owner: dict = {}  # var -> node id of the kernel that makes it exist
    for binding in bindings:
        if is_alloc(binding.value):
            pending[binding.var] = binding
        elif is_step(binding.value):
            node = len(kernels)
            kernels.append(binding)
            allocs_of[node] = [pending.pop(v) for v in _var_uses(binding.value) if v in pending]
            for alloc in allocs_of[node]:
                owner[alloc.var] = node
            owner[binding.var] = node
        else:
            free.append(binding)
    if pending:
        return None  # an allocation nobody writes: leave such programs alone
    preds = _preds(kernels, free, owner)
    tensors = _tensors(func, bindings, owner)
    return ProgramDag(ScheduleProblem(tuple(preds), tuple(tensors)), kernels, allocs_of, free, 1)


def _preds(kernels, free, owner) -> list[frozenset[int]]:
    """Kernel -> kernels it must follow, looking through free bindings."""
    makers: dict = {v: {n} for v, n in owner.items()}
    for binding in free:
        makers[binding.var] = set().union(*(makers.get(v, set()) for v in _var_uses(binding.value)))
    preds = []
    for node, binding in enumerate(kernels):
        deps = set().union(*(makers.get(v, set()) for v in _var_uses(binding.value)))
        deps.discard(node)
        preds.append(frozenset(deps))
    return preds


def _tensors(func, bindings, owner) -> list[DagTensor]:
    """Planned tensors (outputs excluded) with producer and every reading kernel."""
    tracker = AliasTracker()
    readers: dict = {}
    sizes: dict = {}
    for binding in bindings:
        if is_alloc(binding.value):
            tracker.roots[binding.var] = frozenset([binding.var])
            sizes[binding.var] = alloc_bytes(binding.value, binding.var.name)
            continue
        if is_step(binding.value):
            for root in tracker.of_expr(binding.value):
                readers.setdefault(root, set()).add(owner[binding.var])
        tracker.bind(binding.var, binding.value)
    outputs = tracker.of_expr(func.body.body)
    return [
        DagTensor(sizes[var], owner[var], frozenset(readers.get(var, set()) - {owner[var]}))
        for var in sizes if var not in outputs
    ]


def write_order(func: relax.Function, dag: ProgramDag, order) -> relax.Function:
    """The same function with kernels in `order`; free bindings as early as possible."""
    defined = set(func.params)
    emitted: list = []
    waiting = list(dag.free)

    def flush() -> None:
        progress = True
        while progress:
            progress = False
            for binding in list(waiting):
                if all(v in defined for v in _var_uses(binding.value)):
                    emitted.append(binding)
                    defined.add(binding.var)
                    waiting.remove(binding)
                    progress = True

    flush()
    for node in order:
        for alloc in dag.allocs_of[node]:
            emitted.append(alloc)
            defined.add(alloc.var)
        emitted.append(dag.kernels[node])
        defined.add(dag.kernels[node].var)
        flush()
    if waiting:
        raise AssertionError("reorder left bindings whose inputs never appeared")
    body = relax.SeqExpr([relax.BindingBlock(emitted)], func.body.body)
    return relax.Function(func.params, body, func.ret_ty, func.is_pure, func.attrs)


def reorder_kernels(lowered: tvm.IRModule) -> RewriteResult[tvm.IRModule]:
    """A lower-peak kernel order when one exists; the record says what happened.

    The new order is kept only if the lower bound that extraction computes for it
    is strictly lower than the original's: the scheduler's model and extraction
    share their alias rules (graphopt.analysis.bindings), and this check makes that
    agreement a guarantee. Not modified: `module` is `lowered` itself.
    """
    from graphopt.analysis.extract import extract
    from graphopt.analysis.lower_bound import lower_bound
    from graphopt.passes.reorder import reorder

    before = lower_bound(extract(lowered["main"]).problem)
    record = {"method": "skipped", "lower_bound_before": before, "lower_bound_after": before}
    dag = read_dag(lowered["main"])
    if dag is None or dag.problem.num_nodes < 2:
        return RewriteResult(lowered, False, record)
    result = reorder(dag.problem)
    record.update(method=result.method, seconds=round(result.seconds, 4))
    if result.method == "original":
        return RewriteResult(lowered, False, record)
    candidate = lowered.clone()
    candidate.update_func(candidate.get_global_var("main"), write_order(lowered["main"], dag, result.order))
    after = lower_bound(extract(candidate["main"]).problem)
    if after >= before:
        record["method"] = f"{result.method} (not kept: extraction lower bound {after} >= {before})"
        return RewriteResult(lowered, False, record)
    record["lower_bound_after"] = after
    return RewriteResult(candidate, True, record)
