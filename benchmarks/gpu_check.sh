#!/usr/bin/env bash
# The GPU check, on the GPU machine (numpy, Python 3.12, torch; no TVM needed):
#   bash benchmarks/gpu_check.sh [PREPARED_DIR]      (default benchmarks/gpu_prepared)
# PREPARED_DIR comes from `python -m benchmarks.gpu_check prepare --out DIR` on the compiler
# machine. Writes $OUT/gpu-check.json (or ./gpu-check.json) and prints one table.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
prepared="${1:-$here/gpu_prepared}"
py="${PYTHON:-python3}"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || echo "nvidia-smi failed"
"$py" -c "import sys, numpy; print('python', sys.version.split()[0], 'numpy', numpy.__version__)"
exec timeout 290 "$py" "$here/gpu_check.py" run "$prepared" ${OUT:+--out "$OUT"}
