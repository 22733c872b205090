#!/usr/bin/env bash
# The figures of the README's tutorial story ("The tutorial, with lvc"),
# reproduced on small phantoms in about 12 min on 2 idle CPU cores: `make tutorial`
# (after `make build`), or `bash docs/tutorial/run.sh` from the repository root.
#
#   gray    3-patient phantom, seed 1, one channel: the tutorial's dataset
#   rgb     3-patient phantom, seed 2, three channels: stands in for the
#           ImageNet/PASCAL images behind the tutorial's pretrained weights
#
# Steps: 2 FCN-AlexNet from scratch with cross-entropy; 4 the same net
# pretrained on `rgb`, `lvc weights check` on the 3-vs-1-channel conv1, then
# fine-tuned on `gray` with --adapt conv1=sum (cross-entropy and Dice loss);
# 5 FCN-8s (one epoch: ~3.2 s per image forward-backward on 2 CPU cores, see
# `lvc time`); 6 Dice loss; 7 the demo net on the same data. Ends with one
# table (also in OUT/table.md).
#
# Environment: LVC (default target/release/lvc), OUT (default runs/tutorial),
# EPOCHS (FCN-AlexNet runs, default 3), PRETRAIN_EPOCHS (default 6),
# FCN8S_EPOCHS (default 1).
set -euo pipefail

cd "$(dirname "$0")/../.."
LVC=${LVC:-target/release/lvc}
OUT=${OUT:-runs/tutorial}
EPOCHS=${EPOCHS:-3}
PRETRAIN_EPOCHS=${PRETRAIN_EPOCHS:-6}
FCN8S_EPOCHS=${FCN8S_EPOCHS:-1}
TUTORIAL=docs/tutorial

if [ ! -x "$LVC" ]; then
  echo "error: $LVC not found; run \`make build\` first (or set LVC)" >&2
  exit 2
fi
command -v python3 >/dev/null || { echo "error: python3 is needed to print the table" >&2; exit 2; }

# OUT is replaced, but only when it is a previous tutorial run (or empty).
if [ -d "$OUT" ] && [ ! -f "$OUT/steps.tsv" ] && [ -n "$(ls -A "$OUT")" ]; then
  echo "error: $OUT exists and is not a tutorial run (no steps.tsv); choose another OUT" >&2
  exit 2
fi
rm -rf "$OUT"
mkdir -p "$OUT/logs"
STEPS="$OUT/steps.tsv"
: > "$STEPS"

