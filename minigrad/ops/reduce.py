"""Sums, means, norms, variances and standard deviations over all elements or chosen dims (`dim`,
`keepdim`), running sums (cumsum), and broadcasting, whose adjoint is a sum: the one place where
dims are checked and broadcasting is undone.

`normalize_dims` turns a `dim` argument into axes, with one message style for every op.
Broadcasting and its adjoint are a pair of Functions, each the other's backward: `BroadcastTo`
stretches a tensor to a larger shape, `SumTo` sums a gradient back down to the smaller one
(`unbroadcast` is what every op's backward calls). Every float sum goes through `cascade_sum`.
"""

from __future__ import annotations

import math

from .. import backend
from ..engine.function import Op


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


class Sum(Op):
    """z = sum_i x_i over the chosen dims;  dz/dx_i = 1"""

    linear_in_tensors = True  # forward mode: the tangent is Sum of the tangents

    @staticmethod
    def forward(ctx, x, dim=None, keepdim=False):
        ctx.axes = normalize_dims(dim, x.array.ndim, "sum")
        ctx.input_shape, ctx.keepdim = x.array.shape, keepdim
        array = x.array
        if array.dtype.kind in "bu":  # PyTorch sums bool and unsigned ints into int64
            array = array.astype(backend.int64)
        return cascade_sum(array, ctx.axes, keepdim)

    @staticmethod
    def backward(ctx, grad):
        return expand_grad(grad, ctx.input_shape, ctx.axes, ctx.keepdim), None, None


class Mean(Op):
    """z = sum_i x_i / n over the chosen dims;  dz/dx_i = 1 / n"""

    linear_in_tensors = True  # forward mode: the tangent is Mean of the tangents

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
    def tangent(ctx, inputs, outputs, tangents):
        """dz = sum_i x_i dx_i / z (0 where z = 0)"""
        x, z, dx = inputs[0], outputs[0], tangents[0]
        axes = ctx.axes or None
        along = (x * dx).sum(axes, keepdim=True) if axes is not None else (x * dx).sum()
        if axes is not None and not ctx.keepdim:
            along = along.reshape(z.shape)
        return (along / z.where(z != 0, 1.0)).where(z != 0, 0.0)

    @staticmethod
    def backward(ctx, grad):
        x, z = ctx.saved_tensors
        spread = (expand_grad(t, ctx.input_shape, ctx.axes, ctx.keepdim) for t in (grad, z))
        grad, z = spread
        # Where z = 0 every x_i in that reduction is 0 too, so x / 1 gives PyTorch's 0 slope.
        safe = z.where(z != 0, 1.0)
        return grad * x / safe, None, None


class Var(Op):
    """z = sum_i (x_i - mean)**2 / (n - c) over the chosen dims (c the correction);
    dz/dx_i = 2 (x_i - mean) / (n - c)"""

    @staticmethod
    def forward(ctx, x, dim=None, correction=1, keepdim=False):
        ctx.save_for_backward(x)  # as PyTorch: the slope is read off x
        return _variance(ctx, x, dim, correction, keepdim, "var")

    @staticmethod
    def tangent(ctx, inputs, outputs, tangents):
        """dz = 2 sum_i (x_i - mean) dx_i / (n - c)"""
        return _var_tangent(ctx, inputs[0], tangents[0], outputs[0].shape)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return _var_backward(ctx, grad, x), None, None, None


class Std(Op):
    """z = sqrt(var(x)) over the chosen dims;  dz/dx_i = (x_i - mean) / ((n - c) z) (0 where
    z = 0, as in PyTorch: every x_i is the mean there)"""

    @staticmethod
    def forward(ctx, x, dim=None, correction=1, keepdim=False):
        z = backend.array_module(x.array).sqrt(_variance(ctx, x, dim, correction, keepdim, "std"))
        ctx.save_for_backward(x, z)  # as PyTorch: x and the result
        return z

    @staticmethod
    def tangent(ctx, inputs, outputs, tangents):
        """dz = dvar / (2 z) (0 where z = 0)"""
        z = outputs[0]
        dvar = _var_tangent(ctx, inputs[0], tangents[0], z.shape)
        return (dvar / (z * 2).where(z != 0, 1.0)).where(z != 0, 0.0)

    @staticmethod
    def backward(ctx, grad):
        x, z = ctx.saved_tensors
        grad = (grad / (z * 2)).where(z != 0, 0.0)  # PyTorch's masked_fill: a select
        return _var_backward(ctx, grad, x), None, None, None


