"""Fused CUDA kernels for the hot spots of a training step on the GPU, each next to its reference.

A step of the MNIST network launches a few dozen small kernels; at batch 64 the GPU finishes each
in microseconds and the time goes to launching them. These kernels do in one launch what the plain
array code does in several (the CUDA C is in sources.py):

    kernel                   replaces (the reference, which the CPU runs)          launches
    relu_backward            where(z <= 0, 0, grad)                                 2 -> 1
    relu_backward_bias_grad  g = where(z <= 0, 0, grad); g.sum(axis=0) (ReLU, Linear) 3 -> 1
    bias_relu_forward        maximum(x + bias, 0)                                   2 -> 1
    cross_entropy_forward    max, subtract, exp, sum, divide, log, gather, sum...  ~10 -> 1
    cross_entropy_backward   probs.copy(); [rows, target] -= 1; *= grad * scale     3 -> 1
    sgd_update               weight decay, momentum, nesterov and p -= lr * d      ~6 -> 1
    sgd_update_many          sgd_update for every parameter of an optimizer        6 -> 1
    gather_batch             inputs[order[a:b]], targets[order[a:b]]                2 -> 1

gemm.py adds small matrix products with fused epilogues, for the captured step (graphed.py).
The ops call these only when `applies(...)` says so: `enabled` is True and every array is a
C-contiguous float32/float64 CUDA array of one dtype. `minigrad.fused.kernels.enabled` (also
reached as `minigrad.cuda.kernels.enabled`) is the one switch for the GPU's fused paths (these
kernels, and Sequential running Linear+ReLU as one node).
It is off by default, so that the eager engine runs the same reference ops, and records the same
tape, on every device; examples/mnist.py turns it on for a GPU run. (mg.compile is to take these
fusions over, for any model.)
CuPy compiles each source with NVRTC on first use; tests/test_cuda_kernels.py compiles them with
nvcc and runs them on the CPU against their references. Nothing here imports CuPy until a kernel
runs.
"""

from __future__ import annotations

import functools

from .. import backend
from . import sources
from .sources import BLOCK, MAX_BLOCKS, MAX_SGD_TENSORS, PRELUDE, SOURCES, TILE

enabled = False  # the switch: read on every call (see above)

_FLOATS = (backend.float32, backend.float64)
_SCALAR_T = {"float32": "float", "float64": "double"}
_long = backend.int64.type  # C `long long`
_int = backend.dtype("int32").type  # C `int`

__all__ = ["BLOCK", "PRELUDE", "SOURCES", "TILE", "applies", "source_for"]


def source_for(name: str, dtype) -> str:
    """The whole CUDA C source of kernel `name` for float32 or float64 (what NVRTC/nvcc compile)."""
    return f"typedef {_SCALAR_T[backend.dtype(dtype).name]} scalar_t;\n" + PRELUDE + SOURCES[name]


@functools.cache
def _function(name: str, dtype_name: str):
    """The compiled kernel (a cupy.RawKernel), built on first use; CuPy also caches it on disk."""
    module = backend.cupy_module().RawModule(code=source_for(name, dtype_name))
    return module.get_function(name)


def compile_all() -> list:
    """Build every kernel for float32 and float64 now (benchmarks/gpu_check.sh's first step):
    the (name, dtype) pairs built; the first that NVRTC refuses raises, naming it."""
    built = []
    for name in SOURCES:
        for dtype_name in _SCALAR_T:
            try:
                _function(name, dtype_name)
            except Exception as error:
                raise RuntimeError(f"kernel {name} ({dtype_name}) did not build: "
                                   f"{error}") from error
            built.append((name, dtype_name))
    return built


