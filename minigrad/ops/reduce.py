"""Reductions: sum, mean and max over all elements or over chosen dims (`dim`, `keepdim`)."""

from __future__ import annotations

from .. import backend
from ..autograd.function import Op
from .broadcast import expand_grad, normalize_dims
from .summation import cascade_sum


class Sum(Op):
    """z = sum_i x_i over the chosen dims;  dz/dx_i = 1"""

    @staticmethod
    def forward(ctx, x, dim=None, keepdim=False):
        ctx.axes = normalize_dims(dim, x.array.ndim, "sum")
        ctx.input_shape, ctx.keepdim = x.array.shape, keepdim
        return cascade_sum(x.array, ctx.axes, keepdim)

    @staticmethod
    def backward(ctx, grad):
        return expand_grad(grad, ctx.input_shape, ctx.axes, ctx.keepdim), None, None


class Mean(Op):
    """z = sum_i x_i / n over the chosen dims;  dz/dx_i = 1 / n"""

    @staticmethod
    def forward(ctx, x, dim=None, keepdim=False):
        if x.array.dtype.kind != "f":  # PyTorch refuses rather than pick a float type
            raise RuntimeError(
                "mean(): could not infer output dtype. Input dtype must be either a floating "
                f"point or complex dtype. Got: {x.array.dtype}"
            )
        ctx.axes = normalize_dims(dim, x.array.ndim, "mean")
        ctx.input_shape, ctx.keepdim = x.array.shape, keepdim
        ctx.count = 1
        for axis in ctx.axes:
            ctx.count *= x.array.shape[axis]
        array = x.array
        if array.dtype == backend.float16:  # add up in float32, as PyTorch does
            array = array.astype(backend.float32)
        mean = cascade_sum(array, ctx.axes, keepdim) / ctx.count
        return mean.astype(x.array.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        grad = expand_grad(grad / ctx.count, ctx.input_shape, ctx.axes, ctx.keepdim)
        return grad, None, None


class Max(Op):
    """z = max_i x_i;  dz/dx_i = 1 where x_i is the max (shared evenly between ties), else 0"""

    @staticmethod
    def forward(ctx, x):
        if x.array.size == 0:
            raise RuntimeError("max: cannot take the max of an empty tensor")
        z = x.array.max()
        xp = backend.array_module(x.array)
        # Which elements are the max (a nan max: the nans), as a constant share of the slope.
        share = ((x.array == z) | (xp.isnan(x.array) & xp.isnan(z))).astype(x.array.dtype)
        ctx.save_for_backward(share / share.sum())
        return z

    @staticmethod
    def backward(ctx, grad):
        (share,) = ctx.saved_tensors
        return grad * share


class AMax(Op):
    """z = max of x over the chosen dims;  dz/dx_i = 1/k at each of the k elements equal to the
    max, else 0 (ties share the gradient; a NaN max gives NaN slopes, as in PyTorch)"""

    @staticmethod
    def forward(ctx, x, dim=None, keepdim=False):
        return _extreme(ctx, x, dim, keepdim, "amax")

    @staticmethod
    def backward(ctx, grad):
        return expand_grad(grad, ctx.input_shape, ctx.axes, ctx.keepdim) * ctx.share, None, None


class AMin(Op):
    """z = min of x over the chosen dims;  dz/dx_i = 1/k at each of the k elements equal to the
    min, else 0 (ties share the gradient; a NaN min gives NaN slopes, as in PyTorch)"""

    @staticmethod
    def forward(ctx, x, dim=None, keepdim=False):
        return _extreme(ctx, x, dim, keepdim, "amin")

    @staticmethod
    def backward(ctx, grad):
        return expand_grad(grad, ctx.input_shape, ctx.axes, ctx.keepdim) * ctx.share, None, None


def _extreme(ctx, x, dim, keepdim: bool, name: str):
    """amax or amin's forward: the values, and each element's share of the gradient in ctx."""
    array = x.array
    ctx.axes = normalize_dims(dim, array.ndim, name)
    ctx.input_shape, ctx.keepdim = array.shape, keepdim
    if array.size == 0 and dim is None:
        raise RuntimeError(f"{name}(): Expected reduction dim to be specified for "
                           "input.numel() == 0. Specify the reduction dim with the 'dim' argument.")
    for axis in ctx.axes:
        if array.shape[axis] == 0:
            raise IndexError(f"{name}(): Expected reduction dim {axis} to have non-zero size.")
    axes = ctx.axes
    z = (array.max if name == "amax" else array.min)(axis=axes, keepdims=True)
    hits = array == z
    xp = backend.array_module(array)
    count = hits.sum(axis=axes, keepdims=True)  # 0 where the extreme is NaN (it equals nothing)
    share = hits / xp.where(count == 0, xp.nan, count)  # NaN shares there, as in PyTorch
    ctx.share = share.astype(array.dtype if array.dtype.kind == "f" else backend.float32)
    return z if keepdim else xp.squeeze(z, axis=axes)


class MaxDim(Op):
    """z = max_i x_i along dim;  dz/dx_i = 1 at the index of the max (argmax), else 0"""

    @staticmethod
    def forward(ctx, x, indices, dim, keepdim=False):
        """`indices` is x.argmax(dim, keepdims=True), which Tensor.max also returns."""
        if x.array.ndim == 0:
            ctx.axis = None
            return x.array.copy()
        (axis,) = normalize_dims(dim, x.array.ndim, "max")
        xp = backend.array_module(x.array)
        values = xp.take_along_axis(x.array, indices, axis=axis)
        positions = xp.arange(x.array.shape[axis]).reshape(
            [-1 if a == axis else 1 for a in range(x.array.ndim)]
        )
        ctx.save_for_backward((positions == indices).astype(x.array.dtype))  # a constant mask
        ctx.axis, ctx.input_shape, ctx.keepdim = axis, x.array.shape, keepdim
        return values if keepdim else values.squeeze(axis)

    @staticmethod
    def backward(ctx, grad):
        if ctx.axis is None:
            return grad, None, None, None
        (mask,) = ctx.saved_tensors
        return expand_grad(grad, ctx.input_shape, (ctx.axis,), ctx.keepdim) * mask, None, None, None


class Norm(Op):
    """z = sqrt(sum_i x_i**2) over the chosen dims;  dz/dx_i = x_i / z (0 where z = 0, as in
    PyTorch: the formula would give 0 / 0 there)"""

    @staticmethod
    def forward(ctx, x, dim=None, keepdim=False):
        ctx.axes = normalize_dims(dim, x.array.ndim, "norm")
        ctx.input_shape, ctx.keepdim = x.array.shape, keepdim
        xp = backend.array_module(x.array)
        z = xp.sqrt(cascade_sum(x.array * x.array, ctx.axes, keepdim))
        ctx.save_for_backward(x, z)
        return z

    @staticmethod
    def backward(ctx, grad):
        from .elementwise import Where  # (elementwise imports nothing from here)

        x, z = ctx.saved_tensors
        spread = (expand_grad(t, ctx.input_shape, ctx.axes, ctx.keepdim) for t in (grad, z))
        grad, z = spread
        # Where z = 0 every x_i in that reduction is 0 too, so x / 1 gives PyTorch's 0 slope.
        safe = Where.apply(z.array == 0, 1.0, z)
        return grad * x / safe, None, None
