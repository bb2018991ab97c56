"""Ways to make tensors: from data, filled with a constant, random, or a range.

The `*_like` factories are in factories_like.py.
"""

from __future__ import annotations

import math

from . import backend
from .grad_mode import grad_mode
from .tensor import Tensor, shape_args


def tensor(data, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A new tensor from Python numbers, nested lists, or a NumPy or CuPy array."""
    if device is None and not backend.is_array(data) and not isinstance(data, Tensor):
        device = backend.get_default_device()
    return Tensor._from_data(data, dtype=dtype, device=device, requires_grad=requires_grad)


def from_numpy(array) -> Tensor:
    """A CPU tensor that shares memory with a NumPy array (keeps its dtype)."""
    if not isinstance(array, backend.ndarray):
        raise TypeError(f"from_numpy expects a numpy.ndarray, got {type(array).__name__}")
    return Tensor._wrap_no_copy_no_checks(array, backend.CPU)


def _make(fill, shape, dtype, device, requires_grad) -> Tensor:
    shape = shape_args(shape)
    try:
        shape = tuple(backend.as_int(s, "size") for s in shape)
    except TypeError:
        raise TypeError(f"shape must be non-negative ints, got {tuple(shape)}") from None
    if any(s < 0 for s in shape):
        raise ValueError(f"shape must be non-negative ints, got {tuple(shape)}")
    dev = backend.device(device)
    dt = backend.dtype(dtype) or backend.get_default_dtype()
    array = fill(backend.module_for(dev), dev, tuple(shape), dt)
    result = Tensor._wrap_no_copy_no_checks(array, dev)
    return result.requires_grad_(requires_grad) if requires_grad else result


def _make_random(fill, shape, dtype, device, requires_grad) -> Tensor:
    """_make for random values. Inside mg.func.vmap, as its randomness= says: an error, one
    draw shared by every slice ("same"), or each slice its own ("different": a batched tensor,
    func/batching.py)."""
    if grad_mode.vmap_level:
        shape = tuple(shape_args(shape))
        return grad_mode.batching.random(
            lambda batch: _make(fill, (batch + shape,), dtype, device, requires_grad))
    return _make(fill, shape, dtype, device, requires_grad)


def zeros(*shape, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A tensor of zeros (float32 unless dtype is given)."""
    return _make(lambda xp, dev, s, dt: xp.zeros(s, dt), shape, dtype, device, requires_grad)


def ones(*shape, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A tensor of ones (float32 unless dtype is given)."""
    return _make(lambda xp, dev, s, dt: xp.ones(s, dt), shape, dtype, device, requires_grad)


def randn(*shape, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Samples of the standard normal distribution, from the device's seeded generator."""

    def fill(xp, dev, s, dt):
        return backend.generator(dev).standard_normal(s, dtype=dt)

    return _make_random(fill, shape, dtype, device, requires_grad)


def rand(*shape, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Samples of the uniform distribution on [0, 1), from the device's seeded generator."""

    def fill(xp, dev, s, dt):
        return backend.generator(dev).random(s, dtype=dt)

    return _make_random(fill, shape, dtype, device, requires_grad)


def arange(start, end=None, step=1, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Numbers from start (default 0) up to end, step apart: int64 for ints, else float32.

    As in PyTorch, there are ceil((end - start) / step) of them, each start + i * step
    computed in float64 and then converted (so float steps do not accumulate rounding).
    """
    if end is None:
        start, end = 0, start
    start, end, step = (v.item() if isinstance(v, Tensor) else v for v in (start, end, step))
    if step == 0:
        raise ValueError("arange: step must not be zero")
    if (end - start) * step < 0:
        raise RuntimeError(
            f"arange: upper bound and larger bound inconsistent with step sign (start={start}, "
            f"end={end}, step={step})"
        )
    dev = backend.device(device)
    if dtype is None:
        ints = all(isinstance(v, int) for v in (start, end, step))
        dtype = backend.int64 if ints else backend.get_default_dtype()
    dt = backend.dtype(dtype)
    xp = backend.module_for(dev)
    count = math.ceil((end - start) / step)
    if dt.kind in "iub" and all(isinstance(v, int) for v in (start, end, step)):
        array = xp.arange(start, end, step, dtype=dt)
    else:
        array = (start + xp.arange(count, dtype=backend.float64) * step).astype(dt)
    return Tensor._wrap_no_copy_no_checks(array, dev).requires_grad_(requires_grad)


def linspace(start, end, steps: int, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    """`steps` evenly spaced numbers from start to end, both included (computed as PyTorch:
    from start in the first half, back from end in the second)."""
    if not isinstance(steps, int) or steps < 0:
        raise RuntimeError(f"linspace: number of steps must be non-negative, got {steps!r}")
    dev = backend.device(device)
    dt = backend.dtype(dtype) or backend.get_default_dtype()
    xp = backend.module_for(dev)
    work = dt if dt.kind == "f" else backend.float64  # integer outputs step in float64
    first, last = work.type(start), work.type(end)
    step = (last - first) / work.type(max(steps - 1, 1))
    # PyTorch's kernel rounds step * i + start once (a fused multiply-add): in float64 the
    # product is exact, so one rounding to the dtype gives the same numbers.
    index = xp.arange(steps, dtype=backend.float64)
    first, last, step = (float(v) for v in (first, last, step))
    values = xp.where(index < steps // 2, first + step * index, last - step * (steps - index - 1))
    if steps == 1:
        values = xp.full(1, first, dtype=work)
    array = values.astype(dt)
    return Tensor._wrap_no_copy_no_checks(array, dev).requires_grad_(requires_grad)


def logspace(start, end, steps: int, base: float = 10.0, *, dtype=None, device=None,
             requires_grad=False) -> Tensor:
    """base ** linspace(start, end, steps)."""
    exponents = linspace(start, end, steps, dtype=backend.float64, device=device)
    dt = backend.dtype(dtype) or backend.get_default_dtype()
    array = (float(base) ** exponents.array).astype(dt)
    return Tensor._wrap_no_copy_no_checks(array, exponents.device).requires_grad_(requires_grad)


def full(size, fill_value, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    """fill_value everywhere: bool, int64 or float32 by its type, unless dtype is given."""
    if dtype is None:
        if isinstance(fill_value, bool):
            dtype = backend.bool_
        elif isinstance(fill_value, int):
            dtype = backend.int64
        elif isinstance(fill_value, Tensor):
            dtype, fill_value = fill_value.dtype, fill_value.item()
    return _make(lambda xp, dev, s, dt: xp.full(s, fill_value, dt), (size,), dtype, device,
                 requires_grad)


def empty(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A tensor whose values are whatever the memory held (write to it before reading)."""
    return _make(lambda xp, dev, s, dt: xp.empty(s, dt), size, dtype, device, requires_grad)


def eye(n: int, m: int | None = None, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    """An n x m matrix (n x n by default) with ones on the diagonal."""
    for name, value in (("n", n), ("m", m)):
        if value is not None and (not isinstance(value, int) or value < 0):
            raise RuntimeError(f"eye: {name} must be greater or equal to 0, got {value!r}")
    return _make(lambda xp, dev, s, dt: xp.eye(s[0], s[1], dtype=dt), (n, n if m is None else m),
                 dtype, device, requires_grad)


def randint(low, high=None, size=None, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Random integers in [low, high) (low is 0 when only high is given), int64 by default."""
    if size is None:
        if high is None or not isinstance(high, (tuple, list)):
            raise TypeError("randint() missing required argument 'size' (a tuple)")
        low, high, size = 0, low, high
    elif high is None:
        low, high = 0, low
    if high <= low:
        raise RuntimeError(f"random_ expects 'from' to be less than 'to', but got from={low} >= "
                           f"to={high}")

    def fill(xp, dev, s, dt):
        return backend.generator(dev).integers(low, high, s).astype(dt)

    return _make_random(fill, (tuple(size),), dtype or backend.int64, device, requires_grad)


def randperm(n: int, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    """The numbers 0..n-1 in a random order, int64 by default."""
    if not isinstance(n, int) or n < 0:
        raise RuntimeError(f"randperm: n must be non-negative, got {n!r}")

    def fill(xp, dev, s, dt):
        rng = backend.generator(dev)
        order = rng.permutation(n) if hasattr(rng, "permutation") else rng.random(n).argsort()
        return order.astype(dt)

    return _make(fill, (n,), dtype or backend.int64, device, requires_grad)
def zeros_like(other: Tensor, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Zeros with the shape (and, unless given, dtype and device) of another tensor."""
    return zeros(
        other.shape, dtype=dtype or other.dtype, device=device or other.device,
        requires_grad=requires_grad,
    )


def ones_like(other: Tensor, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Ones with the shape (and, unless given, dtype and device) of another tensor."""
    return ones(
        other.shape, dtype=dtype or other.dtype, device=device or other.device,
        requires_grad=requires_grad,
    )
