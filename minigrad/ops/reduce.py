"""Reductions: sum, mean and max over all elements or over chosen dims (`dim`, `keepdim`)."""

from __future__ import annotations

from .. import backend
from ..autograd.function import Function


def normalize_dims(dim, ndim: int, op: str) -> tuple:
    """Turn dim (None, an int or a sequence, negatives allowed) into sorted non-negative axes."""
    dims = (dim,) if isinstance(dim, int) else tuple(dim) if dim is not None else ()
    if not dims:  # None or (): every dim, as in PyTorch's sum(dim=())
        return tuple(range(ndim))
    rank = max(ndim, 1)  # a 0-d tensor accepts dim 0 and -1, as in PyTorch
    for d in dims:
        if not -rank <= d < rank:
            raise IndexError(
                f"{op}: dim {d} is out of range for a tensor with {ndim} dimensions "
                f"(expected {-rank} to {rank - 1})"
            )
    axes = sorted({d % rank for d in dims})
    if len(axes) != len(dims):
        raise ValueError(f"{op}: dims {tuple(dims)} name the same dim more than once")
    return tuple(axes) if ndim else ()


def expand_grad(grad, input_shape: tuple, axes: tuple, keepdim: bool):
    """Broadcast a reduced gradient back over the reduced axes: the adjoint of summing them."""
    if not keepdim:
        kept = list(grad.shape) if hasattr(grad, "shape") else []
        for axis in axes:
            kept.insert(axis, 1)
        grad = grad.reshape(kept)
    return backend.array_module(grad).broadcast_to(grad, input_shape)


class Sum(Function):
    """z = sum_i x_i over the chosen dims;  dz/dx_i = 1"""

    @staticmethod
    def forward(ctx, x, dim=None, keepdim=False):
        ctx.axes = normalize_dims(dim, x.ndim, "sum")
        ctx.input_shape, ctx.keepdim = x.shape, keepdim
        return x.sum(axis=ctx.axes, keepdims=keepdim)

    @staticmethod
    def backward(ctx, grad):
        return expand_grad(grad, ctx.input_shape, ctx.axes, ctx.keepdim), None, None


class Mean(Function):
    """z = sum_i x_i / n over the chosen dims;  dz/dx_i = 1 / n"""

    @staticmethod
    def forward(ctx, x, dim=None, keepdim=False):
        ctx.axes = normalize_dims(dim, x.ndim, "mean")
        ctx.input_shape, ctx.keepdim = x.shape, keepdim
        ctx.count = 1
        for axis in ctx.axes:
            ctx.count *= x.shape[axis]
        return x.mean(axis=ctx.axes, keepdims=keepdim)

    @staticmethod
    def backward(ctx, grad):
        grad = expand_grad(grad / ctx.count, ctx.input_shape, ctx.axes, ctx.keepdim)
        return grad, None, None


class Max(Function):
    """z = max_i x_i;  dz/dx_i = 1 where x_i is the max (shared evenly between ties), else 0"""

    @staticmethod
    def forward(ctx, x):
        if x.size == 0:
            raise RuntimeError("max: cannot take the max of an empty tensor")
        z = x.max()
        ctx.save_for_backward(x, z)
        return z

    @staticmethod
    def backward(ctx, grad):
        x, z = ctx.saved_tensors
        xp = backend.array_module(x)
        share = ((x == z) | (xp.isnan(x) & xp.isnan(z))).astype(x.dtype)  # a nan max: the nans
        return grad * share / share.sum()


class MaxDim(Function):
    """z = max_i x_i along dim;  dz/dx_i = 1 at the index of the max (argmax), else 0"""

    @staticmethod
    def forward(ctx, x, indices, dim, keepdim=False):
        """`indices` is x.argmax(dim, keepdims=True), which Tensor.max also returns."""
        if x.ndim == 0:
            ctx.axis = None
            return x.copy()
        (axis,) = normalize_dims(dim, x.ndim, "max")
        values = backend.array_module(x).take_along_axis(x, indices, axis=axis)
        ctx.save_for_backward(indices)
        ctx.axis, ctx.input_shape, ctx.keepdim = axis, x.shape, keepdim
        return values if keepdim else values.squeeze(axis)

    @staticmethod
    def backward(ctx, grad):
        if ctx.axis is None:
            return grad, None, None, None
        xp = backend.array_module(grad)
        if not ctx.keepdim:
            grad = xp.expand_dims(grad, ctx.axis)
        positions = xp.arange(ctx.input_shape[ctx.axis]).reshape(
            [-1 if axis == ctx.axis else 1 for axis in range(len(ctx.input_shape))]
        )
        (indices,) = ctx.saved_tensors
        return (positions == indices) * grad, None, None, None
