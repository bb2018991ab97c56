"""Selection: where, maximum, minimum, clamp, and the reductions max, amax, amin. Each output
element is one of the inputs' elements, so the gradient goes to the element it came from; ties
share it, as in PyTorch.
"""

from __future__ import annotations

from .. import backend, promotion
from ..engine.function import Op
from .elementwise import array_of, shape_of
from .reduce import expand_grad, normalize_dims, unbroadcast


class Where(Op):
    """z = a where condition, else b;  dz/da = 1 where condition,  dz/db = 1 elsewhere"""

    @staticmethod
    def forward(ctx, condition, a, b):
        condition = array_of(condition)
        if getattr(condition, "dtype", None) != backend.bool_:
            raise TypeError(f"where: the condition must be a bool tensor, got {condition.dtype}")
        # backward keeps the mask: its own copy, so a later change of the caller's is not seen
        ctx.condition = condition.copy() if True in ctx.needs_input_grad else condition
        ctx.shapes = (shape_of(a), shape_of(b))
        a, b = promotion.promote(array_of(a), array_of(b))
        return backend.array_module(condition).where(condition, a, b)

    @staticmethod
    def backward(ctx, grad):
        a_shape, b_shape = ctx.shapes
        grad_a = grad_b = None
        if ctx.needs_input_grad[1]:
            grad_a = unbroadcast(Where.apply(ctx.condition, grad, 0.0), a_shape)
        if ctx.needs_input_grad[2]:
            grad_b = unbroadcast(Where.apply(ctx.condition, 0.0, grad), b_shape)
        return None, grad_a, grad_b


class Maximum(Op):
    """z = max(x, y) elementwise;  dz/dx = 0 where x < y, 1/2 where x = y, else 1 (dz/dy alike;
    a NaN gives both its gradient, as in PyTorch)"""

    @staticmethod
    def forward(ctx, x, y):
        a, b = promotion.promote(array_of(x), array_of(y))
        z = backend.array_module(a).maximum(a, b)
        _keep_shares(ctx, x, y, z, x_loses=a < b, y_loses=a > b, tie=a == b)
        return z

    @staticmethod
    def backward(ctx, grad):
        return split_by_shares(ctx, grad)


class Minimum(Op):
    """z = min(x, y) elementwise;  dz/dx = 0 where x > y, 1/2 where x = y, else 1 (dz/dy alike;
    a NaN gives both its gradient, as in PyTorch)"""

    @staticmethod
    def forward(ctx, x, y):
        a, b = promotion.promote(array_of(x), array_of(y))
        z = backend.array_module(a).minimum(a, b)
        _keep_shares(ctx, x, y, z, x_loses=a > b, y_loses=a < b, tie=a == b)
        return z

    @staticmethod
    def backward(ctx, grad):
        return split_by_shares(ctx, grad)


class Clamp(Op):
    """z = min(max(x, lo), hi) with numbers lo, hi;  dz/dx = 1 where lo < x < hi, else 0 (0 at the
    bounds themselves, as in PyTorch)"""

    @staticmethod
    def forward(ctx, x, lo, hi):
        if lo is None and hi is None:
            raise RuntimeError("clamp: at least one of 'min' or 'max' must not be None")
        xp = backend.array_module(x.array)
        z, inside = x.array, True
        if lo is not None:
            z, inside = xp.maximum(z, lo), inside & (x.array > lo)
        if hi is not None:
            z, inside = xp.minimum(z, hi), inside & (x.array < hi)
        ctx.inside = inside  # a constant mask: the slope is 0 or 1
        return z.astype(x.array.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        return Where.apply(ctx.inside, grad, 0.0), None, None


class ClampByTensors(Op):
    """z = min(max(x, lo), hi) with tensors lo, hi;  dz/dx = 1 where lo < x < hi, 1/2 where x is
    at a bound, else 0;  dz/dlo = 1 where x < lo, 1/2 where x = lo;  dz/dhi alike (all of it
    where lo > hi, since z = hi there). A NaN: PyTorch's slopes, matched case by case."""

    @staticmethod
    def forward(ctx, x, lo, hi):
        x, lo = promotion.promote(array_of(x), array_of(lo))
        x, hi = promotion.promote(x, array_of(hi))
        lo = lo.astype(x.dtype, copy=False)  # in case hi raised x's dtype
        xp = backend.array_module(x)
        z = xp.minimum(xp.maximum(x, lo), hi)
        ordered, x_is_nan = lo < hi, xp.isnan(x)
        at_bound = ((x == lo) | (x == hi)) & ordered
        x_inside = ~(x < lo) & ~(x > hi) & ~((lo > hi) & ~x_is_nan)
        shares = (  # constants: the slopes are 0, 1/2 or 1
            xp.where(x_inside, xp.where(at_bound, 0.5, 1.0), 0.0),
            1.0 * ((x < lo) & (lo <= hi)) + 0.5 * ((x == lo) & ordered),
            1.0 * (((x > hi) & ~xp.isnan(lo)) | (lo > hi)) + 0.5 * ((x == hi) & ordered),
        )
        dtype = z.dtype if z.dtype.kind == "f" else backend.float32
        ctx.shares = [share.astype(dtype) for share in shares]
        ctx.shapes = (x.shape, lo.shape, hi.shape)
        return z

    @staticmethod
    def backward(ctx, grad):
        return split_by_shares(ctx, grad)


def _keep_shares(ctx, x, y, z, x_loses, y_loses, tie) -> None:
    """Each input's share of the gradient: 0 where it lost, 1/2 on a tie, else 1 (constants)."""
    xp = backend.array_module(z)
    dtype = z.dtype if z.dtype.kind == "f" else backend.float32
    ctx.shares = [xp.where(loses, 0.0, xp.where(tie, 0.5, 1.0)).astype(dtype)
                  for loses in (x_loses, y_loses)]
    ctx.shapes = (shape_of(x), shape_of(y))


def split_by_shares(ctx, grad):
    """Send grad to each input by its share (ctx.shares: constant 0, 1/2 or 1 per element), as
    PyTorch's maximum, minimum and clamp do: a share of 0 gives 0, even where grad is inf."""
    return tuple(unbroadcast(Where.apply(share == 0, 0.0, grad * share), shape) if needed else None
                 for share, shape, needed in zip(ctx.shares, ctx.shapes, ctx.needs_input_grad,
                                                 strict=True))


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
