"""How TVM's CPU thread pool behaves in every graphopt process.

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

POOL_SPIN_COUNT = 1000


def bound_pool_spinning() -> None:
    """Use POOL_SPIN_COUNT unless TVM_THREAD_POOL_SPIN_COUNT is already set."""
    os.environ.setdefault("TVM_THREAD_POOL_SPIN_COUNT", str(POOL_SPIN_COUNT))
