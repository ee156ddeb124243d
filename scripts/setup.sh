#!/usr/bin/env bash
# Create .venv in the repo root and install the project with DALI (CPU-only mode works without a GPU).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# torch first, pinned: where a local wheel store exists pip takes it from there
.venv/bin/python -m pip install -q "torch==2.14.1" "torchvision==0.29.1"
.venv/bin/python -m pip install -q -e ".[dali,test]"
