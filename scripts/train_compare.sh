#!/usr/bin/env bash
# The full method comparison behind docs/science.md, run sequentially (one job at a time on CPU).
# Usage: nice -n 10 scripts/train_compare.sh > runs/train_compare.log 2>&1 &
# Schedules were cut (1 epoch each, 40 SimCSE steps) to fit a shared 2-core CPU in ~1 hour.
set -u
cd "$(dirname "$0")/.."
export PYTHONPATH=src HF_HUB_OFFLINE=1
# One intra-op thread: on a shared 2-core CPU two OpenMP threads wait on each other at every
# barrier whenever another process holds a core (the first attempt crawled at 10 s/step).
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
PY=${PY:-/work/main/.venv/bin/python}
run() { echo "=== $(date +%T) start $*"; "$PY" scripts/train_compare.py run "$@"; echo "=== $(date +%T) end rc=$?"; }
if [ "${SKIP_STS:-0}" != 1 ]; then
  run --name sts --method sts --epochs 1 --max-seq-length 64
fi
run --name nli --method nli --epochs 1 --batch-size 32 --max-seq-length 64
run --name nli_sts --method sts --base models/nli --epochs 1 --max-seq-length 64
run --name simcse --method simcse --max-steps 40 --max-sentences 2560 --max-seq-length 64
run --name simcse_sts --method sts --base models/simcse --epochs 1 --max-seq-length 64
"$PY" scripts/train_compare.py table