def _variance(ctx, x, dim, correction, keepdim: bool, op: str):
    """var's value, two-pass (the mean, then the squares about it); ctx keeps the dims."""
    array = x.array
    if array.dtype.kind != "f":
        raise RuntimeError("std and var only support floating point and complex dtypes")
    ctx.axes = normalize_dims(dim, array.ndim, op)
    ctx.input_shape, ctx.keepdim, ctx.correction = array.shape, keepdim, correction
    ctx.all_dims = dim is None or array.ndim == 0
    ctx.count = 1
    for axis in ctx.axes:
        ctx.count *= array.shape[axis]
    if array.dtype == backend.float16:  # add up in float32, as PyTorch does
        array = array.astype(backend.float32)
    mean = cascade_sum(array, ctx.axes, True) / ctx.count
    centred = array - mean
    if array.size > ctx.count:  # several results: PyTorch's Welford gives exactly 0 for equal
        # values (a rounded mean would not); one correction of the mean does the same here.
        centred = array - (mean + cascade_sum(centred, ctx.axes, True) / ctx.count)
    var = cascade_sum(centred * centred, ctx.axes, keepdim) / max(ctx.count - correction, 0)
    return backend.array_module(array).asarray(var, dtype=x.array.dtype)  # (0 dof: NaN or inf)


def _var_tangent(ctx, x, dx, shape):
    """var's forward derivative: 2 sum_i (x_i - mean) dx_i / (n - c), along var's dims."""
    axes = tuple(ctx.axes) or None
    mean = x.mean(axes, keepdim=True) if axes is not None else x.mean()
    products = (x - mean) * dx
    total = products.sum(axes, keepdim=True) if axes is not None else products.sum()
    return (total * (2.0 / (ctx.count - ctx.correction))).reshape(shape)


def _var_backward(ctx, grad, x):
    """PyTorch's var_backward: grad * 2 (x - mean) / (n - c), written with Tensor operations."""
    dof = ctx.count - ctx.correction
    if ctx.all_dims and dof <= 0:  # 2 / 0: inf, NaN where x is the mean (inf * 0)
        xp = backend.array_module(x.array)
        at_mean = x.array == cascade_sum(x.array, ctx.axes, True) / ctx.count
        slope = xp.where(at_mean, xp.nan, xp.inf).astype(x.array.dtype)
        return grad * x._wrap_no_copy_no_checks(slope, x.device)
    grad = expand_grad(grad, ctx.input_shape, ctx.axes, ctx.keepdim)
    scale = 2.0 / dof if dof else math.inf
    return scale * grad * (x - Mean.apply(x, ctx.axes, True))


class BroadcastTo(Op):
    """z = x broadcast (stretched) to `shape`;  dz/dx = grad summed back down to x's shape"""

    linear_in_tensors = True  # forward mode: the tangent is BroadcastTo of the tangents

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


class SumTo(Op):
    """z = x summed down to `shape` (undoes broadcasting);  dz/dx = grad broadcast back"""

    linear_in_tensors = True  # forward mode: the tangent is SumTo of the tangents

    @staticmethod
    def forward(ctx, x, shape):
        ctx.input_shape = x.array.shape
        return backend.ensure_array(_sum_to(x.array, tuple(shape)), backend.array_module(x.array))

    @staticmethod
    def backward(ctx, grad):
        return BroadcastTo.apply(grad, ctx.input_shape), None


def unbroadcast(grad, shape: tuple):
    """The gradient of an input of `shape` that was broadcast up to grad's shape."""
    return grad if grad.shape == tuple(shape) else SumTo.apply(grad, shape)


def expand_grad(grad, input_shape: tuple, axes: tuple, keepdim: bool):
    """Broadcast a reduced gradient back over the reduced axes: the adjoint of summing them."""
    if not keepdim and len(axes) < len(input_shape):  # (from a 0-d grad, broadcasting does it)
        kept = list(grad.shape)
        for axis in axes:
            kept.insert(axis, 1)
        grad = grad.reshape(tuple(kept))
    return BroadcastTo.apply(grad, input_shape)


