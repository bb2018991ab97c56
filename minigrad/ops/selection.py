"""Selection: where, maximum, minimum, clamp, and the reductions max, min, amax, amin. Each output
element is one of the inputs' elements, so the gradient goes to the element it came from; ties
share it, as in PyTorch.
"""

from __future__ import annotations

from .. import backend, promotion
from ..engine.function import Op
from ..grad_mode import grad_mode
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
    def tangent(ctx, inputs, outputs, tangents):
        """dz = da where condition, else db"""
        condition, a, b = inputs
        _, da, db = tangents
        zero = outputs[0] * 0
        return Where.apply(condition, zero if da is None else da, zero if db is None else db)

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
        ctx.save_for_backward(x, y)  # as PyTorch: backward reads the slopes off x and y
        a, b = promotion.promote(array_of(x), array_of(y))
        return backend.array_module(a).maximum(a, b)

    @staticmethod
    def tangent(ctx, inputs, outputs, tangents):
        """dz = dx where x wins, dy where y wins, (dx + dy) / 2 on a tie"""
        a, b = promotion.promote(array_of(inputs[0]), array_of(inputs[1]))
        shares = _shares(outputs[0], x_loses=a < b, y_loses=a > b, tie=a == b)
        return _by_shares(outputs[0], shares, tangents)

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved_tensors
        a, b = promotion.promote(array_of(x), array_of(y))
        shares = _shares(grad, x_loses=a < b, y_loses=a > b, tie=a == b)
        return split_by_shares(ctx, grad, shares, (x, y))


class Minimum(Op):
    """z = min(x, y) elementwise;  dz/dx = 0 where x > y, 1/2 where x = y, else 1 (dz/dy alike;
    a NaN gives both its gradient, as in PyTorch)"""

    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(x, y)  # as PyTorch: backward reads the slopes off x and y
        a, b = promotion.promote(array_of(x), array_of(y))
        return backend.array_module(a).minimum(a, b)

    @staticmethod
    def tangent(ctx, inputs, outputs, tangents):
        """dz = dx where x wins, dy where y wins, (dx + dy) / 2 on a tie"""
        a, b = promotion.promote(array_of(inputs[0]), array_of(inputs[1]))
        shares = _shares(outputs[0], x_loses=a > b, y_loses=a < b, tie=a == b)
        return _by_shares(outputs[0], shares, tangents)

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved_tensors
        a, b = promotion.promote(array_of(x), array_of(y))
        shares = _shares(grad, x_loses=a > b, y_loses=a < b, tie=a == b)
        return split_by_shares(ctx, grad, shares, (x, y))


class Clamp(Op):
    """z = min(max(x, lo), hi) with numbers lo, hi;  dz/dx = 1 where lo < x < hi, else 0 (0 at the
    bounds themselves, as in PyTorch)"""

    @staticmethod
    def forward(ctx, x, lo, hi):
        if lo is None and hi is None:
            raise RuntimeError("clamp: at least one of 'min' or 'max' must not be None")
        xp = backend.array_module(x.array)
        z = x.array
        if lo is not None:
            z = xp.maximum(z, lo)
        if hi is not None:
            z = xp.minimum(z, hi)
        ctx.save_for_backward(x)  # as PyTorch: backward reads the slope off x
        ctx.bounds = lo, hi
        return z.astype(x.array.dtype, copy=False)

    @staticmethod
    def tangent(ctx, inputs, outputs, tangents):
        """dz = dx where lo < x < hi, else 0"""
        x, lo, hi = inputs
        inside = True
        if lo is not None:
            inside = inside & (x.array > lo)
        if hi is not None:
            inside = inside & (x.array < hi)
        return Where.apply(inside, tangents[0], 0.0)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        (lo, hi), inside = ctx.bounds, True
        if lo is not None:
            inside = inside & (x.array > lo)
        if hi is not None:
            inside = inside & (x.array < hi)
        return Where.apply(inside, grad, 0.0), None, None  # a select: 0 outside, even for NaN


