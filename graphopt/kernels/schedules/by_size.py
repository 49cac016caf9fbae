"""A symbolic fallback kernel that threads only when the call is large: both loop nests, chosen at run time.

Why. A range artifact's softmax, layer norm or transpose runs at every size of the range. Threads cost a
launch of several microseconds on the shared 2-core VM, more than such a kernel at batch 1 x seq 16; at
batch 1 x seq 128 the serial softmax of the encoder was the largest gap to a fixed batch-1 artifact (which
threads it). One schedule cannot be right at both ends, so the kernel holds two: the fallback rule's
schedule with every symbol at 1 (serial where a smallest-point compile is) and with every symbol at
NOMINAL (threaded like a fixed compile of a mid-range size), under `if elements >= min_parallel`, the
fixed rule's own threshold evaluated on the call's shapes. Where both nests come out the same (nothing to
thread either way) the kernel keeps one.
"""

from __future__ import annotations

import tvm_ffi
from tvm import s_tir, tirx

from graphopt.kernels.schedules import symbolic


def serial_or_parallel(rule, func: tirx.PrimFunc, target, knobs: dict, min_parallel: int):
    """The rule's schedule of a symbolic kernel, with a serial and a threaded nest chosen by size at run time."""
    serial = rule.schedule(func, target, {**knobs, "symbols_at": 1})
    threaded = rule.schedule(func, target, {**knobs, "symbols_at": symbolic.NOMINAL})
    if serial is None or threaded is None:
        return serial
    small, large = serial.mod["main"], threaded.mod["main"]
    if tvm_ffi.structural_equal(small, large):
        return serial
    size = _largest_buffer_elements(func)
    if size is None:
        return serial
    return choose(size >= tirx.const(min_parallel, "int64"), large, small)


def choose(cond, large: tirx.PrimFunc, small: tirx.PrimFunc,
           names: tuple[str, str] = ("threaded", "serial")) -> s_tir.Schedule:
    """One kernel running `large`'s loop nest when `cond` holds at run time, else `small`'s (two schedules
    of the same PrimFunc: same parameters); `names` label the two nests' blocks."""
    return s_tir.Schedule(small.with_body(_choose(cond, large.body, small.body, names)))


def _choose(cond, large: s_tir.SBlockRealize, small: s_tir.SBlockRealize,
            names: tuple[str, str]) -> s_tir.SBlockRealize:
    """One root block that runs `large` when `cond` holds, else `small`, each an opaque block of its own.
    A buffer both nests use (the same variable: TIR is SSA) is allocated once, by the root; the others stay
    with their nest, so a call allocates only what the nest it runs needs."""
    shared = [b for b in large.block.alloc_buffers if any(b.same_as(o) for o in small.block.alloc_buffers)]
    branch = tirx.IfThenElse(cond, _opaque(large, names[0], shared), _opaque(small, names[1], shared))
    root = s_tir.SBlock([], [], [], "root", branch, None, shared)
    return s_tir.SBlockRealize([], True, root)


def _opaque(realize: s_tir.SBlockRealize, name: str, shared: list) -> s_tir.SBlockRealize:
    block = realize.block
    own = [b for b in block.alloc_buffers if not any(b.same_as(s) for s in shared)]
    inner = s_tir.SBlock([], block.reads, block.writes, name, block.body, block.init, own, block.match_buffers,
                         block.annotations)
    return s_tir.SBlockRealize([], True, inner)


def _largest_buffer_elements(func: tirx.PrimFunc):
    """The element count (an expression of the symbols) of the parameter largest at NOMINAL; None if unknown."""
    best, best_size = None, -1
    from graphopt.kernels.schedules import param_shape

    for param in func.params:
        shape = param_shape(param)
        if shape is None:  # a scalar parameter
            continue
        count = symbolic.product(list(shape))
        if symbolic.static_factor(count) is None:
            continue
        nominal = symbolic.nominal(count)
        if nominal > best_size:
            best, best_size = count, nominal
    return None if best is None or symbolic.is_static(best) else best


__all__ = ["choose", "serial_or_parallel"]
