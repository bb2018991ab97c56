"""Reductions: sum, mean and max over all elements or over chosen dims (`dim`, `keepdim`)."""

from __future__ import annotations

from .. import backend
from ..autograd.function import Function
from .broadcast import expand_grad, normalize_dims


class Sum(Function):
    """z = sum_i x_i over the chosen dims;  dz/dx_i = 1"""

    @staticmethod
    def forward(ctx, x, dim=None, keepdim=False):
        ctx.axes = normalize_dims(dim, x.array.ndim, "sum")
        ctx.input_shape, ctx.keepdim = x.array.shape, keepdim
        return x.array.sum(axis=ctx.axes, keepdims=keepdim)

    @staticmethod
    def backward(ctx, grad):
        return expand_grad(grad, ctx.input_shape, ctx.axes, ctx.keepdim), None, None


class Mean(Function):
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
        return x.array.mean(axis=ctx.axes, keepdims=keepdim)

    @staticmethod
    def backward(ctx, grad):
        grad = expand_grad(grad / ctx.count, ctx.input_shape, ctx.axes, ctx.keepdim)
        return grad, None, None


class Max(Function):
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


class MaxDim(Function):
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


class Norm(Function):
    """z = sqrt(sum_i x_i**2) over the chosen dims;  dz/dx_i = x_i / z (0 where z = 0, as in
    PyTorch: the formula would give 0 / 0 there)"""

    @staticmethod
    def forward(ctx, x, dim=None, keepdim=False):
        ctx.axes = normalize_dims(dim, x.array.ndim, "norm")
        ctx.input_shape, ctx.keepdim = x.array.shape, keepdim
        xp = backend.array_module(x.array)
        z = xp.sqrt((x.array * x.array).sum(axis=ctx.axes, keepdims=keepdim))
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
