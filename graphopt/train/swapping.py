"""Memory planning of a training step: placement, and under a budget, swaps first.

Sequence under `--memory-budget`:
    step costs (analytic roofline per kernel; see graphopt.analysis.cost)
    SwapProblem(extraction, costs, budget) -> swap planner -> SwapSchedule
    split lifetimes -> placement planner -> Placement
    if fragmentation pushed the arena over the budget, plan the swaps again
    for a target lowered by the excess, never below the model's feasibility
    floor (a few rounds), keeping the least arena; then judge both plans with
    their validators; a plan either validator rejects is an error.
Budgets are bytes of arena, or a percentage of the no-swap arena.
`options.swap_model` picks the swap model: "rich" (the default: boundary copy-ins,
extends, chained rebuilds; graphopt.plan.swap_rich) or "plain". The validator judges
the rich schedule; the program runs its lowered form (`executable`: rebuilds as
recomputes), which the CUDA engine orders correctly as it is (a copy-in waits for
every kernel issued before it), and placement sees the resident segments of both.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import tvm
from tvm import relax

from graphopt.analysis.cost import DeviceModel, LinkModel, StepCosts, StepWork, analytic_costs, measured_costs
from graphopt.errors import InputError, PlanError
from graphopt.plan.placement import Placement
from graphopt.plan.problem import MemoryProblem
from graphopt.plan.swap import SwapProblem, SwapSchedule, simulate
from graphopt.plan.swap_floor import feasibility_floor
from graphopt.plan.swap_rich import executable, rich_split_problem
from graphopt.plan.swap_validator import validate_swaps
from graphopt.train.budget import below_floor_message, is_min, least_fitting

REFIT_ROUNDS = 4
PLAIN_GOOD_ENOUGH = 0.005  # of the no-swap step: a plain schedule this good is kept without a rich search


@dataclass(frozen=True)
class MemoryPlan:
    """A placement of `problem`: the extracted one, or under swaps its split lifetimes
    (`origin` maps each split segment to its buffer). `schedule` is what the program
    runs (extends and rebuilds lowered, graphopt.plan.swap_rich.executable); `record`
    goes into plan.json and keeps the validated schedule."""

    problem: MemoryProblem
    placement: Placement
    schedule: SwapSchedule | None = None
    origin: dict = field(default_factory=dict)
    record: dict = field(default_factory=dict)


def parse_budget(text: str, noswap_bytes: int) -> int:
    """'123456' bytes or '66%' of the no-swap arena."""
    try:
        if text.strip().endswith("%"):
            return int(noswap_bytes * float(text.strip()[:-1]) / 100.0)
        return int(float(text))
    except ValueError:
        raise InputError(f"--memory-budget {text!r}: expected BYTES or PERCENT%") from None


def step_work(mod: tvm.IRModule, calls: list) -> list[StepWork]:
    """FLOPs (TVM's TIR estimate) and bytes touched (tensor args) of every step."""
    from tvm.s_tir.analysis import estimate_tir_flops

    work = []
    for call in calls:
        nbytes = sum(_tensor_bytes(a) for a in call.args)
        flops = 0.0
        if isinstance(call.op, tvm.ir.GlobalVar) and isinstance(mod[call.op], tvm.tirx.PrimFunc):
            try:
                flops = float(estimate_tir_flops(tvm.IRModule({"main": mod[call.op]})))
            except Exception:  # noqa: BLE001  (the estimator refuses some loops; bytes still bound the time)
                flops = 0.0
        work.append(StepWork(flops, float(nbytes)))
    return work


def _tensor_bytes(arg) -> int:
    ty = getattr(arg, "ty", None)
    if not isinstance(ty, relax.TensorType) or ty.shape is None:
        return 0
    count = 1
    for d in ty.shape.values:
        count *= int(d) if isinstance(d, tvm.tirx.IntImm) else 1
    return count * ((tvm.DataType(str(ty.dtype)).bits + 7) // 8)


def swap_problem(lowered: tvm.IRModule, ex, budget: int, link: LinkModel, device: DeviceModel | None = None,
                 measured: list[float] | None = None, rich: bool = True) -> tuple[SwapProblem, StepCosts]:
    """The swap problem of a lowered step (`ex` its Extraction): measured step times
    when given, else the roofline."""
    if measured is not None:
        if len(measured) != ex.problem.num_steps:
            raise PlanError(f"{len(measured)} measured step times for {ex.problem.num_steps} steps")
        costs = measured_costs(measured)
    else:
        costs = analytic_costs(step_work(lowered, ex.step_calls), device or DeviceModel())
    seconds = tuple(costs.seconds) + (0.0,) * max(0, ex.problem.num_steps - len(costs.seconds))
    return SwapProblem(ex.problem, ex.uses, seconds, budget, link, ex.swappable, ex.recompute_inputs, rich), costs


def plan_swaps(lowered: tvm.IRModule, ex, base: Placement, options, measured: list[float] | None = None) -> MemoryPlan:
    """The memory plan of a lowered step given its no-swap placement `base`: with no
    budget, `base` and the predicted step time; under a budget, swaps first."""
    if options.memory_budget is None:
        seconds = analytic_costs(step_work(lowered, ex.step_calls)).total
        record = {"budget_bytes": None, "noswap_arena_bytes": base.arena_bytes, "swaps": [], "recomputes": [],
                  "predicted_noswap_step_seconds": seconds, "predicted_step_seconds": seconds}
        return MemoryPlan(ex.problem, base, record=record)
    link = LinkModel(options.link_bandwidth or LinkModel().bandwidth, options.link_latency or LinkModel().latency)
    if is_min(options.memory_budget):
        return _fit_least(lowered, ex, base, options, link, measured)
    budget = parse_budget(options.memory_budget, base.arena_bytes)
    sp, costs = swap_problem(lowered, ex, budget, link, measured=measured, rich=_rich(options))
    floor = feasibility_floor(sp)
    if budget < floor.bytes:
        raise PlanError(below_floor_message(budget, floor, base.arena_bytes, _step_name(ex, floor.step),
                                            lambda b: _buffer_name(ex, b)))
    try:
        return _fit(sp, costs, base, options)
    except PlanError as exc:
        raise PlanError(f"{exc}; the model's floor is {floor.bytes:,} bytes: try a budget between it and "
                        f"{base.arena_bytes:,}, or --memory-budget min") from None


def _fit_least(lowered: tvm.IRModule, ex, base: Placement, options, link: LinkModel,
               measured: list[float] | None) -> MemoryPlan:
    """`--memory-budget min`: the least budget whose plan fits, from the floor up (graphopt.train.budget)."""
    sp, costs = swap_problem(lowered, ex, base.arena_bytes, link, measured=measured, rich=_rich(options))
    floor = feasibility_floor(sp)
    plan, probes = least_fitting(lambda budget: _fit(replace(sp, budget=budget), costs, base, options),
                                 lambda plan: plan.placement.arena_bytes, floor.bytes, base.arena_bytes)
    search = {"requested": "min", "floor_bytes": floor.bytes, "binding_step": floor.step,
              "binding_kernel": _step_name(ex, floor.step), "probes": probes}
    return replace(plan, record={**plan.record, "budget_search": search})


def _step_name(ex, step: int) -> str:
    return ex.step_names[step] if step < len(ex.step_names) else f"step {step}"


def _buffer_name(ex, buffer: int) -> str:
    var = ex.buffer_vars.get(buffer)
    return var.name if var is not None else f"buffer {buffer}"


def _rich(options) -> bool:
    return getattr(options, "swap_model", "rich") == "rich"


@dataclass(frozen=True)
class _Placed:
    """One swap schedule placed on its split lifetimes."""

    schedule: SwapSchedule
    split: MemoryProblem
    origin: dict
    placement: Placement


def _fit(sp: SwapProblem, costs: StepCosts, base: Placement, options) -> MemoryPlan:
    """Swaps, then placement on the split lifetimes; the least arena over a few rounds.

    Why rounds: fragmentation may push the arena over the budget although the live bytes fit;
    then the swaps are planned again for a lower target (`_lowering`). Never below the
    model's feasibility floor: no schedule exists there, and asking for one turned budgets the
    model meets into errors (the rich model's one-step rebuild segments fragment more). Each
    round places its candidates (plain and rich for "ours") best stall first; the first that
    fits wins, else the least arena seen is kept, and if none fits it is a one-line PlanError."""
    from graphopt.passes.registry import get_planner
    from graphopt.passes.swap_registry import get_swap_planner

    planner, swapper = get_planner(options.planner), get_swap_planner(options.swap_planner)
    floor = feasibility_floor(sp).bytes
    target, best, rounds = sp.budget, None, 0
    while rounds < REFIT_ROUNDS:
        placed = _round(sp, target, planner, swapper, options, first=rounds == 0)
        rounds += 1
        if placed is None:
            break
        if best is None or placed.placement.arena_bytes < best.placement.arena_bytes:
            best = placed
        if best.placement.arena_bytes <= sp.budget:
            break
        lowered = max(floor, target - _lowering(sp, placed.placement.arena_bytes - sp.budget, rounds))
        if lowered >= target:
            break
        target = lowered
    if best.placement.arena_bytes > sp.budget:
        raise PlanError(f"no placement fits the budget of {sp.budget:,} bytes: the least arena of {rounds} swap "
                        f"plan(s) (targets down to {target:,} bytes, the model's floor {floor:,}) is "
                        f"{best.placement.arena_bytes:,} bytes")
    report = validate_swaps(sp, best.schedule, best.placement.arena_bytes)
    if not report.valid:
        raise PlanError(f"swap plan by {best.schedule.planner} rejected: {report.errors[0]}")
    return MemoryPlan(best.split, best.placement, executable(sp, best.schedule), best.origin,
                      swap_record(sp, best.schedule, costs.source, base.arena_bytes))


def _lowering(sp: SwapProblem, excess: int, rounds: int) -> int:
    """How far the next round lowers the target: the excess, at least one alignment unit, doubled
    each round. Why: an excess of a few bytes is alignment padding; lowering by it alone left the
    schedule, and so the arena, as they were (the test transformer at 60%: 7 bytes over in four
    rounds)."""
    unit = max((b.alignment for b in sp.problem.buffers), default=1)
    return max(excess, unit) * 2 ** (rounds - 1)


def _round(sp: SwapProblem, target: int, planner, swapper, options, first: bool) -> _Placed | None:
    """The first candidate schedule for `target` whose arena fits `sp.budget`, else the one with
    the least arena; None when no schedule reaches `target` (an error only in the first round)."""
    try:
        schedules = model_schedules(replace(sp, budget=target), swapper, options.swap_planner, options.time_limit)
    except PlanError:
        if first:
            raise
        return None
    least = None
    for schedule in schedules:
        split, origin = rich_split_problem(sp, schedule)
        placed = _Placed(schedule, split, origin, planner.plan(split, time_limit=options.time_limit))
        if placed.placement.arena_bytes <= sp.budget:
            return placed
        if least is None or placed.placement.arena_bytes < least.placement.arena_bytes:
            least = placed
    return least


def model_schedules(sp: SwapProblem, swapper, planner: str, time_limit: float) -> list[SwapSchedule]:
    """The swap schedules to place, least stall first: under the rich model, for "ours", the plain
    model's search and the rich one's, each given the full time limit (the plain one alone when it
    hides nearly everything); the LP rounding (passes/swap_lp_round.py) only where both find nothing.
    benchmarks.swap's "ours" is the first of these. The rich search starts from the plain one's
    schedule (SwapCpSat.plan's `starts`) instead of running the plain covering model again.

    Why both: the rich search splits its time between stages, and with 10 s on the 6-layer
    transformer it found 1.0-2.0% stall at 0.66x of the peak where the plain search, with all
    the time, finds 0.255%; at 0.50x the rich search is far better (10.6% against 25.9%). A plain
    schedule is a valid rich one, so the better of the two is never worse than either model
    alone; the other is kept for placement (a rich schedule's one-step rebuild segments may
    fragment the arena where the plain one fits). The cost is up to twice the planning time.

    Why the LP rounding only then: it starts from the certified bound's optimum, but it lost to the
    searches at every budget measured (swap-lp-round-2026-12-07: 12-15% against 9-12% on the 6-layer
    transformer at 0.50x, 2-9% against 0-0.7% on the deep ResNet); at the ResNet's feasibility floor
    (0.174x) it fits where the rich search finds nothing. As a third search everywhere it would add a
    third time limit to every compile for no gain."""
    from graphopt.passes.swap_registry import LP_ROUND, get_swap_planner
    from graphopt.passes.swap_singa import InfeasibleBudget

    if not sp.rich or planner != "ours":
        return [swapper.plan(sp, time_limit=time_limit)]
    found, refusal = [], None
    try:
        found.append(swapper.plan(replace(sp, rich=False), time_limit=time_limit))
    except InfeasibleBudget:  # below the plain model's floor: only rich actions fit (the point of them)
        pass
    if found and _stall(sp, found[0]) <= PLAIN_GOOD_ENOUGH * sum(sp.step_seconds):
        return found
    try:
        found.append(swapper.plan(sp, time_limit=time_limit, starts=tuple(found)))
    except InfeasibleBudget as exc:
        refusal = exc
    if not found:  # both searches found nothing: the LP rounding's start may still fit (see above)
        try:
            found.append(get_swap_planner(LP_ROUND).plan(sp, time_limit=time_limit))
        except InfeasibleBudget:
            raise refusal from None  # the rich search's refusal names the binding step
    return sorted(found, key=lambda schedule: _stall(sp, schedule))


def _stall(sp: SwapProblem, schedule: SwapSchedule) -> float:
    return simulate(sp, schedule.swaps, schedule.recomputes, rebuilds=schedule.rebuilds).stall


def swap_record(sp: SwapProblem, schedule: SwapSchedule, cost_source: str, noswap_arena: int) -> dict:
    """What plan.json keeps about swaps; `swap_stats` reads it back for `inspect`."""
    timeline = simulate(sp, schedule.swaps, schedule.recomputes, rebuilds=schedule.rebuilds)
    sizes = sp.sizes()
    return {
        "budget_bytes": int(sp.budget),
        "noswap_arena_bytes": int(noswap_arena),
        "swap_planner": schedule.planner,
        "swap_planner_seconds": round(schedule.seconds, 4),
        "cost_source": cost_source,
        "link": {"bandwidth": sp.link.bandwidth, "latency": sp.link.latency},
        "step_seconds": [float(c) for c in sp.step_seconds],
        "predicted_noswap_step_seconds": float(sum(sp.step_seconds)),
        "predicted_step_seconds": float(timeline.total),
        "swaps": [{"buffer": s.buffer, "after": s.after, "free_at": s.free_at, "load_at": s.load_at,
                   "before": s.before, "bytes": int(sizes[s.buffer])} for s in schedule.swaps],
        "recomputes": [{"buffer": r.buffer, "after": r.after, "before": r.before, "bytes": int(sizes[r.buffer]),
                        "seconds": sp.recompute_seconds(r.buffer)} for r in schedule.recomputes],
        "swap_model": "rich" if sp.rich else "plain",
        "uses_rich_actions": bool(schedule.rebuilds or schedule.extends
                                  or any(s.load_at == s.before for s in schedule.swaps)),
        "rebuilds": [{"buffer": r.buffer, "at": r.at, "bytes": int(sizes[r.buffer]),
                      "seconds": sp.recompute_seconds(r.buffer)} for r in schedule.rebuilds],
        "extends": [{"buffer": e.buffer, "to": e.to, "bytes": int(sizes[e.buffer])} for e in schedule.extends],
    }
