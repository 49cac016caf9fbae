"""Placement quality on the shared CSV instances: arena / lower bound per planner.

Prints a markdown table (and writes it with --out): for every instance in
`../shared/data/alloc` (A-K, the toy, the two real traces), the arena of each
heuristic, of CP-SAT hinted with the best heuristic, and of the online caching
pool, each divided by the lower bound, plus wall times. Every placement is
checked by the validator first.

    python benchmarks/alloc_csv.py [--time-limit 10] [--out benchmarks/results/alloc_csv.md]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from graphopt.passes.cpsat import CpSat
from graphopt.passes.registry import get_planner

from graphopt.analysis.lower_bound import lower_bound
from graphopt.analysis.pool import caching_pool_peak
from graphopt.plan.csv_io import read_problem
from graphopt.plan.validator import assert_valid

ALLOC_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "alloc"
HEURISTICS = ("greedy_by_size", "smartpool", "best_of_orderings")


def instances(root: Path) -> list[Path]:
    """A-K and the toy, then the real traces."""
    return sorted(root.glob("*.csv")) + sorted((root / "real").glob("*.csv"))


def row(path: Path, time_limit: float) -> list[str]:
    """One table row: ratios to the lower bound and seconds."""
    problem = read_problem(path)
    lb = lower_bound(problem)
    placed = {name: get_planner(name).plan(problem) for name in HEURISTICS}
    best = min(placed.values(), key=lambda p: p.arena_bytes)
    placed["cpsat"] = CpSat().plan(problem, time_limit, hint=best)
    for p in placed.values():
        assert_valid(problem, p)
    ratios = [f"{placed[n].arena_bytes / lb:.3f}" for n in (*HEURISTICS, "cpsat")]
    heuristic_s = sum(placed[n].seconds for n in HEURISTICS)
    proven = "yes" if placed["cpsat"].optimal else ""
    return [
        problem.name, str(len(problem)), f"{lb:,}", *ratios, proven,
        f"{caching_pool_peak(problem) / lb:.3f}", f"{heuristic_s:.2f}", f"{placed['cpsat'].seconds:.1f}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-limit", type=float, default=10.0, help="CP-SAT seconds per instance")
    parser.add_argument("--out", type=Path, help="also write the table here")
    args = parser.parse_args()
    header = [
        "instance", "buffers", "LB", "greedy_by_size/LB", "smartpool/LB", "best_of_orderings/LB",
        f"cpsat({args.time_limit:g}s)/LB", "optimal", "caching pool/LB", "heuristics s", "cpsat s",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for path in instances(ALLOC_DIR):
        lines.append("| " + " | ".join(row(path, args.time_limit)) + " |")
        print(lines[-1] if len(lines) > 3 else "\n".join(lines), flush=True)
    if args.out:
        args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
