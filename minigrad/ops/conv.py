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
from . import movement
from .selection import Where

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


def _tiles(window: Window) -> bool:
    """Whether the windows sit side by side, neither overlapping nor leaving gaps, with no
    padding (max pooling's usual 2 x 2, stride 2)."""
    return (window.stride == window.kernel and window.dilation == (1, 1)
            and not any(window.padding))


def unfold_array(a, window: Window, fill=0.0, batch_inside: bool = False):
    """im2col on an array, one copy per kernel tap: (N, C, H, W) -> (N, C*kh*kw, L), or with
    batch_inside (C*kh*kw, N*L), the layout in which a convolution is one matrix product."""
    n, c, h, w = a.shape
    top, bottom, left, right = window.padding
    out_h, out_w = output_size(h, w, window)
    xp = backend.array_module(a)
    padded = a
    if any(window.padding):
        padded = xp.full((n, c, h + top + bottom, w + left + right), fill, dtype=a.dtype)
        padded[:, :, top:top + h, left:left + w] = a
    kh, kw = window.kernel
    if _tiles(window) and not batch_inside:  # windows side by side: one reordering copy
        tiles = padded[:, :, :out_h * kh, :out_w * kw].reshape(n, c, out_h, kh, out_w, kw)
        cols = tiles.transpose(0, 1, 3, 5, 2, 4).reshape(n, c * kh * kw, out_h * out_w)
        # A 1 x 1 kernel (or one as tall as the image) needs no reordering: the reshape is then
        # a view of the input, and the columns must be their own tensor, as in PyTorch.
        return cols.copy() if xp.may_share_memory(cols, a) else cols
    if batch_inside:  # channels first once, then each tap is a plain strided copy
        padded = xp.ascontiguousarray(padded.transpose(1, 0, 2, 3))
        cols = xp.empty((c, kh, kw, n, out_h, out_w), dtype=a.dtype)
        for i, j, (rows, columns) in _taps(window, out_h, out_w):
            cols[:, i, j] = padded[:, :, rows, columns]
        return cols.reshape(c * kh * kw, n * out_h * out_w)
    cols = xp.empty((n, c, kh, kw, out_h, out_w), dtype=a.dtype)
    for i, j, (rows, columns) in _taps(window, out_h, out_w):
        cols[:, :, i, j] = padded[:, :, rows, columns]
    return cols.reshape(n, c * kh * kw, out_h * out_w)


def fold_array(a, input_size: tuple, window: Window, batch: int, batch_inside: bool = False):
    """col2im on an array, unfold_array's adjoint: the columns added back into (N, C, H, W)."""
    h, w = input_size
    kh, kw = window.kernel
    top, bottom, left, right = window.padding
    out_h, out_w = output_size(h, w, window)
    c = a.size // (batch * kh * kw * out_h * out_w)
    xp = backend.array_module(a)
    if batch_inside:  # added up channels first, then the image turned to (N, C, H, W) once
        padded = xp.zeros((c, batch, h + top + bottom, w + left + right), dtype=a.dtype)
        patches = a.reshape(c, kh, kw, batch, out_h, out_w)
        for i, j, (rows, columns) in _taps(window, out_h, out_w):
            padded[:, :, rows, columns] += patches[:, i, j]
        return xp.ascontiguousarray(padded[:, :, top:top + h, left:left + w].transpose(1, 0, 2, 3))
    padded = xp.zeros((batch, c, h + top + bottom, w + left + right), dtype=a.dtype)
    patches = a.reshape(batch, c, kh, kw, out_h, out_w)
    if _tiles(window):  # windows side by side: nothing adds up, one reordering copy
        image = patches.transpose(0, 1, 4, 2, 5, 3).reshape(batch, c, out_h * kh, out_w * kw)
        if image.shape[2:] == (h, w):
            return image
        padded[:, :, :out_h * kh, :out_w * kw] = image
        return padded
    for i, j, (rows, columns) in _taps(window, out_h, out_w):
        padded[:, :, rows, columns] += patches[:, :, i, j]
    if any(window.padding):
        return padded[:, :, top:top + h, left:left + w].copy()
    return padded


