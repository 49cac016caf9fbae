"""A fixed, representative slice of the ONNX backend suite through graphopt's default compile.

The ~50 cases of tests/conformance/subset.py run in two isolated worker processes
(benchmarks/conformance_pool.py, as the full run does), each through the suite's
own test function and tolerances, and are judged against
tests/conformance/subset_expected.tsv: a mismatch, crash or timeout fails even if
it were expected; an expected pass must still pass; an expected refusal must
refuse with the same error class (or pass: progress, reported as a warning).

When a fix changes outcomes on purpose, regenerate the expectation (one command,
~1 minute) and commit it with the fix:

    python -m benchmarks.conformance --subset --write-expected

The full suite (2,033 CPU cases, beside ONNX Runtime) is `python -m benchmarks.conformance`.
"""

from __future__ import annotations

import warnings

import pytest

from benchmarks.conformance_pool import CaseRecord, PoolOptions, run_cases
from benchmarks.conformance_snapshot import take
from tests.conformance.subset import BUGS, SUBSET, judge, read_expected, select_subset

SUITE_CPU_CASES = 2033  # onnx 1.23's BackendTest: node 1884, real 9, simple 23, pytorch 82 + 35
CASE_TIMEOUT = 120.0  # seconds; the slowest subset case takes ~5 s alone on a loaded 2-core machine


@pytest.mark.slow
def test_subset_has_no_bug_and_keeps_its_outcomes(tmp_path) -> None:
    names_seen: list[list[str]] = []

    def select(names: list[str]) -> list[str]:
        names_seen.append(names)
        return select_subset(names)

    take(tmp_path / "source")  # one version of graphopt for every case, whatever is edited meanwhile
    options = PoolOptions(jobs=2, engines=("graphopt",), timeout=CASE_TIMEOUT, log_dir=tmp_path,
                          source=tmp_path / "source")
    records = run_cases(select, options, on_record=lambda record: None)
    assert len(names_seen[0]) == SUITE_CPU_CASES, "the suite's CPU case count changed: check the onnx version"
    assert sorted(r.case for r in records) == sorted(SUBSET)
    problems, notes = judge(records, read_expected())
    for note in notes:
        warnings.warn(note, stacklevel=1)
    assert not problems, "\n".join(problems)


def test_expectation_covers_the_subset_and_records_no_bug() -> None:
    expected = read_expected()
    assert sorted(expected) == sorted(SUBSET)
    assert not [case for case, (outcome, _) in expected.items() if outcome in BUGS]
    refusals = [case for case, (outcome, error_class) in expected.items() if outcome == "refused"]
    assert all(expected[case][1] for case in refusals), "a refusal is recorded with its error class"


def test_judge_fails_bugs_and_regressions_and_lets_progress_through() -> None:
    from benchmarks.conformance_cases import CaseResult

    def record(case: str, outcome: str, error_class: str = "") -> CaseRecord:
        return CaseRecord(case, {"graphopt": CaseResult(case, "graphopt", outcome, error_class=error_class)})

    expected = {"a": ("pass", ""), "b": ("refused", "ShapeError"), "c": ("refused", "ShapeError"),
                "d": ("pass", ""), "e": ("refused", "ShapeError"), "f": ("mismatch", "")}
    records = [record("a", "refused", "ShapeError"), record("b", "pass"), record("c", "refused", "PlanError"),
               record("d", "pass"), record("e", "refused", "ShapeError"), record("f", "mismatch", "AssertionError")]
    problems, notes = judge(records, expected)
    failed = sorted(line.split(":")[0] for line in problems)
    assert failed == ["a", "c", "f"], problems
    assert [line.split(":")[0] for line in notes] == ["b"]
