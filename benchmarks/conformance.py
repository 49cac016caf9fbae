"""The ONNX backend conformance suite through graphopt's default compile, beside ONNX Runtime.

    python -m benchmarks.conformance [--jobs N] [--filter REGEX] [--out DIR] [--name STEM]
                                     [--timeout S] [--mem-gb G] [--no-ort] [--limit N]
    python -m benchmarks.conformance --subset [--write-expected]

Runs every CPU case of onnx's `BackendTest` (2,033 with onnx 1.23) or those whose
name matches --filter, each in an isolated, reused worker process with a per-case
timeout and memory cap (benchmarks/conformance_pool.py). Each case is run by ONNX
Runtime and by graphopt (tests/conformance/backend.py) and classified as pass,
refused (a one-line GraphoptError), mismatch (a wrong answer), crash (any other
error, with its stage), timeout or skip (benchmarks/conformance_cases.py).

graphopt is imported from a copy of the source taken at the start
(benchmarks/conformance_snapshot.py), so edits to the shared tree during the run
never mix into it. Writes OUT/STEM.tsv (one row per case) and OUT/STEM.md (the summary), STEM being
`conformance-DATE` with the first free `-N` suffix; rows are also appended, as
they finish, to a `.partial.tsv` in the log folder printed at the start, so a run
that is stopped still leaves what it measured.

--subset runs only the fixed subset of tests/conformance/subset.py (graphopt
only) and judges it against the expected outcomes; --write-expected then
records its outcomes as the new expectation (after a fix lands).
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from benchmarks.conformance_cases import ENGINES, GRAPHOPT, ORT, REPO
from benchmarks.conformance_pool import CaseRecord, PoolOptions, run_cases
from benchmarks.conformance_report import COLUMNS, summary, tsv_row, write_tsv
from benchmarks.conformance_snapshot import take
from benchmarks.machine import cpu_name
from benchmarks.outputs import RESULTS, unused


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2, help="worker processes at once")
    parser.add_argument("--filter", default=None, help="run only cases whose name matches this regex")
    parser.add_argument("--limit", type=int, default=None, help="run only the first N selected cases")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for the .tsv and .md")
    parser.add_argument("--name", default=None, help="file stem (default conformance-DATE, never overwriting)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per case, both engines together")
    parser.add_argument("--mem-gb", type=float, default=16.0,
                        help="address-space cap of each worker (virtual memory: vgg19 maps over 10 GB)")
    parser.add_argument("--no-ort", action="store_true", help="run graphopt only")
    parser.add_argument("--subset", action="store_true", help="the fixed subset of tests/conformance/subset.py")
    parser.add_argument("--write-expected", action="store_true", help="with --subset: record outcomes as expected")
    args = parser.parse_args(argv)
    if args.write_expected and not args.subset:
        parser.error("--write-expected needs --subset")
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    return args


def selector(args: argparse.Namespace):
    """Picks the cases to run from the suite's names; an unknown subset name is an error."""
    from tests.conformance.subset import select_subset

    def select(names: list[str]) -> list[str]:
        if args.subset:
            chosen = select_subset(names)
        else:
            chosen = [n for n in names if args.filter is None or re.search(args.filter, n)]
        return chosen[: args.limit] if args.limit is not None else chosen

    return select


class Progress:
    """Appends each finished case to the partial TSV and prints a line every 25 cases."""

    def __init__(self, partial: Path) -> None:
        self.partial, self.began, self.counts, self.ort_pass = partial, time.monotonic(), Counter(), 0
        partial.write_text("\t".join(COLUMNS) + "\n")

    def __call__(self, record: CaseRecord) -> None:
        with self.partial.open("a") as out:
            out.write(tsv_row(record) + "\n")
        self.counts[record.results[GRAPHOPT].outcome] += 1
        self.ort_pass += ORT in record.results and record.results[ORT].outcome == "pass"
        done = sum(self.counts.values())
        if done % 25 == 0:
            counts = " ".join(f"{k} {v}" for k, v in sorted(self.counts.items()))
            seconds = time.monotonic() - self.began
            print(f"[{done} cases, {seconds:.0f} s] graphopt: {counts} | ort pass {self.ort_pass}",
                  file=sys.stderr, flush=True)


def machine_lines(command: str, began: datetime.datetime, seconds: float, load_before: tuple,
                  source_hash: str) -> list[str]:
    revision = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    changed = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                             capture_output=True, text=True)
    loads = "/".join(f"{x:.2f}" for x in load_before), "/".join(f"{x:.2f}" for x in os.getloadavg())
    return [f"- date: {began:%Y-%m-%d %H:%M} UTC, wall time {seconds / 60:.1f} min",
            f"- machine: {os.cpu_count()} CPUs ({cpu_name()}), load average (1/5/15 min) {loads[0]} at start, "
            f"{loads[1]} at end",
            f"- code: git {revision.stdout.strip()} with {len(changed.stdout.splitlines())} tracked files "
            f"modified in the working tree, frozen at the start (graphopt/, passes/, runtime/: sha256 "
            f"{source_hash}, benchmarks/conformance_snapshot.py)",
            f"- command: `{command}`"]


def run_subset(args: argparse.Namespace, options: PoolOptions, partial: Path) -> int:
    from tests.conformance.subset import judge, read_expected, write_expected

    records = run_cases(selector(args), options, Progress(partial))
    if args.write_expected:
        path = write_expected(records)
        print(f"wrote {path} ({len(records)} cases)")
    problems, notes = judge(records, read_expected())
    for line in notes + problems:
        print(line)
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    began, load_before, started = datetime.datetime.now(datetime.timezone.utc), os.getloadavg(), time.monotonic()
    log_dir = Path(tempfile.mkdtemp(prefix="graphopt-conformance-logs-"))
    source_hash = take(log_dir / "source")
    engines = (GRAPHOPT,) if args.no_ort or args.subset else ENGINES
    options = PoolOptions(jobs=args.jobs, engines=engines, timeout=args.timeout, mem_gb=args.mem_gb,
                          log_dir=log_dir, source=log_dir / "source")
    partial = log_dir / "conformance.partial.tsv"
    print(f"worker logs, partial results and the source copy (sha256 {source_hash}): {log_dir}",
          file=sys.stderr, flush=True)
    if args.subset:
        return run_subset(args, options, partial)
    records = run_cases(selector(args), options, Progress(partial))
    stem = args.out / (args.name or f"conformance-{began:%Y-%m-%d}")
    if args.name is None:
        stem = unused(stem, (".tsv", ".md"))
    command = "python -m benchmarks.conformance " + " ".join(argv if argv is not None else sys.argv[1:])
    header = machine_lines(command, began, time.monotonic() - started, load_before, source_hash)
    write_tsv(records, Path(f"{stem}.tsv"))
    Path(f"{stem}.md").write_text(summary(records, header))
    print(f"wrote {stem}.tsv and {stem}.md ({len(records)} cases)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
