#!/bin/bash
# How this database was made (07:11-07:38 UTC, idle): the latency list tuned by benchmarks/tune_latency_list.sh,
# then /tmp/tunedb-r6-export/kernels.jsonl and the log copied here as kernels.jsonl and tune.log.
cd /work/main && DB=/tmp/tunedb-r6 EXPORT=/tmp/tunedb-r6-export bash benchmarks/tune_latency_list.sh
