#!/bin/bash
DB=benchmarks/results/tuning-db-znver3-r4-2026-11-27
MODELS=${MODELS:?directory holding light_model(name, seed=0) saved as NAME.onnx}
G=graphopt
for pass in 1 2; do
  for m in resnet50 densenet121 squeezenet shufflenet inception_v1; do
    b=$([ $pass = 1 ] && echo 150 || echo 110)
    echo "== pass $pass $m $(date -u +%H:%M:%S) load $(cut -d' ' -f1 /proc/loadavg)"
    $G tune-kernels $MODELS/$m.onnx --trials 16 --db $DB --time-budget $b --threads 2 --quiet 2>&1 | grep -v "^$"
  done
done
echo "== done $(date -u +%H:%M:%S)"
