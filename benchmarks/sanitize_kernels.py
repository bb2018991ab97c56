"""Each of minigrad's CUDA kernels run once at small sizes, for compute-sanitizer (no torch).

compute-sanitizer slows every kernel and every module load down a lot, and the test suite imports
torch and runs hundreds of tests: together they do not fit in gpu_check.sh's budget. This script
imports only minigrad (NumPy and CuPy), runs each named kernel through its Python wrapper in
minigrad/fused/kernels.py or gemm.py for float32 and float64, at sizes that leave partial blocks
and tiles, and checks the numbers against NumPy:

    python benchmarks/sanitize_kernels.py all                        # every kernel
    python benchmarks/sanitize_kernels.py cross_entropy_forward gemm
    python benchmarks/sanitize_kernels.py --list
    compute-sanitizer --tool memcheck --error-exitcode 3 python benchmarks/sanitize_kernels.py all
    compute-sanitizer --tool racecheck --error-exitcode 3 \\
        python benchmarks/sanitize_kernels.py cross_entropy_forward gemm   # the shared-memory ones

CuPy's memory pool is switched off first, so that memcheck sees each array's true bounds (with
the pool on, a read past an array's end usually lands in the pool's own memory, unreported).
Exit status: 0 when every kernel ran and gave the right numbers, 1 otherwise (each failure is
printed with its error); compute-sanitizer's own findings come with its --error-exitcode.
tests/test_gpu_check_script.py runs this on the CPU emulator of tests/cuda_emulator.py.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run from anywhere without installing minigrad

from minigrad import backend, cuda  # noqa: E402
from minigrad.fused import gemm, kernels  # noqa: E402

DTYPES = (np.float32, np.float64)
TOLERANCE = {np.float32: dict(rtol=1e-4, atol=1e-5), np.float64: dict(rtol=1e-10, atol=1e-12)}
# Sizes that are not multiples of a block (256 threads) or a tile (16): the last block or tile
# is partial, where an index check that is off by one would read or write past an array's end.
ROWS, FEATURES, CLASSES = 37, 19, 10
SPLIT_K = 200  # a k that gemm cuts into slices for ROWS x FEATURES (tests/test_gpu_check_script.py)


def _on_gpu(array):
    return backend.to_device(np.ascontiguousarray(array), backend.device("cuda"))


def _random(shape, dtype, seed):
    return np.random.default_rng(seed).uniform(-2.0, 2.0, shape).astype(dtype)


def _check(name, ours, expected, dtype):
    np.testing.assert_allclose(backend.to_host(ours), expected, err_msg=name, **TOLERANCE[dtype])


# ---- one function per kernel: run it once (twice where a second path exists) and check --------


def relu_backward(dtype):
    z = np.maximum(_random((ROWS, FEATURES), dtype, 0), 0)
    grad = _random((ROWS, FEATURES), dtype, 1)
    out = kernels.relu_backward(_on_gpu(grad), _on_gpu(z))
    _check("relu_backward", out, np.where(z <= 0, 0, grad), dtype)


def relu_backward_bias_grad(dtype):
    z = np.maximum(_random((ROWS, FEATURES), dtype, 0), 0)
    grad = _random((ROWS, FEATURES), dtype, 1)
    out, bias_grad = kernels.relu_backward_bias_grad(_on_gpu(grad), _on_gpu(z))
    expected = np.where(z <= 0, 0, grad)
    _check("relu_backward_bias_grad (gradient)", out, expected, dtype)
    _check("relu_backward_bias_grad (bias gradient)", bias_grad, expected.sum(axis=0), dtype)


def bias_relu_forward(dtype):
    x, bias = _random((ROWS, FEATURES), dtype, 0), _random(FEATURES, dtype, 1)
    out = kernels.bias_relu_forward(_on_gpu(x), _on_gpu(bias))
    _check("bias_relu_forward", out, np.maximum(x + bias, 0), dtype)


def _softmax_and_loss(logits, target, scale):
    shifted = logits - logits.max(axis=1, keepdims=True)
    probs = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    loss = -np.log(probs[np.arange(len(target)), target]).sum() * scale
    onehot = np.eye(logits.shape[1], dtype=logits.dtype)[target]
    return probs, loss, onehot


def cross_entropy_forward(dtype):
    rows = kernels.BLOCK + ROWS  # two blocks: the last block adds the block sums
    logits, target = _random((rows, CLASSES), dtype, 0) * 4, np.arange(rows) % CLASSES
    probs, loss, onehot = _softmax_and_loss(logits, target, 1 / rows)
    our_loss, our_probs = kernels.cross_entropy_forward(_on_gpu(logits), _on_gpu(target), 1 / rows)
    _check("cross_entropy_forward (loss)", our_loss, loss, dtype)
    _check("cross_entropy_forward (softmax)", our_probs, probs, dtype)
    our_loss, gradient = kernels.cross_entropy_forward(_on_gpu(logits), _on_gpu(target), 1 / rows,
                                                       as_gradient=True)
    _check("cross_entropy_forward (loss, as_gradient)", our_loss, loss, dtype)
    _check("cross_entropy_forward (gradient)", gradient, (probs - onehot) / rows, dtype)


def cross_entropy_backward(dtype):
    logits, target = _random((ROWS, CLASSES), dtype, 0), np.arange(ROWS) % CLASSES
    probs, _, onehot = _softmax_and_loss(logits, target, 1.0)
    grad_loss = np.array(0.5, dtype)
    out = kernels.cross_entropy_backward(_on_gpu(probs), _on_gpu(target), _on_gpu(grad_loss),
                                         1 / ROWS)
    _check("cross_entropy_backward", out, (probs - onehot) * 0.5 / ROWS, dtype)


SGD = dict(lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.01, nesterov=True)


def _sgd_reference(param, grad, buffer, first_step):
    """torch.optim.SGD's update of one parameter: (new parameter, new momentum buffer)."""
    d = grad + SGD["weight_decay"] * param
    buffer = d if first_step else SGD["momentum"] * buffer + (1 - SGD["dampening"]) * d
    d = d + SGD["momentum"] * buffer if SGD["nesterov"] else buffer
    return param - SGD["lr"] * d, buffer


