"""Fused CUDA kernels for the hot spots of a training step on the GPU, each next to its reference.

A step of the MNIST network launches a few dozen small kernels; at batch 64 the GPU finishes each
in microseconds and the time goes to launching them. These kernels do in one launch what the plain
array code does in several:

    kernel                   replaces (the reference, which the CPU runs)          launches
    relu_backward            grad * (z > 0)                                         2 -> 1
    bias_relu_forward        maximum(x + bias, 0)                                   2 -> 1
    cross_entropy_forward    max, subtract, exp, sum, divide, log, gather, sum...  ~10 -> 1
    cross_entropy_backward   probs.copy(); [rows, target] -= 1; *= grad * scale     3 -> 1
    sgd_update               weight decay, momentum, nesterov and p -= lr * d      ~6 -> 1

The SGD update is one launch per parameter (not one over a flat buffer: the gradients are fresh
arrays each step, so gathering them would cost a copy). bias_relu_forward is here and tested but
not wired in: Linear and ReLU are separate Functions, and fusing across them would need a
Linear+ReLU Function that the models do not use.

The CUDA C sources are module-level strings (SOURCES), self-contained (no #include), compiled once
per dtype with `scalar_t` defined as float or double (source_for). CuPy compiles them with NVRTC on
first use; tests/test_cuda_kernels.py compiles them with nvcc and compares each kernel with its
reference. Nothing here imports CuPy until a kernel runs.

The ops call these only when `applies(...)` says so: `enabled` is True and every array is a
C-contiguous float32/float64 CUDA array of one dtype. Set `minigrad.cuda.kernels.enabled = False`
to run the plain array code on the GPU too (for comparisons, like torch.backends.cudnn.enabled).
"""

from __future__ import annotations

import functools

from .. import backend

enabled = True  # read on every call, so a test or benchmark can switch the kernels off

BLOCK = 256  # threads per block; cross_entropy_forward's reduction needs a power of two
_MAX_BLOCKS = 4096  # grid-stride loops cover the rest
_FLOATS = (backend.float32, backend.float64)
_SCALAR_T = {"float32": "float", "float64": "double"}
_long = backend.int64.type  # C `long long`
_int = backend.dtype("int32").type  # C `int`

PRELUDE = r"""
// scalar_t is float or double: each source is compiled once per dtype.
__device__ inline float real_exp(float x) { return expf(x); }
__device__ inline double real_exp(double x) { return exp(x); }
__device__ inline float real_log(float x) { return logf(x); }
__device__ inline double real_log(double x) { return log(x); }
#define REAL_NAN ((scalar_t)__int_as_float(0x7fc00000))
#define GRID_STRIDE_LOOP(i, n) \
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < (n); \
         i += (long long)gridDim.x * blockDim.x)
"""

RELU_BACKWARD = r"""
// out = grad where the ReLU's output z is positive, else 0.
extern "C" __global__ void relu_backward(const scalar_t* grad, const scalar_t* z, scalar_t* out,
                                         long long n) {
    GRID_STRIDE_LOOP(i, n) { out[i] = z[i] > 0 ? grad[i] : (scalar_t)0; }
}
"""

BIAS_RELU_FORWARD = r"""
// out = max(x + bias, 0), bias broadcast along the last dim (features); out may be x.
extern "C" __global__ void bias_relu_forward(const scalar_t* x, const scalar_t* bias, scalar_t* out,
                                             long long n, long long features) {
    GRID_STRIDE_LOOP(i, n) {
        scalar_t v = x[i] + bias[i % features];
        out[i] = v > 0 ? v : (scalar_t)0;
    }
}
"""

