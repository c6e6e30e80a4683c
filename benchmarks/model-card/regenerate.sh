#!/usr/bin/env bash
# Regenerate the accuracy figures of toolkit/weights/MODEL_CARD.md: the built-in student next
# to OpenCV SGBM, EPE / bad-x against ground truth on
#   middlebury/   the Middlebury Motorcycle pair shipped by scikit-image (real, 500x741, padded to 512x768)
#   synthetic/    8 held-out synthetic scenes (256x512, disparities up to 96 px; seeds the training run never draws)
# Run from the repository root in the project's environment (`make test` builds .venv):
#   bash benchmarks/model-card/regenerate.sh
set -euo pipefail

STEREO_TRT=${STEREO_TRT:-stereo-trt}
PYTHON=${PYTHON:-python}
CKPT=toolkit/weights/rt_igev_student.pth
DATA=outputs/datasets/heldout-synthetic
OUT=benchmarks/model-card

if [ ! -d "$DATA/test" ]; then
  "$PYTHON" -c "from toolkit.data.synthetic import write_instereo2k_tree as w; \
w('$DATA', n_train_parts=1, pairs_per_part=1, n_test=8, size=(256, 512), seed=20000000, max_disp=96)"
fi
# Accuracy only: one timed pass, no memory probe (speed lives in benchmarks/cpu-reference).
"$STEREO_TRT" bench --model "$CKPT" --model sgbm --data builtin --warmup 0 --repeats 1 --no-memory --out "$OUT/middlebury"
"$STEREO_TRT" bench --model "$CKPT" --model sgbm --data "$DATA" --warmup 0 --repeats 1 --no-memory --out "$OUT/synthetic"
