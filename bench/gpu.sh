#!/usr/bin/env bash
# One prepared benchmark run for a lent H100/H200 (see ../shared/GPU.md and bench/README.md).
#
# Prepare once, here, in the project root (the device machine has no network):
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#     --implementation cp --platform manylinux_2_28_x86_64 -d .whl \
#     array-api-compat array-api-strict
# then run it through the device tool: command "bash bench/gpu.sh", carry [".whl"],
# timeout_s 560, and copy gpu.json, gpu.png, bench.txt (as gpu.txt), tests.txt (as
# gpu-tests.txt) and portable.txt (as gpu-portable.txt) into bench/results/.
#
# What it does, in at most 9 minutes (each stage has its own time limit and writes its
# output under $OUT as it goes): installs the carried wheels and nnx (src/nnx with
# backends/ as nnx.backends, as a wheel would lay it out) into a scratch site; records
# the card; runs every cupy and torch (CUDA) case of the test suite on the card (the fast
# paths against the portable ops among them); runs `nnx bench` for CuPy and torch (CUDA)
# with a wide MLP that fills the card, settle 0 (no CPU thread pools to wait out); then
# the XOR step once more with NNX_OPS=portable, to show what the fused kernels save.
# Without a CUDA device it says so and runs the quick CPU suite instead, so it can be
# tried here.
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

# At most 8 files come back from the device tool: the card, versions and progress all go
# into log.txt; then tests.txt, bench.txt, gpu.json, gpu.png, portable.txt, gpu-portable.json.
$PY - <<'EOF' 2>&1 | tee -a "$OUT/log.txt"
import nnx, platform
print("nnx from", nnx.__file__, "| python", platform.python_version())
print("usable backends:", nnx.available_backends())
for name in nnx.available_backends():
    b = nnx.backends.load(name)
    print(f"  {name}: {b.library_version()} on {b.device_name()} ({b.ops.kind} ops)")
print("cupy:", nnx.backends.why_unavailable("cupy") or "usable")
EOF
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv \
    >> "$OUT/log.txt" 2>&1 || echo "no nvidia-smi" >> "$OUT/log.txt"

if ! $PY -c "import sys, nnx; sys.exit(0 if 'cupy' in nnx.available_backends() else 1)"; then
    log "no CUDA device answers to cupy: GPU figures cannot be measured here"
    log "running the quick CPU suite instead, to check the pipeline"
    $PY -m nnx.benchmark --quick --out "$OUT" --name quick-cpu 2>&1 | tee "$OUT/bench.txt"
    exit 0
fi

log "test suite on the card: every cupy and torch (CUDA) case"
timeout 200 $PY -m pytest tests -q -k "cupy or torch" -p no:cacheprovider -rfE --tb=short \
    > "$OUT/tests.txt" 2>&1
log "tests: $(tail -1 "$OUT/tests.txt")"

log "benchmark: cupy and torch (CUDA), wide MLP 4096-4096-4096-10 x 4096"
timeout 240 $PY -m nnx.benchmark --backends cupy,torch --settle 0 \
    --sizes 4096,4096,4096,10 --batch 4096 --widths 1024,2048,4096,8192 \
    --batches 256,1024,8192 --sweep-width 4096 --dense 4096,4096,4096 --rounds 15 \
    --out "$OUT" --name gpu > "$OUT/bench.txt" 2>> "$OUT/log.txt"
log "benchmark exit status $?"

log "the XOR step with the portable ops alone (NNX_OPS=portable): launches and time"
NNX_OPS=portable timeout 60 $PY -m nnx.benchmark --backends cupy --settle 0 \
    --sizes 784,512,512,10 --batch 256 --widths 512 --batches 256 --sweep-width 512 \
    --dense 512,512,256 --rounds 7 --no-plot --out "$OUT" --name gpu-portable \
    > "$OUT/portable.txt" 2>> "$OUT/log.txt"
log "done: $(ls "$OUT" | tr '\n' ' ')"
cat "$OUT/bench.txt"
grep -A3 "kernel launches" "$OUT/portable.txt"
grep -E "passed|failed|error" "$OUT/tests.txt" | tail -5
