#!/bin/bash
# How this database was made (2026-12-07 22:55-23:21 UTC, idle, load 0.58 at the start; Intel Xeon with AVX-512,
# LLVM rocketlake, 2 cores; commit 24b5101, rules version 8 plus the GEMM rule's read_v knob, seeded first): the
# latency list tuned by benchmarks/tune_latency_list.sh (16 trials, 60-300 s per model), then
# /tmp/tdb-r8v-export/kernels.jsonl and the log copied here as kernels.jsonl and tune.log. Its records match only
# an llvm/rocketlake/512 target.
cd /work/main && DB=/tmp/tdb-r8v EXPORT=/tmp/tdb-r8v-export bash benchmarks/tune_latency_list.sh
# Then (23:56-00:00 UTC, idle) densenet121's untuned remainder, into the same database, and the export again:
graphopt tune-kernels "$(head -1 /tmp/zoo/light_densenet121.path)" $(cat /tmp/zoo/light_densenet121.shapes) --db /tmp/tdb-r8v \
    --time-budget 420 --trials 16 --threads 2 --quiet
graphopt tune-kernels --db /tmp/tdb-r8v --export /tmp/tdb-r8v-export
