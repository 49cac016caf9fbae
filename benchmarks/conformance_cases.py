"""One conformance case run by one engine, judged the way the official suite judges it.

The cases are the official suite's own test functions (`onnx.backend.test.BackendTest`
over its node, real, simple and pytorch cases; the CPU ones, 2,033 with onnx 1.23),
called unchanged: they prepare the model, run every data set and compare with the
case's tolerances. Two runners share the generated cases: one over graphopt's
backend (tests/conformance/backend.py, tolerances widened only by
tests/conformance/known_tolerances.py) and one over ONNX Runtime's own backend on
its CPU provider (tests/conformance/ort_backend.py).

What went wrong is read from graphopt's `Trace` (the phase it was in):

- pass: the function returned;
- refused: a GraphoptError (a one-line, deliberate refusal), in any phase;
- mismatch: anything raised while the suite compared outputs (values, shapes,
  dtypes, output count): a silent wrong answer;
- crash: any other exception, with the phase (compile stage, load, run, suite)
  and the innermost frame in graphopt's own code;
- skip: the suite skipped the case (a backend's `is_compatible` said no).

ONNX Runtime's failures other than a mismatch are `error` (it has no refusal
convention to tell a deliberate "not implemented" from a bug).
"""

from __future__ import annotations

import time
import traceback
import unittest
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from graphopt.errors import GraphoptError, first_line
from tests.conformance.backend import COMPARE, SUITE, GraphoptBackend, Trace
from tests.conformance.known_tolerances import suite_kwargs
from tests.conformance.ort_backend import OrtCpuBackend

GRAPHOPT, ORT = "graphopt", "ort"
ENGINES = (ORT, GRAPHOPT)  # ONNX Runtime first: its outcome survives a graphopt crash of the process
OUTCOMES = ("pass", "refused", "mismatch", "crash", "timeout", "skip", "error")  # error: ONNX Runtime's failures
REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class CaseResult:
    """One engine's outcome on one case; the fields are the results table's columns."""

    case: str
    engine: str
    outcome: str
    stage: str = ""
    error_class: str = ""
    first_line: str = ""
    frame: str = ""
    ops: str = ""
    seconds: float = 0.0

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, record: dict) -> CaseResult:
        return cls(**record)


class Suite:
    """The suite's CPU cases, generated once per process, runnable by either engine."""

    def __init__(self, listener: Callable[[str], None] | None = None) -> None:
        from onnx.backend.test import BackendTest

        self.trace = Trace(listener=listener)
        graphopt = GraphoptBackend.with_trace(self.trace)
        self.functions = {GRAPHOPT: cpu_functions(BackendTest(graphopt, __name__, test_kwargs=suite_kwargs())),
                          ORT: cpu_functions(BackendTest(OrtCpuBackend, __name__))}

    def names(self) -> list[str]:
        return sorted(self.functions[GRAPHOPT])

    def run(self, case: str, engine: str) -> CaseResult:
        """Runs one case's suite function and classifies how it ended."""
        function = self.functions[engine][case]
        self.trace.phase, self.trace.ops = SUITE, ()
        began = time.perf_counter()
        try:
            function(None)
            error = None
        except Exception as exc:  # the suite's and every engine's errors are the result here
            error = exc
        seconds = round(time.perf_counter() - began, 3)
        ops = "+".join(self.trace.ops[:4]) + ("+..." if len(self.trace.ops) > 4 else "")
        result = classify(case, engine, error, self.trace.phase if engine == GRAPHOPT else "", ops, seconds)
        # the traceback holds this frame, which holds the error: break the cycle so the case's
        # artifact (its temporary directory) is freed now, not at a garbage collection that may never come
        error = None
        return result


def cpu_functions(runner) -> dict[str, Callable]:
    """Every `test_..._cpu` function of a BackendTest, by name, through its public `test_cases`."""
    functions = {}
    for test_class in runner.test_cases.values():
        for name in dir(test_class):
            if name.startswith("test_") and name.endswith("_cpu"):
                functions[name] = getattr(test_class, name)
    return functions


def classify(case: str, engine: str, error: Exception | None, phase: str, ops: str, seconds: float) -> CaseResult:
    """The outcome of one run from the exception it raised (None: it passed)."""
    base = {"case": case, "engine": engine, "ops": ops, "seconds": seconds}
    if error is None:
        return CaseResult(outcome="pass", **base)
    details = {"stage": phase, "error_class": type(error).__name__, "frame": innermost_own_frame(error)}
    if isinstance(error, unittest.SkipTest):
        return CaseResult(outcome="skip", first_line=first_line(error), **details, **base)
    if isinstance(error, GraphoptError):
        return CaseResult(outcome="refused", first_line=first_line(error), **details, **base)
    if (engine == GRAPHOPT and phase == COMPARE) or (engine == ORT and isinstance(error, AssertionError)):
        return CaseResult(outcome="mismatch", first_line=mismatch_line(error), **details, **base)
    outcome = "crash" if engine == GRAPHOPT else "error"
    return CaseResult(outcome=outcome, first_line=first_line(error), **details, **base)


# Lines of numpy's comparison message that say what differs; the rest are array dumps.
MISMATCH_LINES = ("Not equal", "Arrays are not equal", "Mismatched elements", "Max absolute", "Max relative",
                  "Output", "(shapes", "inf location", "nan location", "Unable to compare", "Unexpected type",
                  "Items are not equal")


def mismatch_line(error: BaseException, limit: int = 300) -> str:
    """The suite's comparison message in one line: what differs and by how much, no arrays."""
    lines = [line.strip() for line in str(error).splitlines()]
    kept = [line for line in lines if line.startswith(MISMATCH_LINES)]
    text = " | ".join(kept) or first_line(error)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def own_folders() -> dict[str, Path]:
    """graphopt's code by the name a frame is shown under: passes/ and runtime/ map in as graphopt's
    subpackages, so they are looked up first (in a wheel-like copy they sit inside graphopt/)."""
    import graphopt
    import graphopt.passes
    import graphopt.runtime

    return {name: Path(module.__file__).resolve().parent
            for name, module in (("passes", graphopt.passes), ("runtime", graphopt.runtime), ("graphopt", graphopt))}


def innermost_own_frame(error: BaseException) -> str:
    """`folder/path:line:function` of the innermost traceback frame in graphopt's own code, or ''."""
    folders, found = own_folders(), ""
    for frame in traceback.extract_tb(error.__traceback__):
        path = Path(frame.filename).resolve()
        for name, folder in folders.items():
            if path.is_relative_to(folder):
                found = f"{name}/{path.relative_to(folder)}:{frame.lineno}:{frame.name}"
                break
    return found
