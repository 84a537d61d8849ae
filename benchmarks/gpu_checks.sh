#!/usr/bin/env bash
# The GPU checks, as one prepared script for a CUDA machine:
# the whole test suite on the GPU, then the step-cost benchmark (CIFAR-shaped
# ResNet-18 at full width and the small CNN, fp32 plus bf16/fp16 rows), the Dataset path
# against the array fit, and the CIFAR benchmark on made-up files.
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
# The CIFAR benchmark's recipe (ResNet-18, crop and flip through the Dataset path, the
# learning-rate drop) end to end on made-up files in CIFAR's format (nothing is downloaded):
# one class split, 3 epochs (the learning rate drops after the second), every method;
# results.csv's train_s per method sizes a real run.
FAKE_CIFAR=$(mktemp -d)
python -c "import sys; sys.path.insert(0, 'tests'); from cifar_files import make_cifar10; \
make_cifar10(sys.argv[1], n=2000)" "$FAKE_CIFAR"
python -m skood benchmark --dataset cifar10 --data-home "$FAKE_CIFAR" --device cuda \
    --splits 1 --epochs 3 --n-aux 10000 --quiet --out "$OUT/cifar10_smoke" \
    2>&1 | tee "$OUT/cifar10_smoke.log"
