#!/usr/bin/env bash
# gpu-train.sh: train on an NVIDIA GPU with the CPU build of TorchSharp and the CUDA libtorch of a PyTorch install.
#
# TorchSharp-cuda-linux is not on every package feed. TorchSharp 0.107 (built against libtorch 2.10) was seen to
# run forward, backward and Adamax steps on an H200 with PyTorch 2.11.0+cu130's torch/lib put first on the loader
# path (2026-11-26): the zoo's dngpu-bmul and dngpu-badd runs continued there at 6.9x and 3.0x the examples/s of
# one core of this project's 2-core CPU.
#
# Expects a self-contained build (no .NET SDK needed on the GPU machine):
#     dotnet publish tools/toolchain -c Release -r linux-x64 --self-contained -o out/toolchain
# Usage: tools/gpu-train.sh --task bmul --arch dngpu --out zoo/runs/dngpu-bmul --resume --minutes 30 [any train option]
# Environment: TOOLCHAIN_DIR (default out/toolchain), PYTHON (default python3: the one whose torch has CUDA).
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${TOOLCHAIN_DIR:-out/toolchain}
PYTHON=${PYTHON:-python3}
fail() { echo "gpu-train: $*" >&2; exit 2; }

[[ -x "$DIR/toolchain" ]] || fail "no self-contained toolchain in $DIR; build it first: dotnet publish tools/toolchain -c Release -r linux-x64 --self-contained -o $DIR"
torch_lib=$("$PYTHON" -c 'import torch, os; assert torch.cuda.is_available(), "torch sees no CUDA device"; print(os.path.join(os.path.dirname(torch.__file__), "lib"))' 2>&1 | tail -n 1) \
  || fail "no PyTorch with CUDA in $PYTHON ($torch_lib); install one (pip install torch) or set PYTHON"
site=$(dirname "$(dirname "$torch_lib")")
nv=$(find "$site/nvidia" -type d -name lib 2>/dev/null | paste -sd: -)
export LD_LIBRARY_PATH="$torch_lib${nv:+:$nv}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

# A copy of the build without its own (CPU) libtorch, so that every libtorch library comes from the same PyTorch.
view=${TMPDIR:-/tmp}/toolchain-cuda-$(id -u)
mkdir -p "$view"
for f in "$DIR"/*; do
  case "$(basename "$f")" in libtorch*.so|libc10*.so|libgomp*.so*|libshm.so) continue ;; esac
  [[ "$view/$(basename "$f")" -nt "$f" ]] || cp -r "$f" "$view/"
done
"$PYTHON" -c 'import torch; print("gpu-train: PyTorch", torch.__version__, "CUDA", torch.version.cuda, "on", torch.cuda.get_device_name(0))'
exec "$view/toolchain" train --device cuda "$@"
