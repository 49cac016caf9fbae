"""Merge with history reuse + pruning vs. a baseline without history records.

    python -m benchmarks.merge [--json FILE] [--versions 1..3]
    python -m benchmarks.merge --scaling ROUNDS [--json FILE]   (1 vs 2 Ray workers)

Builds the two-user digits repository (benchmarks/pipeline_example), then, in the
same process on the same machine:

  ours      graphopt.pipelines.merge: the search tree with compatibility pruning,
            stored intermediate results and compiled artifacts reused by id,
            candidates in priority order (no budget: the search is exhaustive
            over what survives pruning)
  baseline  no history records: every candidate of the same tree (all version
            combinations) is run from scratch, each step's outputs stored per run;
            incompatible candidates are only found by failing

Stored bytes: ours = the repository after the merge (objects + metadata), history
included; baseline = what a store without history records holds for the same
work: every branch commit's outputs stored per commit, plus every merge
candidate's outputs stored per run. The merged metric must equal the best the
exhaustive baseline finds.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.pipeline_example.scenario import Scenario
from graphopt.pipelines import components
from graphopt.pipelines.errors import ComponentRunError, SchemaConflictError
from graphopt.pipelines.merge import Objective, levels_for, merge, merge_base

METRIC = "accuracy"


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def repo_bytes(repo) -> int:
    return du(repo.store.objects) + sum(p.stat().st_size for p in repo.root.glob("meta.sqlite*"))


def history_bytes_without_records(repo) -> int:
    """Bytes a store without history would hold for the branch commits: all outputs, per commit."""
    total = 0
    for (cid,) in repo.conn.execute("SELECT id FROM commits").fetchall():
        for entry in repo.commit_row(cid).pipeline:
            (output,) = repo.conn.execute("SELECT output FROM runs WHERE key=?", (entry["run"],)).fetchone()
            total += repo.store.tree_bytes(output)
    return total


def run_from_scratch(repo, nodes, run_dir: Path) -> dict | None:
    """One candidate, every step run and stored under run_dir; None when it fails."""
    for node in nodes:
        out = run_dir / node.component
        out.mkdir(parents=True)
        if node.spec["kind"] in components.FILE_KINDS:
            for name, oid in node.spec["files"].items():
                (out / name).write_bytes(repo.store.read_bytes(oid))
            continue
        try:
            components.run(node.spec, {n: run_dir / n for n in node.spec.get("inputs", [])}, out)
        except (SchemaConflictError, ComponentRunError):
            return None
    metrics = list(run_dir.rglob("metrics.json"))
    return json.loads(metrics[0].read_text()) if metrics else None


def baseline(repo, levels, work: Path) -> dict:
    start = time.perf_counter()
    results = []
    for i, combo in enumerate(itertools.product(*[lvl.nodes for lvl in levels])):
        results.append(run_from_scratch(repo, combo, work / f"candidate-{i:03d}"))
    seconds = time.perf_counter() - start
    ok = [r for r in results if r]
    return {"seconds": seconds, "bytes": du(work), "candidates": len(results), "ran": len(ok),
            "best": max(r[METRIC] for r in ok)}


def measure(versions: int, work: Path) -> dict:
    scenario = Scenario(work / "repo", work / "files", say=lambda _m: None)
    repo = scenario.build(versions)
    ours_head, theirs = repo.head("alice"), repo.head("bob")
    levels = levels_for(repo, ours_head, theirs, merge_base(repo, ours_head, theirs))
    before = repo_bytes(repo)
    start = time.perf_counter()
    result = merge(repo, "bob", Objective.parse(METRIC, True, None))
    ours_s = time.perf_counter() - start
    ours_bytes = repo_bytes(repo)
    base = baseline(repo, levels, work / "baseline")
    base_hist = history_bytes_without_records(repo)
    return {"versions_per_component": {lvl.component: len(lvl.nodes) for lvl in levels},
            "candidates": result.tree_leaves, "pruned": result.pruned, "steps_run": result.runs,
            "merge_seconds": ours_s, "baseline_seconds": base["seconds"],
            "stored_bytes": ours_bytes, "stored_bytes_merge_only": ours_bytes - before,
            "baseline_bytes": base["bytes"] + base_hist, "baseline_bytes_merge_only": base["bytes"],
            "best_metric": result.best.metrics[METRIC], "exhaustive_best": base["best"],
            "baseline_candidates_ok": base["ran"],
            "merge_speedup": base["seconds"] / ours_s,
            "storage_ratio": (base["bytes"] + base_hist) / ours_bytes}


def scaling(versions: int, work: Path, rounds: int) -> dict:
    """The same merge on copies of one repository: in process, and on a local Ray cluster with 1
    and 2 workers (rounds alternate the order); the cluster is started once, outside the timings.
    Every run must pick the same pipeline with the same metric and run the same steps."""
    from graphopt.cluster.probe import warm
    from graphopt.cluster.ray_executor import RayExecutor
    from graphopt.pipelines.repo import open_repo

    Scenario(work / "repo", work / "files", say=lambda _m: None).build(versions).close()
    load_start = os.getloadavg()
    cluster = RayExecutor(None, 2)
    cluster.map(warm, [(1.0,)] * 2)  # both workers import TVM before anything is timed
    executors = {"in process": None, "1 worker": RayExecutor(None, 1), "2 workers": cluster}
    runs: list[dict] = []
    try:
        for r in range(rounds):
            for name in (("1 worker", "2 workers") if r % 2 == 0 else ("2 workers", "1 worker")) + ("in process",):
                copy = work / f"r{r}-{name.replace(' ', '-')}"
                shutil.copytree(work / "repo", copy)
                repo = open_repo(copy)
                start = time.perf_counter()
                result = merge(repo, "bob", Objective.parse(METRIC, True, None), jobs=executors[name])
                seconds = time.perf_counter() - start
                runs.append({"round": r, "executor": name, "seconds": round(seconds, 3), "runs": result.runs,
                             "best": list(result.best.labels), "metric": result.best.metrics[METRIC],
                             "statuses": sorted(c.status for c in result.candidates)})
                repo.close()
                print(json.dumps(runs[-1]), flush=True)
    finally:
        cluster.close()
    return _scaling_summary(runs, load_start)


def _scaling_summary(runs: list[dict], load_start) -> dict:
    by = {name: [r["seconds"] for r in runs if r["executor"] == name] for name in ("1 worker", "2 workers")}
    ratios = [two / one for one, two in zip(by["1 worker"], by["2 workers"])]
    same = len({(tuple(r["best"]), r["metric"], r["runs"], tuple(r["statuses"])) for r in runs}) == 1
    return {"runs": runs, "ratio_2_vs_1_workers_median": round(statistics.median(ratios), 4),
            "ratio_spread": [round(min(ratios), 4), round(max(ratios), 4)], "identical_results": same,
            "load_average_start": load_start, "load_average_end": os.getloadavg(), "machine": _machine(),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "command": "python -m benchmarks.merge " + " ".join(sys.argv[1:])}


def _machine() -> str:
    from benchmarks.machine import cpu_name

    return f"{cpu_name()}, {os.cpu_count()} cores"


def table(r: dict) -> str:
    rows = [("merge time (s)", f"{r['merge_seconds']:.2f}", f"{r['baseline_seconds']:.2f}", f"{r['merge_speedup']:.1f}x"),
            ("stored bytes (history + merge)", f"{r['stored_bytes']:,}", f"{r['baseline_bytes']:,}",
             f"{r['storage_ratio']:.1f}x"),
            ("stored bytes (merge only)", f"{r['stored_bytes_merge_only']:,}", f"{r['baseline_bytes_merge_only']:,}",
             f"{r['baseline_bytes_merge_only'] / max(r['stored_bytes_merge_only'], 1):.1f}x"),
            (f"best {METRIC}", f"{r['best_metric']:.4f}", f"{r['exhaustive_best']:.4f}",
             "equal" if r["best_metric"] == r["exhaustive_best"] else "DIFFERENT")]
    lines = ["| | history reuse + pruning | baseline (no history) | ratio |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    lines.append(f"\nversions per component: {r['versions_per_component']}; {r['candidates']} candidate pipelines, "
                 f"{r['pruned']} pruned, {r['steps_run']} steps run by the merge; "
                 f"baseline: {r['baseline_candidates_ok']} candidates ran to the end")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description="MLCask merge benchmark on digits with graphopt compiles")
    parser.add_argument("--json", type=Path, default=None, metavar="FILE", help="also write the JSON line here")
    parser.add_argument("--versions", type=int, default=3, choices=(1, 2, 3), help="commits per user branch")
    parser.add_argument("--work", type=Path, default=None, help="keep the work directory here")
    parser.add_argument("--scaling", type=int, default=0, metavar="ROUNDS",
                        help="instead: the merge on 1 vs 2 local Ray workers (and in process), ROUNDS rounds")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-merge-"))
    if args.scaling:
        try:
            result = scaling(args.versions, work, args.scaling)
        finally:
            if args.work is None:
                shutil.rmtree(work, ignore_errors=True)
        print(json.dumps({k: v for k, v in result.items() if k != "runs"}))
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(result, indent=1) + "\n")
        return
    try:
        result = measure(args.versions, work)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    print(table(result))
    line = json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in result.items()})
    print(line)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(line + "\n")


if __name__ == "__main__":
    main()
