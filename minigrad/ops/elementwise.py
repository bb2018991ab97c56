"""Elementwise math with NumPy broadcasting: add, sub, mul, div, reciprocal, pow, neg, exp, log,
log1p, expm1, sqrt, sin, cos, abs, sign, and the roundings (floor, ceil, trunc, round).

Inputs may be Tensors or Python numbers; a number gets no gradient (its needs_input_grad is
False). forward computes on the arrays; backward is written with Tensor operations, so it can be
recorded (create_graph=True) and differentiated again.
"""

from __future__ import annotations

import math
import operator

from .. import backend, promotion
from ..engine.function import Op
from .reduce import unbroadcast


def array_of(value):
    """The backend array of a Tensor; a Python number stays a number."""
    return value.array if hasattr(value, "array") else value


def shape_of(value) -> tuple:
    return getattr(array_of(value), "shape", ())


def _binary(name: str, op, x, y, true_divide: bool = False):
    """op(x, y) on the arrays, in PyTorch's result dtype."""
    x, y = array_of(x), array_of(y)
    same_dtype = getattr(x, "dtype", None) is getattr(y, "dtype", 0)
    if not same_dtype or (true_divide and x.dtype.kind != "f"):
        x, y = promotion.promote(x, y, true_divide)  # where PyTorch's dtype is not NumPy's
    try:
        return op(x, y)
    except ValueError:
        try:
            backend.broadcast_shapes(shape_of(x), shape_of(y))
        except ValueError:
            raise ValueError(
                f"{name}: shapes {tuple(shape_of(x))} and {tuple(shape_of(y))} "
                "cannot be broadcast together"
            ) from None
        raise


class Add(Op):
    """z = x + y;  dz/dx = 1,  dz/dy = 1"""

    @staticmethod
    def forward(ctx, x, y):
        ctx.shapes = (shape_of(x), shape_of(y))
        return _binary("add", operator.add, x, y)

    @staticmethod
    def tangent(ctx, inputs, outputs, tangents):
        """dz = dx + dy (forward mode; a number's tangent is 0)"""
        return _sum_tangents(tangents, inputs)

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
        ctx.shapes = (shape_of(x), shape_of(y))
        return _binary("sub", operator.sub, x, y)

    @staticmethod
    def tangent(ctx, inputs, outputs, tangents):
        """dz = dx - dy"""
        dx, dy = tangents
        return _sum_tangents((dx, None if dy is None else -dy), inputs)

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
        ctx.shapes = (shape_of(x), shape_of(y))
        return _binary("mul", operator.mul, x, y)

    @staticmethod
    def tangent(ctx, inputs, outputs, tangents):
        """dz = dx y + x dy"""
        (x, y), (dx, dy) = inputs, tangents
        return _sum_tangents((None if dx is None else dx * y, None if dy is None else x * dy),
                             inputs)

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
        ctx.shapes = (shape_of(x), shape_of(y))
        return _binary("div", operator.truediv, x, y, true_divide=True)

    @staticmethod
    def tangent(ctx, inputs, outputs, tangents):
        """dz = dx / y - x dy / y**2"""
        y, (dx, dy) = inputs[1], tangents
        return _sum_tangents((None if dx is None else dx / y,
                              None if dy is None else -(outputs[0] / y) * dy), inputs)

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
    def tangent(ctx, inputs, outputs, tangents):
        """dz = -dx / x**2"""
        return -(outputs[0] * outputs[0]) * tangents[0]

    @staticmethod
    def backward(ctx, grad):
        (z,) = ctx.saved_tensors
        return -grad * z * z


class Pow(Op):
    """z = x ** y;  dz/dx = y * x ** (y - 1),  dz/dy = z * log(x)"""

    @staticmethod
    def forward(ctx, x, y):
        z = _binary("pow", operator.pow, x, y)
        # What PyTorch saves: x and y, and z unless y is a number (so x ** 2 may be changed in
        # place, x ** y may not, even where only x needs a gradient)
        ctx.save_for_backward(x, y, z if hasattr(y, "array") else None)
        return z

    @staticmethod
    def tangent(ctx, inputs, outputs, tangents):
        """dz = y x**(y - 1) dx + z log(x) dy"""
        (x, y), (dx, dy) = inputs, tangents
        parts = [None, None]
        if dx is not None:
            parts[0] = dx * (y * x ** (y - 1)) if hasattr(y, "array") or y != 0 else dx * 0
        if dy is not None:
            parts[1] = dy * (outputs[0] * x.log())
        return _sum_tangents(parts, inputs)

    @staticmethod
    def backward(ctx, grad):
        x, y, z = ctx.saved_tensors
        grad_x = grad_y = None
        if ctx.needs_input_grad[0]:
            # Where y = 0 the slope is 0, also at x = 0 (where the formula gives 0 * inf = nan):
            # PyTorch's select, so a NaN grad gives 0 there too.
            if isinstance(y, (int, float)):
                grad_x = grad * (y * x ** (y - 1)) if y != 0 else zeros_like(grad)
            else:
                grad_x = unbroadcast((grad * (y * x ** (y - 1))).where(y != 0, 0.0), shape_of(x))
        if ctx.needs_input_grad[1]:
            # Where x = 0, z = 0**y does not change with y > 0 (the formula gives 0 * -inf = nan).
            if isinstance(x, (int, float)):
                log_x = math.log(x) if x > 0 else (0.0 if x == 0 else math.nan)
            else:
                log_x = x.where(x != 0, 1.0).log()
            grad_y = unbroadcast(grad * z * log_x, shape_of(y))
        return grad_x, grad_y


