"""More elementwise math: sin, cos, abs, sign, and the two-tensor maximum and minimum.

As in elementwise.py, forward computes on the arrays and backward is written with Tensor
operations, so each derivative can be differentiated again (create_graph=True).
"""

from __future__ import annotations

from .. import backend, promotion
from ..autograd.function import Function
from .broadcast import unbroadcast
from .elementwise import Where, _array, _float, _shape


class Sin(Function):
    """z = sin(x);  dz/dx = cos(x)"""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return backend.array_module(x.array).sin(_float(x.array))

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * Cos.apply(x)


class Cos(Function):
    """z = cos(x);  dz/dx = -sin(x)"""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return backend.array_module(x.array).cos(_float(x.array))

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return -grad * Sin.apply(x)


class Abs(Function):
    """z = |x|;  dz/dx = sign(x) (0 at x = 0, as in PyTorch)"""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return backend.array_module(x.array).abs(x.array)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * Sign.apply(x)


class Sign(Function):
    """z = sign(x) (-1, 0 or 1);  dz/dx = 0 (piecewise constant)"""

    @staticmethod
    def forward(ctx, x):
        if x.array.dtype == backend.bool_:
            return x.array.copy()
        return backend.array_module(x.array).sign(x.array)

    @staticmethod
    def backward(ctx, grad):
        return grad * 0.0


class Maximum(Function):
    """z = max(x, y) elementwise;  dz/dx = 1 where x > y, 1/2 where x = y, else 0 (dz/dy alike)"""

    @staticmethod
    def forward(ctx, x, y):
        a, b = promotion.promote(_array(x), _array(y))
        ctx.x_wins, ctx.tie = a > b, a == b  # constant masks: the slopes are 0, 1/2 or 1
        ctx.shapes = (_shape(x), _shape(y))
        return backend.array_module(a).maximum(a, b)

    @staticmethod
    def backward(ctx, grad):
        return _pick(ctx, grad)


class Minimum(Function):
    """z = min(x, y) elementwise;  dz/dx = 1 where x < y, 1/2 where x = y, else 0 (dz/dy alike)"""

    @staticmethod
    def forward(ctx, x, y):
        a, b = promotion.promote(_array(x), _array(y))
        ctx.x_wins, ctx.tie = a < b, a == b
        ctx.shapes = (_shape(x), _shape(y))
        return backend.array_module(a).minimum(a, b)

    @staticmethod
    def backward(ctx, grad):
        return _pick(ctx, grad)


def _pick(ctx, grad):
    """Send grad to the input that won (half to each on a tie), as PyTorch's max/min do."""
    half = Where.apply(ctx.tie, grad * 0.5, 0.0)
    grad_x = grad_y = None
    if ctx.needs_input_grad[0]:
        grad_x = unbroadcast(Where.apply(ctx.x_wins, grad, half), ctx.shapes[0])
    if ctx.needs_input_grad[1]:
        y_wins = ~(ctx.x_wins | ctx.tie)
        grad_y = unbroadcast(Where.apply(y_wins, grad, half), ctx.shapes[1])
    return grad_x, grad_y