class ClampByTensors(Op):
    """z = min(max(x, lo), hi) with tensors lo, hi;  dz/dx = 1 where lo < x < hi, 1/2 where x is
    at a bound, else 0;  dz/dlo = 1 where x < lo, 1/2 where x = lo;  dz/dhi alike (all of it
    where lo > hi, since z = hi there). A NaN: PyTorch's slopes, matched case by case."""

    @staticmethod
    def forward(ctx, x, lo, hi):
        ctx.save_for_backward(x, lo, hi)  # as PyTorch: backward reads the slopes off all three
        x, lo, hi = _promote3(x, lo, hi)
        xp = backend.array_module(x)
        return xp.minimum(xp.maximum(x, lo), hi)

    @staticmethod
    def tangent(ctx, inputs, outputs, tangents):
        """dz = dx, dlo or dhi by the same shares as backward (1/2 each at a bound)"""
        x, lo, hi = _promote3(*inputs)
        xp = backend.array_module(x)
        ordered, x_is_nan = lo < hi, xp.isnan(x)
        at_bound = ((x == lo) | (x == hi)) & ordered
        x_inside = ~(x < lo) & ~(x > hi) & ~((lo > hi) & ~x_is_nan)
        dtype = outputs[0].array.dtype
        shares = (xp.where(x_inside, xp.where(at_bound, 0.5, 1.0), 0.0).astype(dtype),
                  (1.0 * ((x < lo) & (lo <= hi)) + 0.5 * ((x == lo) & ordered)).astype(dtype),
                  (1.0 * (((x > hi) & ~xp.isnan(lo)) | (lo > hi))
                   + 0.5 * ((x == hi) & ordered)).astype(dtype))
        parts = [Where.apply(share == 0, 0.0, t * share) for share, t in
                 zip(shares, tangents, strict=True) if t is not None]
        total = parts[0]
        for part in parts[1:]:
            total = total + part
        return total if tuple(total.shape) == tuple(outputs[0].shape) else \
            total.expand(outputs[0].shape)

    @staticmethod
    def backward(ctx, grad):
        tensors = ctx.saved_tensors
        x, lo, hi = _promote3(*tensors)
        xp = backend.array_module(x)
        ordered, x_is_nan = lo < hi, xp.isnan(x)
        at_bound = ((x == lo) | (x == hi)) & ordered
        x_inside = ~(x < lo) & ~(x > hi) & ~((lo > hi) & ~x_is_nan)
        shares = (  # constants: the slopes are 0, 1/2 or 1
            xp.where(x_inside, xp.where(at_bound, 0.5, 1.0), 0.0),
            1.0 * ((x < lo) & (lo <= hi)) + 0.5 * ((x == lo) & ordered),
            1.0 * (((x > hi) & ~xp.isnan(lo)) | (lo > hi)) + 0.5 * ((x == hi) & ordered),
        )
        shares = [share.astype(grad.array.dtype) for share in shares]
        return split_by_shares(ctx, grad, shares, tensors)


def _promote3(x, lo, hi):
    """The arrays of clamp's x, lo and hi in one dtype, PyTorch's."""
    x, lo = promotion.promote(array_of(x), array_of(lo))
    x, hi = promotion.promote(x, array_of(hi))
    return x, lo.astype(x.dtype, copy=False), hi  # (lo too, in case hi raised x's dtype)


def _shares(grad, x_loses, y_loses, tie) -> list:
    """Each input's share of the gradient: 0 where it lost, 1/2 on a tie, else 1 (constants)."""
    xp = backend.module_for(grad.device)
    return [xp.where(loses, 0.0, xp.where(tie, 0.5, 1.0)).astype(grad.dtype)
            for loses in (x_loses, y_loses)]


def split_by_shares(ctx, grad, shares, inputs):
    """Send grad to each input by its share (constant 0, 1/2 or 1 per element), as PyTorch's
    maximum, minimum and clamp do: a share of 0 gives 0, even where grad is inf or NaN."""
    return tuple(unbroadcast(Where.apply(share == 0, 0.0, grad * share), shape_of(value))
                 if needed else None
                 for share, value, needed in zip(shares, inputs, ctx.needs_input_grad,
                                                 strict=True))


def _by_shares(like, shares, tangents):
    """sum_i share_i dx_i, each input's tangent by its share (0, 1/2 or 1 per element)."""
    parts = [Where.apply(share == 0, 0.0, t * share) for share, t in
             zip(shares, tangents, strict=True) if t is not None]
    total = parts[0] if len(parts) == 1 else parts[0] + parts[1]
    return total if tuple(total.shape) == tuple(like.shape) else total.expand(like.shape)


