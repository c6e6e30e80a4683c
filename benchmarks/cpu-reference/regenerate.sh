#!/usr/bin/env bash
# Regenerate the committed CPU reference reports in benchmarks/cpu-reference/.
#
# Rows: PyTorch FP32 (the built-in weights), ONNX Runtime FP32, ONNX Runtime INT8 (the
# TensorRT-style Q/DQ model) and OpenCV SGBM, all at 480x640 with 8 GRU iterations, on
#   builtin/                the Middlebury Motorcycle pair shipped by scikit-image (real, with GT)
#   synthetic-instereo2k/   the test split of a generated InStereo2K-layout set (with exact GT)
#
# Run from the repository root with the project's environment active (`make test` builds it):
#   bash benchmarks/cpu-reference/regenerate.sh
# Inputs that already exist are reused; delete them to rebuild. Nothing is downloaded.
set -euo pipefail

STEREO_TRT=${STEREO_TRT:-stereo-trt}
PYTHON=${PYTHON:-python}
THREADS=${THREADS:-$(nproc)}
SIZE=480x640
ITERS=8
CKPT=toolkit/weights/rt_igev_student.pth
# exported with the confidence output, so the reports also show that it keeps its ranking
# (Spearman vs PyTorch) through export and INT8
FP32=engines/rt_igev_student_${SIZE}_it${ITERS}_fp32_conf.onnx
INT8=engines/rt_igev_student_${SIZE}_it${ITERS}_int8_conf.onnx
DATA=outputs/datasets/synthetic-instereo2k
OUT=benchmarks/cpu-reference
# Size of the run; the committed reports say which values produced them.
N_CALIB=${N_CALIB:-32}
HOLDOUT=${HOLDOUT:-8}
N_TEST=${N_TEST:-10}
REPEATS=${REPEATS:-}
# INT8 budget vs FP32 (px): the most sensitive layers stay in float until it is met
MAX_EPE_DELTA=${MAX_EPE_DELTA:-0.2}
SENSITIVITY_PAIRS=${SENSITIVITY_PAIRS:-2}

# By default 40 train pairs (calibration 32 + held out 8) and 10 test pairs (the benchmark), 480x640,
# disparities up to 96 px; seeds start far from those the training run draws.
if [ ! -d "$DATA/test" ]; then
  "$PYTHON" -c "from toolkit.data.synthetic import write_instereo2k_tree as w; \
w('$DATA', n_train_parts=2, pairs_per_part=$(( (N_CALIB + HOLDOUT + 1) / 2 )), n_test=$N_TEST, size=(480, 640), seed=900000, max_disp=96)"
fi
[ -f "$FP32" ] || "$STEREO_TRT" export "$CKPT" --size "$SIZE" --iters "$ITERS" --confidence --out "$FP32"
[ -f "$INT8" ] || "$STEREO_TRT" quantize "$FP32" -c "$DATA" --n-calib "$N_CALIB" --holdout "$HOLDOUT" --out "$INT8" \
  --threads "$THREADS" --max-epe-delta "$MAX_EPE_DELTA" --sensitivity-pairs "$SENSITIVITY_PAIRS"

ROWS=(--model "$CKPT" --model "$FP32" --model "$INT8" --model sgbm ${REPEATS:+--repeats "$REPEATS"})
"$STEREO_TRT" bench "${ROWS[@]}" --data "$DATA" --threads "$THREADS" --out "$OUT/synthetic-instereo2k"
"$STEREO_TRT" bench "${ROWS[@]}" --data builtin --threads "$THREADS" --out "$OUT/builtin"
