#!/usr/bin/env bash
# The GPU checks as one prepared script, sized for one device call: at most
# GPU_CHECKS_TOTAL_S seconds in all (default 470, under 8 minutes) and at most 6 files
# in $OUT. Its parts, the most valuable first, each under its own time limit; a part
# that fails or runs out of time does not stop the next:
#   setup         the machine's python3 and torch (never installed here: a CUDA build of
#                 torch is far larger than what can be carried), the wheels in .whl/
#                 installed into a temporary folder, skood from this checkout (PYTHONPATH),
#                 and the versions that pyproject.toml asks for
#   step_cost     benchmarks/step_cost.py at the paper's CIFAR batch (ResNet-18, ID batch
#                 64 + 128 outliers): energy-OE, GReg exact and fd, GReg+ exact and fd
#                 with the graphed k-means, bf16, the sampler, the paper's step
#   fd_precision  benchmarks/fd_precision.py: the penalty under bf16/fp16 (and on CUDA
#                 under TF32 convolutions) against float32
#   tests         the tests that take the device fixture (pytest --device-only), not slow
#   outlier_stream benchmarks/outlier_stream.py: the wait per step for GReg+'s pool of 384
#                 augmented CIFAR-sized outliers of a Dataset, in-process against workers
#   cifar_smoke   `skood benchmark --dataset cifar10` on made-up files in CIFAR's format
# Exits with 1 when a part failed, ran out of time or could not run, else 0.
# Files in $OUT: summary.md (one row per part: status, seconds, last line of output),
# log.txt (everything the parts printed), step_cost.md, fd_precision.md, cifar_smoke.md.
#
# Usage: OUT=folder bash benchmarks/gpu_checks.sh [--device cuda|cpu] [--tiny]
#   --device cpu --tiny   a rehearsal on the CPU with tiny sizes (tests/test_gpu_checks.py)
# Environment: PYTHON (default: $VIRTUAL_ENV/bin/python if set, else python3);
#   GPU_CHECKS_TOTAL_S (the limit of the whole run); GPU_CHECKS_SKIP="part ...";
#   GPU_CHECKS_LIMIT_<part>=seconds (one part's limit, e.g. GPU_CHECKS_LIMIT_tests=200).
set -u -o pipefail   # no -e: every part runs whatever the one before did
cd "$(dirname "$0")/.."

DEVICE=cuda
TINY=0
while [ $# -gt 0 ]; do
    case "$1" in
        --device) DEVICE=${2:?--device needs a value, cuda or cpu}; shift 2 ;;
        --tiny) TINY=1; shift ;;
        -h|--help) sed -n '2,/^$/s/^# \{0,1\}//p' "$0"; exit 0 ;;
        *) echo "gpu_checks.sh: unknown option '$1'; use --device cuda|cpu and --tiny" >&2
           exit 2 ;;
    esac
done
if [ -n "${PYTHON:-}" ]; then PY=$PYTHON
elif [ -n "${VIRTUAL_ENV:-}" ] && [ -x "$VIRTUAL_ENV/bin/python" ]; then PY=$VIRTUAL_ENV/bin/python
else PY=python3; fi
OUT=${OUT:-gpu-results}
mkdir -p "$OUT"
TOTAL_S=${GPU_CHECKS_TOTAL_S:-470}
START=$(date +%s.%N)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
LOG=$OUT/log.txt
: > "$LOG"
: > "$WORK/rows"
ENVIRONMENT="(setup did not finish)"
READY=0
FAILED=0
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1

elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

write_summary() {
    {
        echo "# GPU checks"
        echo
        echo "command: OUT=$OUT bash benchmarks/gpu_checks.sh --device $DEVICE$([ "$TINY" = 1 ] && echo " --tiny")"
        echo "environment: $ENVIRONMENT"
        echo "time limit: ${TOTAL_S} s; elapsed: $(elapsed "$START") s"
        echo
        echo "| part | status | seconds | last line of its output |"
        echo "|---|---|---:|---|"
        cat "$WORK/rows"
    } > "$OUT/summary.md"
}

