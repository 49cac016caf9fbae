"""Tuning time: per kernel, time graphopt's TVM schedule against oneDNN, record the faster.

For every kernel of a legalized model that oneDNN can compute (match.py) and that the
database has no library choice for yet on this CPU:

    TVM      the kernel as compile would schedule it with this database (tuned knobs if
             recorded), timed on its per-run part (weight packing runs at compile time:
             measure.per_run_part), exactly what search.py times
    oneDNN   the extern kernel in each layout mode (conv2d: plain, blocked; matmul: plain),
             built and linked as in an artifact; its outputs must match TVM's on the same
             random arguments (measure.same_outputs) or it is rejected, with the reason kept
    timing   ROUNDS rounds, TVM and each mode interleaved (the machine may be shared), medians;
             oneDNN wins only if its median beats TVM's by MARGIN (search.py's rule for a
             tuned candidate against the default)

The choice goes into the kernel's record (`library`, `onednn_mode`, and every time, impl
and byte count under `portfolio`), so compile (choose.py) applies it and the artifact id,
which hashes the database, changes with it. A kernel without a record yet gets one with
the TVM default (knobs {}): run `tune-kernels` first, or that kernel's TVM knobs are not
searched afterwards (search.py skips kernels the database knows).
"""

from __future__ import annotations

import statistics
from dataclasses import replace
from datetime import UTC, datetime

import tvm

from graphopt.kernels.onednn import library
from graphopt.kernels.onednn.extern import extern_kernel
from graphopt.kernels.onednn.match import Spec, match
from graphopt.kernels.tuning import measure
from graphopt.kernels.tuning.db import Record, TuningDB
from graphopt.kernels.tuning.workload import target_key

ROUNDS = 5
MARGIN = 0.97
MODES = {"conv2d": ("plain", "blocked"), "matmul": ("plain",)}


def tune_portfolio(mod: tvm.IRModule, target: tvm.target.Target, db: TuningDB, progress: bool = True) -> list[dict]:
    """One row per oneDNN-capable kernel of a legalized `mod` (already-decided ones from their records)."""
    from graphopt.cluster.node import node_cpu
    from graphopt.kernels.tuning.search import tasks_of

    library.find()
    tkey, cpu, rows = target_key(target), node_cpu(), []
    with target:
        for task in tasks_of(mod):
            spec = match(task.func)
            if spec is None:
                continue
            record = db.get(task.workload, tkey, cpu)
            if record is not None and "library" in record.extra:
                rows.append({"kernel": task.name, "calls": task.calls, **record.extra.get("portfolio", {}),
                             "library": record.extra["library"], "onednn_mode": record.extra.get("onednn_mode"),
                             "already": True})
                continue
            row = compare(task, spec, target, db)
            db.commit(_with_choice(record, task, tkey, cpu, row))
            rows.append(row)
            if progress:
                print(_line(row), flush=True)
    return rows


def compare(task, spec: Spec, target: tvm.target.Target, db: TuningDB) -> dict:
    """Times TVM's kernel and each oneDNN mode interleaved; returns the row (with the choice)."""
    from graphopt.kernels.tuning.apply import ATTR, schedule_one

    scheduled = schedule_one(task.func, target, db, task.name, "tvm") or task.func
    bench = measure.KernelBench(task.func, target)
    whole = bench.build(scheduled)
    reference = bench.outputs(whole)
    timers = {"tvm": _per_run_timer(task, scheduled, bench, whole, target)}
    row = {"kernel": task.name, "op": spec.op, "shape": list(spec.shape), "epilogue": list(spec.epilogue),
           "calls": task.calls, "tvm_rule": str((scheduled.attrs or {}).get(ATTR, "unscheduled")),
           "impl": {}, "scratch_bytes": {}, "reorder_bytes": {}, "rejected": {}}
    for mode in MODES[spec.op]:
        lib = bench.build(extern_kernel(task.func, spec, mode))
        wrong = measure.same_outputs(reference, bench.outputs(lib))
        if wrong is not None:
            row["rejected"][mode] = wrong
            continue
        described = library.describe(spec.op, spec.values(1 if mode == "blocked" else 0))
        row["impl"][mode] = described["impl"]
        row["scratch_bytes"][mode] = described["scratch_bytes"]
        row["reorder_bytes"][mode] = described["reorder_bytes"] + described["weight_reorder_bytes"]
        timers[mode] = lambda lib=lib: bench.seconds(lib)
    times: dict[str, list[float]] = {name: [] for name in timers}
    for _ in range(ROUNDS):
        for name, timer in timers.items():
            times[name].append(timer())
    medians = {name: statistics.median(values) for name, values in times.items()}
    row["seconds"] = medians
    best = min((m for m in medians if m != "tvm"), key=medians.get, default=None)
    wins = best is not None and medians[best] < medians["tvm"] * MARGIN
    row["library"], row["onednn_mode"] = ("onednn", best) if wins else ("tvm", None)
    return row


def _per_run_timer(task, scheduled, bench: measure.KernelBench, whole, target):
    """Seconds of what TVM's kernel runs per inference (its weight packing left out, as search.py times it)."""
    timed = scheduled if task.call is None else measure.per_run_part(scheduled, task.call)
    if timed is scheduled:
        return lambda: bench.seconds(whole)
    own = measure.KernelBench(timed, target, bench.repeats)
    lib = own.build(timed)
    return lambda: own.seconds(lib)


def _with_choice(record: Record | None, task, tkey: str, cpu: str, row: dict) -> Record:
    """The kernel's record with the choice added (a new TVM-default record when there was none)."""
    portfolio = {k: row[k] for k in ("op", "shape", "epilogue", "tvm_rule", "impl", "scratch_bytes",
                                     "reorder_bytes", "rejected", "seconds")}
    choice = {"library": row["library"], "portfolio": portfolio}
    if row["onednn_mode"] is not None:
        choice["onednn_mode"] = row["onednn_mode"]
    if record is not None:
        extra = {k: v for k, v in record.extra.items() if k not in ("library", "onednn_mode", "portfolio")}
        return replace(record, extra=extra | choice)
    rule = row["tvm_rule"].removesuffix(" tuned")
    return Record(workload=task.workload, target=tkey, rule=rule, knobs={}, seconds=row["seconds"]["tvm"],
                  default_seconds=row["seconds"]["tvm"], trials=0, kernel=task.name,
                  tuned_at=datetime.now(UTC).isoformat(timespec="seconds"),
                  extra={"calls": task.calls, "skipped": "portfolio only (TVM knobs not searched)"} | choice,
                  cpu=cpu)


def _line(row: dict) -> str:
    times = ", ".join(f"{k} {v * 1e3:.3f} ms" for k, v in row["seconds"].items())
    chosen = row["library"] + (f" ({row['onednn_mode']})" if row["onednn_mode"] else "")
    return f"{row['kernel']} x{row['calls']}: {times} -> {chosen}"
