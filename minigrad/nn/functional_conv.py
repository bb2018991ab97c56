"""Convolutional networks' functions, under PyTorch's names: unfold/fold, conv1d/conv2d, the
poolings, dropout2d and batch_norm. Each is written with ops that already differentiate
(ops/conv.py's Unfold and Fold, matmul, reductions), so every one has gradients of every order.

    conv2d(x, W, b) = (W.reshape(O, -1) @ unfold(x)).reshape(N, O, out_h, out_w) + b
    max_pool2d(x)   = the max over each window of unfold(x, fill=-inf)
    avg_pool2d(x)   = the mean over each window of unfold(x)
"""

from __future__ import annotations

from .. import backend
from ..factories import ones, rand
from ..grad_mode import no_grad
from ..ops import conv, selection
from ..tensor import Tensor

# ---- arguments -------------------------------------------------------------------------------


def _tuple(value, count: int, name: str, who: str) -> tuple:
    """An int, or `count` ints, as a tuple of `count` ints (PyTorch's _pair)."""
    if isinstance(value, (list, tuple)):
        if len(value) == 1:
            value = tuple(value) * count
        if len(value) != count or not all(isinstance(v, int) for v in value):
            raise RuntimeError(f"expected {name} to be a single integer value or a list of {count} "
                               f"values to match the {who} dimensions, but got {name}="
                               f"{list(value)}")
        return tuple(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{who}: {name} must be an int or a tuple of ints, got {value!r}")
    return (value,) * count


def _window(kernel, stride, padding, dilation, who: str, count: int = 2) -> conv.Window:
    """The geometry as ops/conv.py takes it, checked as PyTorch checks it."""
    kernel = _tuple(kernel, count, "kernel_size", who)
    stride = _tuple(stride, count, "stride", who)
    dilation = _tuple(dilation, count, "dilation", who)
    padding = _tuple(padding, count, "padding", who)
    if any(s <= 0 for s in stride):
        raise RuntimeError("non-positive stride is not supported")
    if any(d <= 0 for d in dilation):
        raise RuntimeError(f"dilation should be greater than zero, but got {list(dilation)}")
    if any(p < 0 for p in padding):
        raise RuntimeError("negative padding is not supported")
    if any(k <= 0 for k in kernel):
        raise RuntimeError(f"kernel size should be greater than zero, but got {list(kernel)}")
    return conv.Window(kernel, dilation, (padding[0], padding[0], padding[1], padding[1]), stride)


def _check_fits(shape: tuple, window: conv.Window, channels: int) -> tuple:
    """The output size, after checking that the kernel fits in the padded input."""
    (kh, kw), (dh, dw), (top, bottom, left, right), _ = window
    padded = (shape[-2] + top + bottom, shape[-1] + left + right)
    if padded[0] < dh * (kh - 1) + 1 or padded[1] < dw * (kw - 1) + 1:
        raise RuntimeError(f"Calculated padded input size per channel: ({padded[0]} x "
                           f"{padded[1]}). Kernel size: ({dh * (kh - 1) + 1} x "
                           f"{dw * (kw - 1) + 1}). Kernel size can't be greater than actual "
                           "input size")
    return conv.output_size(shape[-2], shape[-1], window)


def _batched(input: Tensor, dims: int, who: str, what: str):  # noqa: A002
    """(input with a batch dim, whether one was added): PyTorch takes one unbatched sample."""
    if input.ndim not in (dims - 1, dims):
        raise RuntimeError(f"Expected {dims - 1}D (unbatched) or {dims}D (batched) input to "
                           f"{who}, but got input of size: {list(input.shape)}"
                           if what == "conv" else what)
    return (input.unsqueeze(0), True) if input.ndim == dims - 1 else (input, False)


# ---- unfold and fold -------------------------------------------------------------------------


def unfold(input: Tensor, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:  # noqa: A002
    """The patches the kernel covers, as columns: (N, C, H, W) -> (N, C*kh*kw, L)."""
    x, added = _batched(input, 4, "unfold", f"Input Error: Only 3D or 4D input Tensors are "
                        f"supported (got {input.ndim}D)")
    window = _window(kernel_size, stride, padding, dilation, "unfold")
    _check_fits(x.shape, window, x.shape[1])
    cols = conv.Unfold.apply(x, window)
    return cols.squeeze(0) if added else cols


def fold(input: Tensor, output_size, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:  # noqa: A002
    """Columns added back into an image (unfold's adjoint): (N, C*kh*kw, L) -> (N, C, H, W)."""
    cols, added = _batched(input, 3, "fold", f"Input Error: Only unbatched (2D) or batched (3D) "
                           f"input Tensors are supported (got {input.ndim}D)")
    size = _tuple(output_size, 2, "output_size", "fold")
    window = _window(kernel_size, stride, padding, dilation, "fold")
    kh, kw = window.kernel
    if cols.shape[1] % (kh * kw):
        raise RuntimeError("Expected size of input's dimension 1 to be divisible by the product "
                           f"of kernel_size, but got input.size(1)={cols.shape[1]} and "
                           f"kernel_size=({kh}, {kw}).")
    blocks = conv.output_size(size[0], size[1], window)
    if cols.shape[2] != blocks[0] * blocks[1]:
        raise RuntimeError(
            f"Given output_size={size}, kernel_size={window.kernel}, dilation={window.dilation}, "
            f"padding={(window.padding[0], window.padding[2])}, stride={window.stride}, expected "
            "size of input's dimension 2 to match the calculated number of sliding blocks "
            f"{blocks[0]} * {blocks[1]} = {blocks[0] * blocks[1]}, but got input.size(2)="
            f"{cols.shape[2]}.")
    image = conv.Fold.apply(cols, size, window)
    return image.squeeze(0) if added else image


def pad(input: Tensor, pad, mode: str = "constant", value=None) -> Tensor:  # noqa: A002
    """x with `value` (0 by default) added around: pad = (last dim's before, after, the dim
    before it's before, after, ...), as PyTorch's F.pad."""
    if mode != "constant":
        raise NotImplementedError(f"pad: mode={mode!r} is not supported in minigrad (only "
                                  "'constant')")
    widths = tuple(pad)
    if len(widths) % 2 or len(widths) // 2 > input.ndim:
        raise RuntimeError(f"Padding length should be less than or equal to two times the input "
                           f"dimension but got padding length {len(widths)} and input of "
                           f"dimension {input.ndim}" if len(widths) % 2 == 0 else
                           "Padding length must be divisible by 2")
    if any(not isinstance(w, int) or w < 0 for w in widths):
        raise NotImplementedError(f"pad: negative or non-int widths are not supported in "
                                  f"minigrad, got {widths}")
    return conv.Pad.apply(input, widths, 0.0 if value is None else value)


# ---- convolutions ----------------------------------------------------------------------------


def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,  # noqa: A002
           dilation=1, groups: int = 1) -> Tensor:
    """y[n, o] = b[o] + sum over c, i, j of W[o, c, i, j] x[n, c, p*s + i*d, q*s + j*d]: the
    kernel's columns times unfold(x); with groups, each group of channels has its own."""
    x, added = _batched(input, 4, "conv2d", "conv")
    if weight.ndim != 4:
        raise RuntimeError(f"expected stride to be a single integer value or a list of "
                           f"{weight.ndim - 2} values to match the convolution dimensions, but "
                           f"got stride={list(_tuple(stride, 2, 'stride', 'convolution'))}")
    out_channels, per_group = weight.shape[0], weight.shape[1]
    if not isinstance(groups, int) or groups <= 0:
        raise RuntimeError("non-positive groups is not supported")
    if out_channels % groups:
        raise RuntimeError(f"Given groups={groups}, expected weight to be divisible by {groups} "
                           f"at dimension 0, but got weight of size [{list(weight.shape)}] "
                           "instead")
    if x.shape[1] != per_group * groups:
        raise RuntimeError(f"Given groups={groups}, weight of size {list(weight.shape)}, expected "
                           f"input{list(x.shape)} to have {per_group * groups} channels, but got "
                           f"{x.shape[1]} channels instead")
    if bias is not None and (bias.ndim != 1 or bias.shape[0] != out_channels):
        raise RuntimeError(f"Given weight of size {list(weight.shape)}, expected bias to be "
                           f"1-dimensional with {out_channels} elements, but got bias of size "
                           f"{list(bias.shape)} instead")
    window = _conv_window(weight.shape[2:], stride, padding, dilation)
    top, bottom, left, right = window.padding
    if top != bottom or left != right:  # 'same' with an even kernel: a padded copy first, as
        x = conv.Pad.apply(x, (left, right, top, bottom), 0.0)  # PyTorch makes (and keeps)
        window = window._replace(padding=(0, 0, 0, 0))
    _check_fits(x.shape, window, x.shape[1])
    y = conv.Conv2d.apply(x, weight, bias, window, groups)
    return y.squeeze(0) if added else y


def _conv_window(kernel: tuple, stride, padding, dilation) -> conv.Window:
    """A convolution's window; padding may also be 'valid' (none) or 'same' (the output as
    large as the input: the extra padding of an even kernel goes after, as in PyTorch)."""
    if isinstance(padding, str):
        if padding not in ("same", "valid"):
            raise RuntimeError(f"Invalid padding string: '{padding}'")
        window = _window(kernel, stride, 0, dilation, "convolution")
        if padding == "valid":
            return window
        if any(s != 1 for s in window.stride):
            raise RuntimeError("padding='same' is not supported for strided convolutions")
        pads = []
        for k, d in zip(window.kernel, window.dilation, strict=True):
            total = d * (k - 1)
            pads += [total // 2, total - total // 2]
        return window._replace(padding=tuple(pads))
    return _window(kernel, stride, padding, dilation, "convolution")


def conv1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,  # noqa: A002
           dilation=1, groups: int = 1) -> Tensor:
    """conv2d over a height of 1: (N, C, L) -> (N, O, L_out)."""
    x, added = _batched(input, 3, "conv1d", "conv")
    if weight.ndim != 3:
        raise RuntimeError(f"expected stride to be a single integer value or a list of "
                           f"{weight.ndim - 2} values to match the convolution dimensions, but "
                           f"got stride={list(_tuple(stride, 1, 'stride', 'convolution'))}")
    as_2d = (lambda v: v) if isinstance(padding, str) else (
        lambda v: (0, *_tuple(v, 1, "padding", "convolution")))
    y = conv2d(x.unsqueeze(2), weight.unsqueeze(2), bias,
               (1, *_tuple(stride, 1, "stride", "convolution")), as_2d(padding),
               (1, *_tuple(dilation, 1, "dilation", "convolution")), groups).squeeze(2)
    return y.squeeze(0) if added else y


# ---- pooling -----------------------------------------------------------------------------------


def _pool_window(input: Tensor, kernel_size, stride, padding, dilation, ceil_mode: bool,  # noqa: A002
                 who: str):
    """(x with a batch dim, whether added, window, (out_h, out_w)), with PyTorch's checks; with
    ceil_mode the last window may hang over the bottom and right (more padding there), as long as
    it starts inside the input or its left padding."""
    if input.ndim not in (3, 4) or input.numel() == 0:
        raise RuntimeError("non-empty 3D or 4D (batch mode) tensor expected for input")
    x, added = (input.unsqueeze(0), True) if input.ndim == 3 else (input, False)
    window = _window(kernel_size, kernel_size if stride is None or stride == [] else stride,
                     padding, dilation, who)
    (kh, kw), (dh, dw), (top, _, left, _), (sh, sw) = window
    for pad, k, d in ((top, kh, dh), (left, kw, dw)):
        if pad > (d * (k - 1) + 1) // 2:
            raise RuntimeError(f"pad should be at most half of effective kernel size, but got "
                               f"pad={pad}, kernel_size={k} and dilation={d}")
    h, w = x.shape[-2:]
    sizes = []
    extra = []
    for size, pad, k, d, s in ((h, top, kh, dh, sh), (w, left, kw, dw, sw)):
        span = size + 2 * pad - d * (k - 1) - 1
        out = (-(-span // s) if ceil_mode else span // s) + 1
        if ceil_mode and (out - 1) * s >= size + pad:
            out -= 1  # the last window must start inside the input or the left padding
        sizes.append(out)
        extra.append(max(0, (out - 1) * s + d * (k - 1) + 1 - (size + 2 * pad)))
    if sizes[0] < 1 or sizes[1] < 1:
        raise RuntimeError(f"Given input size: ({x.shape[1]}x{h}x{w}). Calculated output size: "
                           f"({x.shape[1]}x{sizes[0]}x{sizes[1]}). Output size is too small")
    window = window._replace(padding=(top, top + extra[0], left, left + extra[1]))
    return x, added, window, tuple(sizes)


def max_pool2d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1,  # noqa: A002
               ceil_mode: bool = False, return_indices: bool = False):
    """y = the max over each window (padding never wins: it is -inf); the gradient goes to the
    first max of each window, as in PyTorch."""
    x, added, window, (out_h, out_w) = _pool_window(input, kernel_size, stride, padding,
                                                    dilation, ceil_mode, "max_pool2d")
    n, c, h, w = x.shape
    kh, kw = window.kernel
    values = conv.MaxPool2d.apply(x, window)
    if added:
        values = values.squeeze(0)
    if not return_indices:
        return values
    (dh, dw), (top, _, left, _), (sh, sw) = window.dilation, window.padding, window.stride

    def indices_of(a):  # where each max came from, an index into the (H*W) plane, as PyTorch
        taps = conv.max_pool_array(a, window)[1].reshape(n, c, -1)
        positions = backend.array_module(a).arange(out_h * out_w)
        rows = (positions // out_w) * sh - top + (taps // kw) * dh
        columns = (positions % out_w) * sw - left + (taps % kw) * dw
        return (rows * w + columns).reshape(n, c, out_h, out_w)

    indices = selection.NoGradient.apply(indices_of, x)
    return values, indices.squeeze(0) if added else indices


def avg_pool2d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,  # noqa: A002
               count_include_pad: bool = True, divisor_override=None) -> Tensor:
    """y = the mean over each window: of kh*kw elements, padding's zeros included
    (count_include_pad), or of the input's elements only; a window over the bottom or right
    edge (ceil_mode) counts what is inside input and padding."""
    x, added, window, (out_h, out_w) = _pool_window(input, kernel_size, stride, padding, 1,
                                                    ceil_mode, "avg_pool2d")
    n, c, h, w = x.shape
    kh, kw = window.kernel
    sums = conv.Unfold.apply(x, window, 0.0, True).reshape(n, c, kh * kw, out_h * out_w).sum(2)
    if divisor_override is not None:
        if not isinstance(divisor_override, int) or divisor_override == 0:
            raise RuntimeError("divisor must be not zero")
        divisor = divisor_override
    else:
        divisor = _window_counts(x, window, count_include_pad)
    means = (sums / divisor).reshape(n, c, out_h, out_w)
    return means.squeeze(0) if added else means


def _window_counts(x: Tensor, window: conv.Window, count_include_pad: bool):
    """How many places each window averages over: a constant, (L,) shaped."""
    top, bottom, left, right = window.padding
    h, w = x.shape[-2:]
    with no_grad():
        if count_include_pad:  # the input and its stated padding, not ceil_mode's extra
            inside = ones(1, 1, h + 2 * top, w + 2 * left, dtype=x.dtype, device=x.device)
            inner = window._replace(padding=(0, bottom - top, 0, right - left))
        else:
            inside = ones(1, 1, h, w, dtype=x.dtype, device=x.device)
            inner = window
        return conv.Unfold.apply(inside, inner).sum(1).reshape(-1)


def adaptive_avg_pool2d(input: Tensor, output_size) -> Tensor:  # noqa: A002
    """y[i, j] = the mean of x over rows floor(i H / oh) .. ceil((i+1) H / oh) and the same
    columns: P_h @ x @ P_w^T with constant averaging matrices (each row of P averages one
    window)."""
    if input.ndim not in (3, 4):
        raise RuntimeError(f"adaptive_avg_pool2d(): Expected 3D or 4D tensor, but got "
                           f"{list(input.shape)}")
    h, w = input.shape[-2:]
    size = output_size if isinstance(output_size, (tuple, list)) else (output_size,) * 2
    out_h, out_w = (h if s is None else s for s in size)
    return _averaging(out_h, h, input) @ input @ _averaging(out_w, w, input).transpose(0, 1)


def _averaging(outputs: int, size: int, like: Tensor) -> Tensor:
    """(outputs, size): row i averages elements floor(i size / outputs) .. ceil((i+1) size /
    outputs) - 1."""
    xp = backend.module_for(like.device)
    matrix = xp.zeros((outputs, size), dtype=like.dtype)
    for i in range(outputs):
        start, end = (i * size) // outputs, -(-((i + 1) * size) // outputs)
        matrix[i, start:end] = 1.0 / (end - start)
    return Tensor._wrap_no_copy_no_checks(matrix, like.device)


# ---- dropout2d and batch norm --------------------------------------------------------------


def dropout2d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False):  # noqa: A002
    """Zero whole channels with probability p (one draw per sample and channel), the rest
    scaled by 1 / (1 - p)."""
    if p < 0 or p > 1:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0:
        return input
    if input.ndim not in (3, 4):
        raise RuntimeError(f"dropout2d: expected a 3D or 4D input, got {list(input.shape)}")
    shape = tuple(input.shape[:-2]) + (1, 1)
    if p == 1:
        return input * 0.0
    keep = (rand(*shape, dtype=input.dtype, device=input.device) >= p).to(input.dtype)
    return input * (keep / (1 - p))


def batch_norm(input: Tensor, running_mean, running_var, weight=None, bias=None,  # noqa: A002
               training: bool = False, momentum=0.1, eps: float = 1e-5) -> Tensor:
    """y = (x - mean) / sqrt(var + eps) * weight + bias, per channel (dim 1): over the batch
    and the other dims in training (the running statistics then move toward them by
    momentum), from the running statistics in eval."""
    channels = input.shape[1] if input.ndim >= 2 else 0
    for name, stat in (("running_mean", running_mean), ("running_var", running_var),
                       ("weight", weight), ("bias", bias)):
        if stat is not None and stat.numel() != channels:
            raise RuntimeError(f"{name} should contain {channels} elements not {stat.numel()}")
    dims = (0,) + tuple(range(2, input.ndim))
    shape = (1, channels) + (1,) * (input.ndim - 2)
    if training:
        count = input.numel() // max(channels, 1)
        if count <= 1:
            raise ValueError("Expected more than 1 value per channel when training, got input "
                             f"size {tuple(input.shape)}")
        mean = input.mean(dims)
        var = input.var(dims, correction=0)
        if running_mean is not None:
            with no_grad():  # the running statistics take the unbiased variance, as PyTorch
                running_mean.mul_(1 - momentum).add_(mean.detach() * momentum)
                running_var.mul_(1 - momentum).add_(var.detach() * (momentum * count /
                                                                    (count - 1)))
    else:
        mean, var = running_mean, running_var
    y = (input - mean.reshape(shape)) / (var.reshape(shape) + eps).sqrt()
    if weight is not None:
        y = y * weight.reshape(shape)
    if bias is not None:
        y = y + bias.reshape(shape)
    return y


__all__ = ["adaptive_avg_pool2d", "avg_pool2d", "batch_norm", "conv1d", "conv2d", "dropout2d",
           "fold", "max_pool2d", "pad", "unfold"]
