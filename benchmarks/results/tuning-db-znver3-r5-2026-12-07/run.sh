#!/bin/bash
# How this database was made (04:07-04:34 UTC, idle): the latency list tuned by the commands that are now
# benchmarks/tune_latency_list.sh (then inline here), then /tmp/tunedb-1207-export/kernels.jsonl and the log
# copied here as kernels.jsonl and tune.log.
cd /work/main && DB=/tmp/tunedb-1207 EXPORT=/tmp/tunedb-1207-export bash benchmarks/tune_latency_list.sh