def _sum_to(array, shape: tuple):
    """Sum an array down to `shape`: over the dims broadcasting prepended or stretched."""
    extra = array.ndim - len(shape)
    if extra:
        array = cascade_sum(array, tuple(range(extra)))
    stretched = tuple(i for i, size in enumerate(shape) if size == 1 and array.shape[i] != 1)
    if stretched:
        array = cascade_sum(array, stretched, keepdims=True)
    return array


# ---- sums as accurate as PyTorch's ------------------------------------------------------------
# Sums as accurate as PyTorch's on every axis: the rounding error grows as log(n), not n.
#
# NumPy sums pairwise only along an array's contiguous last axis. Along any other axis it adds the
# rows one at a time, so a float32 total drifts once it is large next to each row: a column of
# 20 million ones sums to 16,777,216 (2**24, where adding 1 no longer changes a float32). PyTorch
# sums in a cascade on every axis, and so does `cascade_sum`: it adds the rows 16 at a time into
# partial sums, then those 16 at a time, and so on, so each total is a sum of 16 numbers of like
# size at every level. Each level is one NumPy sum over a view (an axis split in two), no Python
# loop over the rows.

# Along an axis this short, adding one row at a time is accurate enough (NumPy's own sum).
SHORT = 64

# Longer axes: rows are added one at a time within blocks of BLOCK, the blocks' sums the same way,
# level by level (PyTorch's cascade also adds 16 at a level).
BLOCK = 16

# Rows of at least this many elements are summed block by block (see _cascade_along).
WIDE = 512

# Fewer columns than this (a (n, 2) array summed over n): a contiguous copy summed pairwise by
# NumPy is faster than adding rows this short one at a time.
NARROW = 16


def cascade_sum(array, axis=None, keepdims: bool = False):
    """array.sum(axis, keepdims) with PyTorch's accuracy on every axis (float arrays on the CPU)."""
    if array.size <= SHORT or isinstance(axis, int) and array.shape[axis] <= SHORT:
        return array.sum(axis=axis, keepdims=keepdims)  # short: NumPy's own sum is accurate
    if array.dtype.kind != "f" or backend.is_cuda_array(array):
        return array.sum(axis=axis, keepdims=keepdims)  # exact (integers) or a GPU's own tree
    axes = tuple(range(array.ndim)) if axis is None else (axis,) if isinstance(axis, int) else axis
    if array.dtype == backend.float16:  # accumulate in float32, as PyTorch does
        return cascade_sum(array.astype(backend.float32), axes, keepdims).astype(array.dtype)
    if len(axes) == array.ndim and array.flags.c_contiguous:  # one contiguous run: pairwise
        total = array.reshape(-1).sum()
        return total.reshape((1,) * array.ndim) if keepdims else total
    for a in sorted(axes, reverse=True):
        array = _cascade_along(array, a)
    return array if keepdims else array.squeeze(axis=tuple(axes))


