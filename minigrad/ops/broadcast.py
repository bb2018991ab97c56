"""Dims and broadcasting: the one place where dims are checked and broadcasting is undone.

`normalize_dims` turns a `dim` argument into axes, with one message style for every op.
Broadcasting and its adjoint are a pair of Functions, each the other's backward: `BroadcastTo`
stretches a tensor to a larger shape, `SumTo` sums a gradient back down to the smaller one.
"""

from __future__ import annotations

from .. import backend
from ..autograd.function import Op
from .summation import cascade_sum


def normalize_dims(dim, ndim: int, op: str) -> tuple:
    """Turn dim (None, an int or a sequence, negatives allowed) into sorted non-negative axes."""
    dims = (dim,) if isinstance(dim, int) else tuple(dim) if dim is not None else ()
    if not dims:  # None or (): every dim, as in PyTorch's sum(dim=())
        return tuple(range(ndim))
    rank = max(ndim, 1)  # a 0-d tensor accepts dim 0 and -1, as in PyTorch
    for d in dims:
        if not isinstance(d, int) or isinstance(d, bool):
            raise TypeError(f"{op}: dim must be an int or a tuple of ints, got {d!r}")
        if not -rank <= d < rank:
            raise IndexError(
                f"{op}: dim {d} is out of range for a tensor with {ndim} dimensions "
                f"(expected {-rank} to {rank - 1})"
            )
    axes = sorted({d % rank for d in dims})
    if len(axes) != len(dims):
        raise ValueError(f"{op}: dims {tuple(dims)} name the same dim more than once")
    return tuple(axes) if ndim else ()


def _sum_to(array, shape: tuple):
    """Sum an array down to `shape`: over the dims broadcasting prepended or stretched."""
    extra = array.ndim - len(shape)
    if extra:
        array = cascade_sum(array, tuple(range(extra)))
    stretched = tuple(i for i, size in enumerate(shape) if size == 1 and array.shape[i] != 1)
    if stretched:
        array = cascade_sum(array, stretched, keepdims=True)
    return array


class SumTo(Op):
    """z = x summed down to `shape` (undoes broadcasting);  dz/dx = grad broadcast back"""

    @staticmethod
    def forward(ctx, x, shape):
        ctx.input_shape = x.array.shape
        return backend.ensure_array(_sum_to(x.array, tuple(shape)), backend.array_module(x.array))

    @staticmethod
    def backward(ctx, grad):
        return BroadcastTo.apply(grad, ctx.input_shape), None


class BroadcastTo(Op):
    """z = x broadcast (stretched) to `shape`;  dz/dx = grad summed back down to x's shape"""

    @staticmethod
    def forward(ctx, x, shape):
        ctx.input_shape = x.array.shape
        try:
            return backend.expand(x.array, tuple(shape))
        except ValueError:
            raise RuntimeError(
                f"expand: the tensor of shape {tuple(x.array.shape)} cannot be expanded to "
                f"shape {tuple(shape)} (only size-1 dims can be stretched)"
            ) from None

    @staticmethod
    def backward(ctx, grad):
        return SumTo.apply(grad, ctx.input_shape), None


def unbroadcast(grad, shape: tuple):
    """The gradient of an input of `shape` that was broadcast up to grad's shape."""
    return grad if grad.array.shape == shape else SumTo.apply(grad, shape)


def expand_grad(grad, input_shape: tuple, axes: tuple, keepdim: bool):
    """Broadcast a reduced gradient back over the reduced axes: the adjoint of summing them."""
    if not keepdim:
        kept = list(grad.array.shape)
        for axis in axes:
            kept.insert(axis, 1)
        grad = grad.reshape(tuple(kept))
    return BroadcastTo.apply(grad, input_shape)
