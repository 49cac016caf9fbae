#!/bin/bash
# How this database was made (2026-12-07 16:55-17:20 UTC, idle, load 0.83 at the start; Intel Xeon with AVX-512,
# LLVM rocketlake, 2 cores; commit 5a33ddd): the latency list tuned by benchmarks/tune_latency_list.sh (16 trials,
# 60-300 s per model), then /tmp/tunedb-avx512-export/kernels.jsonl and the log copied here as kernels.jsonl and
# tune.log. Its records match only an llvm/rocketlake/512 target at rules version 6.
cd /work/main && DB=/tmp/tunedb-avx512 EXPORT=/tmp/tunedb-avx512-export bash benchmarks/tune_latency_list.sh
