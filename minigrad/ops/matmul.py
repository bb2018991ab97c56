"""Matrix products: matmul (with NumPy's batching and 1-D rules) and the fused linear layer."""

from __future__ import annotations

import math

from .. import backend
from ..engine.function import Op
from ..fused import kernels
from ..grad_mode import enable_grad, is_grad_enabled
from .activation import ReLUBackward
from .elementwise import sum_parts
from .reduce import cascade_sum, unbroadcast


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


def _check_linear_shapes(x, weight) -> None:
    if x.array.dtype != weight.array.dtype:
        raise RuntimeError(
            f"linear: expected the input and the weight to have the same dtype, but got "
            f"{x.array.dtype} and {weight.array.dtype}"
        )
    if x.array.ndim == 0 or x.array.shape[-1] != weight.array.shape[1]:
        raise ValueError(
            f"linear: input of shape {tuple(x.shape)} has "
            f"{x.shape[-1] if x.ndim else 0} features, but the layer expects "
            f"{weight.shape[1]} (weight shape {tuple(weight.shape)})"
        )


class MatMul(Op):
    """Z = X @ Y;  dL/dX = G @ Y^T,  dL/dY = X^T @ G"""

    @staticmethod
    def forward(ctx, x, y):
        if not hasattr(y, "array") or not hasattr(x, "array"):
            raise TypeError(
                f"matmul: expected two Tensors, got {type(x).__name__} and {type(y).__name__}"
            )
        _check_matmul_shapes(x.array, y.array)
        if x.array.dtype == backend.bool_:  # PyTorch has no bool kernel
            raise NotImplementedError("matmul: not implemented for 'Bool' tensors (as in "
                                      "PyTorch); convert with .float() or .long() first")
        if x.array.dtype != y.array.dtype:
            raise RuntimeError(
                f"matmul: expected both operands to have the same dtype, but got "
                f"{x.array.dtype} and {y.array.dtype}"
            )
        needs_x, needs_y = ctx.needs_input_grad  # save only what the gradients use, as PyTorch
        ctx.shapes = (x.array.shape, y.array.shape)
        # A batched operand beside a matrix or vector: PyTorch folds its batch dims into rows
        # and saves that, a copy unless the fold is a view (see _folded).
        ctx.folded = (x.array.ndim > 2 >= y.array.ndim and needs_y,
                      y.array.ndim > 2 >= x.array.ndim and needs_x)
        ctx.save_for_backward(
            (_folded(x) if ctx.folded[0] else x) if needs_y else None,
            (_folded(y, transposed=True) if ctx.folded[1] else y) if needs_x else None)
        a, b = x.array, y.array
        try:
            if a.ndim > 2 and b.ndim >= 2 and a.shape[-1] == 1:  # stacked outer products:
                return a * b  # the same numbers; NumPy's matmul has no fast path for k = 1
            return a @ b
        except ValueError:  # batch dims that do not broadcast
            raise ValueError(
                f"matmul: batch dims of shapes {tuple(x.shape)} and {tuple(y.shape)} "
                "cannot be broadcast together"
            ) from None

    @staticmethod
    def tangent(ctx, inputs, outputs, tangents):
        """dZ = dX @ Y + X @ dY"""
        (x, y), (dx, dy) = inputs, tangents
        return sum_parts((None if dx is None else dx @ y, None if dy is None else x @ dy))

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved_tensors  # only those the needed gradients use (None otherwise)
        needs_x, needs_y = ctx.needs_input_grad
        x_shape, y_shape = ctx.shapes
        if len(x_shape) == 2 and len(y_shape) == 2:  # the common case, as the docstring says
            return (grad @ y.T if needs_x else None), (x.T @ grad if needs_y else None)
        # Treat 1-D operands as matrices (a row for x, a column for y), as matmul itself does.
        x2_shape = (1,) + x_shape if len(x_shape) == 1 else x_shape
        y2_shape = y_shape + (1,) if len(y_shape) == 1 else y_shape
        batch = backend.broadcast_shapes(x2_shape[:-2], y2_shape[:-2])
        grad = grad.reshape(batch + (x2_shape[-2], y2_shape[-1]))
        grad_x = grad_y = None
        if needs_x and ctx.folded[1]:  # y folded as (batch * p, k): G's rows folded alike
            rows = grad.transpose(-1, -2).reshape(y.shape[0], x2_shape[-2])
            grad_x = (rows.T @ y).reshape(x_shape)
        elif needs_x:
            y2 = y.reshape(y2_shape).transpose(-1, -2)
            grad_x = unbroadcast(grad @ y2, x2_shape).reshape(x_shape)
        if needs_y and ctx.folded[0]:  # x folded as (batch * n, k): G's rows folded alike
            grad_y = (x.T @ grad.reshape(x.shape[0], y2_shape[-1])).reshape(y_shape)
        elif needs_y:
            x2 = x.reshape(x2_shape).transpose(-1, -2)
            grad_y = unbroadcast(x2 @ grad, y2_shape).reshape(y_shape)
        return grad_x, grad_y