def _spread_tangent(x, z, tangent, axes, keepdim):
    """The tangent of max/amax: dx averaged over the elements equal to the result."""
    xp = backend.array_module(x.array)
    full = z.array if keepdim or axes is None else xp.expand_dims(z.array, axes)
    hits = x.array == full
    count = hits.sum(axis=axes, keepdims=True)
    share = (hits / xp.where(count == 0, xp.nan, count)).astype(x.array.dtype)
    spread = tangent * share
    return spread.sum() if axes is None else spread.sum(axes, keepdim=keepdim)


class Max(Op):
    """z = max_i x_i;  dz/dx_i = 1/k at each of the k elements equal to the max, else 0"""

    @staticmethod
    def forward(ctx, x):
        return _extreme_of_all(ctx, x, "max")

    @staticmethod
    def tangent(ctx, inputs, outputs, tangents):
        """dz = the mean of dx over the elements equal to z"""
        return _spread_tangent(inputs[0], outputs[0], tangents[0], None, False)

    @staticmethod
    def backward(ctx, grad):
        return _spread_evenly(ctx, grad)


class Min(Op):
    """z = min_i x_i;  dz/dx_i = 1/k at each of the k elements equal to the min, else 0"""

    @staticmethod
    def forward(ctx, x):
        return _extreme_of_all(ctx, x, "min")

    @staticmethod
    def tangent(ctx, inputs, outputs, tangents):
        """dz = the mean of dx over the elements equal to z"""
        return _spread_tangent(inputs[0], outputs[0], tangents[0], None, False)

    @staticmethod
    def backward(ctx, grad):
        return _spread_evenly(ctx, grad)


def _extreme_of_all(ctx, x, name: str):
    """max() or min()'s forward: the extreme of all the elements (NaN if there is one)."""
    if x.array.size == 0:
        raise RuntimeError(f"{name}: cannot take the {name} of an empty tensor")
    z = x.array.max() if name == "max" else x.array.min()
    ctx.save_for_backward(x, z)  # as PyTorch: backward finds the extremes by comparing the two
    return z


def _spread_evenly(ctx, grad):
    """grad / k at the k elements equal to the result (its NaNs when it is NaN), 0 elsewhere: a
    select, as PyTorch's, so that a NaN grad stays at the extremes."""
    x, z = ctx.saved_tensors
    xp = backend.array_module(x.array)
    hits = (x.array == z.array) | (xp.isnan(x.array) & xp.isnan(z.array))
    count = type(grad)._wrap_no_copy_no_checks(xp.asarray(hits.sum(), grad.array.dtype),
                                               grad.device)
    return Where.apply(hits, grad / count, 0.0)


class AMax(Op):
    """z = max of x over the chosen dims;  dz/dx_i = 1/k at each of the k elements equal to the
    max, else 0 (ties share the gradient; a NaN max gives NaN slopes, as in PyTorch)"""

    @staticmethod
    def forward(ctx, x, dim=None, keepdim=False):
        return _extreme(ctx, x, dim, keepdim, "amax")

    @staticmethod
    def tangent(ctx, inputs, outputs, tangents):
        """dz = the mean of dx over the elements equal to z, along dim"""
        return _spread_tangent(inputs[0], outputs[0], tangents[0], ctx.axes, ctx.keepdim)

    @staticmethod
    def backward(ctx, grad):
        return expand_grad(grad, ctx.input_shape, ctx.axes, ctx.keepdim) * _share(ctx), None, None


class AMin(Op):
    """z = min of x over the chosen dims;  dz/dx_i = 1/k at each of the k elements equal to the
    min, else 0 (ties share the gradient; a NaN min gives NaN slopes, as in PyTorch)"""

    @staticmethod
    def forward(ctx, x, dim=None, keepdim=False):
        return _extreme(ctx, x, dim, keepdim, "amin")

    @staticmethod
    def tangent(ctx, inputs, outputs, tangents):
        """dz = the mean of dx over the elements equal to z, along dim"""
        return _spread_tangent(inputs[0], outputs[0], tangents[0], ctx.axes, ctx.keepdim)

    @staticmethod
    def backward(ctx, grad):
        return expand_grad(grad, ctx.input_shape, ctx.axes, ctx.keepdim) * _share(ctx), None, None


