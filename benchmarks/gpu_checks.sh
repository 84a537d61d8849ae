#!/usr/bin/env bash
# The GPU checks, as one prepared script for a CUDA machine:
# the whole test suite on the GPU, then the step-cost benchmark (CIFAR-shaped
# ResNet-18 at full width and the small CNN, fp32 plus bf16/fp16 rows).
# Usage: OUT=/some/folder bash benchmarks/gpu_checks.sh
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-results}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$OUT/gpu.txt"
python -m pytest --device cuda -q -p no:cacheprovider 2>&1 | tee "$OUT/tests_cuda.log"
python benchmarks/step_cost.py --device cuda --reps 30 --warmup 5 --out "$OUT/step_cost_cuda.md"
# The Dataset path (skood.data.ArrayDataset, no transform) against the array fit of the
# same CIFAR-shaped synthetic data: epoch-time ratio, in the main process and with 4 workers.
python benchmarks/dataset_cost.py --device cuda --shape 3 32 32 --model cnn --n 10000 \
    --epochs 3 --repeats 3 --batch-size 128 --out "$OUT/dataset_cost_cuda.md"
python benchmarks/dataset_cost.py --device cuda --shape 3 32 32 --model cnn --n 10000 \
    --epochs 3 --repeats 3 --batch-size 128 --num-workers 4 \
    --out "$OUT/dataset_cost_cuda_workers.md"
