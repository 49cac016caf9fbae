"""What TVM's own StaticPlanBlockMemory allocates for the same lowered program.

Measured, not estimated: the stock pass runs on the very module graphopt plans,
and the sizes of the storages it creates are summed. Graph outputs stay outside
both plans, so the two figures compare like with like.
"""

from __future__ import annotations

import tvm
from tvm import relax

ALLOC_STORAGE = tvm.ir.Op.get("relax.memory.alloc_storage")


def stock_plan(mod: tvm.IRModule, target: tvm.target.Target) -> tvm.IRModule:
    with target:
        return relax.transform.StaticPlanBlockMemory()(mod)


def storage_bytes(func: relax.Function) -> int:
    """Sum of every `R.memory.alloc_storage` size in a function."""
    total = 0
    for block in func.body.blocks:
        for binding in block.bindings:
            value = binding.value
            if isinstance(value, relax.Call) and value.op.same_as(ALLOC_STORAGE):
                total += int(value.args[0].values[0])
    return total


def stock_bytes(lowered: tvm.IRModule, target: tvm.target.Target) -> int:
    """Total storage TVM's StaticPlanBlockMemory allocates for this program."""
    return storage_bytes(stock_plan(lowered, target)["main"])
