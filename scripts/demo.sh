#!/usr/bin/env bash
# The main job end to end on the bundled default: a synthetic NIH-CXR-LT (real ids,
# splits and val/test labels; synthetic pixels) -> shards -> verify -> stats -> the
# paper's 15 methods at CPU size (tiny CNN, 64 px, 24 epochs) -> the results table.
# Every step resumes: rerun after an interruption and finished work is kept.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
PY=.venv/bin/python
OUT=${DEMO_DIR:-demo}
$PY -m ingest synth --out "$OUT/raw" --scale "${DEMO_SCALE:-0.02}"
$PY -m ingest build-shards --images "$OUT/raw" --labels "$OUT/raw/labels" --out "$OUT/shards"
$PY -m ingest verify "$OUT/shards"
$PY -m ingest stats "$OUT/shards"
$PY -m train suite --shards "$OUT/shards" --out "$OUT/suite" --methods all --seeds 0 \
    --model tiny --pretrained none --image-size 64 --epochs 24 --patience 24 --batch-size 64 --lr 0.001 \
    --loader "${DEMO_LOADER:-auto}" --workers 2
