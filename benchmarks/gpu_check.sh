#!/usr/bin/env bash
# The whole GPU check of minigrad in one run of at most about 5 minutes (docs/gpu.md):
#
#   OUT=/some/folder bash benchmarks/gpu_check.sh      # from anywhere; default OUT: benchmarks/results/gpu_check
#
# Needs a python3 with numpy, cupy, torch (with CUDA) and pytest (pytest-xdist, hypothesis, tqdm
# and compute-sanitizer are used when present); installs nothing, needs no network. MNIST comes
# from the gzipped copy in device-data/MNIST/raw/*.gz (an ignored folder: make it and ship it as
# docs/gpu.md says). The steps, the most important first, each under its own time limit (in
# brackets, seconds; they add up to less than GPU_CHECK_BUDGET, default 285, and no step runs
# past that deadline), output flushed line by line:
#   0. the machine [10 + 50]: nvidia-smi, versions; CuPy must import, see a GPU, compile a kernel
#      and call cuBLAS; all 18 of minigrad's kernels must build (kernels.compile_all()); a tiny
#      captured step (mg.cuda.graphed_step) must give the losses and weights of the same model
#      trained eagerly on the CPU. Else the real error is printed and the check stops at once
#   1. unpack MNIST into a temporary folder
#   2. [35] the fused kernels at awkward sizes, CuPy's memory pool off   -> junit_kernels.xml
#   3. [45] examples/mnist.py --device cuda, 10 epochs: fails below 98.2% final test accuracy
#   4. [60] pytest -m cuda tests/ (all GPU tests)                         -> junit_cuda.xml
#   5. [20 + 15] compute-sanitizer memcheck (every kernel) and racecheck (the two with shared
#      memory) over benchmarks/sanitize_kernels.py -> sanitizer.log; INFORMATION, not the verdict
#   6. [30] benchmarks/bench_gpu.py: eager, fused, compiled, captured vs PyTorch -> bench_gpu.json/.md
#   7. [15] benchmarks/probe_cupy_calls.py: CPU and GPU cost of each call -> probe_cupy.json/.md
# Everything printed also goes to $OUT/gpu_check.log: at most 8 files, all at the top of $OUT.
# The summary at the end gives each step's time against its limit.
# Exit status: 0 when every step passed, 1 when one failed, 2 when step 0 failed (nothing else ran).
# GPU_CHECK_DRY_RUN=1 goes on after a failed step 0 (to try the script on a machine without a GPU:
# each GPU step then fails quickly).

set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
OUT="${OUT:-$PWD/benchmarks/results/gpu_check}"
mkdir -p "$OUT"
if [ -z "${GPU_CHECK_LOGGING:-}" ]; then  # run again with the log kept; the pipe waits for tee
  GPU_CHECK_LOGGING=1 OUT="$OUT" bash "$0" "$@" 2>&1 | tee "$OUT/gpu_check.log"
  exit "${PIPESTATUS[0]}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
PYTHON="${PYTHON:-python3}"
BUDGET="${GPU_CHECK_BUDGET:-285}"
MNIST_TARGET=0.982  # the main job's promise: 98.2% test accuracy after 10 epochs
WORK="$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX")"
failed=()       # the verdict: any entry fails the check
information=()  # what --info steps found: reported, never failing the check
timings=()      # each step's time against its limit, to replace docs/gpu.md's estimates
last_status=0

run() {  # run [--info] NAME SECONDS COMMAND...: time-limited (never past the deadline) and logged;
  # a failure goes into the verdict, or with --info into the information only. Returns the status.
  local counted=1
  if [ "$1" = --info ]; then counted=0; shift; fi
  local name=$1 seconds=$2
  shift 2
  local left=$((BUDGET - SECONDS)) result
  [ "$seconds" -gt "$left" ] && seconds=$left
  echo
  if [ "$seconds" -lt 5 ]; then
    echo "== $name: SKIPPED, the ${BUDGET}s budget is spent"
    last_status=124
    result="skipped (no time left)"
    timings+=("$name: $result")
  else
    echo "== $name (limit ${seconds}s, ${SECONDS}s gone): $*"
    local began=$SECONDS
    # SIGINT first: pytest then still writes its summary and --junitxml for what ran.
    timeout -s INT --kill-after=8 "$seconds" "$@"
    last_status=$?
    result="exit $last_status"
    [ "$last_status" -eq 124 ] && result="TIMED OUT (exit 124)"
    echo "== $name: $result after $((SECONDS - began))s"
    timings+=("$name: $((SECONDS - began))s of ${seconds}s, $result")
  fi
  if [ "$last_status" -ne 0 ]; then
    if [ "$counted" -eq 1 ]; then failed+=("$name ($result)"); else information+=("$name: $result"); fi
  elif [ "$counted" -eq 0 ]; then
    information+=("$name: passed")
  fi
  return "$last_status"
}