def sgd_update(dtype):
    param, grad = _random(ROWS * FEATURES, dtype, 0), _random(ROWS * FEATURES, dtype, 1)
    on_gpu, state, buffer = _on_gpu(param), {}, None
    for step in range(2):  # the first step makes the momentum buffer, the second reads it
        kernels.sgd_update(on_gpu, _on_gpu(grad), state, **SGD)
        param, buffer = _sgd_reference(param, grad, buffer, first_step=step == 0)
        _check(f"sgd_update (step {step + 1})", on_gpu, param, dtype)
        _check(f"sgd_update (step {step + 1}, momentum)", state["momentum_buffer"], buffer, dtype)


def sgd_update_many(dtype):
    sizes = [1, 7, kernels.BLOCK + 3] + [5] * 15  # 18 tensors: more than one launch's worth
    params = [_random(n, dtype, seed) for seed, n in enumerate(sizes)]
    grads = [_random(n, dtype, 100 + seed) for seed, n in enumerate(sizes)]
    on_gpu, states = [_on_gpu(p) for p in params], [{} for _ in sizes]
    buffers = [None] * len(sizes)
    for step in range(2):
        kernels.sgd_update_many(on_gpu, [_on_gpu(g) for g in grads], states, **SGD)
        for i in range(len(sizes)):
            params[i], buffers[i] = _sgd_reference(params[i], grads[i], buffers[i], step == 0)
            _check(f"sgd_update_many (step {step + 1}, tensor {i})", on_gpu[i], params[i], dtype)


def gather_batch(dtype):
    count = 3 * ROWS
    inputs, targets = _random((count, FEATURES), dtype, 0), np.arange(count) % CLASSES
    order = np.random.default_rng(1).permutation(count)
    start, stop = 5, 5 + ROWS
    x, y = kernels.gather_batch(_on_gpu(inputs), _on_gpu(targets), _on_gpu(order), start, stop)
    _check("gather_batch (inputs)", x, inputs[order[start:stop]], dtype)
    np.testing.assert_array_equal(backend.to_host(y), targets[order[start:stop]],
                                  err_msg="gather_batch (targets)")


