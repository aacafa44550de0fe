#!/usr/bin/env bash
# gpu-train-speed.sh: training examples/s on CUDA with one seed and with 16 seeds packed in one process
# (`toolchain train --seeds 1-16`, docs/train.md), dngpu-ref on badd, a short fixed number of steps. The goal of
# issue 17: 16 packed seeds at >= 8x the examples/s of one seed (PASS/MISS). Training on CUDA goes through
# tools/gpu-train.sh (TorchSharp with the CUDA libtorch of a PyTorch install); DEVICE=cpu trains with the build's
# own CPU libtorch.
#
# Usage: tools/gpu-train-speed.sh
# Environment: TOOLCHAIN, PYTHON, GPU_WORK (tools/gpu-env.sh); DEVICE (default cuda), TRAIN_TASK (default badd),
#   TRAIN_PRESET (default dngpu-ref), TRAIN_STEPS (default 20; 5 on cpu), TRAIN_SEEDS (default 16), TRAIN_SET
#   (space-separated name=value settings; default none, on cpu "maps=6 train_length=4"), TRAIN_TIMEOUT seconds per run
#   (default 80; each run also gets --minutes 30 s under it, so a slow run stops with its metrics written),
#   TRAIN_TARGET (default 8).
# The rate of a run is the median examples/s of its progress lines in the second half of the steps (the first steps
# carry the start-up: data generation, kernels loaded); a packed run's total is the sum over its seeds.
# Writes GPU_WORK/train/{one,packed/seed-N}/ (runs with metrics.jsonl), their logs, and GPU_WORK/train.md.
# Exit code: 0 measured and PASS, 1 MISS or a run failed, 2 bad setup.
set -uo pipefail
GPU_SCRIPT=gpu-train-speed
source "$(dirname "$0")/gpu-env.sh"
cd "$gpu_root"

DEVICE=${DEVICE:-cuda}
[[ $DEVICE == cpu || $DEVICE == cuda ]] || gpu_fail "DEVICE '$DEVICE' is neither cpu nor cuda"
TRAIN_TASK=${TRAIN_TASK:-badd}
TRAIN_PRESET=${TRAIN_PRESET:-dngpu-ref}
if [[ $DEVICE == cpu ]]; then TRAIN_STEPS=${TRAIN_STEPS:-5}; TRAIN_SET=${TRAIN_SET-maps=6 train_length=4}; fi
TRAIN_STEPS=${TRAIN_STEPS:-20}
TRAIN_SET=${TRAIN_SET:-}
TRAIN_SEEDS=${TRAIN_SEEDS:-16}
TRAIN_TIMEOUT=${TRAIN_TIMEOUT:-80}
TRAIN_TARGET=${TRAIN_TARGET:-8}
export TRAIN_TARGET
gpu_need_toolchain
gpu_work

dir=$GPU_WORK/train
mkdir -p "$dir"
printf 'device=%s\ntask=%s\npreset=%s\nsteps=%s\nseeds=%s\nset=%s\ntarget=%s\n' "$DEVICE" "$TRAIN_TASK" "$TRAIN_PRESET" "$TRAIN_STEPS" "$TRAIN_SEEDS" "$TRAIN_SET" "$TRAIN_TARGET" > "$dir/settings.txt"
common=(--task "$TRAIN_TASK" --arch dngpu --preset "$TRAIN_PRESET" --steps "$TRAIN_STEPS" --set log_every=1)
for s in $TRAIN_SET; do common+=(--set "$s"); done
minutes=$(awk -v t="$TRAIN_TIMEOUT" 'BEGIN { m = (t - 30) / 60; if (m < 0.2) m = 0.2; printf "%.2f", m }')

train() { # name, then train options
  local name=$1 rc
  shift
  rm -rf "${dir:?}/$name"
  echo "gpu-train-speed: $name: train $* on $DEVICE ..."
  if [[ $DEVICE == cuda ]]; then
    TOOLCHAIN_DIR=$(dirname "$TOOLCHAIN") PYTHON=$PYTHON timeout -k 15 "$TRAIN_TIMEOUT" tools/gpu-train.sh "${common[@]}" --minutes "$minutes" "$@" --out "$dir/$name" > "$dir/$name.log" 2>&1
  else
    timeout -k 15 "$TRAIN_TIMEOUT" "$TOOLCHAIN" train --device cpu "${common[@]}" --minutes "$minutes" "$@" --out "$dir/$name" > "$dir/$name.log" 2>&1
  fi
  rc=$?
  echo "$rc" > "$dir/$name.rc"
  [[ $rc -eq 0 ]] || echo "gpu-train-speed: $name failed (exit $rc; timeout gives 124): $(grep -m1 'error:' "$dir/$name.log" || tail -n 1 "$dir/$name.log")"
}

train one --seed 1
train packed --seeds "1-$TRAIN_SEEDS"

"$PYTHON" tools/gpu-report.py train "$GPU_WORK" > "$GPU_WORK/train.md"
rc=$?
cat "$GPU_WORK/train.md"
exit $rc
