"""Swap benchmark: training steps of real architectures under shrinking memory budgets.

For each model (SqueezeNet from the onnx package's light models at 224x224,
batch 32; a 4-layer transformer encoder, batch 32 x 256 tokens x 512; a
6-layer MLP, batch 8192 x 2048; a ResNet with 21 convolutions, batch 32 at
32x32, widths 64-128-256; a 6-layer transformer encoder at the 4-layer one's
sizes) the training step is lowered and extracted once
(sizes of real training runs: the memory is activations, not weights); the
cost model gives step times (analytic roofline, H100 fp32 effective figures)
and the PCIe 5 x16 link. Budgets sweep from 100% of the no-swap peak (max live
bytes) down in 5% steps, plus 66% and 55%, until no strategy fits. Every
strategy's schedule (ours, SINGA's six, Capuchin's hybrid, recomputation
alone) goes through the swap validator; the overhead is its simulated time
over the no-swap step time (copy stalls plus recompute kernels). Beside them,
`bound` is a certified lower bound on the overhead of ANY valid plan: the larger of
the LP's (graphopt.plan.swap_bound) and its integer version's
(graphopt.plan.swap_bound_integer, marked "int"): a target below it is out of reach under this cost
model, and the distance from ours to it is all the room a better planner has.
Per model, above its table: the largest step working set (no model of swapping
can go below it), the swap model's feasibility floor (graphopt.plan.swap_floor)
and the least budget ours fits (the `--memory-budget min` search).
Output: a markdown table, JSON, and a plot of memory vs overhead.

`--rich` plans, validates and bounds under the rich swap model (boundary copy-ins,
extends, chained rebuilds: graphopt.plan.swap_rich); `--fractions` picks budgets;
`--step-costs measured` times every kernel of a no-swap build on this machine instead of
the roofline (what `graphopt compile --train --step-costs measured` plans with).

    python -m benchmarks.swap [--json FILE] [--plot FILE] [--time-limit S] [--models a,b] [--rich]
                              [--step-costs analytic|measured]
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from datetime import date
from pathlib import Path

from benchmarks.outputs import RESULTS, unused
from graphopt.errors import PlanError
from graphopt.passes.swap_registry import SWAP_PLANNERS, get_swap_planner
from graphopt.passes.swap_singa import InfeasibleBudget
from graphopt.plan.swap import SwapProblem, SwapSchedule, base_live_bytes, hidden_swap_floor
from graphopt.plan.swap_bound_integer import certified_lower_bound
from graphopt.plan.swap_floor import feasibility_floor, step_working_set
from graphopt.plan.swap_validator import validate_swaps
from graphopt.train.budget import least_fitting
from graphopt.train.swapping import model_schedules

FRACTIONS = sorted({round(1.0 - 0.05 * k, 2) for k in range(12)} | {0.66, 0.55}, reverse=True)


def models() -> dict:
    """Every network the swap benchmarks know; the sweep runs DEFAULT_MODELS unless told.
    `-small` ones are for the exact baseline (benchmarks.swap_exact), which cannot go deeper."""
    from graphopt.train import models as m

    return {
        "squeezenet": lambda: (m.light_cnn("squeezenet", size=224, batch=32), {}),
        "transformer": lambda: (m.transformer(batch=32, seq=256, dim=512, heads=8, layers=4, classes=10), {}),
        "mlp": lambda: (m.mlp(batch=8192, features=1024, hidden=(2048,) * 6, classes=10), {}),
        # 21 convolutions (stem, 3 stages x 3 basic blocks, 2 projections), BN as scale + shift
        "resnet": lambda: (m.resnet(batch=32, size=32, widths=(64, 128, 256), blocks=3, classes=10), {}),
        "transformer6": lambda: (m.transformer(batch=32, seq=256, dim=512, heads=8, layers=6, classes=10), {}),
        "resnet-small": lambda: (m.resnet(batch=8, size=32, widths=(16, 32), blocks=1, classes=10), {}),
        "transformer-small": lambda: (m.transformer(batch=8, seq=64, dim=128, heads=4, layers=2, classes=10), {}),
    }


MODEL_NAMES = {False: "plain", True: "rich (boundary copy-ins, extends, chained rebuilds)"}
DEFAULT_MODELS = ("squeezenet", "transformer", "mlp", "resnet", "transformer6")


def problem_of(name: str, rich: bool = False, step_costs: str = "analytic") -> SwapProblem:
    """`name`'s training step as a swap problem; with `step_costs` "measured", its step times are
    every kernel timed on this machine (a no-swap build run here: the compile's `profile` stage)."""
    from graphopt.analysis.cost import LinkModel
    from graphopt.train import TrainOptions, lower_train_model
    from graphopt.train.swapping import swap_problem

    model, shapes = models()[name]()
    if step_costs == "measured":
        from graphopt.compiler import CompileState, run_stages

        options = TrainOptions(input_shapes=shapes, memory_budget="100%", step_costs="measured")
        low = run_stages(CompileState(model, Path("."), options), until="profile")
    else:
        low = lower_train_model(model, TrainOptions(input_shapes=shapes))
    sp, _costs = swap_problem(low.lowered, low.extraction, 0, LinkModel(), measured=low.measured, rich=rich)
    return sp


def sweep(sp: SwapProblem, time_limit: float, bound_time: float = 600.0, fractions=FRACTIONS) -> list[dict]:
    peak = int(base_live_bytes(sp.problem, sp.num_steps).max())
    rows = []
    for fraction in fractions:
        row = {"fraction": fraction, "budget": int(peak * fraction)}
        for name in SWAP_PLANNERS:
            began = time.perf_counter()
            try:
                schedule = plan(replace(sp, budget=row["budget"]), name, time_limit)
            except InfeasibleBudget:
                row[name] = None
                continue
            report = validate_swaps(replace(sp, budget=row["budget"]), schedule)
            assert report.valid, (name, report.errors)
            row[name] = {"overhead": report.stall / sum(sp.step_seconds), "swaps": len(schedule.swaps),
                         "seconds": round(time.perf_counter() - began, 3), "recomputes": len(schedule.recomputes),
                         "rebuilds": len(schedule.rebuilds), "extends": len(schedule.extends),
                         "boundary_swaps": sum(s.load_at == s.before for s in schedule.swaps),
                         "planner": schedule.planner}
        row["bound"] = bound_cell(replace(sp, budget=row["budget"]), row, bound_time)
        rows.append(row)
        if all(row[n] is None for n in SWAP_PLANNERS) and fraction <= 0.55:
            break
    return rows


def plan(sp: SwapProblem, name: str, time_limit: float) -> SwapSchedule:
    """`name`'s schedule as a compile makes it: for "ours" under the rich model, the better of the
    plain and the rich search, each with `time_limit`, and the LP rounding where both find nothing
    (graphopt.train.swapping.model_schedules)."""
    return model_schedules(sp, get_swap_planner(name), name, time_limit)[0]


def floors(sp: SwapProblem, time_limit: float) -> dict:
    """What bounds the budget from below: the largest step working set (what any model needs),
    the swap model's feasibility floor, and the least budget ours fits (`--memory-budget min`'s
    search, graphopt.train.budget, with the swap plan's peak in place of the arena)."""
    live = base_live_bytes(sp.problem, sp.num_steps)
    peak, work = int(live.max()), step_working_set(sp)
    floor = feasibility_floor(sp)

    def fit(budget: int):
        at = replace(sp, budget=budget)
        report = validate_swaps(at, plan(at, "ours", time_limit))
        assert report.valid, report.errors
        return budget, report

    (budget, report), probes = least_fitting(fit, lambda plan: plan[1].peak_bytes, floor.bytes, peak)
    return {"peak_bytes": peak, "working_set_bytes": int(work.max()), "working_set_step": int(work.argmax()),
            "floor_bytes": floor.bytes, "floor_step": floor.step, "floor_resident": len(floor.resident),
            "min": {"budget": budget, "overhead": report.stall / sum(sp.step_seconds), "probes": probes}}


def bound_cell(sp: SwapProblem, row: dict, time_limit: float = 600.0) -> dict:
    """The lower bound at this budget: the larger of the largest sampled LP (graphopt.plan.swap_bound,
    every 32nd over-budget step, then 16th, ... the full LP) and the integer programs' bound
    (graphopt.plan.swap_bound_integer.certified_lower_bound) in `time_limit`. A validated schedule
    below it would prove the bound wrong: such planners are listed under "violated_by" (and main exits 1),
    not hidden. When no LP finishes, nothing is certified: its cell says so and the sweep goes on."""
    try:
        bound = certified_lower_bound(sp, time_limit=time_limit)
    except PlanError:
        return {"overhead": None, "status": "timeout", "seconds": time_limit, "violated_by": []}
    overhead = None if bound.status == "infeasible" else bound.seconds / sum(sp.step_seconds)
    violated = [name for name in SWAP_PLANNERS if row[name] is not None
                and (overhead is None or overhead > row[name]["overhead"] + 1e-9)]
    if violated:
        print(f"WARNING: lower bound {overhead} above the validated overhead of {violated} at {row['fraction']:.0%}",
              flush=True)
    return {"overhead": overhead, "status": bound.status, "seconds": round(bound.solve_seconds, 3),
            "stride": bound.stride, "integer": bound.integer, "violated_by": violated}


def table(name: str, sp: SwapProblem, rows: list[dict], low: dict, step_costs: str = "analytic") -> str:
    peak = int(base_live_bytes(sp.problem, sp.num_steps).max())
    floor = hidden_swap_floor(sp) / peak
    least = low["min"]
    source = "measured" if step_costs == "measured" else "predicted"
    head = (f"### {name}: {len(sp.problem.buffers)} tensors, {sp.num_steps} steps, peak {peak / 2**20:.2f} MiB, "
            f"step {sum(sp.step_seconds) * 1e3:.3f} ms ({source}); swaps alone cannot go below "
            f"{floor:.1%} of the peak without stalling (copy capacity of one engine per direction)\n\n"
            f"Largest step working set {low['working_set_bytes'] / 2**20:.2f} MiB "
            f"({low['working_set_bytes'] / peak:.3f}x of the peak, step {low['working_set_step']}); "
            f"feasibility floor {low['floor_bytes'] / 2**20:.2f} MiB ({low['floor_bytes'] / peak:.3f}x, binding step "
            f"{low['floor_step']}, {low['floor_resident']} tensors resident there); least budget ours fits "
            f"(`min` search, {len(least['probes'])} probes): {least['budget'] / peak:.3f}x at "
            f"{least['overhead']:.3%} predicted overhead\n\n")
    cols = ["budget", "bound"] + list(SWAP_PLANNERS)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in rows:
        bound = row["bound"]["overhead"]
        missing = "LP timed out" if row["bound"]["status"] == "timeout" else "no plan fits"
        stride = row["bound"].get("stride", 1)
        rows_kept = "" if bound is None or stride == 1 else f" (1/{stride})"
        rows_kept += " int" if bound is not None and row["bound"].get("integer") else ""
        cells = [f"{row['fraction']:.0%}", missing if bound is None else f"{bound:.3%}{rows_kept}"]
        for n in SWAP_PLANNERS:
            cells.append("infeasible" if row[n] is None else _percent(row[n]["overhead"]))
        lines.append("| " + " | ".join(cells) + " |")
    return head + "\n".join(lines) + "\n"


def _percent(overhead: float) -> str:
    """A rounding error below zero prints as 0.000%, not -0.000%; a real negative stays visible."""
    return f"{0.0 if -1e-12 < overhead < 0 else overhead:.3%}"


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(5 * len(results), 4), squeeze=False)
    for ax, (name, result) in zip(axes[0], results.items()):
        rows = result["rows"]
        for planner in SWAP_PLANNERS:
            pts = [(r["fraction"], 100 * r[planner]["overhead"]) for r in rows if r[planner] is not None]
            if pts:
                ax.plot(*zip(*pts), marker="o" if planner == "ours" else ".", label=planner,
                        linewidth=2.5 if planner == "ours" else 1)
        bounds = [(r["fraction"], 100 * r["bound"]["overhead"]) for r in rows if r["bound"]["overhead"] is not None]
        if bounds:
            ax.plot(*zip(*bounds), linestyle="--", color="black", label="lower bound (any plan)")
        ax.set_title(name)
        ax.set_xlabel("memory budget (fraction of no-swap peak)")
        ax.set_ylabel("predicted overhead (%)")
        ax.invert_xaxis()
        ax.set_yscale("symlog", linthresh=0.1)
        ax.set_ylim(bottom=0)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def run_info() -> dict:
    """Date, command, machine and load average: what a reader needs to rerun and compare."""
    import datetime
    import os
    import platform
    import sys

    from benchmarks.machine import cpu_name

    return {"date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "command": f"python -m benchmarks.{Path(sys.argv[0]).stem} {' '.join(sys.argv[1:])}",
            "machine": f"{platform.node()} ({cpu_name()}, {os.cpu_count()} CPUs)",
            "load_average": [round(x, 2) for x in os.getloadavg()]}


