"""The blocks of a kernel (PrimFunc), nested ones included: what rewrites read to learn
which buffers a kernel writes or which stages a schedule marked.

Why a function of its own: most kernels are a tree of blocks under a root block, but
TOPI's hand-written ones (scatter_elements, the sort behind TopK, MaxUnpool's scatter)
are one opaque loop nest with no root block, and a schedule refuses to even look them
up. Every caller must treat such a kernel as "no blocks declared" (it writes or marks
nothing one can read off), not crash on it.
"""

from __future__ import annotations

import tvm
from tvm import s_tir


def kernel_blocks(prim: tvm.tirx.PrimFunc) -> list:
    """Every block under the root, nested ones included; [] for a kernel without a root
    block (an opaque, hand-written loop nest)."""
    try:
        sch = s_tir.Schedule(prim)
        root = sch.get_sblock("root")
    except RuntimeError:  # s_tir.ScheduleError (no root block) and TVM's InternalError
        return []
    found, todo = [], list(sch.get_child_blocks(root))
    while todo:
        block = todo.pop()
        found.append(sch.get(block))
        todo.extend(sch.get_child_blocks(block))
    return found
