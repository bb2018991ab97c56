"""Activations: relu, sigmoid, tanh, and the numerically stable softmax and log_softmax."""

from __future__ import annotations

from .. import backend
from ..autograd.function import Function
from ..cuda import kernels
from .reduce import normalize_dims


class ReLU(Function):
    """z = max(x, 0);  dz/dx = 1 where x > 0, else 0"""

    @staticmethod
    def forward(ctx, x):
        z = backend.array_module(x).maximum(x, 0)
        ctx.save_for_backward(z)
        return z

    @staticmethod
    def backward(ctx, grad):
        (z,) = ctx.saved_tensors
        if kernels.applies(grad, z):  # CUDA: one fused kernel instead of a compare and a multiply
            return kernels.relu_backward(grad, z)
        return grad * (z > 0)


class Sigmoid(Function):
    """z = 1 / (1 + exp(-x));  dz/dx = z (1 - z)"""

    @staticmethod
    def forward(ctx, x):
        xp = backend.array_module(x)
        # exp of a non-positive number never overflows: use the form that keeps it so.
        e = xp.exp(-xp.abs(x))
        z = xp.where(x >= 0, 1 / (1 + e), e / (1 + e))
        ctx.save_for_backward(z)
        return z

    @staticmethod
    def backward(ctx, grad):
        (z,) = ctx.saved_tensors
        return grad * z * (1 - z)


class Tanh(Function):
    """z = tanh(x);  dz/dx = 1 - z**2"""

    @staticmethod
    def forward(ctx, x):
        z = backend.array_module(x).tanh(x)
        ctx.save_for_backward(z)
        return z

    @staticmethod
    def backward(ctx, grad):
        (z,) = ctx.saved_tensors
        return grad * (1 - z * z)


def _softmax_axis(x, dim: int, op: str) -> int:
    if not isinstance(dim, int):
        raise TypeError(f"{op}: dim must be an int, got {dim!r}")
    return normalize_dims(dim, x.ndim, op)[0] if x.ndim else None


class LogSoftmax(Function):
    """z = x - max(x) - log(sum(exp(x - max(x))));  dL/dx = g - softmax(x) * sum(g)"""

    @staticmethod
    def forward(ctx, x, dim):
        xp = backend.array_module(x)
        axis = ctx.axis = _softmax_axis(x, dim, "log_softmax")
        shifted = x - x.max(axis=axis, keepdims=True)
        z = shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))
        ctx.save_for_backward(z)
        return z

    @staticmethod
    def backward(ctx, grad):
        (z,) = ctx.saved_tensors
        xp = backend.array_module(z)
        return grad - xp.exp(z) * grad.sum(axis=ctx.axis, keepdims=True), None


class Softmax(Function):
    """z = exp(x - max(x)) / sum(exp(x - max(x)));  dL/dx = z * (g - sum(g * z))"""

    @staticmethod
    def forward(ctx, x, dim):
        xp = backend.array_module(x)
        axis = ctx.axis = _softmax_axis(x, dim, "softmax")
        e = xp.exp(x - x.max(axis=axis, keepdims=True))
        z = e / e.sum(axis=axis, keepdims=True)
        ctx.save_for_backward(z)
        return z

    @staticmethod
    def backward(ctx, grad):
        (z,) = ctx.saved_tensors
        return z * (grad - (grad * z).sum(axis=ctx.axis, keepdims=True)), None
