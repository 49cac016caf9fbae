"""What identifies a kernel: its structure and the CPU it runs on.

A kernel's key is TVM's structural hash of its PrimFunc as legalize and fusion
leave it, before scheduling: names are not part of it (legalize gives the same
convolution different names in different models), shapes, dtypes, the fused
epilogue and the loop structure are. The target part is the LLVM CPU name and
its vector width, because the best tile for AVX2 is not the best for AVX-512.
RULES_VERSION changes whenever the meaning of a rule's knobs or what they are timed
on changes, so old records stop matching instead of being misapplied.
"""

from __future__ import annotations

import tvm

# 2: packed operands blocked by tile, weights packed at compile time; 3: near-whole
# vectors on the contiguous axis; 4: im2col packed tile by tile when the weights fit
# L2 (pack_in_tile), the reduction split back into the kernel's own iterators;
# 5: the padded data copied once for a direct convolution (pad_copy, a new knob:
# version 4's records would still apply, but were searched without it); 6: a windowed
# convolution's default is the direct form (swap_axes and pack_u=False implied), so a
# version 5 record without those keys would now mean another schedule; 7: with 32 vector registers (AVX-512)
# other default tiles (gemm_match.WIDE_TILES, DIRECT_ROWS) and a 1x1 convolution over few positions in the
# direct form: a record kept as "the default" ({}) was timed against another schedule; 8: the GEMM rule
# prefetches its operands (the `prefetch` knob, on unless a record says False) and builds keep register tiles on
# the stack: the knobs mean the same tiles, but version 7's choices were timed without either, and end to end
# its resnet50 records made the prefetching model 3.5% slower than no records (latency-avx512-prefetch-2026-12-07)
RULES_VERSION = 8


def workload_key(func: tvm.tirx.PrimFunc) -> str:
    """16 hex digits of the structural hash of an unscheduled PrimFunc."""
    import tvm_ffi

    # layout_free_buffers: which parameters are weights (graphopt.lowering.prepack), not structure
    for attr in ("global_symbol", "tirx.is_scheduled", "layout_free_buffers"):
        if func.attrs is not None and attr in func.attrs:
            func = func.without_attr(attr)
    key = f"{tvm_ffi.structural_hash(func) & (2**64 - 1):016x}"
    return key + symbolic_suffix(func)


def symbolic_suffix(func: tvm.tirx.PrimFunc) -> str:
    """"" for a fixed-shape kernel; for a symbolic one (a range compile's) `@n32`: the tuner times it with every
    shape symbol at graphopt.kernels.schedules.symbolic.NOMINAL, and the key says at which point the record's
    choice was measured (a later nominal point must not reuse it silently)."""
    from graphopt.kernels.schedules import has_symbolic_shape
    from graphopt.kernels.schedules.symbolic import NOMINAL

    return f"@n{NOMINAL}" if has_symbolic_shape(func) else ""


def target_key(target: tvm.target.Target) -> str:
    """e.g. `llvm/znver3/256/r1`: kind, CPU, vector bits, rules version."""
    from graphopt.kernels.schedules.common import vector_bits

    mcpu = str(target.attrs.get("mcpu", "generic")) if target.kind.name == "llvm" else "-"
    return f"{target.kind.name}/{mcpu}/{vector_bits(target)}/r{RULES_VERSION}"
