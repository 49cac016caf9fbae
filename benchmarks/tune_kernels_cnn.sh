#!/bin/bash
# Tuning databases r4b and r5 under benchmarks/results/ were made with this script (r4 with an earlier copy):
#   DB=benchmarks/results/tuning-db-znver3-r5-2026-11-27 MODELS=DIR bash benchmarks/tune_kernels_cnn.sh
# DIR holds light_model(name, seed=0) saved as NAME.onnx.
# Passes 1-2: the five CNNs at 16 trials (150 s, then 110 s per model); pass 3: densenet121 at 8 trials.
DB=${DB:?tuning database directory, e.g. benchmarks/results/tuning-db-znver3-r5-2026-11-27}
MODELS=${MODELS:?directory holding light_model(name, seed=0) saved as NAME.onnx}
G=${G:-graphopt}
for pass in 1 2; do
  for m in resnet50 densenet121 squeezenet shufflenet inception_v1; do
    b=$([ $pass = 1 ] && echo 150 || echo 110)
    echo "== pass $pass $m $(date -u +%H:%M:%S) load $(cut -d' ' -f1 /proc/loadavg)"
    $G tune-kernels $MODELS/$m.onnx --trials 16 --db $DB --time-budget $b --threads 2 --quiet 2>&1 | grep -v "^$"
  done
done
echo "== pass 3 densenet121 $(date -u +%H:%M:%S) load $(cut -d' ' -f1 /proc/loadavg) (trials 8)"
$G tune-kernels $MODELS/densenet121.onnx --trials 8 --db $DB --time-budget 600 --threads 2 --quiet 2>&1 | grep -v "^$"
echo "== done $(date -u +%H:%M:%S)"
