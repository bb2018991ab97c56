"""Elementwise math with NumPy broadcasting: add, sub, mul, div, pow, neg, exp, log, sqrt, clamp,
where.

Inputs may be Tensors or Python numbers; a number gets no gradient (its needs_input_grad is
False). forward computes on the arrays; backward is written with Tensor operations, so it can be
recorded (create_graph=True) and differentiated again.
"""

from __future__ import annotations

import math
import operator

from .. import backend, promotion
from ..autograd.function import Op
from .broadcast import unbroadcast


def _array(value):
    """The backend array of a Tensor; a Python number stays a number."""
    return value.array if hasattr(value, "array") else value


def _shape(value) -> tuple:
    return getattr(_array(value), "shape", ())


def _binary(name: str, op, x, y, true_divide: bool = False):
    """op(x, y) on the arrays, in PyTorch's result dtype."""
    x, y = promotion.promote(_array(x), _array(y), true_divide)
    try:
        return op(x, y)
    except ValueError:
        try:
            backend.broadcast_shapes(_shape(x), _shape(y))
        except ValueError:
            raise ValueError(
                f"{name}: shapes {tuple(_shape(x))} and {tuple(_shape(y))} "
                "cannot be broadcast together"
            ) from None
        raise


class Add(Op):
    """z = x + y;  dz/dx = 1,  dz/dy = 1"""

    @staticmethod
    def forward(ctx, x, y):
        ctx.shapes = (_shape(x), _shape(y))
        return _binary("add", operator.add, x, y)

    @staticmethod
    def backward(ctx, grad):
        x_shape, y_shape = ctx.shapes
        return (
            unbroadcast(grad, x_shape) if ctx.needs_input_grad[0] else None,
            unbroadcast(grad, y_shape) if ctx.needs_input_grad[1] else None,
        )


class Sub(Op):
    """z = x - y;  dz/dx = 1,  dz/dy = -1"""

    @staticmethod
    def forward(ctx, x, y):
        ctx.shapes = (_shape(x), _shape(y))
        return _binary("sub", operator.sub, x, y)

    @staticmethod
    def backward(ctx, grad):
        x_shape, y_shape = ctx.shapes
        return (
            unbroadcast(grad, x_shape) if ctx.needs_input_grad[0] else None,
            unbroadcast(-grad, y_shape) if ctx.needs_input_grad[1] else None,
        )


class Mul(Op):
    """z = x * y;  dz/dx = y,  dz/dy = x"""

    @staticmethod
    def forward(ctx, x, y):
        needs_x, needs_y = ctx.needs_input_grad  # save only what the gradients use, as PyTorch
        ctx.save_for_backward(x if needs_y else None, y if needs_x else None)
        ctx.shapes = (_shape(x), _shape(y))
        return _binary("mul", operator.mul, x, y)

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved_tensors
        x_shape, y_shape = ctx.shapes
        return (
            unbroadcast(grad * y, x_shape) if ctx.needs_input_grad[0] else None,
            unbroadcast(grad * x, y_shape) if ctx.needs_input_grad[1] else None,
        )


class Div(Op):
    """z = x / y;  dz/dx = 1 / y,  dz/dy = -x / y**2"""

    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(x if ctx.needs_input_grad[1] else None, y)  # x only for dz/dy
        ctx.shapes = (_shape(x), _shape(y))
        return _binary("div", operator.truediv, x, y, true_divide=True)

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved_tensors
        x_shape, y_shape = ctx.shapes
        return (
            unbroadcast(grad / y, x_shape) if ctx.needs_input_grad[0] else None,
            unbroadcast(-grad * x / (y * y), y_shape) if ctx.needs_input_grad[1] else None,
        )


class Reciprocal(Op):
    """z = 1 / x;  dz/dx = -z ** 2"""

    @staticmethod
    def forward(ctx, x):
        z = _binary("reciprocal", operator.truediv, 1.0, _float(x.array))
        ctx.save_for_backward(z)
        return z

    @staticmethod
    def backward(ctx, grad):
        (z,) = ctx.saved_tensors
        return -grad * z * z


