"""Kernel bodies: graphopt's CPU schedule rules and the per-kernel tuner.

    schedules/  dlight-style rules (GEMM register tiles, depthwise, grouped, fallback)
    tuning/     the per-kernel search over the rules' knobs and its database

Kernels change only PrimFunc bodies, never the Relax program: the memory plan is
the same whichever schedule a kernel gets.
"""