def gemm_epilogues(dtype):
    """gemm.matmul with each epilogue, in the orientations the captured step uses."""
    m, k, n = ROWS, 33, FEATURES  # partial tiles of c, a partial step of k
    a, w = _random((m, k), dtype, 0), _random((n, k), dtype, 1)
    bias = _random(n, dtype, 2)
    xp = backend.module_for(backend.device("cuda"))

    def product(*shape):
        return xp.empty(shape, dtype=dtype)

    out = product(m, n)
    gemm.matmul(_on_gpu(a), _on_gpu(w), out, transpose_b=True)
    _check("gemm (a @ w.T)", out, a @ w.T, dtype)
    gemm.matmul(_on_gpu(a), _on_gpu(w), out, transpose_b=True, bias=_on_gpu(bias))
    _check("gemm (+ bias)", out, a @ w.T + bias, dtype)
    gemm.matmul(_on_gpu(a), _on_gpu(w), out, transpose_b=True, bias=_on_gpu(bias), relu=True)
    _check("gemm (+ bias, ReLU)", out, np.maximum(a @ w.T + bias, 0), dtype)
    grad = _random((m, n), dtype, 4)
    input_grad = product(m, k)  # the input gradient, times the earlier ReLU's mask
    masked = np.maximum(_random((m, k), dtype, 5), 0)
    gemm.matmul(_on_gpu(grad), _on_gpu(w), input_grad, mask=_on_gpu(masked))
    _check("gemm (mask)", input_grad, np.where(masked <= 0, 0, grad @ w), dtype)
    weight_grad, bias_grad = product(n, k), product(n)  # the weight gradient and bias gradient
    gemm.matmul(_on_gpu(grad), _on_gpu(a), weight_grad, transpose_a=True, row_sum=bias_grad)
    _check("gemm (a.T @ b)", weight_grad, grad.T @ a, dtype)
    _check("gemm (row sum)", bias_grad, grad.sum(axis=0), dtype)
    # A long k with few tiles: split-K (gemm.plan), whose slices meet in a workspace; the last
    # slice is partial. The first layer's forward, and a weight gradient over a bigger batch.
    long_k, batch = SPLIT_K, kernels.BLOCK + 44
    a, w = _random((m, long_k), dtype, 6), _random((n, long_k), dtype, 7)
    gemm.matmul(_on_gpu(a), _on_gpu(w), out, transpose_b=True, bias=_on_gpu(bias), relu=True)
    _check("gemm (split-K, + bias, ReLU)", out, np.maximum(a @ w.T + bias, 0), dtype)
    grad, inputs = _random((batch, n), dtype, 8), _random((batch, k), dtype, 9)
    gemm.matmul(_on_gpu(grad), _on_gpu(inputs), weight_grad, transpose_a=True, row_sum=bias_grad)
    _check("gemm (split-K, a.T @ b)", weight_grad, grad.T @ inputs, dtype)
    _check("gemm (split-K, row sum)", bias_grad, grad.sum(axis=0), dtype)


KERNELS = {
    "relu_backward": relu_backward,
    "relu_backward_bias_grad": relu_backward_bias_grad,
    "bias_relu_forward": bias_relu_forward,
    "cross_entropy_forward": cross_entropy_forward,
    "cross_entropy_backward": cross_entropy_backward,
    "sgd_update": sgd_update,
    "sgd_update_many": sgd_update_many,
    "gather_batch": gather_batch,
    "gemm": gemm_epilogues,
}
SHARED_MEMORY = ("cross_entropy_forward", "gemm")  # the kernels racecheck is for


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kernels", nargs="*", metavar="KERNEL",
                        help=f"'all' or any of: {', '.join(KERNELS)}")
    parser.add_argument("--list", action="store_true", help="print the kernels' names and stop")
    parser.add_argument("--keep-memory-pool", action="store_true",
                        help="leave CuPy's memory pool on (memcheck then misses overruns)")
    args = parser.parse_args(argv)
    unknown = [name for name in args.kernels if name != "all" and name not in KERNELS]
    if unknown:
        parser.error(f"unknown kernel(s) {', '.join(unknown)}; known: all, {', '.join(KERNELS)}")
    if not args.kernels and not args.list:
        parser.error("name the kernels to run, or 'all'")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.list:
        print("\n".join(KERNELS))
        return 0
    names = list(KERNELS) if "all" in args.kernels else list(dict.fromkeys(args.kernels))
    reason = cuda.unavailable_reason()
    if reason:
        print(f"sanitize_kernels: CuPy cannot run here: {reason}", file=sys.stderr)
        return 1
    xp = backend.cupy_module()
    if not args.keep_memory_pool and hasattr(xp.cuda, "set_allocator"):
        xp.cuda.set_allocator(None)  # every array its own cudaMalloc, with true bounds
    kernels.enabled = True  # the wrappers refuse arrays while the switch is off
    failed = []
    for name in names:
        for dtype in DTYPES:
            label = f"{name} ({np.dtype(dtype).name})"
            try:
                KERNELS[name](dtype)
                xp.cuda.get_current_stream().synchronize()  # an error of this kernel shows here
                print(f"sanitize_kernels: ok      {label}", flush=True)
            except Exception as error:  # the next kernels still run; the summary names this one
                failed.append(label)
                print(f"sanitize_kernels: FAILED  {label}: {type(error).__name__}: {error}",
                      flush=True)
                traceback.print_exc(limit=-3)
    ran = len(names) * len(DTYPES)
    if failed:
        print(f"sanitize_kernels: {len(failed)} of {ran} FAILED: {', '.join(failed)}")
        return 1
    print(f"sanitize_kernels: all {ran} ran and matched NumPy ({', '.join(names)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
