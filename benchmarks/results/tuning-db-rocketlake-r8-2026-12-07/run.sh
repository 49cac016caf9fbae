#!/bin/bash
# How this database was made (2026-12-07 20:38-21:03 UTC, idle, load 0.69 at the start; Intel Xeon with AVX-512,
# LLVM rocketlake, 2 cores; commit 4e83b86, rules version 8: the GEMM rule's operand prefetch, stack register
# tiles): the latency list tuned by benchmarks/tune_latency_list.sh (16 trials, 60-300 s per model), then
# /tmp/tunedb-avx512-r8-export/kernels.jsonl and the log copied here as kernels.jsonl and tune.log. Its records
# match only an llvm/rocketlake/512 target.
cd /work/main && DB=/tmp/tunedb-avx512-r8 EXPORT=/tmp/tunedb-avx512-r8-export bash benchmarks/tune_latency_list.sh
