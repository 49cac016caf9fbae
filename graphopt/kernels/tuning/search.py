"""The tuning loop over one model's kernels.

    legalize the model (the kernels exactly as compile's schedule pass sees them)
    -> one task per workload not yet in the db (a kernel tuned once, in any model,
       is never tuned again)
    -> most expensive first (loop iterations x calls: no build needed to rank),
       until the time budget is spent: time the default schedule (trial 1), then
       up to --trials - 1 candidates: draw knobs (space.Sampler), build, check the
       output against the default's, time; keep the fastest
    -> confirm: default and best timed again, interleaved; the best is recorded
       only if its median beats the default's by CONFIRM_MARGIN, else the default
       is (the kernel still counts as tuned)
    -> commit each kernel's record, with the CPU that measured it, as soon as it is
       done (an interrupted run keeps what it finished).

`tune` runs the kernels one after the other in this process; jobs.py hands the
same `tune_task` to an executor, one kernel per job (local processes or Ray).

Kernels with non-float arguments, that no rule with knobs takes, or
too small to be worth trials, are recorded with the default after no trials, and
reported as such.

Symbolic kernels (a range compile's, graphopt.frontend.ranges) are tuned at one nominal point:
every shape symbol at graphopt.kernels.schedules.symbolic.NOMINAL (32), the point the rules also
size their tiles for; the workload key ends in `@n32` to say so (workload.symbolic_suffix). One
build runs at any shape, so each candidate is also checked against the default at a second, odd
point (every symbol at CHECK_POINT, padded tails): a choice is kept only if it is right at both.

"Too small" is decided from the kernel itself, not from a timing: fewer than
MIN_TUNED_ITERATIONS loop iterations per run (static_cost x calls). A timing
threshold (it was "default under 20 us") flipped from run to run for kernels near
it, so the set of tuned kernels, the trial count and the records depended on the
machine's load and on how many tuners ran at once (19, 22 or 25 trials for one
model). The count is the same on every run, worker count and machine. On this
project's 2-core Zen 3 VM the default schedules ran 0.02-0.7 ns per iteration
(median about 0.1), so the threshold sits near the old 20 us: in the demo model and
shufflenet, the kernels the timing rule always skipped (reshapes, pools, softmax:
under 30k iterations) are skipped, those it always tuned (from 200k) are tuned, and
those it tuned or not by chance (50k-110k, 13-29 us) are now skipped every time.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import tvm
from tqdm import tqdm

from graphopt.kernels.tuning import measure, space
from graphopt.kernels.tuning.db import Record, TuningDB
from graphopt.kernels.tuning.workload import target_key, workload_key

CONFIRM_ROUNDS = 3
CONFIRM_MARGIN = 0.97  # a candidate must be at least 3% faster than the default to replace it
MIN_TUNED_ITERATIONS = 1 << 17  # loop iterations per run below which a kernel is not worth trials (see above)
CHECK_POINT = 3  # symbolic kernels: the second size every symbol takes when candidates are checked
# Grid settings a rule refuses (cheap: no build) before the search gives up. Refused seeds do not count:
# with AVX-512's 32 registers there are 68 direct-convolution seeds, and a matmul refuses the 34 with
# pad_copy, which ended every matmul's search before its first trial (AVX2: 17 of 34).
MAX_DECLINED_PER_TRIAL = 4


@dataclass
class Task:
    name: str
    func: tvm.tirx.PrimFunc
    workload: str
    calls: int = 1
    call: object = None  # one of the program's call_tir of it (see measure.per_run_part)
    rule: str = "none"
    default_seconds: float | None = None
    skip: str | None = None


@dataclass
class Summary:
    kernels: int = 0
    already: int = 0
    trials: int = 0
    tuned: list[dict] = field(default_factory=list)
    left: list[str] = field(default_factory=list)
    seconds: float = 0.0


def tasks_of(mod: tvm.IRModule) -> list[Task]:
    """One task per distinct workload among the module's unscheduled PrimFuncs,
    with the number of times the Relax program calls it per run. A kernel that
    only ever reads weights (resnet50's 2048x1000 classifier transposed, 5 ms)
    runs once at compile time (graphopt.lowering.prepack): it is no task."""
    weight_only = _weight_only_vars(mod)
    calls = {name: [c for c in sites if not _reads_only(c, weight_only)] for name, sites in _calls(mod).items()}
    tasks: dict[str, Task] = {}
    for gvar, func in mod.functions_items():
        if isinstance(func, tvm.tirx.PrimFunc):
            if gvar.name_hint in calls and not calls[gvar.name_hint]:
                continue
            key = workload_key(func)
            sites = calls.get(gvar.name_hint, [])
            if key in tasks:
                tasks[key].calls += max(len(sites), 1)
            else:
                tasks[key] = Task(gvar.name_hint, func, key, max(len(sites), 1), sites[0] if sites else None)
    return list(tasks.values())


def _weight_only_vars(mod: tvm.IRModule) -> set:
    """`main`'s weight parameters (after its `num_input` inputs) and every variable
    computed from weights and constants alone: what LiftTransformParams moves out."""
    from graphopt.lowering.prepack import weight_params

    if "main" not in [g.name_hint for g in mod.get_global_vars()]:
        return set()
    main = mod["main"]
    if not isinstance(main, tvm.relax.Function):
        return set()
    known = set(weight_params(main))
    for block in getattr(main.body, "blocks", []):
        for binding in block.bindings:
            if _reads_only(binding.value, known):
                known.add(binding.var)
    return known


def _reads_only(expr, known: set) -> bool:
    """Does `expr` use no variable outside `known`?"""
    return all(v in known for v in tvm.relax.analysis.free_vars(expr))


def _calls(mod: tvm.IRModule) -> dict[str, list]:
    """Kernel name -> the Relax calls that pass it (call_tir and the like)."""
    calls: dict[str, list] = {}

    def visit(node) -> None:
        if isinstance(node, tvm.relax.Call):
            for arg in node.args:
                if isinstance(arg, tvm.ir.GlobalVar):
                    calls.setdefault(arg.name_hint, []).append(node)

    for _, func in mod.functions_items():
        if isinstance(func, tvm.relax.Function):
            tvm.relax.analysis.post_order_visit(func, visit)
    return calls


def tune(mod: tvm.IRModule, target: tvm.target.Target, db: TuningDB, trials: int,
         time_budget: float | None = None, threads: int | None = None, progress: bool = True) -> Summary:
    """Tunes every kernel of a legalized `mod` that `db` does not know yet for this node's CPU
    (holding the node's shared lock: no other tuner on this node times beside it)."""
    from graphopt.cluster.node_lock import working

    with working():
        return _tune(mod, target, db, trials, time_budget, threads, progress)


def _tune(mod: tvm.IRModule, target: tvm.target.Target, db: TuningDB, trials: int, time_budget: float | None,
          threads: int | None, progress: bool) -> Summary:
    from graphopt.cluster.node import node_cpu

    start = time.perf_counter()
    tkey, cpu = target_key(target), node_cpu()
    tasks = tasks_of(mod)
    summary = Summary(kernels=len(tasks))
    todo = [t for t in tasks if db.get(t.workload, tkey, cpu) is None]
    summary.already = len(tasks) - len(todo)
    if not todo:
        summary.seconds = time.perf_counter() - start
        return summary
    with tqdm(total=len(todo) * max(trials, 1), desc="tune", unit="trial", disable=not progress) as bar:
        todo = sorted(todo, key=lambda t: -iterations(t, target))
        for n, task in enumerate(todo):
            if time_budget is not None and time.perf_counter() - start > time_budget:
                summary.left = [t.name for t in todo[n:]]
                break
            tune_task(task, target, db, trials, threads, bar, summary, start, time_budget)
    summary.seconds = time.perf_counter() - start
    return summary


def tune_task(task: Task, target, db: TuningDB, trials: int, threads, bar, summary: Summary, start: float,
              time_budget: float | None) -> None:
    """One kernel: profiled (its default timed: trial 1), searched, confirmed, committed with this
    node's CPU (a record is only ever compared with timings of the same CPU); counts go to `summary`.
    Callers go most expensive first by a static estimate (loop iterations x calls), so a
    budget goes to the kernels that dominate run time."""
    from graphopt.cluster.node import node_cpu
    from graphopt.kernels.schedules import common, schedule_kernel

    tkey, cpu, registers = target_key(target), node_cpu(), common.vector_registers(target)
    sch, task.rule = schedule_kernel(task.func, target)
    task.skip = _skip_reason(task, sch, registers, iterations(task, target))
    if task.skip is not None:
        db.commit(_record(task, tkey, {}, None, 0, threads, task.skip, cpu))
        bar.update(max(trials, 1))
        return
    kernel = KernelTrials(task, sch, target)
    task.default_seconds = kernel.default_seconds
    summary.trials += 1
    bar.update(1)
    done, best = kernel.search(trials - 1, registers, bar, start, time_budget)
    summary.trials += done
    knobs, seconds, default = kernel.confirm(best)
    task.default_seconds = default
    db.commit(_record(task, tkey, knobs, seconds, done + 1, threads, None, cpu))
    summary.tuned.append({"kernel": task.name, "rule": task.rule, "calls": task.calls,
                          "default_ms": default * 1e3, "best_ms": seconds * 1e3, "knobs": knobs})
    bar.write(f"{task.name} ({task.rule}, x{task.calls}): default {default * 1e3:.3f} ms, "
              + (f"tuned {seconds * 1e3:.3f} ms" if knobs else "kept (no candidate beat it)")
              + f" after {done + 1} trials ({kernel.rejected} rejected)")


def static_cost(func: tvm.tirx.PrimFunc, target) -> int:
    """Loop iterations over all blocks: a cheap proxy for run time that needs no build."""
    from graphopt.kernels.schedules import common

    started = common.start(func, target)
    if started is None:
        return 0
    total = 0
    for info in started[1]:
        size = 1
        for it in info.iters:
            extent = it.dom.extent if hasattr(it.dom, "extent") else it.dom
            size *= _nominal_extent(extent)
        total += size
    return total


def _nominal_extent(extent) -> int:
    """A loop extent as a number: symbols at the nominal point the tuner times at (1 if not a product of them)."""
    from graphopt.kernels.schedules import symbolic

    if isinstance(extent, (int, tvm.tirx.IntImm)):
        return int(extent)
    factor = symbolic.static_factor(extent)
    return symbolic.nominal(extent) if factor is not None else 1


def iterations(task: Task, target) -> int:
    """Loop iterations per run of the program (static_cost x calls): what ranks the kernels
    and decides which are too small to tune; the same on every run and machine."""
    return static_cost(task.func, target) * task.calls


def _skip_reason(task: Task, sch, registers: int, per_run: int) -> str | None:
    """Why `task` gets no trials (None: it is tuned); decided before anything is built or timed."""
    if sch is None:
        return "no schedule rule takes it"
    if not space.grid(task.rule, registers):
        return f"rule {task.rule} has no knobs"
    for param in task.func.params:
        ty = param.ty
        if not all(isinstance(d, tvm.tirx.IntImm) or _has_nominal(d) for d in ty.shape):
            return "symbolic shape that is not a product of symbols"
        if np.dtype(str(ty.dtype)).kind != "f":
            return "non-float arguments"
    if per_run < MIN_TUNED_ITERATIONS:
        return f"under {MIN_TUNED_ITERATIONS} loop iterations per run"
    return None


def _has_nominal(dim) -> bool:
    from graphopt.kernels.schedules import symbolic

    return symbolic.static_factor(dim) is not None


class KernelTrials:
    """One kernel's search state: its bench, the default's build, outputs and time."""

    def __init__(self, task: Task, default_sch, target: tvm.target.Target) -> None:
        self.task, self.target = task, target
        self.bench = measure.KernelBench(task.func, target)
        default = default_sch.mod["main"]
        whole = self.bench.build(default)
        self.reference = self.bench.outputs(whole)
        self.default_timer = self._timer(default, whole)
        self.default_seconds = self.default_timer.seconds()
        self.rejected = 0
        self.check = _second_point(task.func, target, whole)

    def _timer(self, scheduled: tvm.tirx.PrimFunc, whole) -> _Timer:
        """Times the part that runs per inference (weights packed at compile time left out);
        `whole` is the kernel already built as scheduled, reused when nothing is split off."""
        timed = scheduled if self.task.call is None else measure.per_run_part(scheduled, self.task.call)
        if timed is scheduled:
            return _Timer(self.bench, whole)
        bench = measure.KernelBench(timed, self.target, self.bench.repeats)
        return _Timer(bench, bench.build(timed))

    def search(self, trials: int, registers: int, bar, start: float, budget: float | None):
        """(trials done, (seconds, knobs, timer) of the fastest correct candidate or None)."""
        from graphopt.kernels.schedules import schedule_with

        sampler = space.Sampler(self.task.rule, registers, self.task.workload, explore=max(2, trials // 2))
        best, done, declined = None, 0, 0
        while done < trials and (budget is None or time.perf_counter() - start <= budget):
            knobs = sampler.next()
            if knobs is None or declined > MAX_DECLINED_PER_TRIAL * trials:
                break
            sch = schedule_with(self.task.func, self.target, self.task.rule, knobs)
            if sch is None:  # the rule refuses this setting for this kernel: no build, no trial
                declined += knobs not in sampler.seeds  # seeds are few and cost nothing: they never end a search
                sampler.refused()
                continue
            done += 1
            measured = self.time_candidate(sch)
            if measured is not None:
                sampler.report(knobs, measured[0])
                if best is None or measured[0] < best[0]:
                    best = (measured[0], knobs, measured[1])
            if bar is not None:
                shown = min(self.default_seconds, best[0]) if best else self.default_seconds
                bar.set_postfix_str(f"{self.task.name[:28]} best {shown * 1e3:.3f} ms")
                bar.update(1)
        return done, best

    def time_candidate(self, sch) -> tuple[float, object] | None:
        """(seconds, timer) of a scheduled candidate; None when it fails to build or
        computes something else than the default (counted in `rejected`)."""
        scheduled = sch.mod["main"]
        try:
            lib = self.bench.build(scheduled)
        except Exception:  # noqa: BLE001  (a knob setting codegen refuses: not a candidate)
            self.rejected += 1
            return None
        if measure.same_outputs(self.reference, self.bench.outputs(lib)) is not None or (
                self.check is not None and measure.same_outputs(self.check[1], self.check[0].outputs(lib)) is not None):
            self.rejected += 1
            return None
        timer = self._timer(scheduled, lib)
        return timer.seconds(), timer

    def confirm(self, best) -> tuple[dict, float, float]:
        """(knobs, their seconds, default seconds): the best only if it still wins
        when timed again interleaved with the default (the machine may be shared:
        a candidate timed in a quiet moment must not win by luck)."""
        if best is None:
            return {}, self.default_seconds, self.default_seconds
        default, chosen = [], []
        for _ in range(CONFIRM_ROUNDS):
            default.append(self.default_timer.seconds())
            chosen.append(best[2].seconds())
        d, c = statistics.median(default), statistics.median(chosen)
        return (best[1], c, d) if c < d * CONFIRM_MARGIN else ({}, d, d)


def _second_point(func: tvm.tirx.PrimFunc, target, default_lib) -> tuple | None:
    """(bench at CHECK_POINT, the default's outputs there) for a symbolic kernel; None for a fixed one."""
    from graphopt.kernels.schedules import has_symbolic_shape

    if not has_symbolic_shape(func):
        return None
    bench = measure.KernelBench(func, target, symbol_value=CHECK_POINT)
    return bench, bench.outputs(default_lib)


@dataclass(frozen=True)
class _Timer:
    bench: measure.KernelBench
    lib: object

    def seconds(self) -> float:
        return self.bench.seconds(self.lib)


def _record(task: Task, tkey: str, knobs: dict, seconds, trials: int, threads, skip: str | None,
            cpu: str) -> Record:
    from graphopt.kernels.schedules import has_symbolic_shape
    from graphopt.kernels.schedules.symbolic import NOMINAL

    extra = {"calls": task.calls} | ({"skipped": skip} if skip else {})
    if has_symbolic_shape(task.func):  # timed with every shape symbol at NOMINAL, checked at CHECK_POINT too
        extra |= {"symbols_at": NOMINAL, "checked_at": [NOMINAL, CHECK_POINT]}
    if measure.cold_cache_bytes():  # timed after a cache flush (tune-kernels --cold-cache)
        extra |= {"cache_flush_bytes": measure.cold_cache_bytes()}
    return Record(workload=task.workload, target=tkey, rule=task.rule, knobs=knobs, seconds=seconds,
                  default_seconds=task.default_seconds, trials=trials, kernel=task.name, threads=threads,
                  tuned_at=datetime.now(UTC).isoformat(timespec="seconds"), extra=extra, cpu=cpu)
