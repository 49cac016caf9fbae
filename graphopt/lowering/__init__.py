"""From an imported Relax program to explicit allocations, and from a planned one to code.

    target.py     the TVM target for a kind (host CPU tuned on llvm) and its manifest record
    lower.py      TVM's passes up to explicit allocations (legalize, fuse, schedule, call_tir rewrite)
    prepack.py    weights prepared once at compile time (packed, transposed) on llvm
    gpu_rules.py  legalization and default schedules for CUDA
    codegen.py    finalize (memory lowering to VM builtins) and code generation
    vector_math.py exp, erf, tanh lowered as SIMD polynomials on llvm (installed on import)
"""

from graphopt.lowering import vector_math

# exp, erf and tanh as SIMD polynomials in every llvm kernel built by this process (vector_math.py says why)
vector_math.install()
