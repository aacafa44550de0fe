#!/usr/bin/env bash
# gpu-check.sh: grade one zoo model with ONNX Runtime's CUDA provider and with the CPU provider, print the speedup.
#
# Expects a self-contained build of the command line (no .NET SDK needed on the GPU machine):
#     dotnet publish tools/toolchain -c Release -r linux-x64 --self-contained -o out/toolchain
# and the CUDA 13 + cuDNN 9 libraries. The pip `nvidia-*` packages of a PyTorch install count: set
# CUDA_LIB_DIRS (colon-separated folders) or let the script find <python nvidia package>/*/lib.
#
# Usage: tools/gpu-check.sh [MODEL.onnx]   (default: the first models/*.onnx or zoo/**/*.onnx; else one is
#        exported from a fresh tiny training run). Environment: TOOLCHAIN (default out/toolchain/toolchain),
#        LEVELS (default 1x,10x,100x), SUITE (default quick), BUDGET_MINUTES per provider (default 3).
# Fits in 8 minutes: each provider's run is capped by --budget-minutes, and `timeout` backs that up.
set -euo pipefail
cd "$(dirname "$0")/.."

TOOLCHAIN=${TOOLCHAIN:-out/toolchain/toolchain}
LEVELS=${LEVELS:-1x,10x,100x}
SUITE=${SUITE:-quick}
BUDGET_MINUTES=${BUDGET_MINUTES:-3}
fail() { echo "gpu-check: $*" >&2; exit 2; }

[[ -x "$TOOLCHAIN" ]] || fail "no self-contained toolchain at $TOOLCHAIN; build it first: dotnet publish tools/toolchain -c Release -r linux-x64 --self-contained -o out/toolchain"

# --- the CUDA libraries ---
if [[ -z "${CUDA_LIB_DIRS:-}" ]]; then
  if nv=$(python3 -c 'import nvidia,os;print(os.path.dirname(nvidia.__file__))' 2>/dev/null); then
    CUDA_LIB_DIRS=$(find "$nv" -mindepth 2 -maxdepth 2 -type d -name lib 2>/dev/null | sort | paste -sd: -)
  fi
fi
if [[ -n "${CUDA_LIB_DIRS:-}" ]]; then export LD_LIBRARY_PATH="${CUDA_LIB_DIRS}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"; fi
command -v nvidia-smi >/dev/null 2>&1 || fail "no nvidia-smi: this machine has no NVIDIA driver/GPU (CUDA missing); run it on a GPU machine"
nvidia-smi -L >/dev/null 2>&1 || fail "nvidia-smi finds no GPU (CUDA missing)"
have_lib() { ldconfig -p 2>/dev/null | grep -q "$1" && return 0; local d; IFS=: read -ra ds <<< "${LD_LIBRARY_PATH:-}"; for d in "${ds[@]}"; do compgen -G "$d/$1*" >/dev/null && return 0; done; return 1; }
for lib in libcudart.so.13 libcublasLt.so.13 libcudnn.so.9; do
  have_lib "$lib" || fail "CUDA missing: $lib not found in the loader cache or CUDA_LIB_DIRS/LD_LIBRARY_PATH (${CUDA_LIB_DIRS:-unset}); install CUDA 13 + cuDNN 9 (e.g. pip install torch with CUDA 13) or set CUDA_LIB_DIRS"
done

# --- the model ---
model=${1:-}
if [[ -z "$model" ]]; then model=$(ls models/*.onnx 2>/dev/null | head -1 || true); fi
if [[ -z "$model" ]]; then model=$(find zoo -name '*.onnx' 2>/dev/null | sort | head -1 || true); fi
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
if [[ -z "$model" ]]; then
  echo "gpu-check: no zoo model; training and exporting a small dngpu badd model"
  timeout 120 "$TOOLCHAIN" train --task badd --arch dngpu --steps 50 --out "$work/run" >/dev/null
  timeout 60 "$TOOLCHAIN" export "$work/run" --out "$work/model.onnx" >/dev/null
  model="$work/model.onnx"
fi
echo "gpu-check: model $model, suite $SUITE, levels $LEVELS"

run() { # provider -> seconds
  local p=$1 start end
  start=$(date +%s.%N)
  timeout $(( BUDGET_MINUTES * 60 + 60 )) "$TOOLCHAIN" eval "$model" --provider "$p" --suite "$SUITE" --levels "$LEVELS" \
      --budget-minutes "$BUDGET_MINUTES" --out "$work/eval-$p" > "$work/$p.log" 2>&1 || { cat "$work/$p.log" >&2; fail "eval --provider $p failed"; }
  end=$(date +%s.%N)
  awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", b - a }'
}
cuda=$(run cuda); grep -m1 "on cuda" "$work/cuda.log" || true
cpu=$(run cpu)
awk -v g="$cuda" -v c="$cpu" 'BEGIN { printf "gpu-check: cuda %.1f s, cpu %.1f s, speedup %.2fx\n", g, c, c / g }'
diff <(grep -v '^reports in' "$work/cuda.log" | grep -E 'exact|case') <(grep -v '^reports in' "$work/cpu.log" | grep -E 'exact|case') >/dev/null \
  && echo "gpu-check: same accuracies on both providers" || echo "gpu-check: WARNING accuracies differ between providers"
