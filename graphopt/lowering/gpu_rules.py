"""TVM's default GPU schedules (dlight), made to decline instead of crash.

Why: on some gradient kernels of a training step, dlight's GPU rules raise
(AssertionError in GEMV/Reduction, "consumers of the cache-write stage" in
Matmul) where they should say "not mine". dlight then aborts the whole build.
Here each rule is wrapped: a rule that raises counts as not applicable, the
next rule is tried (the last one, Fallback, schedules anything), and every such
failure is logged as a warning and counted, so it never goes unnoticed. The
rules and their order are TVM's own (tvm.relax.backend.cuda.pipeline); kernels
change, the memory plan does not.
"""

from __future__ import annotations

import logging

from graphopt.errors import first_line

log = logging.getLogger(__name__)
FAILURES: list[str] = []  # "Rule: first line of the error", for this process


def tolerant_gpu_schedule():
    """dlight's ApplyDefaultSchedule with TVM's GPU rules, each wrapped to decline on error."""
    from tvm.s_tir import dlight as dl

    class Tolerant(dl.ScheduleRule):
        def __init__(self, inner) -> None:
            self.inner = inner

        def apply(self, func, target, tunable):
            try:
                return self.inner.apply(func, target, tunable)
            except Exception as exc:  # noqa: BLE001  (dlight raises AssertionError, ValueError, TVMError alike; logged)
                first = first_line(exc)
                FAILURES.append(f"{type(self.inner).__name__}: {first}")
                log.warning("dlight %s failed on a kernel (%s); trying the next rule", type(self.inner).__name__, first)
                return None

    rules = (dl.gpu.Matmul(), dl.gpu.GEMV(), dl.gpu.Reduction(), dl.gpu.GeneralReduction(), dl.gpu.Fallback())
    return dl.ApplyDefaultSchedule(*[Tolerant(rule) for rule in rules])


def cuda_legalize_passes(target) -> list:
    """TVM's CUDA legalize passes with the tolerant schedule in place of dlight's own."""
    import tvm.relax.backend.cuda.pipeline as backend

    passes = list(backend.legalize_passes(target))
    if not passes or passes[-1].info.name != "ApplyDefaultSchedule":
        raise RuntimeError("TVM's CUDA legalize passes changed shape: no dlight schedule pass at the end")
    return passes[:-1] + [tolerant_gpu_schedule()]
