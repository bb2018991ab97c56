#!/usr/bin/env bash
# The whole GPU check of minigrad, for a machine with a GPU, in at most about 5 minutes:
#
#   bash benchmarks/gpu_check.sh            # from the repository root (or anywhere)
#
# Needs a python3 with numpy, cupy, torch (with CUDA) and pytest; installs nothing and needs no
# network (hypothesis and torchvision are optional: test files that import them are left out when
# they are missing). Steps, each with its own time limit:
#   1. the machine: nvidia-smi, versions, mg.cuda.is_available()
#   2. pytest -m cuda tests/: every test that runs on the GPU (ops, engine, nn, optim, kernels)
#   3. the kernel and seam tests that need no GPU (nvcc compile, CPU emulation, fake CuPy)
#   4. benchmarks/bench_gpu.py: epoch times against PyTorch eager on the same GPU
# Everything printed goes to $OUT/gpu_check.log; bench_gpu.json and bench_gpu.md go to $OUT too
# (default $OUT: benchmarks/results/gpu_check). Exit status 0 only when every step passed.
# MNIST is read from $MINIGRAD_DATA_ROOT, ../shared/datasets or ./shared/datasets; without it
# the benchmark trains on synthetic data and says so.

set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PYTHON="${PYTHON:-python3}"
OUT="${OUT:-$PWD/benchmarks/results/gpu_check}"
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu_check.log") 2>&1

if [ -z "${MINIGRAD_DATA_ROOT:-}" ]; then
  for root in "$PWD/../shared/datasets" "$PWD/shared/datasets"; do
    if [ -f "$root/MNIST/raw/train-images-idx3-ubyte" ]; then export MINIGRAD_DATA_ROOT="$root"; break; fi
  done
fi

failed=()
run() {  # run NAME SECONDS COMMAND...: time-limited, logged, and remembered when it fails
  local name=$1 seconds=$2
  shift 2
  echo
  echo "== $name (limit ${seconds}s): $*"
  local began=$SECONDS
  timeout --kill-after=10 "$seconds" "$@"
  local status=$?
  echo "== $name: exit $status after $((SECONDS - began))s"
  [ "$status" -eq 0 ] || failed+=("$name (exit $status)")
}

echo "== machine"
nvidia-smi || echo "nvidia-smi failed"
"$PYTHON" - <<'EOF'
import importlib, os, sys
print("python", sys.version.split()[0], "at", sys.executable)
for name in ("numpy", "cupy", "torch", "pytest", "hypothesis", "torchvision"):
    try:
        print(f"{name:12s}", importlib.import_module(name).__version__)
    except Exception as error:
        print(f"{name:12s} MISSING ({type(error).__name__}: {error})")
import minigrad as mg
print("mg.cuda.is_available():", mg.cuda.is_available(), "devices:", mg.cuda.device_count())
print("MNIST:", os.environ.get("MINIGRAD_DATA_ROOT", "not found (synthetic data)"))
EOF

ignore=()
for package in hypothesis torchvision; do
  if ! "$PYTHON" -c "import $package" 2>/dev/null; then
    for file in $(grep -l -E "^(import|from) $package" tests/*.py); do
      echo "note: $package is missing: leaving out $file"
      ignore+=("--ignore=$file")
    done
  fi
done

if ! "$PYTHON" -c "import minigrad, sys; sys.exit(not minigrad.cuda.is_available())"; then
  failed+=("no GPU with CuPy: the GPU tests below would all be skipped")
fi
run "GPU tests" 130 "$PYTHON" -m pytest -q -m cuda -p no:cacheprovider -rfEs "${ignore[@]}" tests/
run "kernel and seam tests without a GPU" 50 "$PYTHON" -m pytest -q -m "not cuda" \
  -p no:cacheprovider -rfE tests/test_cuda_kernels.py tests/test_backend_seam.py
run "benchmark" 120 "$PYTHON" benchmarks/bench_gpu.py --epochs 5 --out "$OUT" \
  --data-root "${MINIGRAD_DATA_ROOT:-none}"

echo
if [ ${#failed[@]} -eq 0 ]; then
  echo "== gpu_check: all steps passed; results in $OUT"
else
  printf '== gpu_check: FAILED: %s\n' "${failed[@]}"
  exit 1
fi
