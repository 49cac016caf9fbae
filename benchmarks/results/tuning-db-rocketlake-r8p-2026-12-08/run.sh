#!/bin/bash
# How this database was made (2026-12-08 02:13-02:15 UTC, idle, load 0.49 at the start; Intel Xeon with AVX-512,
# LLVM rocketlake, 2 cores; commit 9e2c91f): tuning-db-rocketlake-r8v-2026-12-07's working database (/tmp/tdb-r8v,
# whose export is that folder's kernels.jsonl) continued with each model's kernels not in it (the pools, whose
# kernels changed with the pooling rule, and inception's untuned remainder), 90 s per model, then exported here.
# Its records match only an llvm/rocketlake/512 target.
cp -r /tmp/tdb-r8v /tmp/tdb-r8p
cd /work/main && source .venv/bin/activate
for name in light_inception_v1 light_densenet121 light_resnet50 light_squeezenet; do
  graphopt tune-kernels "$(head -1 /tmp/zoo/$name.path)" $(cat /tmp/zoo/$name.shapes) --db /tmp/tdb-r8p \
      --time-budget 90 --trials 16 --threads 2 --quiet
done
graphopt tune-kernels --db /tmp/tdb-r8p --export /tmp/tdb-r8p-export   # then kernels.jsonl copied here
# Then (03:02-03:03 UTC, idle, commit 7184309 + max pooling padded only where a window leaves the data: the unpadded
# pools' kernels changed again) the same loop once more into /tmp/tdb-r8p and the export again (474 records). The
# latency runs latency-avx512-pools/arena-2026-12-08 used the first export (467 records).
