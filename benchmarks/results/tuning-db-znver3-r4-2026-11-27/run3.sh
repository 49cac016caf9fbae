#!/bin/bash
DB=benchmarks/results/tuning-db-znver3-r4-2026-11-27
MODELS=${MODELS:?directory holding light_model(name, seed=0) saved as NAME.onnx}
G=graphopt
for m in densenet121 shufflenet; do
  echo "== pass 3 $m $(date -u +%H:%M:%S) load $(cut -d' ' -f1 /proc/loadavg) (trials 8)"
  $G tune-kernels $MODELS/$m.onnx --trials 8 --db $DB --time-budget 600 --threads 2 --quiet 2>&1 | grep -v "^$"
done
echo "== done $(date -u +%H:%M:%S)"
