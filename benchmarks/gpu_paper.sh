#!/usr/bin/env bash
# The `paper` preset on one GPU: Swin-B, 2 x 224 + 6 x 96 crops, batch 64, bf16, synthetic uint8 input.
# NOT YET RUN: no GPU was lent to the session that wrote it (see BENCHMARKS.md).
#
#   bash benchmarks/gpu_paper.sh [PEAK_TFLOPS]        # default 989 = H100 SXM dense bf16 (H200: also 989; A100: 312)
#   PYTHON=/path/to/python bash benchmarks/gpu_paper.sh 989
#
# One interleaved run (2 warm-up rounds, where torch.compile compiles, then 3 timed rounds) of:
#   floor (Swin-B student fwd+bwd, teacher fwd) | floor+adamw+ema | dino/paper | midol/paper | views | loop
#                                                                                          -> the same ratios as on CPU
#   midol/paper+fused+compile (fused AdamW, torch.compile of both backbones)               -> step before/after
#   loop+sync_every=10 (host syncs of check_finite/log_values deferred to every 10 steps)   -> loop before/after
#   loop+fused+compile+sync_every=10                                                       -> all three together
# = 9 configurations x 5 rounds (~40 steps of batch 64), then FLOPs per image (FlopCounterMode), MFU against
# PEAK_TFLOPS, per-configuration CUDA peak memory, the host-synchronisation sites of one step and one loop
# iteration (torch.cuda.set_sync_debug_mode), and the L_cst / Sinkhorn scaling study on the GPU.
# Expect ~3-6 minutes on an H100 (most of it compiling). If memory runs out, add --batch-size 32.
set -euo pipefail
cd "$(dirname "$0")/.."
PEAK=${1:-989}
PY=${PYTHON:-python}
"$PY" -c "import torch; assert torch.cuda.is_available(), 'torch sees no GPU'; print(torch.__version__, torch.cuda.get_device_name(0))"
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,power.limit --format=csv 2>/dev/null || true
"$PY" -m midol.bench --preset paper --device cuda --variants dino,midol --fidelities paper \
    --repeats 3 --warmup 2 --optimize True --peak-tflops "$PEAK" --scaling-sizes 64,128,256,512,1024 \
    --out benchmarks/gpu_paper.json "$@" 2>&1 | tee benchmarks/gpu_paper.txt