row() {   # part, status, seconds, note
    local note=${4//|/\\|}
    echo "| $1 | $2 | $3 | ${note:0:160} |" >> "$WORK/rows"
    write_summary
}

skipped_by_request() { [[ " ${GPU_CHECKS_SKIP:-} " == *" $1 "* ]]; }

# run_part PART LIMIT_S COMMAND...: the command under `timeout`, its output in the log;
# the limit is cut to what is left of the whole run's time.
run_part() {
    local part=$1 limit=$2
    shift 2
    if skipped_by_request "$part"; then row "$part" "skipped (GPU_CHECKS_SKIP)" 0 ""; return; fi
    if [ "$part" != setup ] && [ "$READY" != 1 ]; then
        row "$part" "skipped (setup failed)" 0 ""; return
    fi
    local override=GPU_CHECKS_LIMIT_$part
    limit=${!override:-$limit}
    local left
    left=$(awk -v t="$TOTAL_S" -v e="$(elapsed "$START")" 'BEGIN { printf "%d", t - e - 5 }')
    if [ "$left" -lt 5 ]; then FAILED=1; row "$part" "skipped (out of time)" 0 ""; return; fi
    limit=$(awk -v a="$limit" -v b="$left" 'BEGIN { print (a < b) ? a : b }')
    echo "=== $part (limit ${limit} s): $*" >> "$LOG"
    local t0 rc status
    t0=$(date +%s.%N)
    timeout --kill-after=10 "$limit" "$@" > "$WORK/$part.out" 2> "$WORK/$part.err"
    rc=$?
    cat "$WORK/$part.out" "$WORK/$part.err" >> "$LOG"
    case $rc in
        0) status=ok ;;
        124|137) status="timeout (${limit} s)"; FAILED=1 ;;
        *) status="failed (exit $rc)"; FAILED=1 ;;
    esac
    # the last line of its output: of stdout if it succeeded, of stderr (the error) if not
    local first=$WORK/$part.out second=$WORK/$part.err note
    [ "$rc" = 0 ] || { first=$WORK/$part.err; second=$WORK/$part.out; }
    note=$(grep -v '^[[:space:]]*$' "$first" | tail -n 1)
    [ -n "$note" ] || note=$(grep -v '^[[:space:]]*$' "$second" | tail -n 1)
    row "$part" "$status" "$(elapsed "$t0")" "$note"
    return $rc
}

write_summary

