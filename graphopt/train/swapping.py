"""Memory planning of a training step: placement, and under a budget, swaps first.

Sequence under `--memory-budget`:
    step costs (analytic roofline per kernel; see graphopt.analysis.cost)
    SwapProblem(extraction, costs, budget) -> swap planner -> SwapSchedule
    split lifetimes -> placement planner -> Placement
    if fragmentation pushed the arena over the budget, plan the swaps again
    for a budget lowered by the excess (a few rounds), then judge both plans
    with their validators; a plan either validator rejects is an error.
Budgets are bytes of arena, or a percentage of the no-swap arena.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from types import SimpleNamespace

import tvm
from tvm import relax

from graphopt.analysis.cost import DeviceModel, LinkModel, StepCosts, StepWork, analytic_costs, measured_costs
from graphopt.errors import InputError, PlanError
from graphopt.plan.placement import Placement
from graphopt.plan.problem import MemoryProblem
from graphopt.plan.swap import SwapProblem, SwapSchedule, simulate, split_problem
from graphopt.plan.swap_validator import validate_swaps
from graphopt.plan.validator import ValidationReport, validate

REFIT_ROUNDS = 4


@dataclass
class MemoryPlan:
    problem: MemoryProblem
    placement: Placement
    report: ValidationReport
    extraction_view: SimpleNamespace
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


def swap_problem(low, budget: int, link: LinkModel, device: DeviceModel | None = None,
                 measured: list[float] | None = None) -> tuple[SwapProblem, StepCosts]:
    """The swap problem of a lowered step: measured step times when given, else the roofline."""
    ex = low.extraction
    if measured is not None:
        if len(measured) != ex.problem.num_steps:
            raise PlanError(f"{len(measured)} measured step times for {ex.problem.num_steps} steps")
        costs = measured_costs(measured)
    else:
        costs = analytic_costs(step_work(low.lowered, ex.step_calls), device or DeviceModel())
    seconds = tuple(costs.seconds) + (0.0,) * max(0, ex.problem.num_steps - len(costs.seconds))
    return SwapProblem(ex.problem, ex.uses, seconds, budget, link, ex.swappable, ex.recompute_inputs), costs


def plan_memory(low, options, measured: list[float] | None = None, base: Placement | None = None) -> MemoryPlan:
    """The memory plan of a lowered step; `base` is the no-swap placement when already made."""
    from graphopt.passes.registry import get_planner

    ex = low.extraction
    planner = get_planner(options.planner)
    if base is None:
        base = planner.plan(ex.problem, time_limit=options.time_limit)
    view = SimpleNamespace(problem=ex.problem, output_bytes=ex.output_bytes, step_names=ex.step_names)
    if options.memory_budget is None:
        seconds = analytic_costs(step_work(low.lowered, ex.step_calls)).total
        record = {"budget_bytes": None, "noswap_arena_bytes": base.arena_bytes, "swaps": [], "recomputes": [],
                  "predicted_noswap_step_seconds": seconds, "predicted_step_seconds": seconds}
        return _checked(MemoryPlan(ex.problem, base, validate(ex.problem, base), view, record=record))
    link = LinkModel(options.link_bandwidth or LinkModel().bandwidth, options.link_latency or LinkModel().latency)
    budget = parse_budget(options.memory_budget, base.arena_bytes)
    sp, costs = swap_problem(low, budget, link, measured=measured)
    return _checked(_fit(sp, costs, base, planner, options, view))


def _fit(sp: SwapProblem, costs: StepCosts, base: Placement, planner, options, view) -> MemoryPlan:
    from graphopt.passes.swap_registry import get_swap_planner

    swapper = get_swap_planner(options.swap_planner)
    target = sp.budget
    for _ in range(REFIT_ROUNDS):
        schedule = swapper.plan(replace(sp, budget=target), time_limit=options.time_limit)
        split, origin = split_problem(sp, schedule.swaps, schedule.recomputes)
        placement = planner.plan(split, time_limit=options.time_limit)
        if placement.arena_bytes <= sp.budget:
            break
        target -= placement.arena_bytes - sp.budget
    report = validate_swaps(sp, schedule, placement.arena_bytes)
    if not report.valid:
        raise PlanError(f"swap plan by {schedule.planner} rejected: {report.errors[0]}")
    view = SimpleNamespace(problem=split, output_bytes=view.output_bytes, step_names=view.step_names)
    record = swap_record(sp, schedule, costs.source, base.arena_bytes)
    return MemoryPlan(split, placement, validate(split, placement), view, schedule, origin, record)


def swap_record(sp: SwapProblem, schedule: SwapSchedule, cost_source: str, noswap_arena: int) -> dict:
    """What plan.json keeps about swaps; `swap_stats` reads it back for `inspect`."""
    timeline = simulate(sp, schedule.swaps, schedule.recomputes)
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
    }


def _checked(plan: MemoryPlan) -> MemoryPlan:
    if not plan.report.valid:
        raise PlanError(f"planner {plan.placement.planner} produced an invalid plan: {plan.report.errors[0]}")
    return plan


def build_with_swaps(low, plan: MemoryPlan):
    """Swap calls into the program, then the arena rewrite, then codegen."""
    from graphopt.lowering.lower import build, finalize
    from graphopt.transforms.apply_placement import apply_placement
    from graphopt.transforms.insert_swaps import insert_swaps

    mod, buffer_vars = low.lowered, low.extraction.buffer_vars
    if plan.schedule is not None and (plan.schedule.swaps or plan.schedule.recomputes):
        segment_ids = {seg: bid for bid, seg in plan.origin.items()}
        ex = low.extraction
        producers = {b.id: (b.start, ex.step_calls[b.start]) for b in ex.problem.buffers if b.id in ex.recompute_inputs}
        mod, buffer_vars = insert_swaps(mod, buffer_vars, list(plan.schedule.swaps), segment_ids,
                                        list(plan.schedule.recomputes), producers)
    planned = apply_placement(mod, buffer_vars, plan.placement)
    return build(finalize(planned, low.target, stock=False), low.target)
