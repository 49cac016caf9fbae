"""Writes the memory problem of each real model as a MiniMalloc CSV under benchmarks/traces/.

    python -m benchmarks.extract_traces [--models a,b] [--out benchmarks/traces]

The traces are what `graphopt compile` plans (TVM's lowering, graphopt's kernel
order). The CSV format carries no alignment, so sizes are rounded up to the
64-byte alignment the arena needs: planned byte-exact, such a trace gives
aligned offsets whenever each offset is a sum of sizes, as best-fit ones are.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmarks.model_zoo import ZOO, materialize
from graphopt.plan.problem import Buffer, MemoryProblem


def model_trace(name: str, work: Path) -> MemoryProblem:
    from graphopt.analysis.extract import extract
    from graphopt.frontend import prepare
    from graphopt.frontend.importer import to_relax
    from graphopt.lowering.lower import lower_to_explicit_memory
    from graphopt.lowering.target import make_target
    from graphopt.transforms.reorder import reorder_kernels

    path, shapes, _ = materialize(name, work)
    imported = to_relax(prepare(path, shapes).model)
    lowered = lower_to_explicit_memory(imported.mod, make_target("llvm"))
    lowered = reorder_kernels(lowered).module
    return extract(lowered["main"]).problem


def rounded(problem: MemoryProblem) -> MemoryProblem:
    """Sizes padded to each buffer's alignment, alignment then dropped to 1."""
    buffers = tuple(Buffer(b.id, b.start, b.end, -(-b.size // b.alignment) * b.alignment, 1, b.name)
                    for b in problem.buffers)
    return MemoryProblem(buffers, problem.num_steps, problem.name)


def main(argv: list[str] | None = None) -> int:
    import tempfile

    from graphopt.plan.csv_io import write_problem

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(ZOO))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/traces"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            problem = rounded(model_trace(name, Path(tmp)))
            write_problem(problem, args.out / f"{name}.csv")
            print(f"{name}: {len(problem)} buffers -> {args.out / (name + '.csv')}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
