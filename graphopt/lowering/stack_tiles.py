"""TVM's TIR pipeline, with the kernels' small local buffers (register tiles) kept on the stack.

Why: TVM allocates any buffer of 1 KB or more from the heap (TVMBackendAllocWorkspace), a local
register tile included (14 x 32 floats is 1.8 KB). LLVM then cannot tell the tile apart from other
memory, so one call it cannot see through inside the reduction loop, such as a software prefetch
(graphopt.kernels.schedules.prefetch), makes it store and reload all of the accumulators on every
step (a 1x1 convolution ran 2x slower). On the stack, marked `disable_lower_builtin`, the tile is a
local object no call can reach and stays in registers. Buffers up to MAX_STACK_BYTES only: a thread's
stack holds them easily, and only the innermost, short-lived tiles are that small.

Used for llvm targets by every build of a kernel or a program (graphopt.lowering.codegen and the
tuner's graphopt.kernels.tuning.measure), so a kernel is timed as it runs in the artifact.
"""

from __future__ import annotations

import tvm
from tvm import tirx

PIPELINE = "graphopt_stack_tiles"
MAX_STACK_BYTES = 16 << 10
_KEEP_ON_STACK = "disable_lower_builtin"  # honoured by TVM's LowerTVMBuiltin


def tir_pipeline(target: tvm.target.Target) -> str:
    """The TIR pipeline name to build for `target`: ours on llvm, TVM's default elsewhere."""
    if target.kind.name != "llvm":
        return "default"
    _register()
    return PIPELINE


def _register() -> None:
    from tvm.tirx import compilation_pipeline

    if PIPELINE in compilation_pipeline.PIPELINE_MAP:
        return
    compilation_pipeline.register_tir_pipeline(PIPELINE, _pipeline)


def _pipeline():
    from tvm.s_tir.pipeline import default_s_tir_pipeline

    lower, finalize_host, finalize_device = default_s_tir_pipeline()

    @tvm.transform.module_pass(opt_level=0, name="GraphoptStackTiles")
    def lower_then_keep_tiles(mod: tvm.IRModule, _ctx) -> tvm.IRModule:
        return keep_tiles_on_stack(lower(mod))

    return lower_then_keep_tiles, finalize_host, finalize_device


@tirx.transform.prim_func_pass(opt_level=0, name="GraphoptKeepTilesOnStack")
def keep_tiles_on_stack(func: tirx.PrimFunc, _mod, _ctx) -> tirx.PrimFunc:
    """Marks every local buffer of a known size up to MAX_STACK_BYTES to stay a stack allocation."""
    return func.with_body(_marked(func.body))


def _marked(stmt):
    """`stmt` with its small local allocations marked; walks the statements a lowered kernel nests
    allocations in (sequences, loops, attributes, branches) and leaves everything else as it is."""
    if isinstance(stmt, tirx.SeqStmt):
        return tirx.SeqStmt([_marked(s) for s in stmt.seq])
    if isinstance(stmt, tirx.For):
        return tirx.For(stmt.loop_var, stmt.min, stmt.extent, stmt.kind, _marked(stmt.body), stmt.thread_binding,
                        stmt.annotations, stmt.step)
    if isinstance(stmt, tirx.AttrStmt):
        return tirx.AttrStmt(stmt.node, stmt.attr_key, stmt.value, _marked(stmt.body))
    if isinstance(stmt, tirx.IfThenElse):
        otherwise = None if stmt.else_case is None else _marked(stmt.else_case)
        return tirx.IfThenElse(stmt.condition, _marked(stmt.then_case), otherwise)
    if isinstance(stmt, tirx.AllocBuffer) and _small_local(stmt.buffer):
        annotations = {**dict(stmt.annotations or {}), _KEEP_ON_STACK: tirx.IntImm("bool", 1)}
        return tirx.AllocBuffer(stmt.buffer, annotations)
    return stmt


def _small_local(buffer) -> bool:
    if buffer.scope() != "local" or not all(isinstance(d, tirx.IntImm) for d in buffer.shape):
        return False
    elements = 1
    for dim in buffer.shape:
        elements *= int(dim)
    return elements * tvm.runtime.DataType(str(buffer.dtype)).bits // 8 <= MAX_STACK_BYTES
