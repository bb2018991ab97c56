#!/usr/bin/env bash
# The whole GPU check of minigrad in one run of at most about 5 minutes (docs/gpu.md):
#
#   OUT=/some/folder bash benchmarks/gpu_check.sh      # from anywhere; default OUT: benchmarks/results/gpu_check
#
# Needs a python3 with numpy, cupy, torch (with CUDA) and pytest (pytest-xdist, hypothesis and
# compute-sanitizer are used when present); installs nothing, needs no network. MNIST comes from
# the gzipped copy in device-data/MNIST/raw/*.gz (an ignored folder: make it and ship it as
# docs/gpu.md says). Steps, each under its own time limit and all under one deadline
# (GPU_CHECK_BUDGET seconds, default 285), output flushed line by line:
#   0. the machine: nvidia-smi, versions; CuPy must import, see a GPU, compile a kernel and
#      multiply two matrices, else the real error is printed and the check stops at once
#   1. unpack MNIST into a temporary folder
#   2. the fused kernels at awkward sizes with CuPy's memory pool off  -> junit_kernels.xml
#   3. benchmarks/bench_gpu.py: eager, fused, captured vs PyTorch eager  -> bench_gpu.json/.md
#   4. benchmarks/probe_cupy_calls.py: CPU and GPU cost of each call    -> probe_cupy.json/.md
#   5. examples/mnist.py --device cuda for 2 epochs
#   6. pytest -m cuda tests/ (all GPU tests)                            -> junit_cuda.xml
#   7. compute-sanitizer memcheck and racecheck on the kernel tests     -> sanitizer.log
# Everything printed also goes to $OUT/gpu_check.log: at most 8 files, all at the top of $OUT.
# Exit status: 0 when every step passed, 1 when one failed, 2 when CuPy cannot run.
# GPU_CHECK_DRY_RUN=1 goes on without CuPy (to try the script on a machine without a GPU).

set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/benchmarks/results/gpu_check}"
mkdir -p "$OUT"
if [ -z "${GPU_CHECK_LOGGING:-}" ]; then  # run again with the log kept; the pipe waits for tee
  GPU_CHECK_LOGGING=1 OUT="$OUT" bash "$0" "$@" 2>&1 | tee "$OUT/gpu_check.log"
  exit "${PIPESTATUS[0]}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
PYTHON="${PYTHON:-python3}"
BUDGET="${GPU_CHECK_BUDGET:-285}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX")"
failed=()

run() {  # run NAME SECONDS COMMAND...: time-limited (never past the deadline), logged, counted
  local name=$1 seconds=$2
  shift 2
  local left=$((BUDGET - SECONDS))
  [ "$seconds" -gt "$left" ] && seconds=$left
  echo
  if [ "$seconds" -lt 5 ]; then
    echo "== $name: SKIPPED, the ${BUDGET}s budget is spent"
    failed+=("$name (no time left)")
    return
  fi
  echo "== $name (limit ${seconds}s, ${SECONDS}s gone): $*"
  local began=$SECONDS
  # SIGINT first: pytest then still writes its summary and --junitxml for what ran.
  timeout -s INT --kill-after=8 "$seconds" "$@"
  local status=$?
  echo "== $name: exit $status after $((SECONDS - began))s$([ "$status" -eq 124 ] && echo ' (TIMED OUT)')"
  [ "$status" -eq 0 ] || failed+=("$name (exit $status)")
}

echo "== 0. machine ($(date -u +%FT%TZ), budget ${BUDGET}s, OUT=$OUT)"
timeout 15 nvidia-smi || echo "nvidia-smi failed or is missing (exit $?)"
if ! timeout 60 "$PYTHON" - <<'EOF'
import importlib, platform, sys, traceback
print("python", platform.python_version(), "at", sys.executable)
for name in ("numpy", "cupy", "torch", "pytest", "xdist", "hypothesis", "tqdm", "matplotlib"):
    try:
        print(f"  {name:11s}", getattr(importlib.import_module(name), "__version__", "present"))
    except Exception as error:
        print(f"  {name:11s} MISSING ({type(error).__name__}: {error})")
try:
    import torch
    print("  torch CUDA:", torch.cuda.is_available(), torch.version.cuda)
except Exception as error:
    print("  torch CUDA: unknown", error)
try:  # the real error, not mg.cuda.is_available()'s False
    import cupy
    runtime = cupy.cuda.runtime
    print("  CUDA runtime", runtime.runtimeGetVersion(), "driver", runtime.driverGetVersion(),
          "devices", runtime.getDeviceCount())
    print("  GPU:", runtime.getDeviceProperties(0)["name"].decode())
    kernel = cupy.RawKernel(r'extern "C" __global__ void one(float* x) { x[threadIdx.x] = 1; }',
                            "one")
    x = cupy.zeros(4, dtype=cupy.float32)
    kernel((1,), (4,), (x,))
    product = cupy.ones((3, 4), cupy.float32) @ cupy.ones((4, 2), cupy.float32)
    assert x.sum() == 4 and float(product[0, 0]) == 4, "a first kernel gave wrong numbers"
    import minigrad as mg
    print("  minigrad sees", mg.cuda.device_count(), "GPU(s); NVRTC, a RawKernel and cuBLAS work")
except Exception:
    print("CuPy cannot run here; the real error:", file=sys.stderr)
    traceback.print_exc()
    sys.exit(2)