CROSS_ENTROPY_FORWARD = r"""
// loss = scale * sum_r (log(sum_c exp(x_rc - m_r)) - (x_rt - m_r)), m_r = max_c x_rc, t = target[r]
// probs = softmax of each row, kept for backward. One block of BLOCK threads: thread k takes rows
// k, k + BLOCK, ... (a row of 10 classes is too short to share), then a tree in shared memory adds
// the rows' losses, so the sum is deterministic. A target outside [0, classes) makes the loss NaN.
#define BLOCK 256
extern "C" __global__ void cross_entropy_forward(const scalar_t* logits, const long long* target,
                                                 scalar_t* probs, scalar_t* loss, long long rows,
                                                 int classes, scalar_t scale) {
    __shared__ scalar_t partial[BLOCK];
    scalar_t total = 0;
    for (long long r = threadIdx.x; r < rows; r += BLOCK) {
        const scalar_t* x = logits + r * classes;
        scalar_t* p = probs + r * classes;
        scalar_t top = x[0];
        for (int c = 1; c < classes; ++c) top = x[c] > top ? x[c] : top;
        scalar_t sum = 0;
        for (int c = 0; c < classes; ++c) {
            p[c] = real_exp(x[c] - top);
            sum += p[c];
        }
        for (int c = 0; c < classes; ++c) p[c] /= sum;
        long long t = target[r];
        total += (t >= 0 && t < classes) ? real_log(sum) - (x[t] - top) : REAL_NAN;
    }
    partial[threadIdx.x] = total;
    __syncthreads();
    for (int half = BLOCK / 2; half > 0; half /= 2) {
        if (threadIdx.x < half) partial[threadIdx.x] += partial[threadIdx.x + half];
        __syncthreads();
    }
    if (threadIdx.x == 0) loss[0] = partial[0] * scale;
}
"""

CROSS_ENTROPY_BACKWARD = r"""
// grad_logits = (probs - onehot(target)) * grad_loss * scale, one thread per element; grad_loss is
// the 0-d gradient of the loss, read on the device (no copy to the host).
extern "C" __global__ void cross_entropy_backward(const scalar_t* probs, const long long* target,
                                                  const scalar_t* grad_loss,
                                                  scalar_t* grad_logits, long long n, int classes,
                                                  scalar_t scale) {
    scalar_t g = grad_loss[0] * scale;
    GRID_STRIDE_LOOP(i, n) {
        long long t = target[i / classes];
        scalar_t hit = (i % classes) == t ? (scalar_t)1 : (scalar_t)0;
        grad_logits[i] = (t >= 0 && t < classes) ? (probs[i] - hit) * g : REAL_NAN;
    }
}
"""

SGD_UPDATE = r"""
// torch.optim.SGD for one parameter, in place, in one pass:
//   d = g + weight_decay * p
//   buf = d (first step)  or  momentum * buf + (1 - dampening) * d
//   d = d + momentum * buf (nesterov)  or  buf
//   p -= lr * d
// With momentum 0 there is no buffer (buf is not touched).
extern "C" __global__ void sgd_update(scalar_t* param, const scalar_t* grad, scalar_t* buf,
                                      long long n, scalar_t lr, scalar_t momentum,
                                      scalar_t dampening, scalar_t weight_decay, int nesterov,
                                      int first_step) {
    GRID_STRIDE_LOOP(i, n) {
        scalar_t d = grad[i];
        if (weight_decay != 0) d += weight_decay * param[i];
        if (momentum != 0) {
            scalar_t b = first_step ? d : momentum * buf[i] + (1 - dampening) * d;
            buf[i] = b;
            d = nesterov ? d + momentum * b : b;
        }
        param[i] -= lr * d;
    }
}
"""

SOURCES = {
    "relu_backward": RELU_BACKWARD,
    "bias_relu_forward": BIAS_RELU_FORWARD,
    "cross_entropy_forward": CROSS_ENTROPY_FORWARD,
    "cross_entropy_backward": CROSS_ENTROPY_BACKWARD,
    "sgd_update": SGD_UPDATE,
}


def source_for(name: str, dtype) -> str:
    """The whole CUDA C source of kernel `name` for float32 or float64 (what NVRTC/nvcc compile)."""
    return f"typedef {_SCALAR_T[backend.dtype(dtype).name]} scalar_t;\n" + PRELUDE + SOURCES[name]


@functools.cache
def _function(name: str, dtype_name: str):
    """The compiled kernel (a cupy.RawKernel), built on first use; CuPy also caches it on disk."""
    module = backend.cupy_module().RawModule(code=source_for(name, dtype_name))
    return module.get_function(name)