tests_ran() {  # tests_ran NAME JUNIT: after a passing pytest step, fail it if every test skipped
  [ "$last_status" -eq 0 ] || return 0  # (its failure is already counted)
  # Every GPU test skips when the tests see no GPU; pytest then passes, having checked nothing.
  if ! timeout 20 "$PYTHON" - "$2" <<'JUNIT'
import sys
import xml.etree.ElementTree as ElementTree

root = ElementTree.parse(sys.argv[1]).getroot()
suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
tests = sum(int(suite.get("tests", 0)) for suite in suites)
skipped = sum(int(suite.get("skipped", 0)) for suite in suites)
print(f"   {tests - skipped} of {tests} tests ran ({skipped} skipped)")
sys.exit(0 if tests > skipped else 1)
JUNIT
  then
    echo "== $1: NO TEST RAN (all skipped: the tests saw no GPU)"
    failed+=("$1 (no test ran: all skipped)")
  fi
}

echo "== gpu_check ($(date -u +%FT%TZ), budget ${BUDGET}s, OUT=$OUT)"
run --info "0. nvidia-smi" 10 nvidia-smi
run "0. machine: CuPy, minigrad's 18 kernels, a captured step" 50 "$PYTHON" - <<'MACHINE'
# Step 0 of benchmarks/gpu_check.sh (tests/test_gpu_check_script.py runs check_minigrad_kernels
# on the CPU emulator, with the fake CuPy).
import importlib
import platform
import sys
import traceback


def print_versions():
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


def check_cupy():
    """CuPy imports, sees a GPU, compiles and runs a kernel and calls cuBLAS: the real error if not,
    not mg.cuda.is_available()'s False."""
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
    if not mg.cuda.is_available():
        raise RuntimeError(f"minigrad cannot use the GPU: {mg.cuda.unavailable_reason()}")
    print("  minigrad sees", mg.cuda.device_count(), "GPU(s); NVRTC, a RawKernel and cuBLAS work")


def check_minigrad_kernels(steps=4):
    """Every kernel builds for both dtypes, and a tiny captured step (graphed_step) gives the
    losses and weights of the same model, from the same weights, trained eagerly on the CPU."""
    import numpy as np

    import minigrad as mg
    from minigrad.fused import kernels

    built = kernels.compile_all()  # raises naming the first kernel that does not build
    print(f"  built {len(built)} kernels: {len(kernels.SOURCES)} sources x float32, float64")
    mg.cuda.kernels.enabled = True  # the captured step is made of them
    nn = mg.nn

    def network():
        return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))

    mg.manual_seed(0)
    start = {name: t.detach().numpy() for name, t in network().state_dict().items()}
    rng = np.random.default_rng(0)
    batches = [(rng.standard_normal((8, 8)).astype(np.float32), rng.integers(0, 4, 8))
               for _ in range(steps)]

    def train(device, captured):
        model = network()
        model.load_state_dict({name: mg.tensor(array) for name, array in start.items()})
        model.to(device)
        optimizer = mg.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        loss_fn = nn.CrossEntropyLoss()
        step = mg.cuda.graphed_step(model, loss_fn, optimizer, batch_size=8) if captured else None
        losses = []
        for inputs, targets in batches:
            x, y = mg.tensor(inputs, device=device), mg.tensor(targets, device=device)
            if step is not None:
                loss = step(x, y)
            else:
                optimizer.zero_grad()
                loss = loss_fn(model(x), y)
                loss.backward()
                optimizer.step()
            losses.append(loss.item())
        return losses, [p.detach().numpy() for p in model.parameters()], step

    losses, weights, step = train("cuda", captured=True)
    cpu_losses, cpu_weights, _ = train("cpu", captured=False)
    print(f"  captured step, losses {np.round(losses, 5).tolist()} (the CPU's eager step: "
          f"{np.round(cpu_losses, 5).tolist()})")
    # the first step runs eagerly and captures; the graph replays the others
    assert step.replays == steps - 1, f"the graph replayed {step.replays} of {steps - 1} steps"
    np.testing.assert_allclose(losses, cpu_losses, rtol=1e-4, atol=1e-6,
                               err_msg="captured step's losses against the CPU's eager step")
    for ours, expected in zip(weights, cpu_weights, strict=True):
        np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-5,
                                   err_msg="captured step's weights against the CPU's eager step")
    print(f"  the captured step ({step.replays} replays) gave the CPU's losses and weights")


