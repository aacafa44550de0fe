#!/usr/bin/env bash
# gpu-long.sh: one example of dngpu-badd at 1000x its training size (40,001 tokens, batch 1) on ONNX Runtime's CUDA
# provider, run each way the evaluator can run a step Loop: the Loop as exported (one step per iteration, which on
# the GPU may pay a host round-trip per iteration), in chunks of K steps per iteration (`eval --loop-chunk K`), and
# through an IO binding (`eval --io-binding`). Reports seconds per example, GFLOP/s by the bench's FLOP formula
# (Toolchain.Cli.Bench.Bench.ConvFlops: the convolutions only, dngpu 2 x (2m*m*k + m*m*k) x n per step, n steps),
# the fraction of the GPU's float32 peak (measured with PyTorch, TF32 off: tools/gpu-peak.py), and which way is
# fastest, i.e. what `--loop-chunk` the evaluator should use on CUDA. Each way's verdict on the example is compared
# too (they must agree).
#
# Usage: tools/gpu-long.sh
# Environment: TOOLCHAIN, PYTHON, GPU_WORK, CUDA_LIB_DIRS (tools/gpu-env.sh); PROVIDER (default cuda), LONG_MODEL
#   (default models/dngpu-badd.onnx), LONG_MULTIPLE (default 1000), LONG_VARIANTS (default "loop chunk16 chunk64
#   iobinding"; chunkK = --loop-chunk K, iobinding = --io-binding, joined with + to combine), LONG_TIMEOUT seconds
#   per way (default 120), LONG_TOTAL seconds for all, the peak included (default 145: ways that no longer fit are not
#   run and say so),
#   PEAK_GFLOPS (skip the peak measurement and use this figure).
# Writes GPU_WORK/long/WAY/ (eval folders), their logs, peak.json and GPU_WORK/long.md.
# Exit code: 0 measured, 1 a way failed or the ways disagree, 2 bad setup.
set -uo pipefail
GPU_SCRIPT=gpu-long
source "$(dirname "$0")/gpu-env.sh"
cd "$gpu_root"

PROVIDER=${PROVIDER:-cuda}
LONG_MODEL=${LONG_MODEL:-models/dngpu-badd.onnx}
LONG_MULTIPLE=${LONG_MULTIPLE:-1000}
LONG_VARIANTS=${LONG_VARIANTS:-loop chunk16 chunk64 iobinding}
LONG_TIMEOUT=${LONG_TIMEOUT:-120}
LONG_TOTAL=${LONG_TOTAL:-145}
[[ $PROVIDER == cpu || $PROVIDER == cuda ]] || gpu_fail "PROVIDER '$PROVIDER' is neither cpu nor cuda"
[[ -f $LONG_MODEL ]] || gpu_fail "LONG_MODEL $LONG_MODEL does not exist"
gpu_need_toolchain
gpu_work
if [[ $PROVIDER == cuda ]]; then
  gpu_cuda_env
  why=$(gpu_cuda_check) || gpu_fail "$why"
fi

dir=$GPU_WORK/long
mkdir -p "$dir"
start=$(gpu_now)
printf 'provider=%s\nmodel=%s\nmultiple=%s\nvariants=%s\n' "$PROVIDER" "$LONG_MODEL" "$LONG_MULTIPLE" "$LONG_VARIANTS" > "$dir/settings.txt"
# one random example at the level: the suite file of this measurement
cat > "$dir/suite.yaml" <<EOF
name: gpu-long
description: one random example at ${LONG_MULTIPLE}x the training size, for timing
seed: 20261126
levels:
  - multiple: ${LONG_MULTIPLE}
    samples: {random: 1}
cases: []
EOF

# the peak: measured on the GPU with PyTorch (float32, TF32 off); on the CPU path the report takes the bench's figure
if [[ -n "${PEAK_GFLOPS:-}" ]]; then
  printf '{"gflops": %s, "source": "PEAK_GFLOPS, given by the caller"}\n' "$PEAK_GFLOPS" > "$dir/peak.json"
elif [[ $PROVIDER == cuda ]]; then
  timeout -k 5 90 "$PYTHON" tools/gpu-peak.py > "$dir/peak.json" 2> "$dir/peak.log" || { echo "gpu-long: the peak measurement failed: $(tail -n 1 "$dir/peak.log")"; rm -f "$dir/peak.json"; }
fi

for way in $LONG_VARIANTS; do
  args=()
  IFS=+ read -ra parts <<< "$way"
  for part in "${parts[@]}"; do
    case $part in
      loop) ;;
      chunk[0-9]*) args+=(--loop-chunk "${part#chunk}") ;;
      iobinding) args+=(--io-binding) ;;
      *) gpu_fail "LONG_VARIANTS: '$part' is none of loop, chunkK, iobinding" ;;
    esac
  done
  echo "$way" >> "$dir/ways.txt"
  left=$(awk -v s="$start" -v now="$(gpu_now)" -v total="$LONG_TOTAL" 'BEGIN { printf "%d", total - (now - s) }')
  if (( left < 20 )); then
    echo "not run: the ${LONG_TOTAL} s of this measurement were spent" > "$dir/$way.skipped"
    echo "gpu-long: $way not run: time spent"
    continue
  fi
  limit=$(( left < LONG_TIMEOUT ? left : LONG_TIMEOUT ))
  run=$dir/$way
  rm -rf "$run"
  echo "gpu-long: $way (${args[*]:-the Loop as exported}) on $PROVIDER, at most $limit s ..."
  timeout -k 10 "$limit" "$TOOLCHAIN" eval "$LONG_MODEL" --provider "$PROVIDER" --suite "$dir/suite.yaml" --batch-tokens 1 "${args[@]}" \
    --verdicts --out "$run" > "$run.log" 2>&1
  rc=$?
  echo "$rc" > "$run.rc"
  [[ $rc -eq 0 ]] || echo "gpu-long: $way failed (exit $rc; timeout gives 124): $(grep -m1 'error:' "$run.log" || tail -n 1 "$run.log")"
done

"$PYTHON" tools/gpu-report.py long "$GPU_WORK" > "$GPU_WORK/long.md"
rc=$?
cat "$GPU_WORK/long.md"
exit $rc