class Neg(Op):
    """z = -x;  dz/dx = -1"""

    linear_in_tensors = True  # forward mode: the tangent is Neg of the tangents

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
    def tangent(ctx, inputs, outputs, tangents):
        """dz = z dx"""
        return outputs[0] * tangents[0]

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
    def tangent(ctx, inputs, outputs, tangents):
        """dz = dx / x"""
        return tangents[0] / inputs[0]

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad / x


class Log1p(Op):
    """z = log(1 + x), accurate for small x;  dz/dx = 1 / (1 + x)"""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return backend.array_module(x.array).log1p(_float(x.array))

    @staticmethod
    def tangent(ctx, inputs, outputs, tangents):
        """dz = dx / (1 + x)"""
        return tangents[0] / (1 + inputs[0])

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad / (1 + x)


class Expm1(Op):
    """z = exp(x) - 1, accurate for small x;  dz/dx = exp(x) = z + 1"""

    @staticmethod
    def forward(ctx, x):
        z = backend.array_module(x.array).expm1(_float(x.array))
        ctx.save_for_backward(z)
        return z

    @staticmethod
    def tangent(ctx, inputs, outputs, tangents):
        """dz = (z + 1) dx"""
        return tangents[0] * (outputs[0] + 1)

    @staticmethod
    def backward(ctx, grad):
        (z,) = ctx.saved_tensors
        return grad * (z + 1)


class Sqrt(Op):
    """z = sqrt(x);  dz/dx = 1 / (2 z)"""

    @staticmethod
    def forward(ctx, x):
        z = backend.array_module(x.array).sqrt(_float(x.array))
        ctx.save_for_backward(z)
        return z

    @staticmethod
    def tangent(ctx, inputs, outputs, tangents):
        """dz = dx / (2 z)"""
        return tangents[0] / (2 * outputs[0])

    @staticmethod
    def backward(ctx, grad):
        (z,) = ctx.saved_tensors
        return grad / (2 * z)


class Sin(Op):
    """z = sin(x);  dz/dx = cos(x)"""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return backend.array_module(x.array).sin(_float(x.array))

    @staticmethod
    def tangent(ctx, inputs, outputs, tangents):
        """dz = cos(x) dx"""
        return inputs[0].cos() * tangents[0]

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * Cos.apply(x)


class Cos(Op):
    """z = cos(x);  dz/dx = -sin(x)"""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return backend.array_module(x.array).cos(_float(x.array))

    @staticmethod
    def tangent(ctx, inputs, outputs, tangents):
        """dz = -sin(x) dx"""
        return -(inputs[0].sin()) * tangents[0]

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return -grad * Sin.apply(x)


class Abs(Op):
    """z = |x|;  dz/dx = sign(x) (0 at x = 0, as in PyTorch)"""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return backend.array_module(x.array).abs(x.array)

    @staticmethod
    def tangent(ctx, inputs, outputs, tangents):
        """dz = sign(x) dx"""
        return inputs[0].sign() * tangents[0]

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * Sign.apply(x)


class Sign(Op):
    """z = sign(x) (-1, 0 or 1; 0 for NaN, as in PyTorch);  dz/dx = 0 (piecewise constant)"""

    @staticmethod
    def forward(ctx, x):
        if x.array.dtype == backend.bool_:
            return x.array.copy()
        xp = backend.array_module(x.array)
        z = xp.sign(x.array)
        return xp.where(xp.isnan(z), 0, z).astype(z.dtype) if z.dtype.kind == "f" else z

    @staticmethod
    def tangent(ctx, inputs, outputs, tangents):
        """dz = 0"""
        return tangents[0] * 0

    @staticmethod
    def backward(ctx, grad):
        return zeros_like(grad)


class Round(Op):
    """z = floor(x), ceil(x), trunc(x) or round(x) (halves to even, as PyTorch's round);
    dz/dx = 0 (piecewise constant)"""

    @staticmethod
    def forward(ctx, x, how: str):
        if x.array.dtype.kind != "f":  # whole numbers already: PyTorch returns a copy
            return x.array.copy()
        xp = backend.array_module(x.array)
        return {"floor": xp.floor, "ceil": xp.ceil, "trunc": xp.trunc, "round": xp.rint}[how](
            x.array)

    @staticmethod
    def tangent(ctx, inputs, outputs, tangents):
        """dz = 0"""
        return tangents[0] * 0

    @staticmethod
    def backward(ctx, grad):
        return zeros_like(grad), None


def zeros_like(grad):
    """Zeros, as a select from grad: grad * 0 would be NaN where grad is inf or NaN."""
    nowhere = backend.module_for(grad.device).zeros(grad.shape, dtype=backend.bool_)
    return grad.where(nowhere, 0.0)


def _float(array):
    """Integer inputs to exp/log/sqrt give float32, as in PyTorch (NumPy would give float64)."""
    return array if array.dtype.kind == "f" else array.astype(backend.float32)


def sum_parts(parts):
    """The sum of the parts that are there (None: an input that carries no tangent)."""
    present = [p for p in parts if p is not None]
    total = present[0]
    for part in present[1:]:
        total = total + part
    return total


def _sum_tangents(parts, inputs):
    """The output's tangent from each input's part (None: that input carries none): their sum,
    broadcast to the output's shape as the forward broadcast the inputs."""
    total = sum_parts(parts)
    shapes = [shape_of(x) for x in inputs if hasattr(x, "array")]
    if shapes:
        target = backend.broadcast_shapes(*shapes)
        if tuple(total.shape) != tuple(target):
            total = total.expand(target)
    return total