if __name__ == "__main__":
    print_versions()
    for failure, check in (("CuPy cannot run here", check_cupy),
                           ("minigrad's kernels or its captured step failed",
                            check_minigrad_kernels)):
        try:
            check()
        except Exception:
            print(f"{failure}; the real error:", file=sys.stderr)
            traceback.print_exc()
            sys.exit(2)
MACHINE
if [ "$last_status" -ne 0 ]; then
  if [ "${GPU_CHECK_DRY_RUN:-}" != 1 ]; then
    echo
    echo "== gpu_check: STOPPED: step 0 failed (exit $last_status): CuPy cannot run, or minigrad's"
    echo "   kernels or its captured step failed; the real error is above; nothing else ran"
    rm -rf "$WORK"
    exit 2
  fi
  echo "GPU_CHECK_DRY_RUN=1: going on after step 0 failed, to try the script's own steps"
fi

echo
echo "== 1. MNIST"
DATA="$WORK/data"
mkdir -p "$DATA/MNIST/raw"
if ls device-data/MNIST/raw/*.gz >/dev/null 2>&1; then
  for file in device-data/MNIST/raw/*.gz; do
    gunzip -c "$file" > "$DATA/MNIST/raw/$(basename "$file" .gz)" || failed+=("1. unpack $file")
  done
  ls -l "$DATA/MNIST/raw"
else
  DATA=none
  echo "MNIST MISSING: no device-data/MNIST/raw/*.gz in the checkout (docs/gpu.md: make it and"
  echo "pass it in carry); the benchmark trains on SYNTHETIC data and the example is left out"
  failed+=("1. MNIST copy missing")
fi

# The optional packages that are here: found, not imported (importing torchvision takes seconds).
OPTIONAL=" $("$PYTHON" -c 'import importlib.util as u
print(*(m for m in ("xdist", "hypothesis", "torchvision", "tqdm") if u.find_spec(m)))' 2>/dev/null) "
has() { [[ "$OPTIONAL" == *" $1 "* ]]; }

# -p no:cacheprovider keeps the checkout clean; pytest-xdist when present.
PYTEST=("$PYTHON" -m pytest -p no:cacheprovider -q -rfE)
XDIST=()
has xdist && XDIST=(-n 8)
ignore=()
for package in hypothesis torchvision; do  # test files that import a missing optional package
  if ! has "$package"; then
    while IFS= read -r file; do ignore+=("--ignore=$file"); done \
      < <(grep -l -E "^(import|from) $package" tests/*.py)
  fi
done

KERNEL_TESTS=(tests/test_cuda_fused.py tests/test_cuda_kernels.py tests/test_graphed_step.py)
MINIGRAD_NO_MEMORY_POOL=1 run "2. kernels at awkward sizes, no memory pool" 35 "${PYTEST[@]}" -m cuda \
  -x --junitxml="$OUT/junit_kernels.xml" "${KERNEL_TESTS[@]}"
tests_ran "2. kernels at awkward sizes, no memory pool" "$OUT/junit_kernels.xml"

if [ "$DATA" != none ]; then
  SHIM=()
  if ! has tqdm; then  # the example's progress bar, not installed
    mkdir -p "$WORK/shim"
    printf 'class tqdm:\n    def __init__(self, *a, **k): pass\n    def __enter__(self): return self\n    def __exit__(self, *a): return False\n    def update(self, *a): pass\n    def set_postfix(self, *a, **k): pass\n' > "$WORK/shim/tqdm.py"
    SHIM=(env "PYTHONPATH=$PYTHONPATH:$WORK/shim")
    echo "note: tqdm is missing; the example runs with a silent stand-in"
  fi
  MNIST_STEP="3. examples/mnist.py --device cuda, 10 epochs"
  run "$MNIST_STEP" 45 "${SHIM[@]}" "$PYTHON" examples/mnist.py --device cuda --epochs 10 \
    --data-root "$DATA" --out "$WORK/mnist-run" --no-progress
  mnist_status=$last_status
  # The run folder's stats.json has one row per finished epoch (docs/run-folder.md).
  if ! timeout 20 "$PYTHON" - "$WORK/mnist-run/stats.json" "$MNIST_TARGET" <<'ACCURACY'
import json
import sys

path, target = sys.argv[1], float(sys.argv[2])
try:
    with open(path) as file:
        epochs = json.load(file)["epochs"]
except (OSError, ValueError, KeyError) as error:
    sys.exit(f"   no stats.json to read the accuracy from ({type(error).__name__}: {error})")
final = epochs[-1]["test_acc"] if epochs else float("nan")
print(f"   {len(epochs)} epochs, final test accuracy {final:.2%} (at least {target:.1%} needed "
      "after 10 epochs)")
sys.exit(0 if len(epochs) == 10 and final >= target else 1)
ACCURACY
  then
    echo "== $MNIST_STEP: BELOW THE TARGET (or unfinished)"
    [ "$mnist_status" -eq 0 ] && failed+=("$MNIST_STEP (final test accuracy below 98.2%)")
  fi
fi

run "4. pytest -m cuda" 60 "${PYTEST[@]}" -m cuda "${XDIST[@]}" --junitxml="$OUT/junit_cuda.xml" \
  "${ignore[@]}" tests/
tests_ran "4. pytest -m cuda" "$OUT/junit_cuda.xml"

echo
SANITIZER="$(command -v compute-sanitizer || ls /usr/local/cuda*/bin/compute-sanitizer 2>/dev/null | head -1 || true)"
if [ -z "$SANITIZER" ]; then
  SANITIZER="$(find "$("$PYTHON" -c 'import site; print(site.getsitepackages()[0])' 2>/dev/null)/nvidia" \
    -name compute-sanitizer -type f 2>/dev/null | head -1)"