# -- setup ---------------------------------------------------------------------------------
setup() {
    local wheel
    for wheel in .whl/*.whl; do
        [ -f "$wheel" ] || continue
        # one by one: a wheel built for another python (a rehearsal here) is left out
        if "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
                --upgrade --target "$WORK/site" "$wheel"; then
            echo "installed $wheel"
        else
            echo "left out $wheel: pip cannot install it for $PY"
        fi
    done
    "$PY" - "$DEVICE" <<'EOF'
import importlib.metadata
import sys
import tomllib

try:
    import torch
except ImportError:
    sys.exit(f"no torch for {sys.executable}: this script uses the machine's own torch (a "
             "CUDA build is too large to carry with the checkout); point PYTHON at a python "
             "that has torch.")
from packaging.requirements import Requirement

device = sys.argv[1]
with open("pyproject.toml", "rb") as f:
    wanted = [Requirement(r) for r in tomllib.load(f)["project"]["dependencies"]]
problems = []
for requirement in wanted:
    try:
        version = importlib.metadata.version(requirement.name)
    except importlib.metadata.PackageNotFoundError:
        problems.append(f"{requirement.name} is missing")
        continue
    if not requirement.specifier.contains(version, prereleases=True):
        problems.append(f"{requirement.name} {version} does not meet {requirement}")
if problems:
    sys.exit("; ".join(problems) + ". Carry the wheels in .whl/ (see docs/gpu.md).")
if device.startswith("cuda") and not torch.cuda.is_available():
    sys.exit(f"--device {device}, but torch {torch.__version__} sees no CUDA device.")
import skood  # noqa: E402  (from this checkout, through PYTHONPATH)

import skorch  # noqa: E402
import sklearn  # noqa: E402

gpu = torch.cuda.get_device_name(device) if device.startswith("cuda") else "no GPU used"
print(f"python {sys.version.split()[0]}, torch {torch.__version__}; skorch {skorch.__version__} "
      f"and scikit-learn {sklearn.__version__} from {skorch.__file__.rsplit('/', 2)[0]} and "
      f"{sklearn.__file__.rsplit('/', 2)[0]}; skood from {skood.__file__.rsplit('/', 2)[0]}; "
      f"{gpu}")
EOF
}
export -f setup
export PY DEVICE WORK
export PYTHONPATH=$PWD:$WORK/site   # skood from this checkout, then the carried wheels
if run_part setup 90 bash -c setup; then
    READY=1
    ENVIRONMENT=$(grep -v '^[[:space:]]*$' "$WORK/setup.out" | tail -n 1)
    write_summary
fi
[ "$DEVICE" = cuda ] && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv \
    >> "$LOG" 2>&1

# -- the parts, most valuable first ------------------------------------------------------------
if [ "$TINY" = 1 ]; then
    STEP_ARGS=(--models resnet18 --resnet-width 8 --batch 8 --pool-factor 2 --reps 2 --warmup 1)
    FD_ARGS=(--size 8 --epochs 1 --batches 1)
    TEST_ARGS=(tests/test_penalty_modes.py -k "fd_penalty_matches_exact or meta_device")
    STREAM_ARGS=(--n 400 --pool 32 --steps 3 --warmup 1 --repeats 1 --workers 1 --step-ms 1)
    CIFAR_N=40
    CIFAR_ARGS=(--model cnn --epochs 1 --n-aux 64 --n-ood 20 --batch-size 16
                --methods energy_oe greg_plus)
else
    STEP_ARGS=(--models resnet18 --batch 64 --reps 15 --warmup 3)
    FD_ARGS=(--batches 8)
    # test_dask.py is left out: a local Dask cluster of worker processes, the slowest
    # device test here, and no device path of its own
    TEST_ARGS=(tests --ignore=tests/test_dask.py)
    STREAM_ARGS=(--workers 4 --steps 20 --warmup 3 --repeats 3)
    CIFAR_N=1000
    CIFAR_ARGS=(--epochs 3 --n-aux 5000)
fi

run_part step_cost 200 "$PY" benchmarks/step_cost.py --device "$DEVICE" "${STEP_ARGS[@]}" \
    --amp bf16 --fractions --no-fits --out "$WORK/step_cost.md" --variants energy_oe \
    greg_exact greg_fd greg_plus_exact greg_plus_fd greg_exact_bf16 greg_fd_bf16 sampler \
    sampler_eager kmeans kmeans_graphed paper_step bare_energy_oe bare_fd
[ -f "$WORK/step_cost.md" ] && cp "$WORK/step_cost.md" "$OUT/step_cost.md"

run_part fd_precision 60 "$PY" benchmarks/fd_precision.py --device "$DEVICE" "${FD_ARGS[@]}"
[ -s "$WORK/fd_precision.out" ] && cp "$WORK/fd_precision.out" "$OUT/fd_precision.md"

run_part tests 180 "$PY" -m pytest --device "$DEVICE" --device-only -m "not slow" -q \
    -p no:cacheprovider "${TEST_ARGS[@]}"

run_part outlier_stream 30 "$PY" benchmarks/outlier_stream.py --device "$DEVICE" \
    "${STREAM_ARGS[@]}"

cifar_smoke() {
    "$PY" -c "import sys; sys.path.insert(0, 'tests'); from cifar_files import make_cifar10; \
make_cifar10(sys.argv[1], n=int(sys.argv[2]))" "$WORK/cifar" "$1" || return
    shift
    "$PY" -m skood benchmark --dataset cifar10 --data-home "$WORK/cifar" --device "$DEVICE" \
        --splits 1 --quiet --out "$WORK/cifar_out" "$@"
}
export -f cifar_smoke
run_part cifar_smoke 150 bash -c 'cifar_smoke "$@"' _ "$CIFAR_N" "${CIFAR_ARGS[@]}"
[ -f "$WORK/cifar_out/results.md" ] && cp "$WORK/cifar_out/results.md" "$OUT/cifar_smoke.md"

write_summary
cat "$OUT/summary.md"
exit "$FAILED"   # 1 when a part failed, ran out of time or could not run
