#!/bin/bash
# Tunes the latency list's kernels on this machine, most expensive first, within a time budget per model.
# Tuning databases tuning-db-znver3-r5-2026-12-07 (an inline copy of this script, its run.sh) and
# tuning-db-znver3-r6-2026-12-07 under benchmarks/results/ were made with it:
#   DB=/tmp/tunedb EXPORT=/tmp/tunedb-export bash benchmarks/tune_latency_list.sh
# then EXPORT/kernels.jsonl is the committed database. Run from the repository root, venv built (make test).
set -u
DB=${DB:?working tuning database directory, e.g. /tmp/tunedb-r6}
EXPORT=${EXPORT:?directory the database is exported to, e.g. /tmp/tunedb-r6-export}
source .venv/bin/activate
python - <<'PY'
from pathlib import Path
from benchmarks.model_zoo import ZOO, materialize
work = Path("/tmp/zoo"); work.mkdir(exist_ok=True)
for name in ZOO:
    path, shapes, _ = materialize(name, work)
    Path(f"/tmp/zoo/{name}.path").write_text(f"{path}\n")
    Path(f"/tmp/zoo/{name}.shapes").write_text(" ".join(f"--input-shape {k}={'x'.join(map(str, v))}" for k, v in shapes.items()) + "\n")
PY
for spec in light_densenet121:300 light_inception_v1:300 light_resnet50:240 ocr_det:300 light_squeezenet:180 ocr_rec:150 encoder:150 light_shufflenet:90 ocr_cls:60; do
  name=${spec%%:*}; budget=${spec##*:}
  path=$(head -1 /tmp/zoo/$name.path); shapes=$(cat /tmp/zoo/$name.shapes)
  echo "=== $name budget ${budget}s $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)"
  graphopt tune-kernels "$path" $shapes --db $DB --time-budget $budget --trials 16 --threads 2 --quiet 2>&1 | tail -4
done
graphopt tune-kernels --db $DB --export $EXPORT 2>&1 | tail -2
echo "done $(date -u +%H:%M:%S)"