def grid_for(size: int) -> int:
    """Blocks for `size` elements, one thread each, capped (the grid-stride loops do the rest)."""
    return max(1, min((size + BLOCK - 1) // BLOCK, MAX_BLOCKS))


def launch(name: str, dtype, size: int, args: tuple, grid: int | None = None) -> None:
    """Run kernel `name` for `dtype` on `grid` blocks (default: enough for `size` elements),
    on the device its arrays live on (arrays on cuda:1 while cuda:0 is current would be read
    at addresses of the wrong device)."""
    kernel = _function(name, dtype.name)
    shape = (grid_for(size) if grid is None else grid,), (BLOCK,)
    device = next((a.device.id for a in args if backend.is_cuda_array(a)), None)
    xp = _cupy()
    if device is not None and device != xp.cuda.runtime.getDevice():
        with xp.cuda.Device(device):
            kernel(*shape, args)
        return
    kernel(*shape, args)


def applies(*arrays) -> bool:
    """True when the kernels can take these arrays: C-contiguous CUDA float32/float64, one dtype."""
    if not enabled or type(arrays[0]) is backend.ndarray:  # the CPU path pays one check
        return False
    dtype = arrays[0].dtype
    return dtype in _FLOATS and all(
        backend.is_cuda_array(a) and a.dtype == dtype and a.flags.c_contiguous for a in arrays
    )


def _cupy():
    return backend.cupy_module()  # every array here is a CUDA array: no get_array_module


def address(array) -> int:
    """The device address of a CUDA array's first element (for the kernels' pointer tables)."""
    return array.data.ptr


def _check_same_shape(op: str, a, b) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{op}: shapes {tuple(a.shape)} and {tuple(b.shape)} must match")


def relu_backward(grad, z):
    """0 where z <= 0, else grad (reference: where(z <= 0, 0, grad)); z is the ReLU's output."""
    _check_same_shape("relu_backward", grad, z)
    out = _cupy().empty_like(z)
    launch("relu_backward", z.dtype, z.size, (grad, z, out, _long(z.size)))
    return out


def relu_backward_bias_grad(grad, z):
    """(where(z <= 0, 0, grad), its sum over rows): ReLU's backward and the Linear's bias gradient.

    For 2-D (rows, features) arrays; z is the ReLU's output. Reference: g = where(z <= 0, 0, grad);
    (g, g.sum(axis=0)).
    """
    _check_same_shape("relu_backward_bias_grad", grad, z)
    if z.ndim != 2:
        raise ValueError(f"relu_backward_bias_grad: expected 2-D arrays, got shape {z.shape}")
    xp = _cupy()
    out, bias_grad = xp.empty_like(z), xp.empty(z.shape[1], dtype=z.dtype)
    rows, features = z.shape
    launch("relu_backward_bias_grad", z.dtype, features,
           (grad, z, out, bias_grad, _long(rows), _long(features)))
    return out, bias_grad


def bias_relu_forward(x, bias, out=None):
    """max(x + bias, 0) with bias along the last dim (reference: maximum(x + bias, 0))."""
    if x.ndim == 0 or bias.shape != (x.shape[-1],):
        raise ValueError(
            f"bias_relu_forward: bias of shape {tuple(bias.shape)} does not fit x of shape "
            f"{tuple(x.shape)} (expected ({x.shape[-1] if x.ndim else 0},))"
        )
    out = _cupy().empty_like(x) if out is None else out
    launch("bias_relu_forward", x.dtype, x.size, (x, bias, out, _long(x.size), _long(bias.size)))
    return out


@functools.cache
def workspace(xp, device_id: int, dtype_name: str, stream: int = 0) -> tuple:
    """(finished counter, block sums) for cross_entropy_forward on one device and stream, made
    once.

    The kernel leaves the counter at 0 after each launch, so one pair serves every launch on a
    stream, whose launches run one after the other; two streams get two pairs, since their
    launches may run at once and would mix their sums (a captured graph gets its own,
    graphed.py)."""
    with xp.cuda.Device(device_id):
        # sources.MAX_BLOCKS, not MAX_BLOCKS: a test may lower the grid cap, never the space
        return xp.zeros(1, dtype=backend.uint64), xp.empty(sources.MAX_BLOCKS, dtype=dtype_name)


def _int64_targets(target):
    if target.dtype == backend.int64 and target.flags.c_contiguous:
        return target  # the common case: no launch
    return _cupy().ascontiguousarray(target.astype(backend.int64))


def check_logits(logits) -> None:
    """Refuse logits that the cross-entropy kernel cannot take (not (rows, classes>0))."""
    if logits.ndim != 2 or logits.shape[1] == 0:
        raise ValueError(
            f"cross_entropy: logits of shape {tuple(logits.shape)} must be (rows, classes) "
            "with at least one class"
        )


def cross_entropy_forward(logits, target, scale: float, out=None, as_gradient=False, space=None,
                          loss=None):
    """(loss, probs): scale * sum of -log softmax(logits)[target], and the softmax rows.

    With as_gradient the second array is the loss's gradient (probs - onehot(target)) * scale
    instead. out, loss and space (a workspace()) may be given, so that nothing is allocated (as a
    captured graph needs). Reference: CrossEntropy.forward's array code in minigrad/ops/loss.py.
    Out-of-range targets give a NaN loss here instead of an error: checking them would wait for
    the GPU.
    """
    check_logits(logits)
    xp = _cupy()
    rows, classes = logits.shape
    out = xp.empty_like(logits) if out is None else out
    loss = xp.empty((), dtype=logits.dtype) if loss is None else loss
    finished, block_sums = space or workspace(xp, logits.device.id, logits.dtype.name,
                                              xp.cuda.get_current_stream().ptr)
    args = (logits, _int64_targets(target), out, loss, block_sums, finished, _long(rows),
            _int(classes), logits.dtype.type(scale), _int(bool(as_gradient)))
    launch("cross_entropy_forward", logits.dtype, rows, args)
    return loss, out


def cross_entropy_backward(probs, target, grad_loss, scale: float):
    """(probs - onehot(target)) * grad_loss * scale, without building the one-hot matrix."""
    out = _cupy().empty_like(probs)
    args = (probs, _int64_targets(target), grad_loss, out, _long(probs.size),
            _int(probs.shape[1]), probs.dtype.type(scale))
    launch("cross_entropy_backward", probs.dtype, probs.size, args)
    return out


def _momentum_buffer(param, state, momentum) -> tuple:
    """(buffer, first_step) for SGD: state's "momentum_buffer", made here on the first step."""
    if not momentum:
        return param, 0  # with momentum 0 the kernels never touch the buffer argument
    buffer = state.get("momentum_buffer")
    if buffer is None:
        state["momentum_buffer"] = _cupy().empty_like(param)
        return state["momentum_buffer"], 1
    if not applies(param, buffer):  # e.g. loaded from a state dict in another layout
        buffer = state["momentum_buffer"] = _cupy().ascontiguousarray(buffer, dtype=param.dtype)
    return buffer, 0


def sgd_update(param, grad, state, lr, momentum, dampening, weight_decay, nesterov) -> None:
    """torch.optim.SGD's update of one parameter array, in place (reference: SGD.step's loop).

    `state` is the parameter's optimizer state dict (None when momentum is 0); its
    "momentum_buffer" is created here on the first step, as SGD.step does.
    """
    _check_same_shape("sgd_update", param, grad)
    buffer, first_step = _momentum_buffer(param, state, momentum)
    real = param.dtype.type
    args = (param, grad, buffer, _long(param.size), real(lr), real(momentum), real(dampening),
            real(weight_decay), _int(bool(nesterov)), _int(first_step))
    launch("sgd_update", param.dtype, param.size, args)


# sources.SGD_UPDATE_MANY's struct SgdTensors, field by field (all 8-byte words: no padding)
_SGD_TENSORS = backend.dtype([("address", backend.int64, (3 * MAX_SGD_TENSORS,)),
                              ("starts", backend.int64, (MAX_SGD_TENSORS + 1,))])


def sgd_launches(params, grads, buffers):
    """(SgdTensors struct, tensors, elements) for each sgd_update_many launch that updates these
    arrays: MAX_SGD_TENSORS tensors per launch."""
    return [(*_sgd_tensors(params[part], grads[part], buffers[part]), len(params[part]))
            for part in (slice(start, start + MAX_SGD_TENSORS)
                         for start in range(0, len(params), MAX_SGD_TENSORS))]


def _sgd_tensors(params, grads, buffers):
    """The SgdTensors struct sgd_update_many takes by value (a one-element host array whose
    fields are the C struct's): 3 addresses per tensor, then the starts; and the total size."""
    host = backend.module_for(backend.CPU)  # the struct lives in the launch's arguments
    struct = host.zeros(1, dtype=_SGD_TENSORS)
    starts, total = [], 0
    for param in params:
        starts.append(total)
        total += param.size
    addresses = [address(a) for triple in zip(params, grads, buffers, strict=True) for a in triple]
    struct["address"][0, :len(addresses)] = addresses
    struct["starts"][0, :len(starts) + 1] = starts + [total]
    return struct, total


def device_scalar(value: float, dtype, device_id: int):
    """A 0-d device array holding `value`, made once per (value, dtype, device) and kept."""
    return _device_scalar(float(value), backend.dtype(dtype).name, device_id)


@functools.lru_cache(maxsize=16)
def _device_scalar(value: float, dtype_name: str, device_id: int):
    xp = _cupy()
    with xp.cuda.Device(device_id):
        return xp.full((), value, dtype=dtype_name)


def sgd_update_many(params, grads, states, lr, momentum, dampening, weight_decay, nesterov):
    """sgd_update for a list of parameter arrays of one dtype and device, in one launch.

    `states` are the parameters' optimizer state dicts (None each when momentum is 0). The
    arrays' addresses go in the launch's arguments (sgd_launches), so the launch is the only GPU
    work, whichever arrays hold the gradients; past MAX_SGD_TENSORS tensors, one launch per 16.
    """
    if not params:
        return
    first = params[0]
    for param, grad in zip(params, grads, strict=True):
        _check_same_shape("sgd_update_many", param, grad)
        if not applies(first, param, grad):
            raise ValueError("sgd_update_many: every array must be a C-contiguous CUDA array "
                             f"of one float dtype ({first.dtype}) on one device")
    found = [_momentum_buffer(p, s, momentum) for p, s in zip(params, states, strict=True)]
    first_steps = {first_step for _, first_step in found}
    if len(first_steps) > 1:  # some buffers new, some not: one launch cannot do both
        for param, grad, state in zip(params, grads, states, strict=True):
            sgd_update(param, grad, state, lr, momentum, dampening, weight_decay, nesterov)
        return
    buffers = [buffer for buffer, _ in found]
    real, first_step = first.dtype.type, _int(first_steps.pop())
    rate = device_scalar(lr, first.dtype, first.device.id)
    for tensors, total, count in sgd_launches(params, grads, buffers):
        args = (tensors, _int(count), _long(total), rate, real(momentum), real(dampening),
                real(weight_decay), _int(bool(nesterov)), first_step)
        launch("sgd_update_many", first.dtype, total, args)


def gather_batch(inputs, targets, order, start: int, stop: int, out=None):
    """(inputs[order[start:stop]], targets[order[start:stop]]) in one launch, for 2-D inputs.

    Reference: DataLoader.__iter__'s two gathers. An index outside the data set gives a NaN row
    and a target of -1 instead of CuPy's wrap-around (the loader's own permutation has none).
    out: an (x, y) pair to write into (C-contiguous, inputs' dtype and int64), instead of new
    arrays (the captured step copies a batch into its buffers this way, in one launch).
    """
    if inputs.ndim != 2 or targets.ndim != 1 or len(inputs) != len(targets):
        raise ValueError(f"gather_batch: expected inputs (N, features) and targets (N,), got "
                         f"{tuple(inputs.shape)} and {tuple(targets.shape)}")
    if not (0 <= start <= stop <= len(order)):
        raise ValueError(f"gather_batch: rows {start}:{stop} are outside order of length "
                         f"{len(order)}")
    xp = _cupy()
    rows, features = stop - start, inputs.shape[1]
    if out is None:
        x, y = xp.empty((rows, features), dtype=inputs.dtype), xp.empty(rows, dtype=backend.int64)
    else:
        x, y = out
        if x.shape != (rows, features) or y.shape != (rows,) or y.dtype != backend.int64 \
                or not applies(inputs, x) or not y.flags.c_contiguous:
            raise ValueError(f"gather_batch: out must be C-contiguous arrays of shapes "
                             f"{(rows, features)} ({inputs.dtype}) and {(rows,)} (int64), got "
                             f"{tuple(x.shape)} ({x.dtype}) and {tuple(y.shape)} ({y.dtype})")
    args = (inputs, _int64_targets(targets), _int64_targets(order), x, y, _long(start),
            _long(rows), _long(features), _long(len(inputs)))
    launch("gather_batch", inputs.dtype, max(rows * features, rows), args)
    return x, y
