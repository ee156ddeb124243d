#!/usr/bin/env bash
# Set up and run the whole test suite (CPU; DALI in its CPU-only mode; gpu-marked tests skip without CUDA).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest "$@"