def _folded(big, transposed: bool = False):
    """big (batch..., m, k), or its transpose, as (batch * m, k): a view where the batch dims
    fold into the rows, else a copy, as in PyTorch's matmul (so an in-place change of big
    reaches backward only through a view). Recorded: create_graph differentiates through it."""
    with enable_grad():
        big = big.transpose(-1, -2) if transposed else big
        return big.reshape(math.prod(big.shape[:-1]), big.shape[-1])


class Linear(Op):
    """Y = X @ W^T + b;  dL/dX = G @ W,  dL/dW = G^T @ X,  dL/db = sum of G over the batch

    dL/dX is the "intermediate" gradient that flows on to earlier layers; dL/dW and dL/db are
    the "receiver" gradients that the optimiser uses. Each is computed only when needed: the
    first layer's input never needs a gradient.
    """

    @staticmethod
    def forward(ctx, x, weight, bias):
        _check_linear_shapes(x, weight)
        needs_x, needs_w, _ = ctx.needs_input_grad  # save only what the gradients use
        ctx.save_for_backward(_rows(x) if needs_w else None, weight if needs_x else None)
        y = x.array @ weight.array.T
        if bias is not None:
            y += bias.array
        return y

    @staticmethod
    def tangent(ctx, inputs, outputs, tangents):
        """dY = dX @ W^T + X @ dW^T + db"""
        (x, weight, _), (dx, dw, db) = inputs, tangents
        parts = [None if dx is None else dx @ weight.T, None if dw is None else x @ dw.T,
                 None if db is None else db.expand(outputs[0].shape)]
        return sum_parts(parts)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors  # x only when dL/dW is needed, W only when dL/dX is
        return LinearBackward.apply(grad, x, weight, ctx.needs_input_grad)


def _rows(x):
    """What dW = G^T X reads: X, or a batched X folded into rows, as PyTorch's linear saves it
    (a copy where the batch dims do not fold as a view)."""
    return _folded(x) if x.array.ndim > 2 else x


