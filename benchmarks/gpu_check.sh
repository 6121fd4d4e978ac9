#!/usr/bin/env bash
# The GPU check of issue 17 (benchmarks/gpu_check.py): encoder throughput under float32 and mixed
# precision, fine-tuning steps/s, the cost of T = 20 MC-dropout samples, and prediction throughput.
#   bash benchmarks/gpu_check.sh            # on a GPU machine with TensorFlow: under 6 minutes
#   bash benchmarks/gpu_check.sh --quick    # CPU-sized
# Stops after 330 s whatever happens, so that one device lease leaves time for a rerun.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null || echo "no GPU visible (nvidia-smi)"
exec timeout 330 "$PYTHON" -m benchmarks.gpu_check "$@"
