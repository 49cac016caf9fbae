"""One model's kernels under chosen rule knobs, timed side by side: the ablation of a knob.

    python -m benchmarks.kernel_knobs --model light_densenet121 --kernels conv2d21,conv2d101 \
        --knobs '[{"rows": 4, "vectors": 2, "swap_axes": true, "pack_u": false}, {... "pad_copy": true}]' \
        [--rule gemm] [--rounds 5] [--threads 2] [--json FILE]

Each kernel is taken as `graphopt tune-kernels` sees it (legalized, fused, weights
marked), scheduled with each knob setting by the rule alone (a setting the rule
refuses is reported as refused, never replaced by another rule's schedule), then
built, checked against the default schedule's result and timed exactly as the
tuner does (graphopt.kernels.tuning.search.KernelTrials); settings and the default
are interleaved round by round and the best of the rounds is kept (a kernel's
fastest time is its least disturbed one). Markdown to stdout; JSON with date and machine.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from benchmarks.kernel_profile import model_tasks
from benchmarks.model_zoo import ZOO
from benchmarks.outputs import RESULTS, unused


def time_kernel(task, target, rule: str, settings: list[dict], rounds: int) -> list[dict]:
    """Rows for the default schedule and each setting of one kernel (None: refused)."""
    from graphopt.kernels.schedules import schedule_kernel, schedule_with
    from graphopt.kernels.tuning.search import KernelTrials

    trials = KernelTrials(task, schedule_kernel(task.func, target)[0], target)
    timers = {"default": trials.default_timer}
    for knobs in settings:
        label = json.dumps(knobs, sort_keys=True)
        sch = schedule_with(task.func, target, rule, knobs)
        if sch is None:
            timers[label] = None
            continue
        measured = trials.time_candidate(sch)
        if measured is None:
            raise SystemExit(f"{task.name} {label}: fails to build or differs from the default schedule's result")
        timers[label] = measured[1]
    live = {label: timer for label, timer in timers.items() if timer is not None}
    best = dict.fromkeys(live, float("inf"))
    for _ in range(rounds):
        for label, timer in live.items():
            best[label] = min(best[label], timer.seconds())
    return [{"kernel": task.name, "calls": task.calls, "knobs": label,
             "ms": round(best[label] * 1e3, 4) if label in best else None,
             "vs_default": round(best[label] / best["default"], 3) if label in best else None} for label in timers]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help=f"one of: {', '.join(ZOO)}")
    parser.add_argument("--kernels", required=True, help="comma list of kernel names (as tune-kernels prints them)")
    parser.add_argument("--knobs", required=True, help="JSON list of knob settings")
    parser.add_argument("--rule", default="gemm")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="default: the runtime's (one per physical core)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    from benchmarks.latency import _meta, engine_threads

    threads = engine_threads(args.threads)
    settings = json.loads(args.knobs)
    meta = _meta(argv, threads) | {"command": "python -m benchmarks.kernel_knobs " + " ".join(argv)}
    with tempfile.TemporaryDirectory() as tmp:
        target, listed = model_tasks(args.model, Path(tmp), None)
        tasks = {t.name: t for t in listed}
        missing = [k for k in args.kernels.split(",") if k not in tasks]
        if missing:
            raise SystemExit(f"no kernel {', '.join(missing)} in {args.model}; it has: {', '.join(sorted(tasks))}")
        rows = [r for k in args.kernels.split(",") for r in time_kernel(tasks[k], target, args.rule, settings,
                                                                          args.rounds)]
    print("| kernel | calls | knobs | ms | vs default |\n|---|---|---|---|---|")
    for r in rows:
        shown = "refused | -" if r["ms"] is None else f"{r['ms']:.3f} | {r['vs_default']:.2f}"
        print(f"| {r['kernel']} | {r['calls']} | `{r['knobs']}` | {shown} |")
    out = args.json or unused(RESULTS / f"kernel-knobs-{meta['date']}.json")
    out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