class Unfold(Op):
    """cols[n, (c, i, j), (p, q)] = x_padded[n, c, p*sh + i*dh, q*sw + j*dw] (with
    batch_inside, cols[(c, i, j), (n, p, q)]);  dcols/dx: fold (each column entry's gradient
    added back where it was copied from)"""

    linear_in_tensors = True  # forward mode: the tangent is Unfold of the tangent

    @staticmethod
    def forward(ctx, x, window, fill=0.0, keep_input=False, batch_inside=False):
        """keep_input: save x as PyTorch's convolution and poolings save their input, so that
        changing it in place before backward is the same error as there (backward only checks
        that it was not changed: the columns are a copy)."""
        ctx.keep_input, ctx.batch_inside = keep_input, batch_inside
        if keep_input:
            ctx.save_for_backward(x)
        ctx.input_size, ctx.window, ctx.batch = x.array.shape[2:], window, x.array.shape[0]
        return unfold_array(x.array, window, fill, batch_inside)

    @staticmethod
    def backward(ctx, grad):
        if ctx.keep_input:
            ctx.saved_tensors  # noqa: B018  (reading them checks their version)
        image = Fold.apply(grad, ctx.input_size, ctx.window, ctx.batch, ctx.batch_inside)
        return image, None, None, None, None


class Fold(Op):
    """x[n, c, h, w] = the sum of the column entries copied from (h, w) by unfold (the padding
    dropped);  dx/dcols: unfold (each entry reads the gradient of where it was added)"""

    linear_in_tensors = True  # forward mode: the tangent is Fold of the tangent

    @staticmethod
    def forward(ctx, cols, input_size, window, batch=None, batch_inside=False):
        ctx.window, ctx.batch_inside = window, batch_inside
        batch = cols.array.shape[0] if batch is None else batch
        return fold_array(cols.array, input_size, window, batch, batch_inside)

    @staticmethod
    def backward(ctx, grad):
        return (Unfold.apply(grad, ctx.window, 0.0, False, ctx.batch_inside), None, None, None,
                None)


COLUMNS_LIMIT_BYTES = 256 * 2**20  # the most memory a convolution's unfolded columns may take:
# a larger batch is convolved in chunks of images (a setting: minigrad.ops.conv.COLUMNS_...)


