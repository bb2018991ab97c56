"""Ways to make tensors: from data, filled with a constant, random, or a range."""

from __future__ import annotations

from . import backend
from .tensor import Tensor, shape_args


def tensor(data, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A new tensor from Python numbers, nested lists, or a NumPy or CuPy array."""
    return Tensor(data, dtype=dtype, device=device, requires_grad=requires_grad)


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
    dt = backend.dtype(dtype) or backend.float32
    result = Tensor._wrap_no_copy_no_checks(fill(backend.module_for(dev), dev, tuple(shape), dt), dev)
    return result.requires_grad_(requires_grad) if requires_grad else result


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

    return _make(fill, shape, dtype, device, requires_grad)


def rand(*shape, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Samples of the uniform distribution on [0, 1), from the device's seeded generator."""

    def fill(xp, dev, s, dt):
        return backend.generator(dev).random(s, dtype=dt)

    return _make(fill, shape, dtype, device, requires_grad)


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Numbers from start (default 0) up to end, step apart: int64 for ints, else float32."""
    if end is None:
        start, end = 0, start
    if step == 0:
        raise ValueError("arange: step must not be zero")
    dev = backend.device(device)
    if dtype is None:
        ints = all(isinstance(v, int) for v in (start, end, step))
        dtype = backend.int64 if ints else backend.float32
    array = backend.module_for(dev).arange(start, end, step, dtype=backend.dtype(dtype))
    return Tensor._wrap_no_copy_no_checks(array, dev).requires_grad_(requires_grad)


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
