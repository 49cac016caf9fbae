"""Recompute-chain inequalities for the LP bound (graphopt.plan.swap_bound; no TVM).

Why: the base LP lets a recompute run for its producer's time alone and drops the rule
that the producer's inputs be resident where it runs. On the 6-layer transformer that
prices a 64 MiB ReLU output at 71 us where every valid plan pays 763 us (its input, the
FFN matmul output, is dead by then: extended at 64 MiB per over-budget step, or rebuilt
by a 692 us matmul), so the bound said 0.93% at 0.50x of the peak against ~9% planned.

The rows added here, each implied by every schedule the swap validator accepts (so the LP
stays a relaxation and its optimum a lower bound). A recompute of gap g runs at t =
before_g; y_g (its count) is 0 or 1 in a valid plan (one event per idle gap). For every
input i its producer reads at t, and in turn for the inputs of a rebuilt input
("need(i, t) <= v": i must be resident at t whenever the 0/1 quantity v is 1):
* i live at t (start_i <= t < end_i): i is not away at t: away_i(t) + v <= 1, written where
  t is an LP row (elsewhere away_i(t) has no variable and the row is left out: looser);
* i dead at t (t >= end_i, rich model): i is extended through t or rebuilt at t:
  v <= W[i,t] + Q[i,t]. W[i,k] (0..1, "extended through k") is nonincreasing in k (one extend
  per buffer, resident from end_i through `to`) and adds size_i at every row k >= end_i;
  Q[i,t] (0..1, "rebuilt at t": at most one rebuild per buffer and step) adds size_i at
  row t, the producer's time r_i to the delay of step t (the simulator runs rebuild
  kernels before their step), and need(j, t) <= Q[i,t] for i's own inputs j. A buffer
  whose producer cannot be run again has no Q. Rebuilds shared by several recomputes at
  one step are one Q (one rebuild serves them all), so nothing is counted twice.
Chains deeper than MAX_DEPTH rebuilds keep no rows past it (looser, still valid).
"""

from __future__ import annotations

from graphopt.plan.swap import SwapProblem
from graphopt.plan.swap_bound import BYTE_UNIT, TIME_UNIT, BoundLp

MAX_DEPTH = 8


class ChainBoundLp(BoundLp):
    """The base LP plus the chain rows of the module docstring."""

    def __init__(self, sp: SwapProblem, over: list[int], live, integer: bool = False) -> None:
        self.ends = {b.id: b.end for b in sp.problem.buffers}
        self.births = {b.id: b.start for b in sp.problem.buffers}
        super().__init__(sp, over, live, integer)

    def _chains(self) -> None:
        self.rebuilds: dict[tuple[int, int], object] = {}  # (buffer, step) -> Q
        self.kept_for: dict[int, dict[int, list]] = {}  # dead buffer -> step -> [v needing it there]
        self.rows = set(self.over)
        self.gaps_of: dict[int, tuple[list, list]] = {}  # buffer -> (its swap gaps, its recompute gaps)
        for n, gaps in enumerate((self.swaps, self.recomputes)):
            for g in gaps:
                self.gaps_of.setdefault(g.buffer, ([], []))[n].append(g)
        for g in self.recomputes:
            for i in self.sp.recompute_inputs.get(g.buffer, ()):
                self._need(i, g.before, self.runs[g], 0)
        self._y_at_most_one()
        self._extends()
        sizes, self.bytes_at, self.seconds_at = self.sp.sizes(), {}, {}
        for (i, k), x in (*self.extended.items(), *self.rebuilds.items()):
            self.bytes_at.setdefault(k, []).append((-sizes[i] / BYTE_UNIT, x))
        for (i, k), q in self.rebuilds.items():
            self.seconds_at.setdefault(k, []).append(self.sp.recompute_seconds(i) / TIME_UNIT * q)

    def _y_at_most_one(self) -> None:
        """y_g <= 1 (one event per idle gap): what makes `v <= W + Q` a 0/1 implication."""
        for y in self.runs.values():
            self.solver.Add(y <= 1.0)

    def _need(self, i: int, t: int, v, depth: int) -> None:
        """Rows for 'buffer i is resident at step t whenever v is 1'."""
        if self.births[i] <= t < self.ends[i]:
            away = self._away_of(i, t)
            if away:
                self.solver.Add(sum(c * x for c, x in away) + v <= 1.0)
            return
        if not self.sp.rich or depth >= MAX_DEPTH:
            return
        self.kept_for.setdefault(i, {}).setdefault(t, []).append(v)
        if i in self.sp.recompute_inputs and (i, t) not in self.rebuilds:
            q = self._count(1.0, f"Q{i}_{t}")
            self.rebuilds[i, t] = q
            for j in self.sp.recompute_inputs[i]:
                self._need(j, t, q, depth + 1)

    def _away_of(self, i: int, t: int) -> list:
        """(coefficient, variable) terms of 'buffer i away at step t' (empty where t is no row)."""
        if t not in self.rows:
            return []
        swaps, recomputes = self.gaps_of.get(i, ([], []))
        out = [term for g in swaps if (g, t) in self.freed
               for term in ((1.0, self.freed[g, t]), (-1.0, self.loaded[g, t]))]
        return out + [(1.0, self.rebuilt[g, t]) for g in recomputes if (g, t) in self.rebuilt]

    def _extends(self) -> None:
        """W[i,k] on the rows >= end_i and the steps where i is needed; v <= W + Q there."""
        self.extended: dict[tuple[int, int], object] = {}
        for i, needs in self.kept_for.items():
            steps = sorted({k for k in self.over if k >= self.ends[i]} | set(needs))
            previous = None
            for k in steps:
                w = self._count(1.0, f"W{i}_{k}")
                if previous is not None:
                    self.solver.Add(w <= previous)
                self.extended[i, k], previous = w, w
            for t, vs in needs.items():
                q = self.rebuilds.get((i, t))
                for v in vs:
                    self.solver.Add(v <= self.extended[i, t] + (q if q is not None else 0.0))

    def _extra_bytes(self, k: int) -> list:
        return self.bytes_at.get(k, [])

    def _extra_seconds(self, j: int) -> list:
        return self.seconds_at.get(j, [])

