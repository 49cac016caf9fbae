"""`python -m benchmarks.pipeline_example [DIR]`: build the two-user repository and merge it."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from benchmarks.pipeline_example.scenario import Scenario
from graphopt.pipelines.merge import Objective, merge


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("dir", nargs="?", type=Path, default=None, help="where to create the repository")
    args = parser.parse_args()
    root = args.dir or Path(tempfile.mkdtemp(prefix="pipeline-example-"))
    scenario = Scenario(root, root / "work")
    repo = scenario.build()
    result = merge(repo, "bob", Objective.parse("accuracy", True, None))
    best = result.best
    print(f"merged bob into alice: {len(result.candidates)} candidates of {result.tree_leaves}, "
          f"{result.pruned} pruned, {result.runs} steps run")
    print(f"best accuracy {best.metrics['accuracy']:.4f}: " + " ".join(best.labels))
    print(f"repository: {root}  (try: graphopt pipeline --repo {root} log)")


if __name__ == "__main__":
    main()
