"""Measured step costs: time every kernel of a training step as it runs on the target.

Why: the swap planner trades memory for copy and recompute time that must hide
behind compute; an analytic roofline can be far off on a given machine (CPU
kernels, small launches). So `--step-costs measured` builds the step without
swaps first, runs it (one warm-up, then `repeats` runs) with the VM's
instrumentation hook timing each kernel call, and plans swaps on the medians.

The hook sees every VM call; kernels are recognised by name and must come in
exactly the plan's step order, else the profile is refused (never guessed).
On a GPU the device is synchronised around each kernel so its time is its own.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from graphopt.errors import PlanError

NO_OP = 0  # VMInstrumentReturnKind.kNoOp: let the VM run the call


def random_feeds(inputs: list[dict], seed: int = 0) -> dict[str, np.ndarray]:
    """Non-zero floats; integer inputs (class targets) all 0, a valid class."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for spec in inputs:
        dtype = np.dtype(spec["dtype"])
        shape = tuple(spec["shape"])
        feeds[spec["name"]] = (rng.standard_normal(shape).astype(dtype) if dtype.kind == "f"
                               else np.zeros(shape, dtype=dtype))
    return feeds


class KernelClock:
    """The VM instrument: wall time of every call whose symbol is a step's kernel (also what
    benchmarks.kernel_profile --artifact times an inference's kernels with)."""

    def __init__(self, names: list[str], device) -> None:
        self.wanted, self.device = set(names), device
        self.calls: list[tuple[str, float]] = []
        self._opened = 0.0

    def __call__(self, _func, symbol, before_run, _ret, *_args) -> int:
        if symbol in self.wanted:
            self.device.sync()
            now = time.perf_counter()
            if before_run:
                self._opened = now
            else:
                self.calls.append((symbol, now - self._opened))
        return NO_OP


def profile_steps(art_dir: str | Path, repeats: int = 3, seed: int = 0) -> list[float]:
    """Median seconds of every step (kernel) of a training artifact, in plan order."""
    from graphopt.train.runner import TrainRunner

    runner = TrainRunner(art_dir)
    names = list(runner.session.plan["steps"])
    feeds = random_feeds(runner.session.inputs, seed)
    runs: list[list[float]] = []
    for k in range(repeats + 1):
        clock = KernelClock(names, runner.session.device)
        runner.session.vm.set_instrument(clock)
        runner.step(feeds)
        if k > 0:  # the first run warms caches and the allocator
            runs.append(_in_plan_order(clock.calls, names))
    return [float(np.median(col)) for col in zip(*runs, strict=True)]


def _in_plan_order(calls: list[tuple[str, float]], names: list[str]) -> list[float]:
    if [c[0] for c in calls] != names:
        raise PlanError(f"profiled kernels ({len(calls)}) do not match the plan's {len(names)} steps; "
                        "cannot use measured step costs")
    return [c[1] for c in calls]
