"""Elementwise arithmetic with NumPy broadcasting: add, sub, mul, div, pow, neg, exp, log, sqrt.

Inputs may be arrays or Python numbers; a number gets no gradient (its needs_input_grad is False).
"""

from __future__ import annotations

import operator

from .. import backend
from ..autograd.function import Function
from .broadcast import unbroadcast


def _shape(x) -> tuple:
    return getattr(x, "shape", ())


def _binary(name: str, op, x, y, true_divide: bool = False):
    """op(x, y) in PyTorch's result dtype; returns it with the (promoted) x and y for backward."""
    x, y = backend.promote(x, y, true_divide)
    try:
        return op(x, y), x, y
    except ValueError:
        try:
            backend.broadcast_shapes(_shape(x), _shape(y))
        except ValueError:
            raise ValueError(
                f"{name}: shapes {tuple(_shape(x))} and {tuple(_shape(y))} "
                "cannot be broadcast together"
            ) from None
        raise


class Add(Function):
    """z = x + y;  dz/dx = 1,  dz/dy = 1"""

    @staticmethod
    def forward(ctx, x, y):
        ctx.shapes = (_shape(x), _shape(y))
        return _binary("add", operator.add, x, y)[0]

    @staticmethod
    def backward(ctx, grad):
        x_shape, y_shape = ctx.shapes
        return (
            unbroadcast(grad, x_shape) if ctx.needs_input_grad[0] else None,
            unbroadcast(grad, y_shape) if ctx.needs_input_grad[1] else None,
        )


class Sub(Function):
    """z = x - y;  dz/dx = 1,  dz/dy = -1"""

    @staticmethod
    def forward(ctx, x, y):
        ctx.shapes = (_shape(x), _shape(y))
        return _binary("sub", operator.sub, x, y)[0]

    @staticmethod
    def backward(ctx, grad):
        x_shape, y_shape = ctx.shapes
        return (
            unbroadcast(grad, x_shape) if ctx.needs_input_grad[0] else None,
            unbroadcast(-grad, y_shape) if ctx.needs_input_grad[1] else None,
        )


class Mul(Function):
    """z = x * y;  dz/dx = y,  dz/dy = x"""

    @staticmethod
    def forward(ctx, x, y):
        z, x, y = _binary("mul", operator.mul, x, y)
        ctx.save_for_backward(x, y)
        return z

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved_tensors
        return (
            unbroadcast(grad * y, _shape(x)) if ctx.needs_input_grad[0] else None,
            unbroadcast(grad * x, _shape(y)) if ctx.needs_input_grad[1] else None,
        )


class Div(Function):
    """z = x / y;  dz/dx = 1 / y,  dz/dy = -x / y**2"""

    @staticmethod
    def forward(ctx, x, y):
        z, x, y = _binary("div", operator.truediv, x, y, true_divide=True)
        ctx.save_for_backward(x, y)
        return z

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved_tensors
        return (
            unbroadcast(grad / y, _shape(x)) if ctx.needs_input_grad[0] else None,
            unbroadcast(-grad * x / (y * y), _shape(y)) if ctx.needs_input_grad[1] else None,
        )


class Pow(Function):
    """z = x ** y;  dz/dx = y * x ** (y - 1),  dz/dy = z * log(x)"""

    @staticmethod
    def forward(ctx, x, y):
        z, x, y = _binary("pow", operator.pow, x, y)
        ctx.save_for_backward(x, y, z)
        return z

    @staticmethod
    def backward(ctx, grad):
        x, y, z = ctx.saved_tensors
        xp = backend.array_module(z)
        x, y = xp.asarray(x, dtype=z.dtype), xp.asarray(y, dtype=z.dtype)  # numbers -> arrays
        grad_x = grad_y = None
        if ctx.needs_input_grad[0]:
            # Where y = 0 the slope is 0, also at x = 0 (where the formula gives 0 * inf = nan).
            slope = xp.where(y == 0, 0, y * x ** (y - 1))
            grad_x = unbroadcast(grad * slope, _shape(x))
        if ctx.needs_input_grad[1]:
            # Where x = 0, z = 0**y does not change with y > 0 (the formula gives 0 * -inf = nan).
            grad_y = unbroadcast(grad * z * xp.log(xp.where(x == 0, 1, x)), _shape(y))
        return grad_x, grad_y


class Neg(Function):
    """z = -x;  dz/dx = -1"""

    @staticmethod
    def forward(ctx, x):
        return -x

    @staticmethod
    def backward(ctx, grad):
        return -grad


class Exp(Function):
    """z = exp(x);  dz/dx = z"""

    @staticmethod
    def forward(ctx, x):
        z = backend.array_module(x).exp(x)
        ctx.save_for_backward(z)
        return z

    @staticmethod
    def backward(ctx, grad):
        (z,) = ctx.saved_tensors
        return grad * z


class Log(Function):
    """z = log(x);  dz/dx = 1 / x"""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return backend.array_module(x).log(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad / x


class Sqrt(Function):
    """z = sqrt(x);  dz/dx = 1 / (2 z)"""

    @staticmethod
    def forward(ctx, x):
        z = backend.array_module(x).sqrt(x)
        ctx.save_for_backward(z)
        return z

    @staticmethod
    def backward(ctx, grad):
        (z,) = ctx.saved_tensors
        return grad / (2 * z)
