"""Peak memory before and after operator reordering, on real models with branches.

    python -m benchmarks.reorder [--models a,b,...] [--json FILE]

For each model: TVM's lowering, then the lower bound (max bytes live at once) in
TVM's kernel order and in the order `passes/reorder.py` finds (exact DP over
down-sets when the DAG is narrow, greedy otherwise), both measured by the same
extraction the compiler uses. Markdown table to stdout; JSON with date and machine.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.memory import _meta
from benchmarks.model_zoo import ZOO, materialize

EXAMPLES_WITH_BRANCHES = ("residual_branch_net", "parallel_concat", "split_multi_output")


def _lowered(name: str, work: Path):
    import onnx

    from graphopt.frontend import prepare
    from graphopt.frontend.importer import to_relax
    from graphopt.lowering.lower import lower_to_explicit_memory
    from graphopt.lowering.target import make_target

    if name in EXAMPLES_WITH_BRANCHES:
        from graphopt.examples.models import EXAMPLES

        path, shapes = work / f"{name}.onnx", {}
        onnx.save(EXAMPLES[name](), path)
    else:
        path, shapes, _ = materialize(name, work)
    imported = to_relax(prepare(path, shapes).model)
    return lower_to_explicit_memory(imported.mod, make_target("llvm"))


def bench(name: str, work: Path) -> dict:
    from graphopt.transforms.reorder import read_dag, reorder_kernels

    lowered = _lowered(name, work)
    dag = read_dag(lowered["main"])
    start = time.perf_counter()
    record = reorder_kernels(lowered).record
    seconds = time.perf_counter() - start
    before, after = record["lower_bound_before"], record["lower_bound_after"]
    joins = sum(1 for preds in dag.problem.preds if len(preds) > 1) if dag else 0
    return {"model": name, "kernels": dag.problem.num_nodes if dag else 0, "joins": joins,
            "method": record["method"], "LB_before_MiB": before / 2**20, "LB_after_MiB": after / 2**20,
            "after/before": after / before if before else 1.0, "seconds": seconds}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(EXAMPLES_WITH_BRANCHES + ZOO))
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            print(f"[{name}]", file=sys.stderr, flush=True)
            rows.append(bench(name, Path(tmp)))
    columns = list(rows[0])
    print("| " + " | ".join(columns) + " |\n|" + "---|" * len(columns))
    for r in rows:
        print("| " + " | ".join(f"{r[c]:.3f}" if isinstance(r[c], float) else str(r[c]) for c in columns) + " |")
    if args.json:
        args.json.write_text(json.dumps({"meta": _meta(argv, "benchmarks.reorder"), "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
