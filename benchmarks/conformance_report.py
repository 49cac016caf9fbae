"""The conformance run's tables: one TSV row per case, and a markdown summary.

The TSV is the record (case, graphopt's outcome, stage, error class, first line,
ONNX Runtime's outcome, then op types, graphopt frame, seconds and ORT's first
line); the markdown is what a reader needs first: outcome counts beside ORT's,
where graphopt fails (by stage and error class), which refusals are most
common per op, every crash class with one example, and every mismatch.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from benchmarks.conformance_cases import GRAPHOPT, ORT, OUTCOMES, CaseResult
from benchmarks.conformance_pool import CaseRecord
from tests.conformance.known_tolerances import KNOWN_TOLERANCES

COLUMNS = ("case", "outcome", "stage", "error_class", "first_line", "ort_outcome",
           "ops", "frame", "seconds", "ort_first_line")
FAILURES = ("refused", "mismatch", "crash", "timeout", "skip")  # graphopt's; ONNX Runtime's add "error"


def clean(text: str) -> str:
    """A TSV cell: no tabs or newlines."""
    return " ".join(str(text).split())


def tsv_row(record: CaseRecord) -> str:
    ours, ort = record.results[GRAPHOPT], record.results.get(ORT)
    cells = (record.case, ours.outcome, ours.stage, ours.error_class, ours.first_line,
             ort.outcome if ort else "", ours.ops, ours.frame, f"{ours.seconds:.2f}", ort.first_line if ort else "")
    return "\t".join(clean(c) for c in cells)


def write_tsv(records: Iterable[CaseRecord], path: Path) -> None:
    rows = [tsv_row(r) for r in sorted(records, key=lambda r: r.case)]
    path.write_text("\t".join(COLUMNS) + "\n" + "".join(row + "\n" for row in rows))


def table(header: tuple[str, ...], rows: Iterable[tuple]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(clean(c).replace("|", "\\|") for c in row) + " |" for row in rows]


def outcome_counts(records: list[CaseRecord]) -> list[str]:
    ours = Counter(r.results[GRAPHOPT].outcome for r in records)
    theirs = Counter(r.results[ORT].outcome for r in records if ORT in r.results)
    rows = [(o, ours[o], theirs[o] if theirs else "-") for o in OUTCOMES]
    return table(("outcome", "graphopt", "ONNX Runtime"), rows + [("total", len(records), sum(theirs.values()))])


def by_stage(results: list[CaseResult]) -> list[str]:
    stages = list(dict.fromkeys(r.stage for r in results if r.outcome in FAILURES))
    counts = Counter((r.stage, r.outcome) for r in results)
    rows = [(s or "-", *(counts[(s, o)] for o in FAILURES)) for s in stages]
    return table(("stage", *FAILURES), rows)


def by_error_class(results: list[CaseResult]) -> list[str]:
    counts = Counter((r.outcome, r.error_class) for r in results if r.outcome in FAILURES)
    return table(("outcome", "error class", "cases"), [(o, c or "-", n) for (o, c), n in counts.most_common()])


def refusal_op(result: CaseResult) -> str:
    """The op a refusal is about: one of the case's ops its message names, else all its ops."""
    named = [op for op in result.ops.split("+") if op and re.search(rf"\b{re.escape(op)}\b", result.first_line)]
    return named[0] if named else result.ops or "-"


def top_refusals(results: list[CaseResult], top: int = 30) -> list[str]:
    refused = [r for r in results if r.outcome == "refused"]
    by_op = Counter((refusal_op(r), r.error_class) for r in refused)
    example = {(refusal_op(r), r.error_class): r.first_line for r in refused}
    rows = [(op, cls, n, example[(op, cls)][:140]) for (op, cls), n in by_op.most_common(top)]
    return table(("op", "error class", "cases", "example first line"), rows)


def signature(line: str) -> str:
    """A first line with numbers and quoted names blanked, so instances of one bug group together."""
    return re.sub(r"\d+", "N", re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", line))[:110]


def problem_classes(results: list[CaseResult], outcome: str) -> list[str]:
    chosen = [r for r in results if r.outcome == outcome]
    groups = Counter((r.stage, r.error_class, signature(r.first_line)) for r in chosen)
    first = {}
    for r in chosen:
        first.setdefault((r.stage, r.error_class, signature(r.first_line)), r)
    rows = [(n, s or "-", c or "-", sig, first[key].case, first[key].frame or "-")
            for key, n in groups.most_common() for s, c, sig in [key]]
    return table(("cases", "stage", "error class", "first line (numbers as N)", "example", "graphopt frame"), rows)


def versus_ort(records: list[CaseRecord]) -> list[str]:
    pairs = Counter((r.results[GRAPHOPT].outcome, r.results[ORT].outcome) for r in records if ORT in r.results)
    ort_outcomes = [o for o in OUTCOMES if any(p[1] == o for p in pairs)]
    rows = [(o, *(pairs[(o, t)] for t in ort_outcomes)) for o in OUTCOMES if any(p[0] == o for p in pairs)]
    return table(("graphopt \\ ORT", *ort_outcomes), rows)


def engines_note(results: list[CaseResult]) -> list[str]:
    widened = sorted(r.case for r in results if r.outcome == "pass" and r.case in KNOWN_TOLERANCES)
    return [f"- graphopt: the suite's own test functions and tolerances; {len(widened)} passes use a tolerance "
            "widened, with its reason, in tests/conformance/known_tolerances.py"
            + (f" ({', '.join(widened)})" if widened else ""),
            "- ONNX Runtime: its own ONNX backend on the CPU provider, with the model's IR version lowered to 13 "
            "and 0-d inputs fed as arrays (tests/conformance/ort_backend.py); always the suite's tolerances"]


def summary(records: list[CaseRecord], header: list[str]) -> str:
    results = [r.results[GRAPHOPT] for r in records]
    sections = [["# ONNX backend conformance: graphopt's default compile", "", *header, *engines_note(results)],
                ["## Outcomes", "", *outcome_counts(records)],
                ["## graphopt's non-passes by stage", "", *by_stage(results)],
                ["## graphopt's non-passes by error class", "", *by_error_class(results)],
                ["## Top refusals by op", "", *top_refusals(results)],
                ["## Crash classes (bugs)", "", *problem_classes(results, "crash")],
                ["## Mismatches (silent wrong answers: bugs)", "", *problem_classes(results, "mismatch")],
                ["## Timeouts", "", *problem_classes(results, "timeout")]]
    if any(ORT in r.results for r in records):
        sections.append(["## graphopt outcome (rows) against ONNX Runtime outcome (columns)", "", *versus_ort(records)])
    return "\n\n".join("\n".join(s) for s in sections) + "\n"