EOF
then
  if [ "${GPU_CHECK_DRY_RUN:-}" != 1 ]; then
    echo
    echo "== gpu_check: STOPPED: CuPy cannot run on this machine (the error is above); nothing else ran"
    rm -rf "$WORK"
    exit 2
  fi
  echo "GPU_CHECK_DRY_RUN=1: going on without CuPy, to try the script's own steps"
  failed+=("CuPy cannot run (dry run)")
fi

echo
echo "== 1. MNIST"
DATA="$WORK/data"
mkdir -p "$DATA/MNIST/raw"
if ls device-data/MNIST/raw/*.gz >/dev/null 2>&1; then
  for file in device-data/MNIST/raw/*.gz; do
    gunzip -c "$file" > "$DATA/MNIST/raw/$(basename "$file" .gz)" || failed+=("unpack $file")
  done
  ls -l "$DATA/MNIST/raw"
else
  DATA=none
  echo "MNIST MISSING: no device-data/MNIST/raw/*.gz in the checkout (docs/gpu.md: make it and"
  echo "pass it in carry); the benchmark trains on SYNTHETIC data and the example is left out"
  failed+=("MNIST copy missing")
fi

# -p no:cacheprovider keeps the checkout clean; pytest-xdist when present.
PYTEST=("$PYTHON" -m pytest -p no:cacheprovider -q -rfE)
XDIST=()
"$PYTHON" -c "import xdist" 2>/dev/null && XDIST=(-n 8)
ignore=()
for package in hypothesis torchvision; do  # test files that import a missing optional package
  if ! "$PYTHON" -c "import $package" 2>/dev/null; then
    for file in $(grep -l -E "^(import|from) $package" tests/*.py); do ignore+=("--ignore=$file"); done
  fi
done

KERNEL_TESTS=(tests/test_cuda_fused.py tests/test_cuda_kernels.py tests/test_graphed_step.py)
MINIGRAD_NO_MEMORY_POOL=1 run "2. kernels at awkward sizes, no memory pool" 40 "${PYTEST[@]}" -m cuda \
  -x --junitxml="$OUT/junit_kernels.xml" "${KERNEL_TESTS[@]}"
run "3. benchmark" 95 "$PYTHON" benchmarks/bench_gpu.py --epochs 3 --out "$OUT" --data-root "$DATA"
run "4. probe of each call" 25 "$PYTHON" benchmarks/probe_cupy_calls.py --out "$OUT"
if [ "$DATA" != none ]; then
  SHIM=()
  if ! "$PYTHON" -c "import tqdm" 2>/dev/null; then  # the example's progress bar, not installed
    mkdir -p "$WORK/shim"
    printf 'class tqdm:\n    def __init__(self, *a, **k): pass\n    def __enter__(self): return self\n    def __exit__(self, *a): return False\n    def update(self, *a): pass\n    def set_postfix(self, *a, **k): pass\n' > "$WORK/shim/tqdm.py"
    SHIM=(env "PYTHONPATH=$PYTHONPATH:$WORK/shim")
    echo "note: tqdm is missing; the example runs with a silent stand-in"
  fi
  run "5. examples/mnist.py, 2 epochs" 40 "${SHIM[@]}" "$PYTHON" examples/mnist.py --device cuda \
    --epochs 2 --data-root "$DATA" --out "$WORK/mnist-run" --no-progress
fi
run "6. pytest -m cuda" 55 "${PYTEST[@]}" -m cuda "${XDIST[@]}" --junitxml="$OUT/junit_cuda.xml" \
  "${ignore[@]}" tests/

echo
SANITIZER="$(command -v compute-sanitizer || ls /usr/local/cuda*/bin/compute-sanitizer 2>/dev/null | head -1 || true)"
if [ -z "$SANITIZER" ]; then
  SANITIZER="$(find "$("$PYTHON" -c 'import site; print(site.getsitepackages()[0])')/nvidia" \
    -name compute-sanitizer -type f 2>/dev/null | head -1)"
fi
if [ -n "$SANITIZER" ]; then
  {  # MINIGRAD_SANITIZER=1: the small sizes only (the tools slow kernels down a lot)
    MINIGRAD_SANITIZER=1 MINIGRAD_NO_MEMORY_POOL=1 run "7a. memcheck" 25 "$SANITIZER" --tool memcheck --error-exitcode 3 \
      "${PYTEST[@]}" -m cuda -x "${KERNEL_TESTS[@]}"
    MINIGRAD_SANITIZER=1 run "7b. racecheck" 25 "$SANITIZER" --tool racecheck --error-exitcode 3 \
      "${PYTEST[@]}" -m cuda -x -k "cross_entropy or gemm" tests/test_cuda_fused.py
  } > "$OUT/sanitizer.log" 2>&1
  grep -E "^== |ERROR SUMMARY|passed|failed" "$OUT/sanitizer.log" | tail -20
else
  echo "== 7. compute-sanitizer: NOT FOUND (PATH, /usr/local/cuda*/bin, site-packages/nvidia); skipped"
fi

rm -rf "$WORK"
echo
echo "== files in $OUT: $(cd "$OUT" && ls | tr '\n' ' ')"
if [ ${#failed[@]} -eq 0 ]; then
  echo "== gpu_check: all steps passed in ${SECONDS}s"
else
  printf '== gpu_check: FAILED: %s\n' "${failed[@]}"
  exit 1
fi
