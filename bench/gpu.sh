#!/usr/bin/env bash
# One prepared benchmark run for a lent H100/H200 (see ../shared/GPU.md and bench/README.md).
#
# Prepare once, here, in the project root (the device machine has no network):
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#     --implementation cp --platform manylinux_2_28_x86_64 -d .whl \
#     array-api-compat array-api-strict
# then run it through the device tool: command "bash bench/gpu.sh", carry [".whl"],
# timeout_s 540, and copy $OUT/gpu.json, gpu.png and bench.txt into bench/results/.
#
# What it does, in about 4 minutes: installs the carried wheels and nnx (src/nnx with
# backends/ as nnx.backends, as a wheel would lay it out) into a scratch site; records
# the card; checks the CuPy fast paths against the portable ops ON the card; then runs
# `nnx bench` for CuPy and torch (CUDA) with a wide MLP that fills the card. Without a
# CUDA device it says so and runs the quick CPU suite instead, so it can be tried here.
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-bench/results/gpu-run}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
log() { echo "[gpu.sh $(date +%H:%M:%S)] $*" | tee -a "$OUT/log.txt"; }

SITE=$(mktemp -d)
trap 'rm -rf "$SITE"' EXIT
if compgen -G ".whl/*.whl" > /dev/null; then
    $PY -m pip install -q --no-index --no-deps --target "$SITE" .whl/*.whl || exit 1
fi
mkdir -p "$SITE/nnx"
cp -r src/nnx/. "$SITE/nnx/"
rm -rf "$SITE/nnx/backends"
cp -r backends "$SITE/nnx/backends"
export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
export MPLBACKEND=Agg
export NVIDIA_TF32_OVERRIDE=0          # full float32 products in every library (no TF32)
export CUPY_TF32=0
export XLA_PYTHON_CLIENT_PREALLOCATE=false

$PY - <<'EOF' 2>&1 | tee "$OUT/versions.txt"
import nnx, platform
print("nnx from", nnx.__file__, "| python", platform.python_version())
print("usable backends:", nnx.available_backends())
for name in nnx.available_backends():
    b = nnx.backends.load(name)
    print(f"  {name}: {b.library_version()} on {b.device_name()} ({b.ops.kind} ops)")
print("cupy:", nnx.backends.why_unavailable("cupy") or "usable")
EOF
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv \
    > "$OUT/nvidia-smi.txt" 2>&1 || echo "no nvidia-smi" > "$OUT/nvidia-smi.txt"

if ! $PY -c "import sys, nnx; sys.exit(0 if 'cupy' in nnx.available_backends() else 1)"; then
    log "no CUDA device answers to cupy: GPU figures cannot be measured here"
    log "running the quick CPU suite instead, to check the pipeline"
    $PY -m nnx.benchmark --quick --out "$OUT" --name quick-cpu 2>&1 | tee "$OUT/bench.txt"
    exit 0
fi

log "fast paths and benchmark code on the card (cupy cases only)"
timeout 120 $PY -m pytest tests/test_fastpaths.py tests/test_benchmark.py -q -k cupy \
    -p no:cacheprovider 2>&1 | tail -15 | tee "$OUT/tests.txt"

log "benchmark: cupy and torch (CUDA), wide MLP 4096-4096-4096-10 x 4096"
timeout 330 $PY -m nnx.benchmark --backends cupy,torch \
    --sizes 4096,4096,4096,10 --batch 4096 --widths 1024,2048,4096,8192 \
    --batches 256,1024,8192 --sweep-width 4096 --dense 4096,4096,4096 --rounds 15 \
    --out "$OUT" --name gpu 2>&1 | tee "$OUT/bench.txt"
log "done: $(ls "$OUT" | tr '\n' ' ')"