fi
if [ -n "$SANITIZER" ]; then
  echo "== 5. compute-sanitizer ($SANITIZER), information only; its whole output is in sanitizer.log"
  {  # sanitize_kernels.py: each kernel once at small sizes, no torch, CuPy's memory pool off
    run --info "5a. memcheck, every kernel" 20 "$SANITIZER" --tool memcheck --error-exitcode 3 \
      "$PYTHON" benchmarks/sanitize_kernels.py all
    run --info "5b. racecheck, the kernels with shared memory" 15 "$SANITIZER" --tool racecheck \
      --error-exitcode 3 "$PYTHON" benchmarks/sanitize_kernels.py cross_entropy_forward gemm
  } > "$OUT/sanitizer.log" 2>&1
  grep -E "^== |SUMMARY|^sanitize_kernels: .*(FAILED|all )" "$OUT/sanitizer.log"
  grep -m 20 -E "^========= +(Invalid|Race|Error|Program hit|Warning)" "$OUT/sanitizer.log" || true
else
  echo "== 5. compute-sanitizer: NOT FOUND (PATH, /usr/local/cuda*/bin, site-packages/nvidia); skipped"
  information+=("5. compute-sanitizer: not found, skipped")
fi

# The benchmarks last: their numbers matter less than the steps above.
run "6. benchmark" 30 "$PYTHON" benchmarks/bench_gpu.py --epochs 2 --out "$OUT" --data-root "$DATA"
run "7. probe of each call" 15 "$PYTHON" benchmarks/probe_cupy_calls.py --out "$OUT"

rm -rf "$WORK"
echo
echo "== files in $OUT: $(cd "$OUT" && ls | tr '\n' ' ')"
echo "== each step's time, of its limit:"
printf '   %s\n' "${timings[@]}"
if [ ${#information[@]} -gt 0 ]; then
  echo "== information, not part of the verdict:"
  printf '   %s\n' "${information[@]}"
fi
if [ ${#failed[@]} -eq 0 ]; then
  echo "== gpu_check: all steps passed in ${SECONDS}s"
else
  echo "== gpu_check: FAILED after ${SECONDS}s:"
  printf '   %s\n' "${failed[@]}"
  exit 1
fi