class Pow(Op):
    """z = x ** y;  dz/dx = y * x ** (y - 1),  dz/dy = z * log(x)"""

    @staticmethod
    def forward(ctx, x, y):
        z = _binary("pow", operator.pow, x, y)
        # What PyTorch saves: x and y, and z only for y's slope (so x ** 2 may be changed in place)
        ctx.save_for_backward(x, y, z if ctx.needs_input_grad[1] else None)
        return z

    @staticmethod
    def backward(ctx, grad):
        x, y, z = ctx.saved_tensors
        grad_x = grad_y = None
        if ctx.needs_input_grad[0]:
            # Where y = 0 the slope is 0, also at x = 0 (where the formula gives 0 * inf = nan).
            slope = y * x ** (y - 1)
            if not isinstance(y, (int, float)):
                slope = Where.apply(_array(y == 0), 0.0, slope)
            elif y == 0:
                slope = 0.0
            grad_x = unbroadcast(grad * slope, _shape(x))
        if ctx.needs_input_grad[1]:
            # Where x = 0, z = 0**y does not change with y > 0 (the formula gives 0 * -inf = nan).
            if isinstance(x, (int, float)):
                log_x = math.log(x) if x > 0 else (0.0 if x == 0 else math.nan)
            else:
                log_x = Where.apply(_array(x == 0), 1.0, x).log()
            grad_y = unbroadcast(grad * z * log_x, _shape(y))
        return grad_x, grad_y


class Neg(Op):
    """z = -x;  dz/dx = -1"""

    @staticmethod
    def forward(ctx, x):
        return -x.array

    @staticmethod
    def backward(ctx, grad):
        return -grad


class Exp(Op):
    """z = exp(x);  dz/dx = z"""

    @staticmethod
    def forward(ctx, x):
        z = backend.array_module(x.array).exp(_float(x.array))
        ctx.save_for_backward(z)
        return z

    @staticmethod
    def backward(ctx, grad):
        (z,) = ctx.saved_tensors
        return grad * z


class Log(Op):
    """z = log(x);  dz/dx = 1 / x"""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return backend.array_module(x.array).log(_float(x.array))

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad / x


class Sqrt(Op):
    """z = sqrt(x);  dz/dx = 1 / (2 z)"""

    @staticmethod
    def forward(ctx, x):
        z = backend.array_module(x.array).sqrt(_float(x.array))
        ctx.save_for_backward(z)
        return z

    @staticmethod
    def backward(ctx, grad):
        (z,) = ctx.saved_tensors
        return grad / (2 * z)


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
        x, lo = promotion.promote(_array(x), _array(lo))
        x, hi = promotion.promote(x, _array(hi))
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


class Where(Op):
    """z = a where condition, else b;  dz/da = 1 where condition,  dz/db = 1 elsewhere"""

    @staticmethod
    def forward(ctx, condition, a, b):
        condition = _array(condition)
        if getattr(condition, "dtype", None) != backend.bool_:
            raise TypeError(f"where: the condition must be a bool tensor, got {condition.dtype}")
        # backward keeps the mask: its own copy, so a later change of the caller's is not seen
        ctx.condition = condition.copy() if True in ctx.needs_input_grad else condition
        ctx.shapes = (_shape(a), _shape(b))
        a, b = promotion.promote(_array(a), _array(b))
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


def split_by_shares(ctx, grad):
    """Send grad to each input by its share (ctx.shares: constant 0, 1/2 or 1 per element), as
    PyTorch's maximum, minimum and clamp do: a share of 0 gives 0, even where grad is inf."""
    return tuple(unbroadcast(Where.apply(share == 0, 0.0, grad * share), shape) if needed else None
                 for share, shape, needed in zip(ctx.shares, ctx.shapes, ctx.needs_input_grad,
                                                 strict=True))


def _float(array):
    """Integer inputs to exp/log/sqrt give float32, as in PyTorch (NumPy would give float64)."""
    return array if array.dtype.kind == "f" else array.astype(backend.float32)
