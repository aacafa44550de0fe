#!/usr/bin/env bash
# gpu-all.sh: the whole GPU measurement of issue 17 (part 3) in one short run, for reports/bench/gpu.md.
#   1. tools/gpu-check.sh        ONNX Runtime CUDA against CPU on zoo models at 1x, 10x, 100x: the same verdict on
#                                every example, and tokens/s both ways
#   2. tools/gpu-long.sh         dngpu-badd at 1000x (40,001 tokens) on CUDA: seconds per example, GFLOP/s and the
#                                fraction of the float32 peak, the Loop against chunks and IO binding
#   3. tools/gpu-train-speed.sh  training on CUDA, one seed against 16 packed seeds: examples/s (goal >= 8x)
# Each piece runs under its own time limit; a failed or stopped piece is recorded and the next one runs. The whole run
# takes at most about 8.6 minutes (CHECK_CAP + LONG_CAP + TRAIN_CAP: 180 + 160 + 175 s, plus a few seconds for the
# machine's description and the archive); expected about 5 (each piece's own budgets end it before its cap).
#
# On a GPU machine (CUDA 13 with cuDNN 9, e.g. the nvidia pip packages of a CUDA 13 PyTorch; no .NET needed):
#     dotnet publish tools/toolchain -c Release -r linux-x64 --self-contained -o out/toolchain   # where .NET is
#     # copy the repository with out/toolchain to the GPU machine, then there:
#     tools/gpu-all.sh                    # writes gpu.md, gpu-raw.tar.gz and gpu-all.log into $OUT (or GPU_OUT)
#     cp "$OUT/gpu.md" reports/bench/gpu.md
# On any machine, the CPU path with tiny sizes (what the tests run): GPU_DRY_RUN=1 tools/gpu-all.sh
#
# Environment: TOOLCHAIN (default out/toolchain/toolchain), PYTHON (default python3, the one with PyTorch on the GPU
#   machine), GPU_OUT (where the three result files go; default $OUT, else a new temp folder), GPU_WORK (the raw runs;
#   default a new temp folder, removed at the end unless GPU_KEEP_WORK=1), GPU_DRY_RUN=1 or DEVICE=cpu (the CPU path),
#   CHECK_CAP, LONG_CAP, TRAIN_CAP (seconds per piece), and every setting of the pieces (see their headers).
# GPU_OUT receives three files only (a device machine returns few files, flat): gpu.md (to commit as
# reports/bench/gpu.md), gpu-raw.tar.gz (every run's results, verdicts, metrics and logs) and gpu-all.log.
# Exit code: 0 every piece passed, 1 a piece failed, missed its goal or was not measured, 2 bad setup.
set -uo pipefail
GPU_SCRIPT=gpu-all
source "$(dirname "$0")/gpu-env.sh"
cd "$gpu_root"

dry=0
if [[ ${GPU_DRY_RUN:-0} == 1 || ${DEVICE:-} == cpu ]]; then dry=1; fi
if (( dry )); then
  # the CPU path: both providers on the CPU, one small model, short levels and tiny training; every step still runs
  export PROVIDER_A=${PROVIDER_A:-cpu} PROVIDER_B=${PROVIDER_B:-cpu} PROVIDER=${PROVIDER:-cpu} DEVICE=cpu
  export CHECK_MODELS=${CHECK_MODELS:-models/dngpu-badd.onnx} LEVELS=${LEVELS:-1x,10x} BUDGET_MINUTES=${BUDGET_MINUTES:-0}
  export LONG_MULTIPLE=${LONG_MULTIPLE:-10} LONG_VARIANTS=${LONG_VARIANTS:-loop chunk16 iobinding}
  export TRAIN_STEPS=${TRAIN_STEPS:-5} TRAIN_SEEDS=${TRAIN_SEEDS:-4}
fi
CHECK_CAP=${CHECK_CAP:-180}
LONG_CAP=${LONG_CAP:-160}
TRAIN_CAP=${TRAIN_CAP:-175}
gpu_need_toolchain

