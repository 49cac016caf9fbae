"""Lowering a training step: graphopt's kernels, or TVM's where a rule fails.

Why a fallback here and not for inference: gradient kernels (reductions over
the batch, transposed convolutions) are shapes the CPU schedule rules were not
written for; when a rule raises on one, the step is lowered with TVM's stock
kernels instead, and a warning says so (the memory plan is the same either way).
"""

from __future__ import annotations

import logging

import tvm

from graphopt.errors import first_line


def lower_step(mod: tvm.IRModule, target: tvm.target.Target, schedules: bool = True,
               tuning_db=None) -> tvm.IRModule:
    from graphopt.lowering.lower import lower_to_explicit_memory

    if not schedules:
        return lower_to_explicit_memory(mod, target, schedules=False)
    try:
        return lower_to_explicit_memory(mod, target, schedules=True, tuning_db=tuning_db)
    except Exception as exc:  # noqa: BLE001  (TVM raises InternalError/TVMError from schedule rules; said loudly)
        logging.getLogger(__name__).warning("CPU schedules failed (%s); using stock kernels", first_line(exc))
        return lower_to_explicit_memory(mod, target, schedules=False)
