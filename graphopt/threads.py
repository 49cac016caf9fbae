"""How TVM's CPU thread pool behaves in every graphopt process: how many threads, how long they spin.

How many: TVM's runtime starts hardware_concurrency()/2 workers on x86 unless
TVM_NUM_THREADS is set (it assumes every core has a hyper-threaded sibling). On a
machine without SMT siblings that is half the cores: on this project's 2-core VM,
`graphopt run`, the embedded runtime and `graphopt serve` ran on ONE thread
(resnet50 107 ms instead of 62 ms). graphopt sets TVM_NUM_THREADS to the number of
physical cores this process may run on (the affinity mask, one thread per core,
SMT siblings counted once, read from /sys); a value the user exported wins.

How long they spin:
TVM's pool workers, after a parallel kernel, spin (yielding) up to 300000 times
before they sleep: that keeps a core busy for a few hundred milliseconds after
every inference, and the worker is pinned to its core. Measured on a 2-core VM
with shufflenet: graphopt alone ran 3.0-3.2 ms with 1000 spins and 3.3-5.5 ms with
TVM's default (the spinning worker competed with the thread that called it), and
ONNX Runtime run in the same process right after graphopt took 12-13 ms instead of
3.0. Between a program's kernels the workers are idle for microseconds only, which
1000 spins cover: resnet50 took 55.5 ms either way. Set before TVM creates its
pool (at the first parallel kernel); a value the user exported wins.
"""

from __future__ import annotations

import os
from pathlib import Path

POOL_SPIN_COUNT = 1000
SYS_CPU = Path("/sys/devices/system/cpu")


def bound_pool_spinning() -> None:
    """Use POOL_SPIN_COUNT unless TVM_THREAD_POOL_SPIN_COUNT is already set."""
    os.environ.setdefault("TVM_THREAD_POOL_SPIN_COUNT", str(POOL_SPIN_COUNT))


def physical_cores(cpus: set[int] | None = None, sys_cpu: Path = SYS_CPU) -> int:
    """Physical cores among `cpus` (default: this process's affinity mask): logical
    CPUs that are SMT siblings of one core count once. Without /sys topology, every
    allowed CPU counts (never fewer threads than TVM would pick on such a machine)."""
    if cpus is None:
        cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set(range(os.cpu_count() or 1))
    cores = set()
    for cpu in cpus:
        siblings = sys_cpu / f"cpu{cpu}" / "topology" / "thread_siblings_list"
        try:
            cores.add(siblings.read_text().strip())
        except OSError:
            cores.add(f"cpu{cpu}")
    return max(len(cores), 1)


def use_physical_cores() -> None:
    """TVM_NUM_THREADS = physical cores, unless the user already set it (read when TVM's pool starts)."""
    os.environ.setdefault("TVM_NUM_THREADS", str(physical_cores()))


def set_threads(count: int) -> None:
    """Resizes TVM's CPU pool now (any time, not only before its first use): for tools that
    time kernels at a chosen thread count. The runtime's default is `physical_cores()`."""
    from graphopt.runtime import tvm_rt  # TVM's runtime library only, unless `tvm` is imported

    tvm_rt.global_func("runtime.config_threadpool")(0, int(count))  # 0: TVM's default (big) core affinity


def current_threads() -> int:
    """How many threads TVM's CPU pool runs kernels with."""
    from graphopt.runtime import tvm_rt

    return int(tvm_rt.global_func("runtime.NumThreads")())
