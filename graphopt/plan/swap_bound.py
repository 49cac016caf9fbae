"""A certified lower bound on the overhead of ANY swap + recompute plan (no TVM).

`overhead_lower_bound(sp)` solves a linear program whose every feasible point
is implied by every schedule the swap validator accepts; its optimum is thus
at most the simulated stall (copy waits + recompute kernels) of the best plan.
If it exceeds a target, no planner can meet that target under this cost model;
if it is far below a planner's figure, that planner has room.

Notation: steps 0..n-1 with nominal times d_j and starts S_j (S_n the end),
E_j = S_{j+1}. In a real (simulated) run step j starts at T_j = S_j + D_j.
Facts of the simulator used below (graphopt.plan.swap.simulate):
  (T1) T_0 = 0: no swap can be freed at step 0 and nothing is copied in yet.
  (T2) T_{j+1} >= T_j + d_j + R_j, R_j the recompute kernels run before step j;
       so D is nondecreasing, D_{j+1} >= D_j + R_j, and D_n is the stall.
  (T3) each direction has one engine: its copies never overlap in time, and
       each occupies it copy_seconds(buffer) (latency included).
Absence: a Swap is away on [free_at, load_at) with after < free_at < load_at <
before, so only on steps after+1..before-2; a Recompute on after+1..before-1.

Variables (continuous, >= 0), for over-budget steps k (live(k) > budget) only:
* Swap of gap g (buffer, after, before): s_g = number of copy-outs (and copy-ins)
  of g; F[g,k] = those freed by step k (free_at <= k), L[g,k] = those loaded by
  k (load_at <= k); away by swap at k = F - L. Facts: 0 <= L <= F <= s, F and L
  nondecreasing in k. Counts, not 0/1, so a gap swapped several times stays covered.
* Recompute of gap g: y_g = recomputes run (each costs r_g, the producer step's
  time, added at step before_g); z[g,k] <= y_g = away by recompute at k.
* One buffer is away at most once at k: (F - L)[g,k] + z[g,k] <= 1.
Constraints, each implied by every valid plan:
* Memory: sum_g size_g ((F - L)[g,k] + z[g,k]) >= live(k) - budget (validator).
* Delay (T1, T2): D_0 = 0, D_{j+1} >= D_j + sum_{g recomputed, before_g = j} r_g y_g.
* Copy-out engine, pair (a, k): every copy-out of a gap with after_g >= a that is
  freed by k was issued when step after_g ended (at T_{after_g} + d + R >=
  T_a + d_a + R_a >= E_a + D_a) and finished before T_k (step free_at <= k waits
  for it); by (T3) their durations add up within that window, whose length is at
  most T_k - E_a - D_a: sum c_g X[g,k] <= S_k - E_a + D_k - D_a, with X = F[g,k] while k <= before_g - 2 and X = s_g once the gap's
  swap range is over (then every copy-out of g is done by k).
* Copy-in engine, pair (k, c): every copy-in of a gap with before_g <= c still
  to be loaded after k (load_at > k) was issued at T_{load_at} >= T_{k+1} and
  done by T_{before_g} <= T_c: sum c_g (s_g - L[g,k]) <= S_c - E_k + D_c -
  D_{k+1}, with s_g - L = s_g for gaps whose `after` is >= k.
Only `after` values for a and `before` values for c are needed: any other a (c)
sees the same set of gaps as the next `after` value above it (the `before`
value below it) with a wider window, so its constraint is implied. Sums over
nested sets are chained through auxiliary variables to keep the LP sparse.
Candidate events are the validator's own: sp.gaps() (swappable buffers, gaps of
3+ steps) and sp.recompute_gaps() (recomputable producers whose inputs live
where the buffer is rebuilt); the rule that those inputs be resident then is
dropped (a relaxation, so chained recomputation is covered). Gaps that span no
over-budget step can only add cost, so leaving them out keeps the bound valid.
Objective: minimize D_n.
Sampled rows (`stride` > 1): the LP may keep only every stride-th over-budget step (and the
step of the largest excess) as its set of steps k: memory rows, F/L/z variables and engine
pairs then exist for those steps only. Each remaining constraint is one of the above, so
every valid plan still maps to a feasible point: a relaxation, valid but looser, and on
hundreds of steps it finishes where the full LP does not (`sampled_lower_bound` refines the
stride while time is left and keeps the largest bound that finished).
Why it is a bound: map any valid plan to a point of the LP (s, F, L, y, z its
own counts on candidate gaps, D its simulated delays). Every constraint above
then holds by (T1)-(T3) and the validator's rules, and D_n is the plan's stall;
so the LP optimum is at most that stall. The LP ignores the FIFO order, the copy-in waiting on
its copy-out and the contiguity of absence, so the bound may be loose, never
too high (up to the LP solver's tolerance, about 1e-9 of the step).
No plan can remove bytes no candidate covers: an infeasible LP means no
schedule fits the budget (bound = inf).
Rich model (SwapProblem.rich, boundary copy-ins, extends, chained rebuilds): a swap
may be away on after+1..before-1 of any idle gap of 2+ steps (F, L and the ranges
above end at before-1), and its copy-in, issued when step load_at starts or, at the
boundary, when step before-1 ends, is issued no earlier than E_k + D_k for any
k < load_at, so the copy-in window of pair (k, c) is S_c - E_k + D_c - D_k (c > k).
Every idle gap of a recomputable buffer is a candidate at its producer's time. With
`chains=False` the bytes and the kernels of the extends and rebuilds a chain needs are
left out (looser, still certified); by default graphopt.plan.swap_bound_chain adds them as
valid inequalities (inputs resident where a recompute runs: not away if live, else extended
or rebuilt, rebuilds priced and chained), which lifts transformer6 at 0.50x from 0.93% to 1.17%.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from ortools.linear_solver import pywraplp

from graphopt.errors import PlanError
from graphopt.plan.swap import Gap, SwapProblem, base_live_bytes
from graphopt.plan.swap_floor import rich_recompute_gaps, rich_swap_gaps

TIME_UNIT = 1e-6  # LP time in microseconds and bytes in MiB keep coefficients near 1
BYTE_UNIT = float(1 << 20)


@dataclass(frozen=True)
class OverheadBound:
    """`seconds` of stall every valid plan has at least; inf when none fits the budget."""

    seconds: float
    status: str  # "optimal", "bounded" (integer program stopped by time), "no-excess" (no step over), "infeasible"
    over_budget_steps: int
    solve_seconds: float
    removed_at_peak: dict = field(default_factory=dict, compare=False)  # (buffer, after, before, how) -> bytes
    stride: int = 1  # 1: every over-budget step is a row; more: the sampled relaxation of the docstring
    integer: bool = False  # the integer program's bound (graphopt.plan.swap_bound_integer), not the LP's


def overhead_lower_bound(sp: SwapProblem, time_limit: float = 120.0, stride: int = 1,
                         chains: bool = True, integer: bool = False) -> OverheadBound:
    """The LP bound of the module docstring for `sp` at its budget (`stride` > 1: sampled rows;
    `chains`: with the recompute-chain inequalities of graphopt.plan.swap_bound_chain; `integer`:
    the event counts integers, graphopt.plan.swap_bound_integer: status "bounded" when time ran
    out after a first integer point, the bound then the search's proven one)."""
    began = time.perf_counter()
    live = base_live_bytes(sp.problem, sp.num_steps)
    over = [int(k) for k in np.flatnonzero(live > sp.budget)]
    if not over:
        return OverheadBound(0.0, "no-excess", 0, time.perf_counter() - began)
    rows = sampled_steps(over, live, stride)
    if chains:
        from graphopt.plan.swap_bound_chain import ChainBoundLp  # it extends BoundLp below

        lp = ChainBoundLp(sp, rows, live, integer)
    else:
        lp = BoundLp(sp, rows, live, integer)
    status = lp.solve(time_limit)
    elapsed = time.perf_counter() - began
    if status == pywraplp.Solver.INFEASIBLE:
        return OverheadBound(float("inf"), "infeasible", len(over), elapsed, stride=stride, integer=integer)
    proven = {pywraplp.Solver.OPTIMAL: "optimal"}
    if integer:
        proven[pywraplp.Solver.FEASIBLE] = "bounded"
    if status not in proven:
        raise PlanError(f"swap bound {'integer program' if integer else 'LP'} ended with status {status} "
                        f"(time limit {time_limit} s?): no bound certified")
    return OverheadBound(max(0.0, lp.stall_seconds()), proven[status], len(over), elapsed,
                         lp.removed_at(rows[int(np.argmax(live[rows]))]), stride, integer)


def sampled_steps(over: list[int], live: np.ndarray, stride: int) -> list[int]:
    """Every `stride`-th over-budget step and the one with the largest excess, in order."""
    if stride < 1:
        raise ValueError(f"stride {stride}: must be >= 1")
    return sorted(set(over[::stride]) | {over[int(np.argmax(live[over]))]})


def sampled_lower_bound(sp: SwapProblem, time_limit: float = 120.0, strides: tuple[int, ...] = (32, 16, 8, 4, 2, 1),
                        chains: bool = True, integer: bool = False) -> OverheadBound:
    """The largest bound of the sampled LPs (coarse to fine; `integer`: of the integer programs,
    graphopt.plan.swap_bound_integer) that finish within `time_limit` in all.

    Why: every stride gives a valid bound (module docstring), the finer the tighter and the
    slower, and not smoothly so (transformer6 at 0.45x of the peak: every 32nd step 4 s, every
    16th not in 150 s); the full LP (stride 1) does not finish on that 600-step transformer in
    minutes. An infeasible one proves no plan fits. An integer program stopped by time still
    bounds ("bounded"), but a finer one would stop sooner in its search: none is tried after
    it. PlanError when none finished."""
    deadline, best = time.perf_counter() + time_limit, None
    for stride in strides:
        left = deadline - time.perf_counter()
        if left <= 0.5:
            break
        try:
            bound = overhead_lower_bound(sp, left, stride, chains, integer)
        except PlanError:
            break  # a finer stride would take longer still
        if bound.status not in ("optimal", "bounded"):
            return bound
        if best is None or bound.seconds > best.seconds:
            best = bound
        if bound.status == "bounded":
            break
    if best is None:
        kind = "integer program found a point" if integer else "LP finished"
        raise PlanError(f"no sampled swap bound {kind} in {time_limit} s: no bound certified")
    return best


class BoundLp:
    """Builds the LP once; one method per constraint family of the docstring."""

    def __init__(self, sp: SwapProblem, over: list[int], live: np.ndarray, integer: bool = False) -> None:
        """`integer`: the event counts (s, F, L, y, z and the chain rows' W, Q) are integers, as
        in every valid plan: a mixed-integer program (graphopt.plan.swap_bound_integer)."""
        self.sp, self.over, self.integer = sp, over, integer
        # SCIP for the integer program: HiGHS 1.12's MIP presolve claimed 0.203% "optimal" on the deep
        # ResNet at 0.66x of the peak where a plan of 0% maps to a feasible point (SCIP, and HiGHS
        # without presolve, say 0%); a bound above a valid plan is the one error a bound may not make
        self.solver = pywraplp.Solver.CreateSolver("SCIP" if integer else "HIGHS_LP")
        if not integer:  # HiGHS prints a banner on stdout at every solve; this option (set, though
            self.solver.SetSolverSpecificParametersAsString("output_flag=false")  # the call returns False)
        self.starts = sp.nominal_starts() / TIME_UNIT
        self.tail = 1 if sp.rich else 2  # a swap is away through step before - tail
        swaps, recomputes = (rich_swap_gaps(sp), rich_recompute_gaps(sp)) if sp.rich else (sp.gaps(),
                                                                                          sp.recompute_gaps())
        self.swaps = [g for g in swaps if _span(over, g.after + 1, g.before - self.tail)]
        self.recomputes = [g for g in recomputes if _span(over, g.after + 1, g.before - 1)]
        self._variables()
        self._chains()
        self._memory(live)
        self._delays()
        self._copy_out()
        self._copy_in()
        self.solver.Minimize(self.delay[sp.num_steps])

    def _variables(self) -> None:
        inf, lp = self.solver.infinity(), self.solver
        self.delay = [lp.NumVar(0.0, inf, f"D{j}") for j in range(self.sp.num_steps + 1)]
        lp.Add(self.delay[0] == 0)
        self.count, self.freed, self.loaded = {}, {}, {}
        for i, g in enumerate(self.swaps):
            self.count[g] = self._count(inf, f"s{i}")
            prev = None
            for k in _span(self.over, g.after + 1, g.before - self.tail):
                f, ld = self._count(inf, f"F{i}_{k}"), self._count(inf, f"L{i}_{k}")
                lp.Add(ld <= f)
                if prev is not None:
                    lp.Add(self.freed[g, prev] <= f)
                    lp.Add(self.loaded[g, prev] <= ld)
                self.freed[g, k], self.loaded[g, k], prev = f, ld, k
            lp.Add(self.freed[g, prev] <= self.count[g])  # F is nondecreasing: its last value is the largest
        self.runs, self.rebuilt = {}, {}
        for i, g in enumerate(self.recomputes):
            self.runs[g] = self._count(inf, f"y{i}")
            for k in _span(self.over, g.after + 1, g.before - 1):
                self.rebuilt[g, k] = self._count(inf, f"z{i}_{k}")
                lp.Add(self.rebuilt[g, k] <= self.runs[g])

    def _count(self, upper: float, name: str):
        """A variable that counts events: continuous in the LP, an integer in the integer program."""
        return (self.solver.IntVar if self.integer else self.solver.NumVar)(0.0, upper, name)

    def _chains(self) -> None:
        """Hook: variables and rows of the recompute chains (graphopt.plan.swap_bound_chain)."""

    def _extra_bytes(self, k: int) -> list:
        """Hook: (MiB coefficient, variable) terms resident at row k beyond the no-swap lifetimes
        (negative: they count against the bytes away)."""
        return []

    def _extra_seconds(self, j: int) -> list:
        """Hook: LP time (us) of kernels run before step j beyond the recomputes."""
        return []

    def _away(self, k: int) -> dict:
        """(buffer, after, before) -> list of (coefficient, variable) summing to 'away at k'."""
        terms: dict = {}
        for g in self.swaps:
            if (g, k) in self.freed:
                terms.setdefault(_key(g), []).extend([(1.0, self.freed[g, k]), (-1.0, self.loaded[g, k])])
        for g in self.recomputes:
            if (g, k) in self.rebuilt:
                terms.setdefault(_key(g), []).append((1.0, self.rebuilt[g, k]))
        return terms

    def _memory(self, live: np.ndarray) -> None:
        """Enough bytes away at every over-budget step; one buffer away at most once."""
        sizes = self.sp.sizes()
        for k in self.over:
            total = []
            for key, terms in self._away(k).items():
                self.solver.Add(sum(c * v for c, v in terms) <= 1.0)
                total += [(sizes[key[0]] / BYTE_UNIT * c, v) for c, v in terms]
            total += self._extra_bytes(k)
            self.solver.Add(sum(c * v for c, v in total) >= (int(live[k]) - self.sp.budget) / BYTE_UNIT)

    def _delays(self) -> None:
        """Delays never shrink; a recompute's kernel delays everything after its step."""
        extra: dict[int, list] = {}
        for g in self.recomputes:
            extra.setdefault(g.before, []).append(self.sp.recompute_seconds(g.buffer) / TIME_UNIT * self.runs[g])
        d = self.delay
        for j in range(self.sp.num_steps):
            self.solver.Add(d[j + 1] >= d[j] + sum(extra.get(j, [])) + sum(self._extra_seconds(j)))

    def _copy_out(self) -> None:
        """Pairs (a, k): copy-outs issued after step a ends and done by step k fit in that window."""
        by_after: dict[int, list[Gap]] = {}
        for g in self.swaps:
            by_after.setdefault(g.after, []).append(g)
        afters = sorted(by_after, reverse=True)
        for k in self.over:
            chained = None
            for a in afters:
                if a >= k:
                    continue
                load = sum(self._copy_units(g) * self._freed_by(g, k) for g in by_after[a])
                chained = self._chain(chained, load)
                window = self.starts[k] - self.starts[a + 1]
                self.solver.Add(chained <= window + self.delay[k] - self.delay[a])

    def _copy_in(self) -> None:
        """Pairs (k, c): copy-ins issued after step k and due by step c fit in that window."""
        by_before: dict[int, list[Gap]] = {}
        for g in self.swaps:
            by_before.setdefault(g.before, []).append(g)
        befores = sorted(by_before)
        for k in self.over:
            chained = None
            for c in befores:
                pending = [g for g in by_before[c] if k <= g.before - self.tail]
                if c <= k + (not self.sp.rich) or not pending:
                    continue
                load = sum(self._copy_units(g) * self._pending_after(g, k) for g in pending)
                chained = self._chain(chained, load)
                window = self.starts[c] - self.starts[k + 1]
                issued = self.delay[k] if self.sp.rich else self.delay[k + 1]  # see the module docstring
                self.solver.Add(chained <= window + self.delay[c] - issued)

    def _chain(self, previous, load):
        """A variable equal to previous + load: nested sums without repeating their terms."""
        total = self.solver.NumVar(0.0, self.solver.infinity(), "")
        self.solver.Add(total == load + (previous if previous is not None else 0.0))
        return total

    def _copy_units(self, g: Gap) -> float:
        return self.sp.copy_seconds(g.buffer) / TIME_UNIT

    def _freed_by(self, g: Gap, k: int):
        """Copy-outs of g finished by step k (g.after < k)."""
        return self.freed[g, k] if k <= g.before - self.tail else self.count[g]

    def _pending_after(self, g: Gap, k: int):
        """Copy-ins of g issued after step k (k <= g.before - tail)."""
        return self.count[g] - self.loaded[g, k] if k > g.after else self.count[g]

    def solve(self, time_limit: float) -> int:
        """HiGHS: on transformer-small at 0.50x of the peak the full LP (95 rows) takes 6 s, where
        GLOP's dual simplex did not finish every other row in 5 minutes."""
        self.solver.SetTimeLimit(int(time_limit * 1000))
        return self.solver.Solve()

    def stall_seconds(self) -> float:
        """The LP optimum or, for the integer program, its proven bound (valid before it finishes)."""
        objective = self.solver.Objective()
        return (objective.BestBound() if self.integer else objective.Value()) * TIME_UNIT

    def removed_at(self, k: int) -> dict:
        """What the LP optimum sends away at step k: (buffer, after, before, 'swap'|'recompute') -> bytes."""
        sizes, out = self.sp.sizes(), {}
        for g in self.swaps:
            if (g, k) in self.freed:
                away = self.freed[g, k].solution_value() - self.loaded[g, k].solution_value()
                if away > 1e-6:
                    out[(*_key(g), "swap")] = away * sizes[g.buffer]
        for g in self.recomputes:
            if (g, k) in self.rebuilt and self.rebuilt[g, k].solution_value() > 1e-6:
                out[(*_key(g), "recompute")] = self.rebuilt[g, k].solution_value() * sizes[g.buffer]
        return out


def _key(g: Gap) -> tuple[int, int, int]:
    return g.buffer, g.after, g.before


def _span(over: list[int], first: int, last: int) -> list[int]:
    """Over-budget steps in [first, last]."""
    lo, hi = np.searchsorted(over, first, "left"), np.searchsorted(over, last, "right")
    return over[lo:hi]