def _header(args, info: dict) -> str:
    """The run and the cost model, at the top of the markdown."""
    from graphopt.analysis.cost import DeviceModel, LinkModel

    device, link = DeviceModel(), LinkModel()
    costs = ("Step times: every kernel measured on this machine (a no-swap build, median of 3 runs)"
             if args.step_costs == "measured" else
             f"Cost model (predicted, analytic): {device.name}: {device.flops / 1e12:.0f} TFLOP/s, "
             f"{device.memory_bandwidth / 1e12:.1f} TB/s, {device.launch * 1e6:.0f} us per kernel")
    return (f"# Swap and recompute benchmark, {info['date']}\n\n"
            f"Command: `{info['command']}` on {info['machine']}; load average {info['load_average']} at the start, "
            f"{info['load_after']} at the end; planner time limit {args.time_limit} s per budget.\n"
            f"{costs}; host link {link.bandwidth / 1e9:.0f} GB/s per direction, {link.latency * 1e6:.0f} us per copy, "
            f"one engine each way. Swap model: {MODEL_NAMES[args.rich]}.\n"
            "Cells: predicted overhead (copy stalls + recompute kernels) over the no-swap step; every schedule "
            "passed the swap validator. `bound`: lower bound on the overhead of any valid plan, the larger of "
            "the LP's (graphopt.plan.swap_bound) and its integer version's ('int': "
            "graphopt.plan.swap_bound_integer); '(1/N)': it kept every N-th over-budget step (a relaxation, still "
            "a lower bound; the largest of those that finished); 'no plan fits' where no swap or recompute can "
            f"free enough bytes, 'LP timed out' where no LP finished in {args.bound_time:g} s (no bound there). "
            "\"ours\" "
            "under the rich model: the better of the plain and the rich search, each with the time limit, and "
            "the LP rounding where both find nothing; `lp-round`: the LP rounding alone "
            "(passes/swap_lp_round.py).\n\n")