def _extreme(ctx, x, dim, keepdim: bool, name: str):
    """amax or amin's forward: the values; x and the values are saved, as PyTorch saves them."""
    array = x.array
    ctx.axes = normalize_dims(dim, array.ndim, name)
    ctx.input_shape, ctx.keepdim = array.shape, keepdim
    if array.size == 0 and dim is None:
        raise RuntimeError(f"{name}(): Expected reduction dim to be specified for "
                           "input.numel() == 0. Specify the reduction dim with the 'dim' argument.")
    for axis in ctx.axes:
        if array.shape[axis] == 0:
            raise IndexError(f"{name}(): Expected reduction dim {axis} to have non-zero size.")
    z = (array.max if name == "amax" else array.min)(axis=ctx.axes, keepdims=True)
    if not keepdim:
        z = backend.array_module(array).squeeze(z, axis=ctx.axes)
    ctx.save_for_backward(x, z)
    return z


def _share(ctx):
    """Each element's share of amax's or amin's gradient: 1/k at the k elements equal to the
    result, else 0; NaN where the result is NaN (it equals nothing), as in PyTorch."""
    x, z = ctx.saved_tensors
    xp = backend.array_module(x.array)
    hits = x.array == (z.array if ctx.keepdim else xp.expand_dims(z.array, ctx.axes))
    count = hits.sum(axis=ctx.axes, keepdims=True)
    share = hits / xp.where(count == 0, xp.nan, count)
    return share.astype(x.array.dtype)


class MaxDim(Op):
    """z = max_i x_i along dim;  dz/dx_i = 1 at the index of the max (argmax), else 0"""

    @staticmethod
    def forward(ctx, x, indices, dim, keepdim=False):
        """`indices` is x.argmax(dim, keepdims=True), which Tensor.max also returns."""
        indices = array_of(indices)
        if x.array.ndim == 0:
            ctx.axis = None
            return x.array.copy()
        (axis,) = normalize_dims(dim, x.array.ndim, "max")
        xp = backend.array_module(x.array)
        values = xp.take_along_axis(x.array, indices, axis=axis)
        positions = xp.arange(x.array.shape[axis]).reshape(
            [-1 if a == axis else 1 for a in range(x.array.ndim)]
        )
        ctx.save_for_backward(positions == indices)  # a constant mask (PyTorch keeps indices)
        ctx.axis, ctx.input_shape, ctx.keepdim = axis, x.array.shape, keepdim
        return values if keepdim else values.squeeze(axis)

    @staticmethod
    def tangent(ctx, inputs, outputs, tangents):
        """dz = dx at the index of the max"""
        if ctx.axis is None:
            return tangents[0].clone()  # (its own memory, as the output's: see inplace._write)
        x, indices = inputs[0], inputs[1]
        xp = backend.array_module(x.array)
        positions = xp.arange(x.array.shape[ctx.axis]).reshape(
            [-1 if a == ctx.axis else 1 for a in range(x.array.ndim)])
        picked = Where.apply(positions == indices, tangents[0], 0.0)
        return picked.sum(ctx.axis, keepdim=ctx.keepdim)

    @staticmethod
    def backward(ctx, grad):
        if ctx.axis is None:
            return grad, None, None, None
        (mask,) = ctx.saved_tensors  # a select, as PyTorch's scatter: 0 off the max, even for NaN
        grad = expand_grad(grad, ctx.input_shape, (ctx.axis,), ctx.keepdim)
        return Where.apply(mask.array, grad, 0.0), None, None, None


class NoGradient(Op):
    """y = f(x, ...) for an f without a derivative (a comparison, an argmax, isnan, any): y holds
    bools or indices, data to backward, so no gradient flows back through it

    An op all the same, so that mg.compile's trace sees it (and a replay computes it again); it
    runs with grad mode off, as nothing of it is recorded (a split piece changed in place may be
    compared, as in PyTorch)."""

    @classmethod
    def apply(cls, *args):
        previous = grad_mode.enabled
        grad_mode.enabled = False
        try:
            return super().apply(*args)
        finally:
            grad_mode.enabled = previous

    @staticmethod
    def tangent(ctx, inputs, outputs, tangents):
        """none: bools and indices carry no tangent"""
        return None

    @staticmethod
    def forward(ctx, fn, *args):
        arrays = [array_of(a) for a in args]
        xp = backend.array_module(next(a for a in arrays if backend.is_array(a)))
        return backend.ensure_array(fn(*arrays), xp)  # NumPy gives scalars for 0-d results

    @staticmethod
    def backward(ctx, *grads):
        return (None,) * len(ctx.needs_input_grad)
