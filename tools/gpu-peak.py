#!/usr/bin/env python3
"""gpu-peak.py: the GPU's float32 peak as tools/gpu-long.sh divides by, measured with PyTorch.

A large float32 matrix product with TF32 off (torch.backends.cuda.matmul.allow_tf32 = False, and cuDNN's too):
2 x n^3 FLOPs per product, the mean of REPS timed products after WARMUP untimed ones. Also times the same product
with TF32 allowed, for reference: ONNX Runtime's CUDA provider may use TF32 in convolutions (its use_tf32 option),
so a fraction of the float32 peak above 100% would say that. Prints one JSON object.
Usage: python3 tools/gpu-peak.py [n]   (default 8192)
"""
import json
import sys
import time

import torch

N = int(sys.argv[1]) if len(sys.argv) > 1 else 8192
WARMUP, REPS = 3, 10


def gflops(tf32: bool) -> float:
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    a = torch.randn(N, N, device="cuda", dtype=torch.float32)
    b = torch.randn(N, N, device="cuda", dtype=torch.float32)
    for _ in range(WARMUP):
        a @ b
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(REPS):
        a @ b
    torch.cuda.synchronize()
    seconds = (time.perf_counter() - t) / REPS
    return 2 * N**3 / seconds / 1e9


if not torch.cuda.is_available():
    sys.exit("gpu-peak: PyTorch sees no CUDA device")
strict = gflops(tf32=False)
tf32 = gflops(tf32=True)
torch.backends.cuda.matmul.allow_tf32 = False
print(json.dumps({
    "gflops": round(strict, 1),
    "tf32_gflops": round(tf32, 1),
    "source": f"PyTorch {torch.__version__} float32 matmul {N}x{N}, TF32 off, mean of {REPS} after {WARMUP} warm-ups, on {torch.cuda.get_device_name(0)}",
}))
