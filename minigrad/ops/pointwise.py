"""More elementwise math: sin, cos, abs, sign, and the two-tensor maximum and minimum.

As in elementwise.py, forward computes on the arrays and backward is written with Tensor
operations, so each derivative can be differentiated again (create_graph=True).
"""

from __future__ import annotations

from .. import backend, promotion
from ..autograd.function import Op
from .elementwise import Where, _array, _float, _shape, split_by_shares


class Sin(Op):
    """z = sin(x);  dz/dx = cos(x)"""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return backend.array_module(x.array).sin(_float(x.array))

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
    def backward(ctx, grad):
        nowhere = backend.array_module(grad.array).zeros(grad.shape, dtype=backend.bool_)
        return Where.apply(nowhere, grad, 0.0)  # zeros: grad * 0 would be NaN where grad is inf


class Maximum(Op):
    """z = max(x, y) elementwise;  dz/dx = 0 where x < y, 1/2 where x = y, else 1 (dz/dy alike;
    a NaN gives both its gradient, as in PyTorch)"""

    @staticmethod
    def forward(ctx, x, y):
        a, b = promotion.promote(_array(x), _array(y))
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
        a, b = promotion.promote(_array(x), _array(y))
        z = backend.array_module(a).minimum(a, b)
        _keep_shares(ctx, x, y, z, x_loses=a > b, y_loses=a < b, tie=a == b)
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
    ctx.shapes = (_shape(x), _shape(y))
