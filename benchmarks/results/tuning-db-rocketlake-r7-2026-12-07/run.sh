#!/bin/bash
# How this database was made (2026-12-07 17:40-18:05 UTC, idle, load 1.01 at the start; Intel Xeon with AVX-512,
# LLVM rocketlake, 2 cores; commit 7e4bac2, rules version 7): the latency list tuned by
# benchmarks/tune_latency_list.sh (16 trials, 60-300 s per model), then /tmp/tunedb-avx512-r7-export/kernels.jsonl
# and the log copied here as kernels.jsonl and tune.log. Its records match only an llvm/rocketlake/512 target.
cd /work/main && DB=/tmp/tunedb-avx512-r7 EXPORT=/tmp/tunedb-avx512-r7-export bash benchmarks/tune_latency_list.sh
