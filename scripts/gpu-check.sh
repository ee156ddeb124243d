#!/usr/bin/env bash
# The GPU checks, in one go: the gpu-marked tests, then the throughput benchmark of
# ResNet-50 at 224 and 256 px (fp16, channels_last, batch 256) with DALI and with the
# PyTorch loader, DALI again with 2 CPU workers (the T4 target), timm's ConvNeXt-S at 512 px on
# 512 px shards (the recipes' size, batch 32) with both loaders, a short table last.
# The paper's path needs PNGs for 50 timed batches (hence the scales). Runs on the CPU too (tiny sizes; gpu tests skip),
# which is how it is checked before GPU minutes are spent.
# On the remote GPU host DALI arrives in parts first (../shared/device/README.md); then:
#   export PYTHONPATH=/tmp/site:$PWD:$PYTHONPATH PATH=/tmp/site/bin:$PATH; bash scripts/gpu-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
[ -x .venv/bin/python ] && PY=.venv/bin/python
OUT=${OUT:-/tmp/gpu-check}
mkdir -p "$OUT"
WORK=${WORK:-/tmp/gpu-check-data}
REPEAT=${REPEAT:-3}
if $PY -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  GPU=1; MODEL=resnet50; SIZES="224 256"; BATCH=256; STEPS=200; WORKERS=${WORKERS:-8}; SCALE=0.15
elif command -v nvidia-smi > /dev/null && nvidia-smi -L 2>/dev/null | grep -q "^GPU"; then
  # a GPU torch cannot use: almost always a driver older than the CUDA the torch wheels were built for
  {
    echo "error: nvidia-smi sees a GPU but torch does not (torch $($PY -c 'import torch; print(torch.__version__, "built for CUDA", torch.version.cuda)'))."
    nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | sed 's/^/  GPU, driver: /'
    echo "  CUDA 13 wheels need an NVIDIA driver R580 or newer. Upgrade the driver, or install torch's CUDA 12"
    echo "  wheels (--index-url https://download.pytorch.org/whl/cu126) and the dali-cuda12 extra: README, 'GPU drivers'."
  } >&2
  exit 1
else
  GPU=0; MODEL=tiny; SIZES="32"; BATCH=8; STEPS=5; WORKERS=2; SCALE=0.005
fi
echo "== gpu-marked tests"
$PY -m pytest -q -m gpu tests 2>&1 | tee "$OUT/gpu-tests.txt" | tail -3
echo "== data: synthetic 1024 px PNGs -> 256 px JPEG shards"
[ -f "$WORK/raw/synth.json" ] || $PY -m ingest synth --out "$WORK/raw" --scale "$SCALE" --workers "$(nproc)" > /dev/null
[ -f "$WORK/shards/manifest.json" ] || $PY -m ingest build-shards --images "$WORK/raw" --labels "$WORK/raw/labels" \
  --out "$WORK/shards" --workers "$(nproc)" > /dev/null
bench() {  # size loader workers [extra flags]
  local name="bench-$MODEL-$1-$2-w$3"
  echo "== bench $MODEL $1 px, $2 loader, $3 workers"
  $PY -m train bench --shards "$WORK/shards" --model "$MODEL" --image-size "$1" --batch-size "$BATCH" \
    --precision "$([ $GPU = 1 ] && echo fp16 || echo fp32)" --channels-last --loader "$2" \
    --workers "$3" --steps "$STEPS" --repeat "$REPEAT" --json "$OUT/$name.json" "${@:4}" | tee "$OUT/$name.txt"
}
for size in $SIZES; do
  bench "$size" dali "$WORKERS"
  bench "$size" torch "$WORKERS" --baseline-png "$WORK/raw"
done
# the T4 target: DALI must feed ResNet-50 (about 400-550 img/s on a T4) from 2 CPU threads
bench "${SIZES%% *}" dali 2
# the recipes' backbone at their size: a timm ConvNeXt at 512 px on shards built at 512 (random init: bench
# times, it never loads weights), batch 32 as recipes/cxrlt-convnext-asl-512.yaml trains it
echo "== data: the same images -> 512 px JPEG shards"
[ -f "$WORK/shards512/manifest.json" ] || $PY -m ingest build-shards --images "$WORK/raw" --labels "$WORK/raw/labels" \
  --out "$WORK/shards512" --size 512 --workers "$(nproc)" > /dev/null
if [ $GPU = 1 ]; then BIG=convnext_small; BIG_BATCH=32; else BIG=convnext_atto; BIG_BATCH=4; fi
for loader in dali torch; do
  name="bench-$BIG-512-$loader-w$WORKERS"
  echo "== bench $BIG 512 px, $loader loader, $WORKERS workers"
  $PY -m train bench --shards "$WORK/shards512" --model "$BIG" --image-size 512 --batch-size "$BIG_BATCH" \
    --precision "$([ $GPU = 1 ] && echo fp16 || echo fp32)" --channels-last --loader "$loader" --workers "$WORKERS" \
    --steps "$STEPS" --repeat "$REPEAT" --json "$OUT/$name.json" | tee "$OUT/$name.txt"
done
echo "== summary"
$PY - "$OUT" <<'PY'
import json, pathlib, sys
rows = [json.loads(p.read_text()) for p in sorted(pathlib.Path(sys.argv[1]).glob("bench-*.json"))]
print("| device | model | px | loader | workers | loader img/s | model img/s | end-to-end img/s | saturation "
      "| paper's path img/s | peak GPU GiB |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
    paper = f"{r['paper_path_img_s']:,.0f}" if "paper_path_img_s" in r else ""
    print(f"| {r['device']} | {r['model']} | {r['image_size']} | {r['loader']} | {r['workers']} | "
          f"{r['loader_img_s']:,.0f} | {r['model_img_s']:,.0f} | {r['end_to_end_img_s']:,.0f} | "
          f"{100 * r['saturation']:.0f}% | {paper} | {r.get('peak_gpu_mem_gib', float('nan')):.1f} |")
PY