class LinearBackward(Op):
    """(dX, dW, db) = (G @ W, G^T @ X, sum_n G), Linear's gradients in one node;  each is linear
    in G and in X or W, so its own backward is three more products (see backward)"""

    @staticmethod
    def forward(ctx, grad, x, weight, needs):
        needs_x, needs_w, needs_b = needs
        ctx.save_for_backward(grad, x if needs_w else None, weight if needs_x else None)
        g = grad.array
        grad_x = g @ weight.array if needs_x else None
        if g.ndim != 2:  # one sample (1-D), or extra leading dims: make (batch, features)
            g = g.reshape(-1, g.shape[-1])
        grad_w = g.T @ x.array.reshape(-1, x.array.shape[-1]) if needs_w else None
        grad_b = cascade_sum(g, 0) if needs_b else None
        return grad_x, grad_w, grad_b

    @staticmethod
    def tangent(ctx, inputs, outputs, tangents):
        """d(dX) = dG W + G dW,  d(dW) = dG^T X + G^T dX,  d(db) = sum_n dG"""
        grad, x, weight, needs = inputs
        d_grad, d_x, d_weight = tangents[:3]
        g2 = grad.reshape(-1, grad.shape[-1])
        dg2 = None if d_grad is None else d_grad.reshape(-1, grad.shape[-1])
        results = []
        if needs[0]:
            results.append(sum_parts((None if d_grad is None else d_grad @ weight,
                                      None if d_weight is None else grad @ d_weight)))
        else:
            results.append(None)
        if needs[1]:
            x2 = x.reshape(-1, x.shape[-1])
            dx2 = None if d_x is None else d_x.reshape(-1, x.shape[-1])
            results.append(sum_parts((None if dg2 is None else dg2.T @ x2,
                                      None if dx2 is None else g2.T @ dx2)))
        else:
            results.append(None)
        results.append(None if not needs[2] or dg2 is None else dg2.sum(0))
        return tuple(results)

    @staticmethod
    def backward(ctx, up_x, up_w, up_b):
        """Given gradients (up_x, up_w, up_b) of dX, dW, db: d/dG = up_x W^T + X up_w^T +
        up_b (broadcast), d/dX = G up_w, d/dW = G^T up_x."""
        grad, x, weight = ctx.saved_tensors
        needs_g, needs_x, needs_w = ctx.needs_input_grad[:3]
        g2 = grad.reshape(-1, grad.shape[-1])
        d_grad = d_x = d_w = None
        if needs_g:
            parts = []
            if up_x is not None:
                parts.append(up_x @ weight.T)
            if up_w is not None:
                x2 = x.reshape(-1, x.shape[-1])
                parts.append((x2 @ up_w.T).reshape(grad.shape))
            if up_b is not None:
                parts.append(up_b.expand(grad.shape))
            for part in parts:
                d_grad = part if d_grad is None else d_grad + part
        if needs_x and up_w is not None:
            d_x = (g2 @ up_w).reshape(x.shape)
        if needs_w and up_x is not None:
            d_w = g2.T @ up_x.reshape(-1, up_x.shape[-1])
        return d_grad, d_x, d_w, None


class LinearReLU(Op):
    """Y = max(X @ W^T + b, 0), a Linear and the ReLU after it as one node (the GPU's fused path:
    one kernel adds the bias and clamps);  dL/dZ = G where Y > 0, then Linear's gradients"""

    @staticmethod
    def forward(ctx, x, weight, bias):
        _check_linear_shapes(x, weight)
        needs_x, needs_w, _ = ctx.needs_input_grad
        y = x.array @ weight.array.T
        if bias is not None and kernels.applies(y, bias.array):
            kernels.bias_relu_forward(y, bias.array, out=y)
        else:
            if bias is not None:
                y += bias.array
            backend.array_module(y).maximum(y, 0, out=y)
        ctx.save_for_backward(_rows(x) if needs_w else None, weight if needs_x else None, y)
        return y

    @staticmethod
    def tangent(ctx, inputs, outputs, tangents):
        """dY = (dX @ W^T + X @ dW^T + db) where Y > 0, else 0"""
        inner = Linear.tangent(ctx, inputs, outputs, tangents)
        return ReLUBackward.apply(inner, outputs[0])

    @staticmethod
    def backward(ctx, grad):
        x, weight, y = ctx.saved_tensors
        needs = ctx.needs_input_grad
        if needs[2] and not is_grad_enabled() and grad.ndim == 2 and kernels.applies(
                grad.array, y.array):  # CUDA: the ReLU mask and the bias gradient in one kernel
            g, grad_b = kernels.relu_backward_bias_grad(grad.array, y.array)
            grad_x, grad_w, _ = LinearBackward.apply(grad._wrap_no_copy_no_checks(g, grad.device),
                                                     x, weight, (needs[0], needs[1], False))
            return grad_x, grad_w, grad._wrap_no_copy_no_checks(grad_b, grad.device)
        return LinearBackward.apply(ReLUBackward.apply(grad, y), x, weight, needs)
