# gpu-env.sh: what the GPU measurement scripts (gpu-all.sh, gpu-check.sh, gpu-long.sh, gpu-train-speed.sh) share.
# Sourced, not run. Sets gpu_root (the repository), TOOLCHAIN, PYTHON and GPU_WORK, and defines:
#   gpu_fail MESSAGE         one line on stderr, exit 2 (bad setup)
#   gpu_need_toolchain       refuses to go on without an executable TOOLCHAIN
#   gpu_work                 makes GPU_WORK (default: a new temp folder) and prints nothing
#   gpu_cuda_env             puts the CUDA 13 + cuDNN 9 libraries on LD_LIBRARY_PATH for ONNX Runtime's CUDA provider:
#                            CUDA_LIB_DIRS (colon-separated folders) if set, else the lib folders of PYTHON's nvidia
#                            pip packages (the ones a CUDA PyTorch install brings) and torch/lib
#   gpu_cuda_check           prints why CUDA cannot run (no driver, no GPU, a missing library) and fails, or succeeds
# Environment: TOOLCHAIN (default out/toolchain/toolchain: `dotnet publish tools/toolchain -c Release -r linux-x64
# --self-contained -o out/toolchain`), PYTHON (default python3), GPU_WORK, CUDA_LIB_DIRS.

gpu_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TOOLCHAIN=${TOOLCHAIN:-$gpu_root/out/toolchain/toolchain}
PYTHON=${PYTHON:-python3}
GPU_SCRIPT=${GPU_SCRIPT:-gpu}

gpu_fail() { echo "$GPU_SCRIPT: error: $*" >&2; exit 2; }

gpu_need_toolchain() {
  [[ -x "$TOOLCHAIN" ]] || gpu_fail "no toolchain at $TOOLCHAIN; build the self-contained one first: dotnet publish tools/toolchain -c Release -r linux-x64 --self-contained -o out/toolchain (or set TOOLCHAIN)"
  command -v "$PYTHON" >/dev/null 2>&1 || gpu_fail "no $PYTHON (the reports are written by tools/gpu-report.py); install Python 3 or set PYTHON"
}

gpu_work() {
  if [[ -z "${GPU_WORK:-}" ]]; then GPU_WORK=$(mktemp -d "${TMPDIR:-/tmp}/gpu-measure.XXXXXX"); fi
  mkdir -p "$GPU_WORK" || gpu_fail "cannot make GPU_WORK folder $GPU_WORK"
  GPU_WORK=$(cd "$GPU_WORK" && pwd)
  export GPU_WORK
}

gpu_cuda_env() {
  if [[ -z "${CUDA_LIB_DIRS:-}" ]]; then
    # nvidia is a namespace package (no __file__): its folders are in __path__
    local dirs
    dirs=$("$PYTHON" - <<'EOF' 2>/dev/null
import os
found = []
try:
    import nvidia
    for root in nvidia.__path__:
        for base, subdirs, _ in os.walk(root):
            if base[len(root):].count(os.sep) > 3:
                subdirs[:] = []
            elif os.path.basename(base) == "lib":
                found.append(base)
except ImportError:
    pass
try:
    import torch
    found.append(os.path.join(os.path.dirname(torch.__file__), "lib"))
except ImportError:
    pass
print(":".join(sorted(set(found))))
EOF
)
    CUDA_LIB_DIRS=$dirs
  fi
  if [[ -n "${CUDA_LIB_DIRS:-}" ]]; then export LD_LIBRARY_PATH="${CUDA_LIB_DIRS}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"; fi
  export CUDA_LIB_DIRS
}

gpu_have_lib() {
  ldconfig -p 2>/dev/null | grep -q "$1" && return 0
  local d ds
  IFS=: read -ra ds <<< "${LD_LIBRARY_PATH:-}"
  for d in "${ds[@]}"; do compgen -G "$d/$1*" >/dev/null && return 0; done
  return 1
}

gpu_cuda_check() {
  command -v nvidia-smi >/dev/null 2>&1 || { echo "no nvidia-smi: this machine has no NVIDIA driver (CUDA missing); run it on a GPU machine, or use the CPU path (GPU_DRY_RUN=1)"; return 1; }
  nvidia-smi -L >/dev/null 2>&1 || { echo "nvidia-smi finds no GPU (CUDA missing)"; return 1; }
  local lib
  for lib in libcudart.so.13 libcublasLt.so.13 libcudnn.so.9; do
    gpu_have_lib "$lib" || { echo "CUDA missing: $lib not found in the loader cache or CUDA_LIB_DIRS/LD_LIBRARY_PATH (${CUDA_LIB_DIRS:-unset}); install CUDA 13 + cuDNN 9 (e.g. pip install torch with CUDA 13) or set CUDA_LIB_DIRS"; return 1; }
  done
  return 0
}

# seconds since the epoch, with fractions
gpu_now() { date +%s.%N; }