def _write(args, info: dict, text: list[str], results: dict) -> None:
    args.markdown.parent.mkdir(parents=True, exist_ok=True)
    info["load_after"] = run_info()["load_average"]
    args.markdown.write_text(_header(args, info) + "\n".join(text))
    if args.json is not None:
        args.json.write_text(json.dumps({"run": info, **results}, indent=1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--plot", type=Path, default=None, help="default: results/swap-DATE.png (a free name)")
    parser.add_argument("--markdown", type=Path, default=None, help="default: results/swap-DATE.md (a free name)")
    parser.add_argument("--time-limit", type=float, default=5.0)
    parser.add_argument("--bound-time", type=float, default=600.0,
                        help="the bound's limit per budget (the LP, then its integer version)")
    parser.add_argument("--models", default=",".join(DEFAULT_MODELS))
    parser.add_argument("--rich", action="store_true", help="the rich swap model (graphopt.plan.swap_rich)")
    parser.add_argument("--fractions", default=None, help="budgets as fractions of the peak, e.g. 0.66,0.5")
    parser.add_argument("--step-costs", choices=("analytic", "measured"), default="analytic",
                        help="step times: the H100 roofline (default) or every kernel timed on this machine")
    args = parser.parse_args(argv)
    fractions = FRACTIONS if args.fractions is None else [float(f) for f in args.fractions.split(",")]
    args.plot = args.plot or unused(RESULTS / f"swap-{date.today().isoformat()}.png")
    args.markdown = args.markdown or unused(RESULTS / f"swap-{date.today().isoformat()}.md")
    results, text, info = {}, [], run_info()
    for name in args.models.split(","):
        sp = problem_of(name, args.rich, args.step_costs)
        peak = int(base_live_bytes(sp.problem, sp.num_steps).max())
        low = floors(sp, args.time_limit)
        rows = sweep(sp, args.time_limit, args.bound_time, fractions)
        results[name] = {"hidden_swap_floor": hidden_swap_floor(sp) / peak, **low, "rows": rows}
        text.append(table(name, sp, results[name]["rows"], low, args.step_costs))
        print(text[-1], flush=True)
        _write(args, info, text, results)  # after every model: a late failure keeps the earlier ones
    plot(results, args.plot)
    return 1 if any(r["bound"]["violated_by"] for res in results.values() for r in res["rows"]) else 0


if __name__ == "__main__":
    raise SystemExit(main())