def _launch(name: str, dtype, size: int, args: tuple, grid: int | None = None) -> None:
    if grid is None:
        grid = max(1, min((size + BLOCK - 1) // BLOCK, _MAX_BLOCKS))
    _function(name, dtype.name)((grid,), (BLOCK,), args)


def applies(*arrays) -> bool:
    """True when the kernels can take these arrays: C-contiguous CUDA float32/float64, one dtype."""
    if not enabled or type(arrays[0]) is backend.ndarray:  # the CPU path pays one check
        return False
    dtype = arrays[0].dtype
    return dtype in _FLOATS and all(
        backend.is_cuda_array(a) and a.dtype == dtype and a.flags.c_contiguous for a in arrays
    )


def _check_same_shape(op: str, a, b) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{op}: shapes {tuple(a.shape)} and {tuple(b.shape)} must match")


def relu_backward(grad, z):
    """grad where z > 0, else 0 (reference: grad * (z > 0)); z is the ReLU's output."""
    _check_same_shape("relu_backward", grad, z)
    out = backend.array_module(z).empty_like(z)
    _launch("relu_backward", z.dtype, z.size, (grad, z, out, _long(z.size)))
    return out


def bias_relu_forward(x, bias, out=None):
    """max(x + bias, 0) with bias along the last dim (reference: maximum(x + bias, 0))."""
    if x.ndim == 0 or bias.shape != (x.shape[-1],):
        raise ValueError(
            f"bias_relu_forward: bias of shape {tuple(bias.shape)} does not fit x of shape "
            f"{tuple(x.shape)} (expected ({x.shape[-1] if x.ndim else 0},))"
        )
    out = backend.array_module(x).empty_like(x) if out is None else out
    _launch("bias_relu_forward", x.dtype, x.size, (x, bias, out, _long(x.size), _long(bias.size)))
    return out


def _int64_targets(target, xp):
    return xp.ascontiguousarray(target.astype(backend.int64, copy=False))


def cross_entropy_forward(logits, target, scale: float):
    """(loss, probs): scale * sum of -log softmax(logits)[target], and the softmax rows.

    Reference: CrossEntropy.forward's array code in minigrad/ops/loss.py. Out-of-range targets
    give a NaN loss here instead of an error: checking them on the host would wait for the GPU.
    """
    xp = backend.array_module(logits)
    rows, classes = logits.shape
    if classes == 0:
        raise ValueError(f"cross_entropy: logits of shape {tuple(logits.shape)} have no classes")
    probs = xp.empty_like(logits)
    loss = xp.empty((), dtype=logits.dtype)
    args = (logits, _int64_targets(target, xp), probs, loss, _long(rows), _int(classes),
            logits.dtype.type(scale))
    _launch("cross_entropy_forward", logits.dtype, rows, args, grid=1)
    return loss, probs


def cross_entropy_backward(probs, target, grad_loss, scale: float):
    """(probs - onehot(target)) * grad_loss * scale, without building the one-hot matrix."""
    xp = backend.array_module(probs)
    out = xp.empty_like(probs)
    args = (probs, _int64_targets(target, xp), grad_loss, out, _long(probs.size),
            _int(probs.shape[1]), probs.dtype.type(scale))
    _launch("cross_entropy_backward", probs.dtype, probs.size, args)
    return out


def sgd_update(param, grad, state, lr, momentum, dampening, weight_decay, nesterov) -> None:
    """torch.optim.SGD's update of one parameter array, in place (reference: SGD.step's loop).

    `state` is the parameter's optimizer state dict (None when momentum is 0); its
    "momentum_buffer" is created here on the first step, as SGD.step does.
    """
    _check_same_shape("sgd_update", param, grad)
    buffer, first_step = param, 0  # with momentum 0 the kernel never touches the buffer argument
    if momentum:
        buffer = state.get("momentum_buffer")
        if buffer is None:
            buffer = state["momentum_buffer"] = backend.array_module(param).empty_like(param)
            first_step = 1
        elif not applies(param, buffer):  # e.g. loaded from a state dict in another layout
            buffer = state["momentum_buffer"] = backend.array_module(param).ascontiguousarray(
                buffer, dtype=param.dtype
            )
    real = param.dtype.type
    args = (param, grad, buffer, _long(param.size), real(lr), real(momentum), real(dampening),
            real(weight_decay), _int(bool(nesterov)), _int(first_step))
    _launch("sgd_update", param.dtype, param.size, args)
