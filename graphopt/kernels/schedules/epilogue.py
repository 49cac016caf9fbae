"""Epilogues: the elementwise chain after a kernel's reduction, folded into one
block so a rule can run it where the reduction's result is still in registers or L1.

Design. Fusion hands a rule its reduction followed by blocks such as bias, BN
scale, ReLU, residual add, swish x * sigmoid(x) or hardswish x * relu6(x + 3) / 6.
The last two read the value twice, and reverse_compute_inline / reverse_compute_at
take only a consumer with one producer computed in the kernel. So the chain is
first folded forward into its sink (compute_inline recomputes a shared value per
reader: a few flops on a value in registers), and 0-d side values (hardswish's
clip bounds, computed in the kernel as isnan/where blocks) are inlined into it.
"""

from __future__ import annotations

from tvm import s_tir


def inline_producers(sch: s_tir.Schedule, block) -> None:
    """Inlines the whole producer tree of `block` into it (padding, copies)."""
    for producer in sch.get_producers(block):
        inline_producers(sch, producer)
        try:
            sch.compute_inline(producer)
        except Exception:  # noqa: BLE001, S110  (not inlinable: it stays a stage)
            pass


def fold_epilogue(sch: s_tir.Schedule, block):
    """Makes the elementwise chain after `block` one block and returns it (None when
    nothing reads `block`'s output); raises when the chain cannot be folded."""
    consumers = sch.get_consumers(block)
    if not consumers:
        return None
    if len(consumers) > 1:
        _fold_forward(sch, block)
        consumers = sch.get_consumers(block)
        if len(consumers) != 1:
            raise ValueError("the epilogue has several sinks")
    _inline_side_inputs(sch, block)
    return consumers[0]


def _inline_side_inputs(sch: s_tir.Schedule, writeback) -> None:
    """Inlines the other producers of the write-back's consumer (0-d constants such
    as hardswish's clip bounds): reverse_compute_inline accepts only a consumer
    whose other inputs are not computed in the kernel."""
    for consumer in sch.get_consumers(writeback):
        for producer in sch.get_producers(consumer):
            if not sch.get(producer).same_as(sch.get(writeback)):
                inline_producers(sch, producer)
                sch.compute_inline(producer)


def _fold_forward(sch: s_tir.Schedule, writeback) -> None:
    """Inlines every epilogue block that has consumers of its own into them, until
    the epilogue downstream of `writeback` is a single block."""
    changed = True
    while changed:
        changed = False
        for block in sch.get_consumers(writeback):
            if sch.get_consumers(block):
                sch.compute_inline(block)
                changed = True
                break
