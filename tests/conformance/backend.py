"""graphopt as an ONNX backend: the official conformance suite drives it unchanged.

    from onnx.backend.test import BackendTest
    globals().update(BackendTest(GraphoptBackend, __name__).test_cases)

`prepare` is graphopt's default compile (`compile_model` with a plain
`CompileOptions()`) into a temporary directory; `run` loads that artifact with
`graphopt.runtime.load` and runs it, feeding the suite's positional inputs by the
model's input names. Nothing is special-cased for the suite: a case passes
exactly when a user's `graphopt compile` + `runtime.load(...).run(...)` would
give the reference answer.

A `Trace` records how far a case got (`suite` before graphopt is called and
between its calls, `setup`, a compile stage's name, `load`, `run`, `compare`),
so a harness can tell which stage raised and whether a failure is a wrong
answer (raised while the suite compares outputs) or an error. The compile
driver reports each stage before running it through its `progress` callback,
so the last stage reported is the one that raised; a listener sees each phase
as it is entered, so even a process that dies in native code has said where.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import onnx
from onnx.backend.base import Backend, BackendRep

# The suite passes a case's tolerances to `prepare` too (BackendTest's test_kwargs);
# they are the suite's business, so the backend accepts and ignores exactly these.
SUITE_KWARGS = frozenset({"rtol", "atol"})
SUITE = "suite"  # the suite's own code runs: loading data, reference outputs, between calls
BEFORE_STAGES = "setup"  # options check and output-folder check, before the first stage
COMPARE = "compare"  # outputs returned: anything raised now is the suite judging them


@dataclass
class Trace:
    """Where the current case is; a harness reads `phase` after an exception.

    `ops` are the op types of the last model prepared (graph order, each once), for
    grouping results by operator; `listener` is told every phase as it is entered."""

    phase: str = SUITE
    ops: tuple[str, ...] = ()
    listener: Callable[[str], None] | None = field(default=None, repr=False)

    def enter(self, phase: str) -> None:
        self.phase = phase
        if self.listener is not None:
            self.listener(phase)


def graph_input_names(model: onnx.ModelProto) -> list[str]:
    """The inputs a caller feeds: graph inputs that are not initializers (old IRs list both)."""
    initializers = {init.name for init in model.graph.initializer}
    return [info.name for info in model.graph.input if info.name not in initializers]


class GraphoptRep(BackendRep):
    """A compiled artifact in a temporary directory, loaded once, run per data set."""

    def __init__(self, model: onnx.ModelProto, workdir: tempfile.TemporaryDirectory, trace: Trace) -> None:
        from graphopt.runtime import load

        self._workdir = workdir  # kept alive with the rep: the artifact's files live there
        self._trace = trace
        self.input_names = graph_input_names(model)
        self.output_names = [info.name for info in model.graph.output]
        trace.enter("load")
        self.session = load(Path(workdir.name) / "artifact")
        trace.enter(SUITE)

    def run(self, inputs: Any, **kwargs: Any) -> tuple[Any, ...]:
        """Runs once; `inputs` are positional in the model's input order, as the suite gives them."""
        if kwargs:
            raise TypeError(f"GraphoptRep.run takes no options, got {sorted(kwargs)}")
        if len(inputs) != len(self.input_names):
            raise ValueError(f"{len(inputs)} inputs given, the model takes {len(self.input_names)}")
        self._trace.enter("run")
        outputs = self.session.run(dict(zip(self.input_names, inputs)))
        missing = [name for name in self.output_names if name not in outputs]
        if missing:
            raise KeyError(f"the artifact returned no output named {', '.join(missing)}")
        self._trace.enter(COMPARE)
        return tuple(outputs[name] for name in self.output_names)


class GraphoptBackend(Backend):
    """graphopt's default CPU compile behind the `onnx.backend.base.Backend` interface.

    `trace` is shared by every case this class prepares; `with_trace` makes a
    subclass with its own, for a harness that needs to read it.
    """

    trace: Trace = Trace()

    @classmethod
    def with_trace(cls, trace: Trace) -> type[GraphoptBackend]:
        return type("TracedGraphoptBackend", (cls,), {"trace": trace})

    @classmethod
    def supports_device(cls, device: str) -> bool:
        return device == "CPU"

    @classmethod
    def prepare(cls, model: onnx.ModelProto, device: str = "CPU", **kwargs: Any) -> GraphoptRep:
        unknown = set(kwargs) - SUITE_KWARGS
        if unknown:
            raise TypeError(f"GraphoptBackend.prepare: unknown option(s) {sorted(unknown)}")
        if device != "CPU":
            raise ValueError(f"GraphoptBackend runs on CPU only, not {device}")
        cls.trace.ops = tuple(dict.fromkeys(node.op_type for node in model.graph.node))
        workdir = tempfile.TemporaryDirectory(prefix="graphopt-conformance-")
        try:
            compile_into(model, Path(workdir.name) / "artifact", cls.trace)
            return GraphoptRep(model, workdir, cls.trace)
        except BaseException:
            workdir.cleanup()
            raise


def compile_into(model: onnx.ModelProto, out_dir: Path, trace: Trace) -> None:
    """graphopt's default compile, with each stage entered in `trace` before it runs."""
    from graphopt.compiler import compile_model
    from graphopt.options import CompileOptions

    trace.enter(BEFORE_STAGES)
    compile_model(model, out_dir, CompileOptions(), progress=trace.enter)