def _chunks(n: int, columns_per_image: int, itemsize: int) -> list:
    """(start, stop) of each chunk of the batch whose columns stay under the limit."""
    per_chunk = max(1, COLUMNS_LIMIT_BYTES // max(1, columns_per_image * itemsize))
    return [(start, min(start + per_chunk, n)) for start in range(0, n, per_chunk)]


class Conv2d(Op):
    """y = W @ unfold(x) + b (per group of channels);  dL/dx = fold(W^T @ G),
    dL/dW = G @ unfold(x)^T,  dL/db = the sum of G over the batch and the positions

    The columns are laid out (C*kh*kw, N*L), so that each product is one matrix product over
    the whole batch (or over a chunk of it, when the columns would take more than
    COLUMNS_LIMIT_BYTES). It keeps x (for dL/dW) and W (for dL/dx), as PyTorch's convolution
    does, not the columns (kh*kw times x's size): backward unfolds x again. Its backward is
    written with Unfold, Fold and matrix products, so it differentiates again."""

    @staticmethod
    def forward(ctx, x, weight, bias, window, groups):
        ctx.save_for_backward(x, weight)  # both, always, as PyTorch: changing either in place
        # before backward is an error even where only the other's gradient would read it
        ctx.window, ctx.groups = window, groups
        ctx.input_size, ctx.weight_shape = x.array.shape[2:], weight.array.shape
        a, w = x.array, weight.array
        n, out_channels = a.shape[0], w.shape[0]
        out_h, out_w = output_size(*ctx.input_size, window)
        places = out_h * out_w
        ctx.chunks = _chunks(n, w[0].size * groups * places, a.itemsize)
        xp = backend.array_module(a)
        out = xp.empty((n, out_channels, out_h, out_w), dtype=a.dtype)
        kernels = w.reshape(groups, out_channels // groups, -1)
        for start, stop in ctx.chunks:
            cols = unfold_array(a[start:stop], window, batch_inside=True)  # (K, n*L)
            y = kernels @ cols.reshape(groups, -1, cols.shape[1])  # (g, O/g, n*L)
            y = y.reshape(out_channels, stop - start, out_h, out_w).transpose(1, 0, 2, 3)
            if bias is not None:  # (N, O, ...) and the bias in one pass
                xp.add(y, bias.array.reshape(out_channels, 1, 1), out=out[start:stop])
            else:
                out[start:stop] = y
        return out

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
        _, out_channels, out_h, out_w = grad.shape
        groups, whole = ctx.groups, len(ctx.chunks) == 1
        w = None if weight is None else weight.reshape(groups, out_channels // groups, -1)
        images, grad_w = [], None
        for start, stop in ctx.chunks:
            g = grad if whole else grad[start:stop]
            # G as (g, O/g, n*L): the gradient's channels first, like the columns' layout
            g = g.transpose(0, 1).reshape(groups, out_channels // groups, -1)
            if needs_x:
                cols = (w.transpose(1, 2) @ g).reshape(-1, g.shape[2])  # (K, n*L)
                images.append(Fold.apply(cols, ctx.input_size, ctx.window, stop - start, True))
            if needs_w:
                cols = Unfold.apply(x if whole else x[start:stop], ctx.window, 0.0, False, True)
                part = g @ cols.reshape(groups, -1, g.shape[2]).transpose(1, 2)
                grad_w = part if grad_w is None else grad_w + part
        grad_x = None
        if needs_x:
            grad_x = images[0] if whole else movement.Cat.apply(0, *images)
        if needs_w:
            grad_w = grad_w.reshape(ctx.weight_shape)
        grad_b = grad.sum((0, 2, 3)) if needs_b else None
        return grad_x, grad_w, grad_b, None, None


class MaxPool2d(Op):
    """y = the max over each window, the first one where several tie (padding is -inf);
    dL/dx = fold(G placed at each window's max tap, 0 at the others)

    The max is a running max over the kernel's taps (kh*kw passes over the output), and which
    tap won is kept: backward places G there with one mask and a fold, both linear, so it
    differentiates again. It keeps x, as PyTorch's max pooling does."""

    @staticmethod
    def forward(ctx, x, window):
        ctx.save_for_backward(x)  # (only checked: PyTorch keeps it, so changing x is an error)
        best, ctx.taps = max_pool_array(x.array, window)
        ctx.window, ctx.input_size = window, x.array.shape[2:]
        return best

    @staticmethod
    def tangent(ctx, inputs, outputs, tangents):
        """dy = dx at each window's max tap"""
        cols = Unfold.apply(tangents[0], ctx.window)  # (N, C*kk, L)
        n, c = outputs[0].shape[:2]
        picked = Where.apply(_winners(ctx), cols.reshape(n, c, -1, ctx.taps[0, 0].size), 0.0)
        return picked.sum(2).reshape(outputs[0].shape)

    @staticmethod
    def backward(ctx, grad):
        ctx.saved_tensors  # noqa: B018  (reading them checks their version)
        n, c, out_h, out_w = grad.shape
        # A select, not a product with a 0/1 mask: a NaN gradient stays at the max tap, as
        # PyTorch's scatter leaves it (0 * NaN would spread it over the whole window).
        placed = Where.apply(_winners(ctx), grad.reshape(n, c, 1, out_h * out_w), 0.0)
        return Fold.apply(placed.reshape(n, -1, out_h * out_w), ctx.input_size, ctx.window), None


def max_pool_array(a, window: Window):
    """(the max of each window, which tap it is at): a running max over the taps, the first
    of equal ones kept (a NaN wins, as in PyTorch)."""
    n, c, h, w = a.shape
    top, bottom, left, right = window.padding
    out_h, out_w = output_size(h, w, window)
    xp = backend.array_module(a)
    padded = a
    if any(window.padding):
        padded = xp.full((n, c, h + top + bottom, w + left + right), -xp.inf, dtype=a.dtype)
        padded[:, :, top:top + h, left:left + w] = a
    kind = backend.int8 if window.kernel[0] * window.kernel[1] < 128 else backend.int32
    best = taps = None
    for number, (_, _, (rows, columns)) in enumerate(_taps(window, out_h, out_w)):
        values = padded[:, :, rows, columns]
        if best is None:
            best, taps = values.copy(), xp.zeros(values.shape, dtype=kind)
            continue
        wins = values > best
        nans = xp.isnan(values)  # a NaN wins (the first one), as in PyTorch; (on a GPU,
        if backend.is_cuda_array(values) or nans.any():  # asking whether there is one waits)
            wins |= nans & ~xp.isnan(best)
        xp.maximum(best, values, out=best)  # (a NaN stays)
        taps[wins] = number
    return best, taps


def _winners(ctx):
    """(N, C, kh*kw, L) bools: True at each window's max tap (a constant array)."""
    kh, kw = ctx.window.kernel
    xp = backend.array_module(ctx.taps)
    n, c = ctx.taps.shape[:2]
    taps = ctx.taps.reshape(n, c, 1, -1)
    return taps == xp.arange(kh * kw).reshape(1, 1, -1, 1)


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
