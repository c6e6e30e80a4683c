#!/usr/bin/env bash
# Fine-tune the built-in student on a CUDA GPU, then decide whether the result may replace it.
#
# Meant for ONE device call of at most 9 minutes on the lent GPU machine (H200, 16 cores,
# torch with CUDA, the project NOT installed), from the repository root:
#   PYTHONUNBUFFERED=1 bash benchmarks/model-card/gpu_train.sh          # writes under $OUT
# What it does:
#   1. `stereo-trt train --device cuda`: fine-tunes toolkit/weights/rt_igev_student.pth on
#      freshly generated photo-textured synthetic scenes (worker processes), larger crops and
#      batches than the CPU runs, TRAIN_ITERS GRU iterations, bounded by TRAIN_MINUTES (start-up
#      included); OUT/train/last.pth (fp16 storage, ~8.6 MB) is rewritten every CKPT_EVERY steps,
#      so a run cut off by the call's limit still returns weights.
#   2. `stereo-trt bench` on the CPU in FP32 (predict's defaults; no TF32, no autocast), before
#      and after side by side: the Middlebury Motorcycle pair (test only, never training data)
#      at each of SWEEP's iteration counts, and the 8 held-out synthetic scenes of
#      regenerate.sh (seeds 20000000+, which the training stream never draws), and, for
#      information, 8 held-out scenes with every hard case (make_scene(hard_cases=...), seeds 21000000+).
#   3. gpu_train_summary.py: OUT/summary.json + OUT/summary.md, with the targets and
#      the decision: ship only if the new weights beat the current ones on BOTH sets.
# Nothing is copied into toolkit/weights: whoever reads the summary commits the weights.
#
# Every knob is an environment variable; a CPU smoke run of the plumbing (seconds of training
# at a tiny crop; its numbers mean nothing):
#   OUT=/tmp/gpu_smoke DEVICE=cpu TRAIN_MINUTES=0.2 CROP=64x96 BATCH=1 TRAIN_ITERS=2 WORKERS=1 \
#     HELDOUT_N=1 HELDOUT_SIZE=64x128 SWEEP="2 8" EVAL_SIZE=128x192 bash benchmarks/model-card/gpu_train.sh
set -euo pipefail

OUT=${OUT:-outputs/gpu_train}
PYTHON=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}
INIT=${INIT:-toolkit/weights/rt_igev_student.pth}
TRAIN_MINUTES=${TRAIN_MINUTES:-6}
STEPS=${STEPS:-100000}           # the budget, not the steps, ends the run; the schedule anneals to it
BATCH=${BATCH:-8}
CROP=${CROP:-256x512}
TRAIN_ITERS=${TRAIN_ITERS:-8}
LR=${LR:-2e-4}
SCENE_MAX_DISP=${SCENE_MAX_DISP:-96}
HARD_CASES=${HARD_CASES:-}       # e.g. thin,curved or all: train --hard-cases (empty: plain photo-textured scenes)
CKPT_EVERY=${CKPT_EVERY:-200}
VAL_EVERY=${VAL_EVERY:-500}
WORKERS=${WORKERS:-}             # empty: train's default (cores - 1 on a GPU)
SEED=${SEED:-2}
HELDOUT_N=${HELDOUT_N:-8}
HELDOUT_SIZE=${HELDOUT_SIZE:-256x512}
SWEEP=${SWEEP:-"2 4 8 16"}
EVAL_SIZE=${EVAL_SIZE:-}         # empty: each pair padded to a multiple of 32 (the model card's protocol)
EVAL_THREADS=${EVAL_THREADS:-}
CANDIDATE=${CANDIDATE:-}         # set to a checkpoint to skip training and only evaluate it

export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
STEREO_TRT=("$PYTHON" -m toolkit)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gpu_train.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$OUT"

if [ -z "$CANDIDATE" ]; then
  # data workers hand batches over through shared memory: record how much there is
  { nproc; df -h /dev/shm || true; } > "$OUT/train.log" 2>&1
  workers=()
  [ -n "$WORKERS" ] && workers=(--workers "$WORKERS")
  [ -n "$HARD_CASES" ] && workers+=(--hard-cases "$HARD_CASES")
  "${STEREO_TRT[@]}" train --data synthetic --photo-textures --init "$INIT" --device "$DEVICE" \
    --minutes "$TRAIN_MINUTES" --steps "$STEPS" --batch-size "$BATCH" --crop "$CROP" --train-iters "$TRAIN_ITERS" \
    --lr "$LR" --scene-max-disp "$SCENE_MAX_DISP" --ckpt-every "$CKPT_EVERY" --val-every "$VAL_EVERY" \
    --seed "$SEED" --fp16-weights --log-every 50 "${workers[@]}" --out "$OUT/train" 2>&1 | tee -a "$OUT/train.log"
  # the fp32 optimiser state (~50 MB) is only for --resume; it would not come back from $OUT anyway
  rm -f "$OUT/train/train_state.pt"
  CANDIDATE="$OUT/train/last.pth"
fi

heldout="$WORK/heldout-synthetic"
hard="$WORK/heldout-hard"
"$PYTHON" -c "from toolkit.data.synthetic import HARD_CASES, write_instereo2k_tree as w; \
h, x = map(int, '$HELDOUT_SIZE'.split('x')); \
w('$heldout', n_train_parts=1, pairs_per_part=1, n_test=$HELDOUT_N, size=(h, x), seed=20000000, max_disp=96); \
w('$hard', n_train_parts=1, pairs_per_part=1, n_test=$HELDOUT_N, size=(h, x), seed=21000000, max_disp=96, \
  hard_cases=HARD_CASES)"

bench() {  # bench OUTDIR DATA [extra options]: before and after as two rows, FP32 on the CPU
  local out=$1 data=$2
  shift 2
  local extra=()
  [ -n "$EVAL_SIZE" ] && extra+=(--size "$EVAL_SIZE")
  [ -n "$EVAL_THREADS" ] && extra+=(--threads "$EVAL_THREADS")
  "${STEREO_TRT[@]}" bench --model "$INIT" --model "$CANDIDATE" --data "$data" --device cpu --warmup 0 --repeats 1 \
    --no-memory "${extra[@]}" "$@" --out "$out"
}

{
  bench "$WORK/synthetic" "$heldout"
  bench "$WORK/hard" "$hard"
  for iters in $SWEEP; do
    bench "$WORK/middlebury_it$iters" builtin --iters "$iters"
  done
} 2>&1 | tee "$OUT/eval.log"

reports=("$WORK/synthetic/report.json" "$WORK/hard/report.json")
for iters in $SWEEP; do reports+=("$WORK/middlebury_it$iters/report.json"); done
"$PYTHON" benchmarks/model-card/gpu_train_summary.py --before "$INIT" --after "$CANDIDATE" --out "$OUT" "${reports[@]}"
