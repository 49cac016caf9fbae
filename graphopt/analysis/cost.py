"""Cost model of one training step: compute time per step and copy time per byte.

Why a model: swap planning trades memory for copy time that must hide behind
compute, so it needs, for every step of the execution order, how long the step
runs, and for every tensor, how long its copy over the host link takes.

* Step time is measured on the target when a profile of a run is available
  (`measured`), else estimated by a roofline: max(flops / peak, bytes / memory
  bandwidth) + a kernel launch overhead (`analytic`). The device figures are
  parameters; the defaults are *effective* (not peak) numbers for an H100 SXM
  running TVM's fp32 kernels, the device this project targets for training.
* The host link is a bandwidth and a per-copy latency, one copy engine per
  direction; defaults are for PCIe 5 x16 with pinned host memory.

Pure Python: the planners and the benchmark import it without TVM.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

PCIE5_X16_BANDWIDTH = 50e9  # B/s achieved per direction (64 GB/s raw)
PCIE5_X16_LATENCY = 10e-6  # s per copy: launch + DMA setup


@dataclass(frozen=True)
class LinkModel:
    """The host link: one copy engine per direction, copies serialize on each."""

    bandwidth: float = PCIE5_X16_BANDWIDTH
    latency: float = PCIE5_X16_LATENCY

    def copy_seconds(self, nbytes: int) -> float:
        return self.latency + nbytes / self.bandwidth


@dataclass(frozen=True)
class DeviceModel:
    """Effective throughput of the compute device for the analytic estimate."""

    name: str = "h100-fp32-effective"
    flops: float = 25e12  # FLOP/s TVM fp32 kernels reach (peak 67e12 without tensor cores)
    memory_bandwidth: float = 2.0e12  # B/s (peak 3.35e12)
    launch: float = 4e-6  # s per kernel


@dataclass(frozen=True)
class StepWork:
    """What one kernel does: floating-point operations and bytes it reads + writes."""

    flops: float
    bytes: float


@dataclass(frozen=True)
class StepCosts:
    """Seconds per step in execution order, and where the numbers came from."""

    seconds: tuple[float, ...]
    source: str  # "measured" or "analytic"

    @property
    def total(self) -> float:
        return math.fsum(self.seconds)


def analytic_costs(work: Sequence[StepWork], device: DeviceModel = DeviceModel()) -> StepCosts:
    """Roofline estimate per step: the slower of compute and memory traffic, plus launch."""
    seconds = tuple(max(w.flops / device.flops, w.bytes / device.memory_bandwidth) + device.launch for w in work)
    return StepCosts(seconds, "analytic")


def measured_costs(seconds: Sequence[float]) -> StepCosts:
    """Profiled durations; negative or missing values are a caller bug."""
    if any(s < 0 or not math.isfinite(s) for s in seconds):
        raise ValueError("measured step times must be finite and >= 0")
    return StepCosts(tuple(float(s) for s in seconds), "measured")
