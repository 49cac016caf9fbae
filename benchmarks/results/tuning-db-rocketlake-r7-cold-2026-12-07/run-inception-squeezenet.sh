#!/bin/bash
# inception_v1 and squeezenet tuned with --cold-cache into a fresh database, then compiled untuned, with it, and with
# the warm-timed r7 database; end to end in one process (benchmarks.ab_artifacts).
set -eu
cd /work/main
source .venv/bin/activate
python - <<'PY'   # /tmp/zoo/NAME.onnx and NAME.shapes, as benchmarks/tune_latency_list.sh makes them
from pathlib import Path
from benchmarks.model_zoo import ZOO, materialize
work = Path("/tmp/zoo"); work.mkdir(exist_ok=True)
for name in ZOO:
    path, shapes, _ = materialize(name, work)
    Path(f"/tmp/zoo/{name}.path").write_text(f"{path}\n")
    Path(f"/tmp/zoo/{name}.shapes").write_text(" ".join(f"--input-shape {k}={'x'.join(map(str, v))}" for k, v in shapes.items()) + "\n")
PY
rm -rf /tmp/tdb-cold3 /tmp/tdb-cold3-export
for spec in light_inception_v1:300 light_squeezenet:180; do
  m=${spec%%:*}; budget=${spec##*:}; S=$(cat /tmp/zoo/$m.shapes)
  echo "=== $m budget ${budget}s $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)"
  graphopt tune-kernels /tmp/zoo/$m.onnx $S --db /tmp/tdb-cold3 --time-budget $budget --trials 16 --threads 2 --cold-cache --quiet 2>&1 | tail -3
done
graphopt tune-kernels --db /tmp/tdb-cold3 --export /tmp/tdb-cold3-export | tail -1
for m in light_inception_v1 light_squeezenet; do
  S=$(cat /tmp/zoo/$m.shapes)
  graphopt compile /tmp/zoo/$m.onnx $S -o /tmp/s11/${m}_untuned --quiet > /dev/null
  graphopt compile /tmp/zoo/$m.onnx $S -o /tmp/s11/${m}_cold --tuning-db /tmp/tdb-cold3-export --quiet > /dev/null
  graphopt compile /tmp/zoo/$m.onnx $S -o /tmp/s11/${m}_warm --tuning-db benchmarks/results/tuning-db-rocketlake-r7-2026-12-07 --quiet > /dev/null
  echo "=== $m A/B $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)"
  for b in cold warm; do
    python -m benchmarks.ab_artifacts --model $m --a /tmp/s11/${m}_untuned --b /tmp/s11/${m}_$b --rounds 8 --json /tmp/s11/ab_${m}_$b.json | tail -1
  done
done
echo "done $(date -u +%H:%M:%S)"
