#!/usr/bin/env bash
# One device call: cuda tests + bench + run, everything under $OUT (see regenerate.py).
# Usage on the GPU machine, project not installed (PYTHON picks the interpreter, default python3):
#   OUT=$OUT bash benchmarks/gpu-reference/regenerate.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec "${PYTHON:-python3}" benchmarks/gpu-reference/regenerate.py "$@"
