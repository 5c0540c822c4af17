#!/usr/bin/env bash
# The full method comparison behind docs/science.md, run sequentially (one job at a time on CPU).
# Usage: nice -n 10 scripts/train_compare.sh > runs/train_compare.log 2>&1 &
set -u
cd "$(dirname "$0")/.."
export PYTHONPATH=src HF_HUB_OFFLINE=1
PY=${PY:-/work/main/.venv/bin/python}
run() { echo "=== $(date +%T) start $*"; "$PY" scripts/train_compare.py run "$@"; echo "=== $(date +%T) end rc=$?"; }
run --name sts --method sts --epochs 2 --max-seq-length 64
run --name nli --method nli --epochs 1 --batch-size 32 --max-seq-length 96
run --name nli_sts --method sts --base models/nli --epochs 2 --max-seq-length 64
run --name simcse --method simcse --epochs 1 --max-sentences 6400 --max-seq-length 64
"$PY" scripts/train_compare.py table