# run_step ID WHAT EPOCHS RUN EXPECTED_STATUS COMMAND...
# Runs COMMAND (output to the terminal and OUT/logs/ID.log), times it and
# appends a row to steps.tsv. RUN is the run folder whose metrics.json holds
# the figures ("-" when the step trains nothing). A status other than
# EXPECTED_STATUS is recorded in the table and the remaining steps still run.
run_step() {
  local id=$1 what=$2 epochs=$3 run=$4 expected=$5
  shift 5
  local shown="${*//$OUT\//}"
  shown="${shown//$LVC/lvc}"
  echo
  echo "== step $id: $what"
  echo "\$ $shown"
  local start status=0
  start=$(date +%s.%N)
  "$@" 2>&1 | tee "$OUT/logs/$id.log" || status=${PIPESTATUS[0]}
  local seconds
  seconds=$(python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$start" "$(date +%s.%N)")
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$id" "$what" "$epochs" "$run" "$seconds" "$status" "$expected" "$shown" >> "$STEPS"
  # Per-epoch snapshots and solver states (0.2-0.5 GB each) are not needed
  # here; metrics.json and best.safetensors stay.
  if [ "$run" != - ]; then rm -rf "$run/snapshots"; fi
}

phantom_dataset() { # NAME SEED CHANNELS
  local name=$1 seed=$2 channels=$3
  "$LVC" phantom --out "$OUT/phantom-$name" --cases 3 --seed "$seed"
  "$LVC" dataset create --images "$OUT/phantom-$name/challenge_training" \
    --contours "$OUT/phantom-$name/Sunnybrook Cardiac MR Database ContoursPart3" \
    --out "$OUT/$name" --channels "$channels" --val-pct 34 --seed 1
}

echo "== step 1: datasets (3 patients each: 2 train, 1 val)"
phantom_dataset gray 1 L
phantom_dataset rgb 2 RGB
"$LVC" dataset inspect "$OUT/gray"

run_step 2 "FCN-AlexNet from scratch, cross-entropy" "$EPOCHS" "$OUT/2-ce" 0 \
  "$LVC" train --solver "$TUTORIAL/fcn_alexnet_solver.prototxt" --dataset "$OUT/gray" --epochs "$EPOCHS" --out "$OUT/2-ce"

run_step 4a "pretrain on the RGB phantom, Dice loss (stand-in for ImageNet)" "$PRETRAIN_EPOCHS" "$OUT/4-pretrain-rgb" 0 \
  "$LVC" train --solver "$TUTORIAL/fcn_alexnet_dice_solver.prototxt" --dataset "$OUT/rgb" --epochs "$PRETRAIN_EPOCHS" --out "$OUT/4-pretrain-rgb"

PRETRAINED="$OUT/4-pretrain-rgb/best.safetensors"
run_step 4b "RGB weights into the gray net: conv1 96x3 vs 96x1" - - 1 \
  "$LVC" weights check --model models/fcn_alexnet.prototxt --weights "$PRETRAINED"
run_step 4c "the same with the fix" - - 0 \
  "$LVC" weights check --model models/fcn_alexnet.prototxt --weights "$PRETRAINED" --adapt conv1=sum

run_step 4d "fine-tune the pretrained net, cross-entropy" "$EPOCHS" "$OUT/4-finetune" 0 \
  "$LVC" train --solver "$TUTORIAL/fcn_alexnet_solver.prototxt" --dataset "$OUT/gray" --epochs "$EPOCHS" --out "$OUT/4-finetune" \
  --weights "$PRETRAINED" --adapt conv1=sum

run_step 4e "fine-tune the pretrained net, Dice loss" "$EPOCHS" "$OUT/4-finetune-dice" 0 \
  "$LVC" train --solver "$TUTORIAL/fcn_alexnet_dice_solver.prototxt" --dataset "$OUT/gray" --epochs "$EPOCHS" --out "$OUT/4-finetune-dice" \
  --weights "$PRETRAINED" --adapt conv1=sum

run_step 6 "FCN-AlexNet from scratch, Dice loss" "$EPOCHS" "$OUT/6-dice-loss" 0 \
  "$LVC" train --solver "$TUTORIAL/fcn_alexnet_dice_solver.prototxt" --dataset "$OUT/gray" --epochs "$EPOCHS" --out "$OUT/6-dice-loss"

run_step 5 "FCN-8s from scratch, Dice loss" "$FCN8S_EPOCHS" "$OUT/fcn8s-dice-loss" 0 \
  "$LVC" train --solver "$TUTORIAL/fcn8s_dice_solver.prototxt" --dataset "$OUT/gray" --epochs "$FCN8S_EPOCHS" --out "$OUT/fcn8s-dice-loss"

for net in fcn_alexnet fcn8s; do
  run_step "time-$net" "$net: per-image cost (lvc time, batch 1, 256x256)" - - 0 \
    "$LVC" time --model "models/$net.prototxt" --phase train --stage train --iterations 2 --no-layers --format json
done

run_step 7 "the demo net (augmentation, CE + Dice loss, Adam)" 8 "$OUT/7-demo" 0 \
  "$LVC" train --solver models/demo_solver.prototxt --dataset "$OUT/gray" --epochs 8 --out "$OUT/7-demo"

echo
python3 "$TUTORIAL/table.py" "$OUT" | tee "$OUT/table.md"
