#!/usr/bin/env bash
# Regenerate the confidence reports in benchmarks/confidence/: how well each estimator ranks
# its own errors (sparsification curves, AUSE against the oracle and random removal, EPE of
# the 50 % / 90 % most confident pixels), and what the network's confidence output costs.
#
# Rows:  the built-in student's own confidence (checkpoint), the same student with the
#        left-right check instead (+lr), OpenCV SGBM's binary LR mask (sgbm) and SGBM with the
#        continuous LR confidence (sgbm+lr).
# Data:  middlebury/  the Middlebury Motorcycle pair shipped by scikit-image (real, with GT)
#        synthetic/   the 8 held-out synthetic scenes of the model card (256x512, exact GT)
# The survival of the confidence through ONNX export and INT8 (Spearman vs PyTorch) is in
# benchmarks/cpu-reference/, whose models are exported with --confidence.
#
# Run from the repository root in the project's environment (`make test` builds .venv):
#   STEREO_TRT=.venv/bin/stereo-trt PYTHON=.venv/bin/python bash benchmarks/confidence/regenerate.sh
set -euo pipefail

STEREO_TRT=${STEREO_TRT:-stereo-trt}
PYTHON=${PYTHON:-python}
CKPT=toolkit/weights/rt_igev_student.pth
DATA=outputs/datasets/heldout-synthetic
OUT=benchmarks/confidence

if [ ! -d "$DATA/test" ]; then
  "$PYTHON" -c "from toolkit.data.synthetic import write_instereo2k_tree as w; \
w('$DATA', n_train_parts=1, pairs_per_part=1, n_test=8, size=(256, 512), seed=20000000, max_disp=96)"
fi
ROWS=(--model "$CKPT" --model "$CKPT+lr" --model sgbm --model sgbm+lr --warmup 0 --repeats 1 --no-memory)
"$STEREO_TRT" bench "${ROWS[@]}" --data builtin --out "$OUT/middlebury"
"$STEREO_TRT" bench "${ROWS[@]}" --data "$DATA" --out "$OUT/synthetic"
"$PYTHON" benchmarks/confidence/cost.py --size 480x640 --iters 8 --threads "$(nproc)" --repeats 5 > "$OUT/cost.md"
