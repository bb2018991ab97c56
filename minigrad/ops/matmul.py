"""Matrix products: matmul (with NumPy's batching and 1-D rules) and the fused linear layer."""

from __future__ import annotations

from .. import backend
from ..autograd.function import Function
from .broadcast import unbroadcast


def _check_matmul_shapes(x, y) -> None:
    if x.ndim == 0 or y.ndim == 0:
        raise ValueError(
            f"matmul: both arguments need at least 1 dimension, got shapes "
            f"{tuple(x.shape)} and {tuple(y.shape)}"
        )
    inner_x, inner_y = x.shape[-1], y.shape[-2 if y.ndim > 1 else 0]
    if inner_x != inner_y:
        raise ValueError(
            f"matmul: shapes {tuple(x.shape)} and {tuple(y.shape)} cannot be multiplied "
            f"({inner_x} != {inner_y})"
        )


class MatMul(Function):
    """Z = X @ Y;  dL/dX = G @ Y^T,  dL/dY = X^T @ G"""

    @staticmethod
    def forward(ctx, x, y):
        if not hasattr(y, "array") or not hasattr(x, "array"):
            raise TypeError(
                f"matmul: expected two Tensors, got {type(x).__name__} and {type(y).__name__}"
            )
        _check_matmul_shapes(x.array, y.array)
        if x.array.dtype != y.array.dtype:
            raise RuntimeError(
                f"matmul: expected both operands to have the same dtype, but got "
                f"{x.array.dtype} and {y.array.dtype}"
            )
        ctx.save_for_backward(x, y)
        try:
            return x.array @ y.array
        except ValueError:  # batch dims that do not broadcast
            raise ValueError(
                f"matmul: batch dims of shapes {tuple(x.shape)} and {tuple(y.shape)} "
                "cannot be broadcast together"
            ) from None

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved_tensors
        needs_x, needs_y = ctx.needs_input_grad
        if x.ndim == 2 and y.ndim == 2:  # the common case, written as the docstring says
            return (grad @ y.T if needs_x else None), (x.T @ grad if needs_y else None)
        # Treat 1-D operands as matrices (a row for x, a column for y), as matmul itself does.
        x2 = x.reshape(1, -1) if x.ndim == 1 else x
        y2 = y.reshape(-1, 1) if y.ndim == 1 else y
        batch = backend.broadcast_shapes(x2.shape[:-2], y2.shape[:-2])
        grad = grad.reshape(batch + (x2.shape[-2], y2.shape[-1]))
        grad_x = grad_y = None
        if needs_x:
            grad_x = unbroadcast(grad @ y2.transpose(-1, -2), x2.shape).reshape(x.shape)
        if needs_y:
            grad_y = unbroadcast(x2.transpose(-1, -2) @ grad, y2.shape).reshape(y.shape)
        return grad_x, grad_y


class Linear(Function):
    """Y = X @ W^T + b;  dL/dX = G @ W,  dL/dW = G^T @ X,  dL/db = sum of G over the batch

    dL/dX is the "intermediate" gradient that flows on to earlier layers; dL/dW and dL/db are
    the "receiver" gradients that the optimiser uses. Each is computed only when needed: the
    first layer's input never needs a gradient.
    """

    @staticmethod
    def forward(ctx, x, weight, bias):
        if x.array.ndim == 0 or x.array.shape[-1] != weight.array.shape[1]:
            raise ValueError(
                f"linear: input of shape {tuple(x.shape)} has "
                f"{x.shape[-1] if x.ndim else 0} features, but the layer expects "
                f"{weight.shape[1]} (weight shape {tuple(weight.shape)})"
            )
        ctx.save_for_backward(x, weight)
        y = x.array @ weight.array.T
        if bias is not None:
            y += bias.array
        return y

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        needs_x, needs_w, needs_b = ctx.needs_input_grad
        grad_x = (grad @ weight) if needs_x else None
        if grad.ndim != 2:  # one sample (1-D), or extra leading dims: make (batch, features)
            grad, x = grad.reshape(-1, grad.shape[-1]), x.reshape(-1, x.shape[-1])
        grad_w = (grad.T @ x) if needs_w else None
        grad_b = grad.sum(0) if needs_b else None
        return grad_x, grad_w, grad_b
