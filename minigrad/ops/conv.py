"""Convolution's two movement ops: unfold (im2col) and its adjoint, fold (col2im).

A convolution is a matrix product once every patch the kernel covers is laid out as a column:

    cols = unfold(x)            (N, C, H, W) -> (N, C*kh*kw, L), one column per output position
    y    = W.reshape(O, -1) @ cols + b         (N, O, L) -> (N, O, out_h, out_w)

Unfold only copies elements, so its gradient sends each column entry back to the place it was
copied from, adding where patches overlap: that is fold. Fold only adds elements up, so its
gradient reads each column entry from where it was added: that is unfold. Each is the other's
backward, and both are linear, so every order of derivative of a convolution is more unfolds,
folds and matrix products.

The geometry (kernel, dilation, padding, stride) is one tuple `Window`; padding is (top, bottom,
left, right), so that 'same' padding of an even kernel can add more at the bottom and right, as
PyTorch does. `fill` is what padded places hold in the columns (0; max pooling pads with -inf).
"""

from __future__ import annotations

from collections import namedtuple

from .. import backend
from ..engine.function import Op

Window = namedtuple("Window", ["kernel", "dilation", "padding", "stride"])  # (kh, kw), ...,
# padding as (top, bottom, left, right)


def output_size(height: int, width: int, window: Window) -> tuple:
    """(out_h, out_w): how many positions the kernel takes along each dim."""
    (kh, kw), (dh, dw), (top, bottom, left, right), (sh, sw) = window
    return ((height + top + bottom - dh * (kh - 1) - 1) // sh + 1,
            (width + left + right - dw * (kw - 1) - 1) // sw + 1)


def _taps(window: Window, out_h: int, out_w: int):
    """For each kernel tap (i, j): the slices of the padded input it reads at every output
    position (every stride-th element from the tap's offset)."""
    (kh, kw), (dh, dw), _, (sh, sw) = window
    for i in range(kh):
        for j in range(kw):
            yield i, j, (slice(i * dh, i * dh + sh * (out_h - 1) + 1, sh),
                         slice(j * dw, j * dw + sw * (out_w - 1) + 1, sw))


def unfold_array(a, window: Window, fill=0.0):
    """im2col on an array: (N, C, H, W) -> (N, C*kh*kw, L), one copy per kernel tap."""
    n, c, h, w = a.shape
    top, bottom, left, right = window.padding
    out_h, out_w = output_size(h, w, window)
    xp = backend.array_module(a)
    padded = a
    if any(window.padding):
        padded = xp.full((n, c, h + top + bottom, w + left + right), fill, dtype=a.dtype)
        padded[:, :, top:top + h, left:left + w] = a
    kh, kw = window.kernel
    cols = xp.empty((n, c, kh, kw, out_h, out_w), dtype=a.dtype)
    for i, j, (rows, columns) in _taps(window, out_h, out_w):
        cols[:, :, i, j] = padded[:, :, rows, columns]
    return cols.reshape(n, c * kh * kw, out_h * out_w)


class Unfold(Op):
    """cols[n, (c, i, j), (p, q)] = x_padded[n, c, p*sh + i*dh, q*sw + j*dw];
    dcols/dx: fold (each column entry's gradient added back where it was copied from)"""

    linear_in_tensors = True  # forward mode: the tangent is Unfold of the tangent

    @staticmethod
    def forward(ctx, x, window, fill=0.0, keep_input=False):
        """keep_input: save x as PyTorch's convolution and poolings save their input, so that
        changing it in place before backward is the same error as there (backward only checks
        that it was not changed: the columns are a copy)."""
        ctx.keep_input = keep_input
        if keep_input:
            ctx.save_for_backward(x)
        ctx.input_size, ctx.window = x.array.shape[2:], window
        return unfold_array(x.array, window, fill)

    @staticmethod
    def backward(ctx, grad):
        if ctx.keep_input:
            ctx.saved_tensors  # noqa: B018  (reading them checks their version)
        return Fold.apply(grad, ctx.input_size, ctx.window), None, None, None


class Fold(Op):
    """x[n, c, h, w] = the sum of the column entries copied from (h, w) by unfold (the padding
    dropped);  dx/dcols: unfold (each entry reads the gradient of where it was added)"""

    linear_in_tensors = True  # forward mode: the tangent is Fold of the tangent

    @staticmethod
    def forward(ctx, cols, input_size, window):
        a = cols.array
        h, w = input_size
        kh, kw = window.kernel
        top, bottom, left, right = window.padding
        out_h, out_w = output_size(h, w, window)
        n = a.shape[0]
        c = a.shape[1] // (kh * kw)
        ctx.window = window
        xp = backend.array_module(a)
        patches = a.reshape(n, c, kh, kw, out_h, out_w)
        padded = xp.zeros((n, c, h + top + bottom, w + left + right), dtype=a.dtype)
        for i, j, (rows, columns) in _taps(window, out_h, out_w):
            padded[:, :, rows, columns] += patches[:, :, i, j]
        if any(window.padding):
            return padded[:, :, top:top + h, left:left + w].copy()
        return padded

    @staticmethod
    def backward(ctx, grad):
        return Unfold.apply(grad, ctx.window), None, None


class Conv2d(Op):
    """y = W @ unfold(x) + b (per group of channels);  dL/dx = fold(W^T @ G),
    dL/dW = sum over the batch of G @ unfold(x)^T,  dL/db = sum of G over batch and positions

    It keeps x (for dL/dW) and W (for dL/dx), as PyTorch's convolution does, not the columns
    (kh*kw times x's size): backward unfolds x again. Its backward is written with Unfold, Fold
    and matrix products, so it differentiates again."""

    @staticmethod
    def forward(ctx, x, weight, bias, window, groups):
        needs_x, needs_w = ctx.needs_input_grad[:2]
        ctx.save_for_backward(x if needs_w else None, weight if needs_x else None)
        ctx.window, ctx.groups = window, groups
        ctx.input_size, ctx.weight_shape = x.array.shape[2:], weight.array.shape
        n, out_channels = x.array.shape[0], weight.array.shape[0]
        cols = unfold_array(x.array, window)  # (N, K, L)
        places = cols.shape[2]
        y = weight.array.reshape(groups, out_channels // groups, -1) @ cols.reshape(
            n, groups, -1, places)  # (N, g, O/g, L)
        y = y.reshape(n, out_channels, *output_size(*ctx.input_size, window))
        if bias is not None:
            y += bias.array.reshape(out_channels, 1, 1)
        return y

    @staticmethod
    def tangent(ctx, inputs, outputs, tangents):
        """dy = conv(dx, W) + conv(x, dW) + db: linear in each of x, W, b"""
        (x, weight, _, window, groups), (dx, dw, db) = inputs, tangents[:3]
        parts = [None if dx is None else Conv2d.apply(dx, weight, None, window, groups),
                 None if dw is None else Conv2d.apply(x, dw, None, window, groups),
                 None if db is None else db.reshape(-1, 1, 1).expand(outputs[0].shape)]
        present = [p for p in parts if p is not None]
        total = present[0]
        for part in present[1:]:
            total = total + part
        return total

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        needs_x, needs_w, needs_b = ctx.needs_input_grad[:3]
        n, out_channels, out_h, out_w = grad.shape
        groups = ctx.groups
        g = grad.reshape(n, groups, out_channels // groups, out_h * out_w)  # (N, g, O/g, L)
        grad_x = grad_w = grad_b = None
        if needs_x:
            w = weight.reshape(groups, out_channels // groups, -1)  # (g, O/g, K/g)
            cols = w.transpose(1, 2) @ g  # (N, g, K/g, L)
            grad_x = Fold.apply(cols.reshape(n, -1, out_h * out_w), ctx.input_size, ctx.window)
        if needs_w:
            cols = Unfold.apply(x, ctx.window).reshape(n, groups, -1, out_h * out_w)
            grad_w = (g @ cols.transpose(2, 3)).sum(0).reshape(ctx.weight_shape)
        if needs_b:
            grad_b = grad.sum((0, 2, 3))
        return grad_x, grad_w, grad_b, None, None


class Pad(Op):
    """z = x with `value` added around (widths per dim, from the last dim back, as F.pad);
    dz/dx = grad with the border cut off"""

    @staticmethod
    def forward(ctx, x, widths, value=0.0):
        a = x.array
        pairs = [(0, 0)] * (a.ndim - len(widths) // 2) + [
            (widths[2 * k], widths[2 * k + 1]) for k in reversed(range(len(widths) // 2))]
        ctx.inside = tuple(slice(before, before + size) for (before, _), size in
                           zip(pairs, a.shape, strict=True))
        xp = backend.array_module(a)
        out = xp.full(tuple(size + before + after for (before, after), size in
                            zip(pairs, a.shape, strict=True)), value, dtype=a.dtype)
        out[ctx.inside] = a
        return out

    @staticmethod
    def tangent(ctx, inputs, outputs, tangents):
        """dz = dx padded with zeros"""
        return Pad.apply(tangents[0], inputs[1], 0.0)

    @staticmethod
    def backward(ctx, grad):
        return grad[ctx.inside], None, None
