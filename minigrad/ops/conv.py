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


class Unfold(Op):
    """cols[n, (c, i, j), (p, q)] = x_padded[n, c, p*sh + i*dh, q*sw + j*dw];
    dcols/dx: fold (each column entry's gradient added back where it was copied from)"""

    linear_in_tensors = True  # forward mode: the tangent is Unfold of the tangent

    @staticmethod
    def forward(ctx, x, window, fill=0.0):
        a = x.array
        n, c, h, w = a.shape
        top, bottom, left, right = window.padding
        out_h, out_w = output_size(h, w, window)
        ctx.input_size, ctx.window = (h, w), window
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

    @staticmethod
    def backward(ctx, grad):
        return Fold.apply(grad, ctx.input_size, ctx.window), None, None


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
