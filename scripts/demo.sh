#!/usr/bin/env bash
# The main job end to end on the bundled default: a synthetic NIH-CXR-LT (real ids,
# splits and val/test labels; synthetic pixels) -> shards -> verify -> stats.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
PY=.venv/bin/python
OUT=${DEMO_DIR:-demo}
$PY -m ingest synth --out "$OUT/raw" --scale "${DEMO_SCALE:-0.02}"
$PY -m ingest build-shards --images "$OUT/raw" --labels "$OUT/raw/labels" --out "$OUT/shards"
$PY -m ingest verify "$OUT/shards"
$PY -m ingest stats "$OUT/shards"