GPU_OUT=${GPU_OUT:-${OUT:-}}
if [[ -z $GPU_OUT ]]; then GPU_OUT=$(mktemp -d "${TMPDIR:-/tmp}/gpu-out.XXXXXX"); fi
mkdir -p "$GPU_OUT" || gpu_fail "cannot make the output folder $GPU_OUT"
keep=${GPU_KEEP_WORK:-0}
if [[ -n ${GPU_WORK:-} ]]; then keep=1; fi
gpu_work
mkdir -p "$GPU_WORK/logs"
log=$GPU_OUT/gpu-all.log
: > "$log"
say() { echo "gpu-all: $*" | tee -a "$log"; }
say "raw runs in $GPU_WORK; results into $GPU_OUT$( ((dry)) && echo ' (CPU dry run)')"

# --- the machine ---
{
  echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
  if (( dry )); then echo "mode=dry run on the CPU path (GPU_DRY_RUN=1): tiny sizes, no GPU"; else echo "mode=GPU"; fi
  if command -v nvidia-smi >/dev/null 2>&1; then
    echo "gpu=$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | head -n 1 | sed 's/, / (/; s/, /, driver /; s/$/)/')"
    echo "cuda=$(nvidia-smi 2>/dev/null | grep -o 'CUDA Version: [0-9.]*' | head -n 1)"
  else
    echo "gpu=none (no nvidia-smi)"
  fi
  echo "cpu=$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2 | sed 's/^ *//'), $(nproc) logical cores, load $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)"
  echo "memory=$(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo 2>/dev/null)"
  echo "os=$(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME"), kernel $(uname -r)"
  echo "python=$("$PYTHON" -c 'import sys
try:
    import torch; t = "PyTorch %s (CUDA %s)" % (torch.__version__, torch.version.cuda)
except ImportError:
    t = "no PyTorch"
print("Python %s, %s" % (sys.version.split()[0], t))' 2>/dev/null)"
  echo "toolchain=$("$TOOLCHAIN" --version 2>/dev/null | head -n 1) ($TOOLCHAIN)"
  deps=$(dirname "$TOOLCHAIN")/toolchain.deps.json
  if [[ -f $deps ]]; then
    echo "onnxruntime=$(grep -o '"Microsoft.ML.OnnxRuntime[A-Za-z.]*/[0-9.]*"' "$deps" | head -n 1 | tr -d '"')"
    echo "torchsharp=$(grep -o '"TorchSharp[A-Za-z.-]*/[0-9.]*"' "$deps" | head -n 1 | tr -d '"')"
  fi
} > "$GPU_WORK/machine.txt"

# --- the pieces, each under its cap; a failure is recorded and the next piece runs ---
piece() { # name, cap, script
  local name=$1 cap=$2 script=$3 rc start
  start=$(gpu_now)
  say "$name: $script (at most $cap s) ..."
  GPU_WORK=$GPU_WORK timeout -k 15 "$cap" bash "$script" > "$GPU_WORK/logs/$name.log" 2>&1
  rc=$?
  echo "$rc" > "$GPU_WORK/$name.rc"
  say "$name: exit $rc after $(awk -v s="$start" -v e="$(gpu_now)" 'BEGIN { printf "%.0f", e - s }') s$( ((rc == 124 || rc == 137)) && echo ' (stopped by its time limit)')"
  grep -E '^(gpu-[a-z-]+: |\*\*(PASS|FAIL|MISS)\*\*|- \*\*(PASS|FAIL)\*\*|Fastest|Decision)' "$GPU_WORK/logs/$name.log" | sed 's/^/    /' | tee -a "$log"
}
piece check "$CHECK_CAP" tools/gpu-check.sh
piece long "$LONG_CAP" tools/gpu-long.sh
piece train "$TRAIN_CAP" tools/gpu-train-speed.sh

# --- gpu.md and the raw files ---
"$PYTHON" tools/gpu-report.py all "$GPU_WORK" > "$GPU_WORK/gpu.md"
rc=$?
cp "$GPU_WORK/gpu.md" "$GPU_OUT/gpu.md"
# the raw runs, without the bulky and derivable files (HTML reports, checkpoints)
(cd "$GPU_WORK" && tar -czf "$GPU_OUT/gpu-raw.tar.gz" --exclude='*.tckpt' --exclude='index.html' --exclude='.toolchain.lock' .) \
  || say "could not pack the raw runs into $GPU_OUT/gpu-raw.tar.gz"
say "wrote $GPU_OUT/gpu.md, $GPU_OUT/gpu-raw.tar.gz and $GPU_OUT/gpu-all.log; exit $rc"
if (( ! keep )); then rm -rf "${GPU_WORK:?}"; fi
exit $rc