def _cascade_along(array, axis: int):
    """The sum along one axis, kept as a size-1 axis: the sums of blocks of BLOCK slices, then the
    sums of blocks of those, and so on (what is left over after the last whole block is added at
    its level)."""
    length = array.shape[axis]
    contiguous_last = axis == array.ndim - 1 and array.strides[axis] == array.itemsize
    if length <= SHORT or contiguous_last:  # NumPy's own sum is accurate enough here
        return array.sum(axis=axis, keepdims=True)
    if array.size < NARROW * length:
        xp = backend.array_module(array)
        lined_up = xp.ascontiguousarray(xp.moveaxis(array, axis, -1))
        return xp.expand_dims(lined_up.sum(axis=-1), axis)
    whole = length - length % BLOCK
    head, tail = array.shape[:axis], array.shape[axis + 1:]
    part = array[(slice(None),) * axis + (slice(0, whole),)]
    # Split the axis in two (a view) and sum BLOCK slices into each partial sum, in one NumPy
    # call. Which half is summed is only a matter of speed: slices of a long row are added block
    # by block (each block's sum stays in cache); short rows are added as whole rows of partial
    # sums, BLOCK of them, one row length at a time, which NumPy vectorises better.
    if array.size // length >= WIDE:
        partial = part.reshape(head + (whole // BLOCK, BLOCK) + tail).sum(axis=axis + 1)
    else:
        partial = part.reshape(head + (BLOCK, whole // BLOCK) + tail).sum(axis=axis)
    total = _cascade_along(partial, axis)
    if whole < length:
        total += array[(slice(None),) * axis + (slice(whole, length),)].sum(axis=axis,
                                                                           keepdims=True)
    return total


class CumSum(Op):
    """z_i = x_1 + ... + x_i along dim;  dL/dx_i = g_i + ... + g_n (the gradients of the sums
    that x_i is in: cumsum of the flipped gradient, flipped back)"""

    @staticmethod
    def forward(ctx, x, dim: int):
        (ctx.axis,) = normalize_dims(dim, x.ndim, "cumsum") or (None,)
        array = x.array
        if array.dtype.kind in "biu":  # integers and bools sum in int64, as in PyTorch
            array = array.astype(backend.int64)
        if ctx.axis is None:  # a 0-d tensor: itself
            return array.copy()
        if array.dtype.kind == "f" and array.dtype.itemsize < 8:  # a long running sum in
            # float32 drifts (10^7 times 0.1 gives 1.09e6): sum in float64, round once, as torch
            wide = backend.array_module(array).cumsum(array, axis=ctx.axis, dtype=backend.float64)
            return wide.astype(array.dtype)
        return backend.array_module(array).cumsum(array, axis=ctx.axis)

    @staticmethod
    def tangent(ctx, inputs, outputs, tangents):
        """dz = cumsum(dx)"""
        return tangents[0].clone() if ctx.axis is None else CumSum.apply(tangents[0], ctx.axis)

    @staticmethod
    def backward(ctx, grad):
        if ctx.axis is None:
            return grad, None
        return CumSum.apply(grad.flip(ctx.axis), ctx.axis).flip(ctx.axis), None


class LogSumExp(Op):
    """z = log(sum(exp(x))) over dims, computed as m + log(sum(exp(x - m))) with m the largest
    value;  dz/dx = exp(x - z) (the softmax over those dims)"""

    @staticmethod
    def forward(ctx, x, dim, keepdim: bool):
        ctx.axes, ctx.keepdim = normalize_dims(dim, x.ndim, "logsumexp"), keepdim
        xp = backend.array_module(x.array)
        array = x.array if x.array.dtype.kind == "f" else x.array.astype(backend.float32)
        if array.size:
            largest = array.max(axis=ctx.axes, keepdims=True)
            largest = xp.where(xp.isfinite(largest), largest, 0)  # all -inf: -inf, no NaN
        else:  # nothing to add up: log(0) = -inf, as in PyTorch
            largest = xp.zeros([1 if a in ctx.axes else n for a, n in enumerate(array.shape)],
                               array.dtype)
        with xp.errstate(divide="ignore"):
            z = xp.log(xp.exp(array - largest).sum(axis=ctx.axes, keepdims=True)) + largest
        z = z if keepdim else z.reshape(_without(z.shape, ctx.axes))
        ctx.save_for_backward(x, z)
        return z

    @staticmethod
    def tangent(ctx, inputs, outputs, tangents):
        """dz = sum(exp(x - z) dx) over the dims"""
        softmax = (inputs[0] - _kept(outputs[0], ctx)).exp()
        return (softmax * tangents[0]).sum(ctx.axes, keepdim=ctx.keepdim)

    @staticmethod
    def backward(ctx, grad):
        x, z = ctx.saved_tensors
        return _kept(grad, ctx) * (x - _kept(z, ctx)).exp(), None, None


def _without(shape: tuple, axes: tuple) -> tuple:
    """shape with the reduced axes dropped."""
    return tuple(n for axis, n in enumerate(shape) if axis not in axes)


def _kept(t, ctx):
    """A reduced result (or its gradient) with the reduced dims back as size 1."""
    if ctx.keepdim or not ctx.axes:
        return t
    shape = list(t.shape)
    for axis in ctx.axes:
        shape.insert(axis, 1)
    return t.reshape(tuple(shape))
