"""`graphopt tune` on a real model: search quality vs an exhaustive grid, worker scaling, dedup, pruning.

    python -m benchmarks.tune [--model shufflenet|squeezenet|demo] [--trials 12] [--rounds 2] [--json FILE]
    python -m benchmarks.tune --scaling --model demo [--rounds 2] [--json FILE]   (1 vs 2 Ray workers)

1. Grid: the whole default compile-option space (48 configurations), every one
   compiled and measured once (`--sampler random` never repeats, so grid-size
   trials cover the grid; checked), with the same --memory-limit as the searches.
2. Searches: TPE with N trials, 1 worker and 2 workers, interleaved A B A B for
   --rounds rounds, each in a fresh artifact cache (so every trial compiles);
   wall time of the whole `graphopt tune` command.
3. Dedup: one more search on the grid's cache: every trial's artifact exists.
Hypervolume: of the configurations each search put on its front, valued with the
grid's measurements of the same artifact ids (search quality, not latency noise),
against a fixed reference point: the grid's worst feasible value per objective
+ 10%. Ends with ONE JSON line.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import onnx

from graphopt.tune.pareto import front_indices, hypervolume, reference_point

OBJECTIVES = ("latency", "peak_memory")
RESULTS = Path(__file__).parent / "results"


def write_model(name: str, folder: Path) -> Path:
    path = folder / f"{name}.onnx"
    if name == "demo":
        from graphopt.examples.models import residual_branch_net

        onnx.save(residual_branch_net(), path)
    else:
        from graphopt.examples.real_models import light_model

        onnx.save(light_model(name), path)
    return path


def tune(model: Path, study_dir: Path, name: str, trials: int, workers: int, sampler: str, seed: int,
         limit: int | None, cache: Path | None = None, space: Path | None = None) -> float:
    argv = [sys.executable, "-m", "graphopt.cli", "tune", str(model), "--dir", str(study_dir), "--study", name,
            "--trials", str(trials), "--workers", str(workers), "--sampler", sampler, "--seed", str(seed),
            "--quiet", "--repeat", "10"]
    if limit is not None:
        argv += ["--memory-limit", str(limit)]
    if cache is not None:
        argv += ["--cache", str(cache)]
    if space is not None:
        argv += ["--space", str(space)]
    began = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - began
    if proc.returncode != 0:
        raise SystemExit(f"graphopt tune failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
    return seconds


def trials_of(study_dir: Path, name: str) -> list:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.load_study(study_name=name, storage=f"sqlite:///{study_dir / 'study.db'}").get_trials()


def counts(trials: list) -> dict:
    from optuna.trial import TrialState

    return {"trials": len(trials), "complete": sum(t.state == TrialState.COMPLETE for t in trials),
            "pruned_before_build": sum(t.state == TrialState.PRUNED and "build" not in t.user_attrs.get("stages", [])
                                       for t in trials),
            "reused_by_artifact_id": sum(bool(t.user_attrs.get("reused")) for t in trials),
            "compiled": sum(bool(t.user_attrs.get("compiled")) for t in trials),
            "failed": sum(t.state == TrialState.FAIL for t in trials)}


def front_ids(trials: list) -> list[str]:
    done = [t for t in trials if t.values]
    return [done[i].user_attrs["artifact_id"] for i in front_indices([t.values for t in done])]


def recompilations(cache: Path) -> int:
    from graphopt.tune.cache import ArtifactCache

    return ArtifactCache(cache).recompilations()


def machine() -> str:
    from benchmarks.machine import cpu_name

    return f"{cpu_name()}, {os.cpu_count()} cores"


def run(args) -> dict:
    work = Path(tempfile.mkdtemp(prefix="bench-tune-"))
    model = write_model(args.model, work)
    load_start = os.getloadavg()
    grid_dir = work / "grid"
    if args.reuse_grid:  # an earlier run's finished grid (same model bytes, so the same artifact ids)
        old = Path(args.reuse_grid)
        model, grid_dir = old / f"{args.model}.onnx", old / "grid"
    from graphopt.tune.space import default_space, load_space

    space = load_space(args.space, train=False) if args.space else default_space(train=False)
    grid_size = len(space.grid())
    limit = args.memory_limit or None
    if args.reuse_grid:
        grid_s = float("nan")
    else:
        grid_s = tune(model, grid_dir, "grid", grid_size, 2, "random", 0, limit, space=args.space)
    grid = trials_of(grid_dir, "grid")
    assert len({json.dumps(t.params, sort_keys=True) for t in grid}) == grid_size, "the grid was not covered"
    value = {t.user_attrs["artifact_id"]: tuple(t.values) for t in grid if t.values}
    ref = reference_point(list(value.values()), margin=0.1)
    grid_hv = hypervolume(list(value.values()), ref)
    print(f"grid: {grid_size} configurations in {grid_s:.0f} s; {counts(grid)}", flush=True)

    runs, times = [], {1: [], 2: []}
    for r in range(args.rounds):
        for workers in ((1, 2) if r % 2 == 0 else (2, 1)):
            name = f"tpe-w{workers}-r{r}"
            seconds = tune(model, work / name, name, args.trials, workers, "tpe", 100 + r, limit, space=args.space)
            trials = trials_of(work / name, name)
            ids = front_ids(trials)
            found = [value[i] for i in ids if i in value]
            if len(found) != len(ids):
                print(f"warning: {len(ids) - len(found)} front configurations of {name} are infeasible in the grid")
            entry = {"name": name, "workers": workers, "seconds": round(seconds, 2), **counts(trials),
                     "hypervolume_ratio": round(hypervolume(found, ref) / grid_hv, 4) if grid_hv else None,
                     "recompilations": recompilations(work / name / "artifacts")}
            runs.append(entry)
            times[workers].append(seconds)
            print(json.dumps(entry), flush=True)

    dedup_s = tune(model, work / "dedup", "dedup", args.trials, 1, "tpe", 999, limit, cache=grid_dir / "artifacts",
                   space=args.space)
    dedup = {"seconds": round(dedup_s, 2), **counts(trials_of(work / "dedup", "dedup"))}
    print(f"dedup on the grid's cache: {dedup}", flush=True)
    ratios = [e["hypervolume_ratio"] for e in runs]
    all_caches = [grid_dir / "artifacts", *[work / e["name"] / "artifacts" for e in runs]]
    summary = {
        "hypervolume_ratio": statistics.median(ratios),
        "trial_fraction": round(args.trials / grid_size, 4),
        "time_ratio_2_vs_1_workers": round(statistics.median(times[2]) / statistics.median(times[1]), 4),
        "recompilations": sum(recompilations(c) for c in all_caches),
    }
    return {"model": args.model, "grid_size": grid_size, "grid_seconds": round(grid_s, 1), "grid": counts(grid),
            "memory_limit": limit, "reference_point": ref, "grid_hypervolume": grid_hv,
            "grid_front": [value[i] for i in front_ids(grid)], "runs": runs, "dedup_run": dedup,
            "hypervolume_ratio_min": min(ratios), "seconds_1_worker": times[1], "seconds_2_workers": times[2],
            "load_average_start": load_start, "load_average_end": os.getloadavg(), "machine": machine(),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "command": "python -m benchmarks.tune " + " ".join(sys.argv[1:]), "work_dir": str(work),
            "grid_dir": str(grid_dir), "summary": summary}


SCALING_SPACE = """\
planner: [greedy_by_size, smartpool]
schedules: [true, false]
reorder: [true, false]
time_limit: 1.0
"""


def scaling(args) -> dict:
    """Option tuning (the whole grid of a small space, random sampler: every run covers the same
    configurations) and kernel tuning of one model, each on a local Ray cluster with 1 and 2
    workers, rounds alternating the order; the cluster is started once, outside the timings.
    Option tuning must find the same artifacts with the same planned peaks and the same Pareto
    front (each latency timed alone on the node: `overlapping_timings` counts measure windows that
    overlapped, 0 expected); kernel tuning must write records for the same (kernel, target, CPU)
    keys with the same rules, trial counts and skip reasons."""
    from graphopt.cluster.probe import warm
    from graphopt.cluster.ray_executor import RayExecutor

    work = Path(tempfile.mkdtemp(prefix="bench-tune-scaling-"))
    model = write_model(args.model, work)
    space = work / "space.yaml"
    space.write_text(SCALING_SPACE)
    load_start = os.getloadavg()
    cluster = RayExecutor(None, 2)
    executors = {1: RayExecutor(None, 1), 2: cluster}
    cluster.map(warm, [(1.0,)] * 2)  # both workers import TVM before anything is timed
    runs: list[dict] = []
    try:
        for r in range(args.rounds):
            for workers in ((1, 2) if r % 2 == 0 else (2, 1)):
                runs.append(_options_run(model, space, work / f"opt-w{workers}-r{r}", workers))
                runs.append(_kernels_run(model, work / f"kern-w{workers}-r{r}", workers, executors[workers],
                                         args.kernel_trials))
                print(json.dumps({k: v for k, v in runs[-2].items() if k != "peaks"}), json.dumps(
                    {k: v for k, v in runs[-1].items() if k != "records"}), flush=True)
    finally:
        cluster.close()
    options = [r for r in runs if r["kind"] == "options"]
    return {"model": args.model, "runs": runs, **{kind: _ratios(runs, kind) for kind in ("options", "kernels")},
            "options_identical": len({json.dumps(r["peaks"], sort_keys=True) for r in options}) == 1,
            "options_front_identical": len({tuple(r["front"]) for r in options}) == 1,
            "kernels_identical_records": len({json.dumps(r["records"], sort_keys=True)
                                              for r in runs if r["kind"] == "kernels"}) == 1,
            "overlapping_timings": sum(r["overlapping_timings"] for r in options),
            "load_average_start": load_start, "load_average_end": os.getloadavg(), "machine": machine(),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "command": "python -m benchmarks.tune " + " ".join(sys.argv[1:])}


def _options_run(model: Path, space: Path, study_dir: Path, workers: int) -> dict:
    """`graphopt tune --cluster ray --workers K` in this process (it joins the running cluster)."""
    from graphopt.cli import main as graphopt

    argv = ["tune", str(model), "--dir", str(study_dir), "--study", "s", "--trials", "8", "--workers", str(workers),
            "--sampler", "random", "--seed", "0", "--quiet", "--repeat", "10", "--space", str(space),
            "--cluster", "ray"]
    began = time.perf_counter()
    if graphopt(argv) != 0:
        raise SystemExit(f"graphopt {' '.join(argv)} failed")
    seconds = time.perf_counter() - began
    trials = trials_of(study_dir, "s")
    peaks = {t.user_attrs["artifact_id"]: t.user_attrs.get("peak_memory") for t in trials}
    windows = sorted(t.user_attrs["measure_window"] for t in trials if "measure_window" in t.user_attrs)
    return {"kind": "options", "workers": workers, "seconds": round(seconds, 2), **counts(trials),
            "peaks": peaks, "front": sorted(front_ids(trials)),
            "overlapping_timings": sum(a[1] > b[0] for a, b in itertools.pairwise(windows))}


def _kernels_run(model: Path, folder: Path, workers: int, executor, trials: int) -> dict:
    from graphopt.kernels.tuning.db import TuningDB
    from graphopt.kernels.tuning.jobs import tune_model_on

    folder.mkdir(parents=True)
    db = TuningDB.open(f"sqlite:///{folder / 'study.db'}")
    began = time.perf_counter()
    summary = tune_model_on(executor, model, db, trials, {}, progress=False)
    seconds = time.perf_counter() - began
    records = {"/".join(k): [r.rule, r.trials, r.extra.get("skipped", "")]
               for k, r in TuningDB.open(db.location).records.items()}
    return {"kind": "kernels", "workers": workers, "seconds": round(seconds, 2), "kernels": summary.kernels,
            "trials": summary.trials, "records": records}


def _ratios(runs: list[dict], kind: str) -> dict:
    one = [r["seconds"] for r in runs if r["kind"] == kind and r["workers"] == 1]
    two = [r["seconds"] for r in runs if r["kind"] == kind and r["workers"] == 2]
    ratios = [b / a for a, b in zip(one, two)]
    return {"seconds_1_worker": one, "seconds_2_workers": two,
            "ratio_2_vs_1_median": round(statistics.median(ratios), 4),
            "ratio_spread": [round(min(ratios), 4), round(max(ratios), 4)]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.tune")
    p.add_argument("--model", default="shufflenet", help="a light model name, or demo")
    p.add_argument("--trials", type=int, default=12)
    p.add_argument("--rounds", type=int, default=2, help="rounds of (1 worker, 2 workers), order alternating")
    p.add_argument("--memory-limit", type=int, default=3_000_000, help="bytes; 0: no limit")
    p.add_argument("--space", type=Path, default=None, help="a space file (default: the default space)")
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--reuse-grid", default=None, metavar="WORKDIR", help="take the grid of an earlier run's work dir")
    p.add_argument("--scaling", action="store_true",
                   help="instead: option and kernel tuning on 1 vs 2 local Ray workers (--rounds rounds)")
    p.add_argument("--kernel-trials", type=int, default=4, help="with --scaling: trials per kernel")
    args = p.parse_args(argv)
    if args.scaling:
        result = scaling(args)
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(result, indent=1))
        print(json.dumps({k: v for k, v in result.items() if k != "runs"}))
        return 0
    result = run(args)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1))
    print(json.dumps(result["summary"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
