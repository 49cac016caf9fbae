"""Operator reordering: an execution order of a DAG with a lower memory peak.

The problem: kernels form a DAG (an edge wherever one reads what another
wrote); every tensor is live from its producer's step to its last consumer's
step, inclusive. Different topological orders give different peaks, and the
peak is the lower bound of every placement, so lowering it is the one way to
beat the lower bound itself. Graphs with parallel branches (Inception,
DenseNet, detection heads) are where orders differ.

Design:
- The memory after a set S of kernels has run does not depend on their order:
  live(S) = bytes of tensors produced in S that a kernel outside S still reads.
  Running v next costs live(S) + out(v) during v. So the best peak is a
  shortest-path-like DP over down-sets S (sets closed under predecessors):
  best(S + v) = min over v of max(best(S), live(S) + out(v)). Exact, and
  tractable while the number of down-sets is small (narrow DAGs); a state cap
  stops it before it explodes.
- Past the cap, a greedy list scheduler: among ready kernels, run the one that
  leaves the least memory live afterwards (frees the most, allocates the
  least), ties by the original order. Cheap and good on wide graphs.
- Either way the result is compared with the original order by the same peak
  function; the caller keeps whichever is lower (reordering never makes the
  peak worse).
Planners never see TVM: this works on `ScheduleProblem` alone.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

DEFAULT_STATE_CAP = 50_000


@dataclass(frozen=True)
class DagTensor:
    """A tensor in the arena: written by `producer`, read by `consumers` (node ids)."""

    size: int
    producer: int
    consumers: frozenset[int]


@dataclass(frozen=True)
class ScheduleProblem:
    """Nodes 0..n-1 in their original order; `preds[v]` must run before v."""

    preds: tuple[frozenset[int], ...]
    tensors: tuple[DagTensor, ...]

    @property
    def num_nodes(self) -> int:
        return len(self.preds)


@dataclass(frozen=True)
class ReorderResult:
    order: tuple[int, ...]
    peak: int
    original_peak: int
    method: str  # "exact", "greedy" or "original"
    seconds: float


def peak_of_order(problem: ScheduleProblem, order: tuple[int, ...] | list[int]) -> int:
    """Max over steps of the bytes live, tensors live from producer to last reader."""
    position = {node: i for i, node in enumerate(order)}
    delta = [0] * (len(order) + 1)
    for t in problem.tensors:
        start = position[t.producer]
        end = max((position[c] for c in t.consumers), default=start)
        delta[start] += t.size
        delta[end + 1] -= t.size
    peak = live = 0
    for d in delta[:-1]:
        live += d
        peak = max(peak, live)
    return peak


def is_topological(problem: ScheduleProblem, order) -> bool:
    seen: set[int] = set()
    for node in order:
        if not problem.preds[node] <= seen:
            return False
        seen.add(node)
    return len(seen) == problem.num_nodes == len(order)


class _Tables:
    """Per-node tensor lists the schedulers look up in their inner loops."""

    def __init__(self, problem: ScheduleProblem) -> None:
        n = problem.num_nodes
        self.out_bytes = [0] * n
        self.reads: list[list[int]] = [[] for _ in range(n)]
        self.succs: list[list[int]] = [[] for _ in range(n)]
        for v, preds in enumerate(problem.preds):
            for u in preds:
                self.succs[u].append(v)
        for index, t in enumerate(problem.tensors):
            self.out_bytes[t.producer] += t.size
            for c in t.consumers:
                self.reads[c].append(index)
        self.dead_on_arrival = [0] * n  # produced and never read: freed right after
        for t in problem.tensors:
            if not t.consumers:
                self.dead_on_arrival[t.producer] += t.size


def _freed_after(problem: ScheduleProblem, tables: _Tables, v: int, done_mask: int) -> int:
    """Bytes released once v has run, given the nodes in done_mask (v included)."""
    freed = tables.dead_on_arrival[v]
    for index in tables.reads[v]:
        t = problem.tensors[index]
        if all(done_mask >> c & 1 for c in t.consumers):
            freed += t.size
    return freed


def exact_order(problem: ScheduleProblem, state_cap: int = DEFAULT_STATE_CAP) -> tuple[list[int], int] | None:
    """Minimum-peak order by DP over down-sets; None when more than state_cap states."""
    tables = _Tables(problem)
    n = problem.num_nodes
    pred_mask = [sum(1 << u for u in preds) for preds in problem.preds]
    layer = {0: (0, 0, None, None)}  # mask -> (peak, live, parent mask, last node)
    history: list[dict] = []
    states = 0
    for _ in range(n):
        nxt: dict[int, tuple] = {}
        for mask, (peak, live, _, _) in layer.items():
            for v in range(n):
                if mask >> v & 1 or pred_mask[v] & ~mask:
                    continue
                new_mask = mask | 1 << v
                during = live + tables.out_bytes[v]
                cand = (max(peak, during), during - _freed_after(problem, tables, v, new_mask), mask, v)
                if new_mask not in nxt or cand[0] < nxt[new_mask][0]:
                    nxt[new_mask] = cand
        states += len(nxt)
        if states > state_cap:
            return None
        history.append(layer)
        layer = nxt
    full = (1 << n) - 1
    peak = layer[full][0]
    order, mask, current = [], full, layer
    for previous in reversed(history):
        _, _, parent, v = current[mask]
        order.append(v)
        mask, current = parent, previous
    return order[::-1], peak


def greedy_order(problem: ScheduleProblem) -> list[int]:
    """List scheduling: run the ready node that leaves the least live memory."""
    tables = _Tables(problem)
    n = problem.num_nodes
    waiting = [len(p) for p in problem.preds]
    ready = {v for v in range(n) if waiting[v] == 0}
    done_mask, order = 0, []
    while ready:
        def net_growth(v: int) -> tuple[int, int]:
            return (tables.out_bytes[v] - _freed_after(problem, tables, v, done_mask | 1 << v), v)

        v = min(ready, key=net_growth)
        ready.remove(v)
        order.append(v)
        done_mask |= 1 << v
        for s in tables.succs[v]:
            waiting[s] -= 1
            if waiting[s] == 0:
                ready.add(s)
    return order


def reorder(problem: ScheduleProblem, state_cap: int = DEFAULT_STATE_CAP) -> ReorderResult:
    """The lowest-peak order found (exact when the DAG is narrow enough, else
    greedy), or the original order when neither beats it."""
    began = time.perf_counter()
    original = list(range(problem.num_nodes))
    original_peak = peak_of_order(problem, original)
    found = exact_order(problem, state_cap)
    if found is not None:
        order, method = found[0], "exact"
    else:
        order, method = greedy_order(problem), "greedy"
    peak = peak_of_order(problem, order)
    if peak >= original_peak:
        order, peak, method = original, original_peak, "original"
    return ReorderResult(tuple(order), peak, original_peak, method, time.perf_counter() - began)
