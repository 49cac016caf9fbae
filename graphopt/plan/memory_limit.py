"""Whether a compiled model can fit the memory that will run it; refused as early as that is known.

Why: a 1x3x100000x100000 input compiled, after minutes, to a 3.8 TB arena with no word of
warning, an artifact no machine here can load. A compile that cannot fit is refused in one
line giving the sizes and the way past it, `--allow-huge-arena` (the artifact may be meant for
a larger machine; the flag changes nothing in it, so it is not part of its id).

Two checks, the first as soon as ONNX shapes prove it, the second once the arena is known:
 1. prepare (graphopt.frontend.degenerate.check_resident), before TVM: the graph's inputs,
    outputs and weights, which every run holds at once. Intermediate tensors are not counted
    there: fusion may never materialize them; the arena of check 2 is what does.
 2. the plan stage (`check_plan`): arena + weights (+ optimizer states) + inputs + outputs.

Limits by target (`host_limit`, `device_limit`):
 llvm  everything lives in host memory: each sum against physical memory
       (SC_PHYS_PAGES * SC_PAGE_SIZE of the compiling machine).
 cuda  arena, weights, inputs and outputs live in device memory, unknown at compile time (the
       artifact may run on any GPU). What is certain on the host: each input, output and
       weight passes whole through host memory (the caller's arrays; the params file is read
       before its copy to the device), so each one alone must fit physical memory. The sum of
       check 2 is held against the compiling machine's GPU when TVM sees one, and is not
       checked without one (the runtime's allocation fails then, on the device).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from graphopt.errors import MemoryLimitError

FLAG = "--allow-huge-arena"


@dataclass(frozen=True)
class MemoryLimit:
    """What a compile must fit; None leaves that part unchecked."""

    total: int | None  # bytes of everything resident during a run
    each: int | None  # bytes of any one input, output or weight
    where: str  # names the memory `total` is, for the message


def physical_memory() -> int:
    """Bytes of RAM of this machine."""
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def host_limit(target: str) -> MemoryLimit:
    """Check 1's limits: what is known before TVM runs (see the module docstring)."""
    ram = physical_memory()
    return MemoryLimit(ram if target == "llvm" else None, ram, "physical memory")


def device_limit(target: str) -> MemoryLimit:
    """Check 2's limits: a CUDA sum is held against the GPU TVM sees here, if any."""
    if target == "llvm":
        return host_limit(target)
    import tvm

    device = tvm.cuda(0)
    total = int(device.total_global_memory) if device.exist else None
    return MemoryLimit(total, physical_memory(), "this machine's GPU memory")


def check_fits(parts: dict[str, int], tensors: dict[str, int], limit: MemoryLimit, what: str) -> None:
    """MemoryLimitError when the sum of `parts` exceeds `limit.total` or one of `tensors`
    (name -> bytes) exceeds `limit.each`; `what` says which stage measured it."""
    if limit.each is not None and tensors:
        name, size = max(tensors.items(), key=lambda item: item[1])
        if size > limit.each:
            raise MemoryLimitError(f"{what}: tensor {name} alone needs {fmt_bytes(size)}, more than physical "
                                   f"memory ({fmt_bytes(limit.each)}); pass {FLAG} to compile it anyway")
    total = sum(parts.values())
    if limit.total is not None and total > limit.total:
        detail = " + ".join(f"{key} {fmt_bytes(value)}" for key, value in parts.items())
        raise MemoryLimitError(f"{what}: the model needs {fmt_bytes(total)} ({detail}), more than {limit.where} "
                               f"({fmt_bytes(limit.total)}); pass {FLAG} to compile it anyway")


def check_plan(target: str, arena: int, params: int, inputs: int, outputs: int) -> None:
    """Check 2, once the plan stage knows the arena."""
    parts = {"arena": arena, "weights": params, "inputs": inputs, "outputs": outputs}
    check_fits(parts, {}, device_limit(target), "after planning")


def fmt_bytes(n: int) -> str:
    """1536 -> '1.5 KiB': sizes from bytes to terabytes stay readable in one line."""
    value, unit = float(n), "B"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if value < 1024 or unit == "PiB":
            break
        value /= 1024
    return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
