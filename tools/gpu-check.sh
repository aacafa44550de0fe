#!/usr/bin/env bash
# gpu-check.sh: grade zoo models with ONNX Runtime's CUDA provider and with the CPU provider, and compare the two
# runs example for example (`eval --verdicts`, `toolchain verdicts-diff`): every example must get the same verdict
# on both. Reports tokens/s both ways per level (from each run's results.json timing entries).
#
# Usage: tools/gpu-check.sh [MODEL.onnx ...]
#   default models: models/dngpu-badd.onnx models/dngpu-bmul.onnx models/ngpu-reverse.onnx (those that exist), or
#   CHECK_MODELS (space-separated).
# Environment: TOOLCHAIN (default out/toolchain/toolchain, the self-contained build: dotnet publish tools/toolchain -c
#   Release -r linux-x64 --self-contained -o out/toolchain), PROVIDER_A (default cuda), PROVIDER_B (default cpu),
#   LEVELS (default 1x,10x,100x), SUITE (default quick), BUDGET_MINUTES per eval run (default 0.25; 0 = no budget),
#   GPU_WORK (the folder for the runs, default a new temp folder), PYTHON, CUDA_LIB_DIRS (see tools/gpu-env.sh).
# Writes GPU_WORK/check/MODEL/{A-PROVIDER,B-PROVIDER}/ (eval folders with verdicts.jsonl), their logs, diff.txt, and
# GPU_WORK/check.md (the table). With PROVIDER_A=cpu PROVIDER_B=cpu it runs on any machine (the CPU-path test).
# Each run is capped by --budget-minutes and `timeout` (budget + 45 s): 3 models x 2 providers take about 2.5 minutes.
# Exit code: 0 every model got the same verdicts, 1 a verdict differs or a run failed, 2 bad setup.
set -uo pipefail
GPU_SCRIPT=gpu-check
source "$(dirname "$0")/gpu-env.sh"
cd "$gpu_root"

PROVIDER_A=${PROVIDER_A:-cuda}
PROVIDER_B=${PROVIDER_B:-cpu}
LEVELS=${LEVELS:-1x,10x,100x}
SUITE=${SUITE:-quick}
BUDGET_MINUTES=${BUDGET_MINUTES:-0.25}
for p in "$PROVIDER_A" "$PROVIDER_B"; do [[ $p == cpu || $p == cuda ]] || gpu_fail "provider '$p' is neither cpu nor cuda (PROVIDER_A, PROVIDER_B)"; done
gpu_need_toolchain
gpu_work

models=("$@")
if [[ ${#models[@]} -eq 0 ]]; then read -ra models <<< "${CHECK_MODELS:-models/dngpu-badd.onnx models/dngpu-bmul.onnx models/ngpu-reverse.onnx}"; fi
present=()
for m in "${models[@]}"; do
  if [[ -f $m ]]; then present+=("$m"); else echo "gpu-check: $m does not exist; left out"; fi
done
[[ ${#present[@]} -gt 0 ]] || gpu_fail "none of the models exists (${models[*]}); pass model files as arguments"
if [[ $PROVIDER_A == cuda || $PROVIDER_B == cuda ]]; then
  gpu_cuda_env
  why=$(gpu_cuda_check) || gpu_fail "$why"
fi

dir=$GPU_WORK/check
mkdir -p "$dir"
printf 'provider_a=%s\nprovider_b=%s\nlevels=%s\nsuite=%s\nbudget_minutes=%s\n' "$PROVIDER_A" "$PROVIDER_B" "$LEVELS" "$SUITE" "$BUDGET_MINUTES" > "$dir/settings.txt"
: > "$dir/models.txt"
budget=()
limit=900
if [[ $BUDGET_MINUTES != 0 ]]; then
  budget=(--budget-minutes "$BUDGET_MINUTES")
  # the budget bounds the grading; the rest is the process, the session and the budget's own probes
  limit=$(awk -v b="$BUDGET_MINUTES" 'BEGIN { printf "%d", b * 60 + 45 }')
fi

for model in "${present[@]}"; do
  name=$(basename "$model" .onnx)
  echo "$name" >> "$dir/models.txt"
  mkdir -p "$dir/$name"
  for side in A B; do
    [[ $side == A ]] && provider=$PROVIDER_A || provider=$PROVIDER_B
    run=$dir/$name/$side-$provider
    rm -rf "$run"
    echo "gpu-check: $name on $provider (run $side) ..."
    timeout -k 10 "$limit" "$TOOLCHAIN" eval "$model" --provider "$provider" --suite "$SUITE" --levels "$LEVELS" "${budget[@]}" \
      --verdicts --out "$run" > "$run.log" 2>&1
    rc=$?
    echo "$rc" > "$run.rc"
    [[ $rc -eq 0 ]] || { echo "gpu-check: $name on $provider failed (exit $rc; timeout gives 124): $(grep -m1 'error:' "$run.log" || tail -n 1 "$run.log")"; }
  done
  "$TOOLCHAIN" verdicts-diff "$dir/$name/A-$PROVIDER_A" "$dir/$name/B-$PROVIDER_B" > "$dir/$name/diff.txt" 2>&1
  echo $? > "$dir/$name/diff.rc"
  echo "gpu-check: $name: $(head -n 1 "$dir/$name/diff.txt")"
done

"$PYTHON" tools/gpu-report.py check "$GPU_WORK" > "$GPU_WORK/check.md"
rc=$?
cat "$GPU_WORK/check.md"
exit $rc
